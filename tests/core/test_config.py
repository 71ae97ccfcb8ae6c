"""Configuration: presets, TOML overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_mmer.config import ConfigError, config_from_dict, demo_config, load_config, merge, paper_config


def test_presets_validate_and_differ() -> None:
    demo, paper = demo_config(), paper_config()
    assert demo.face.crop_size == 96 and paper.face.crop_size == 299
    assert paper.face_encoder.width == 1.0 and paper.face_encoder.repeats == (10, 20, 9)
    assert paper.speech_encoder.lstm_hidden == 256 and paper.fusion.fc == 300
    assert paper.selection.keep_fraction == 0.5


def test_round_trip_through_dict() -> None:
    cfg = paper_config()
    assert config_from_dict(cfg.to_dict()) == cfg


def test_toml_overrides_preset(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('preset = "paper"\n[selection]\nkeep_fraction = 0.3\n[train]\nseed = 7\n')
    cfg = load_config(str(path))
    assert cfg.selection.keep_fraction == 0.3 and cfg.train.seed == 7 and cfg.face.crop_size == 299


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[selection]\nkeep_fractoin = 0.3\n", "selection.keep_fractoin"),
        ("[selection]\nkeep_fraction = 1.5\n", "selection.keep_fraction"),
        ("[audio]\nsample_rate = 8000\n", "audio.sample_rate"),
        ("[svm]\nc_grid = 3\n", "svm.c_grid"),
        ("[train]\nspeech_epochs = 'ten'\n", "train.speech_epochs"),
        ("bogus = 1\n", "bogus"),
        ('preset = "huge"\n', "preset"),
        ("[audio\n", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")) as info:
        load_config(str(path))
    assert str(path) in str(info.value)


def test_unknown_preset_or_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such TOML file"):
        load_config("does-not-exist.toml")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=5),
                     st.lists(st.integers(-3, 300), max_size=4))
_keys = st.sampled_from(["audio", "face", "svm", "train", "fuzzy", "selection", "n_mels", "seed", "hop_length",
                         "keep_fraction", "integral", "repeats", "width", "labels", "name", "crop_size", "x"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, st.one_of(_scalars, st.dictionaries(_keys, _scalars, max_size=3)), max_size=4))
def test_loader_never_crashes_with_anything_but_config_error(overrides: dict[str, Any]) -> None:
    try:
        cfg = merge(demo_config(), overrides)
    except ConfigError:
        return
    assert cfg.validate() is cfg
