"""Runtime settings files: a bad value names its key and the file, and whatever the loader accepts is
usable (property-based: arbitrary ``[run]`` ... ``[mqtt]`` tables raise only ``ConfigError``)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.strategies import json_values

from edge_mmer.config import ConfigError, demo_config
from edge_mmer.runtime.settings import RuntimeSettings, load_settings, settings_from_dict
from edge_mmer.runtime.vad import VadSegmenter


@pytest.mark.parametrize(("text", "needle"), [
    ("[mqtt]\nqos = 3\n", "mqtt.qos"),
    ('[mqtt]\nqos = "1"\n', "mqtt.qos"),
    ("[mqtt]\npasword_file = '/etc/pw'\n", "mqtt.pasword_file"),
    ("[run]\nrealtime = 1\n", "run.realtime"),
    ("[queues]\naudio = 0\n", "queues"),
    ("[watchdog]\nstale_timeout_s = -1.0\n", "watchdog"),
    ("[watchdog]\nstale_timeout_s = nan\n", "watchdog.stale_timeout_s"),
    ("[faces]\nanalysis_fps = nan\n", "faces.analysis_fps"),
    ("[faces]\nvideo_wait_s = inf\n", "faces.video_wait_s"),
    ("[run]\nstats_interval_s = nan\n", "run.stats_interval_s"),
    ("run = 3\n", "'run'"),
    ("[vad]\naggressiveness = 9\n", "vad.aggressiveness"),
    ("[vad]\nmin_utterance_s = 2.0\nmax_utterance_s = 1.0\n", "vad.min_utterance_s/max_utterance_s"),
    ("[faces]\nanalysis_fps = 0.0\n", "faces.analysis_fps"),  # absent is the bundle's value; 0 is no value
    ("[decision]\ncontext_reset_gap_s = 0.0\n", "decision.context_reset_gap_s"),
    ("[mqtt]\nkeepalive = 2\n", "mqtt.keepalive"),
    ("[mqtt]\nkey_file = '/etc/k.pem'\n", "mqtt.key_file"),
])
def test_bad_setting_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert needle in str(info.value) and str(cfg) in str(info.value)


def test_non_utf8_toml_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_bytes(b'[run]\ndevice_id = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)


def _field_values(default: Any) -> st.SearchStrategy[Any]:
    junk = st.none() | st.text(max_size=6) | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3),
                                                                                                  st.integers(),
                                                                                                  max_size=2)
    if isinstance(default, bool):
        typed: st.SearchStrategy[Any] = st.booleans()
    elif isinstance(default, float):
        typed = st.floats(allow_nan=True, allow_infinity=True) | st.floats(-5, 100) | st.integers(-5, 100)
    elif isinstance(default, int):
        typed = st.integers(-5, 10**6) | st.integers(-(2**70), 2**70)
    elif isinstance(default, str):
        typed = st.text(max_size=12) | st.sampled_from(["auto", "fp16", "int8", "every", "change", "stdout",
                                                        "onnxruntime", "tensorrt", "mqtt://h/p", "none", ""])
    else:
        typed = st.nothing()
    return st.one_of(typed, typed, typed, junk)


def _example(cls: type, name: str, default: Any) -> Any:
    """The default, or for an option whose default is "not given" (None) a value of its type."""
    if default is not None:
        return default
    hint = typing.get_type_hints(cls)[name]
    kind = next(a for a in typing.get_args(hint) if a is not type(None))
    return {float: 0.0, int: 0, bool: False}.get(kind, "")


def _section(cls: type) -> st.SearchStrategy[dict[str, Any]]:
    defaults = cls()
    fields = {f.name: _field_values(_example(cls, f.name, getattr(defaults, f.name))) for f in dataclasses.fields(cls)}
    keys = st.sampled_from([*sorted(fields), "bogus"])
    return st.dictionaries(keys, st.just(None), max_size=len(fields)).flatmap(
        lambda chosen: st.fixed_dictionaries({k: fields.get(k, st.integers()) for k in chosen}))


_SECTIONS = {f.name: _section(type(getattr(RuntimeSettings(), f.name))) for f in dataclasses.fields(RuntimeSettings)}


@st.composite
def settings_like(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from([*_SECTIONS, "bogus"]), unique=True, max_size=4))
    out: dict[str, Any] = {}
    for name in chosen:
        out[name] = draw(_SECTIONS[name] if name in _SECTIONS and draw(st.integers(0, 9)) else json_values())
    return out


def _floats(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    found = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            found += _floats(v, f"{prefix}{f.name}.")
        elif isinstance(v, float):
            found.append((f"{prefix}{f.name}", v))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings_like())
def test_settings_loader_raises_only_config_error_and_accepts_only_usable_values(data: dict[str, Any]) -> None:
    try:
        s = settings_from_dict(data, "unit.toml")
    except ConfigError as exc:
        assert str(exc).startswith("unit.toml: ")
        return
    bad = [(k, v) for k, v in _floats(s) if not math.isfinite(v)]
    assert not bad, f"accepted non-finite settings {bad}"
    assert s.pipeline.vad == s.vad and s.pipeline.decision == s.decision
    vad = s.vad.for_front_end(demo_config().audio)  # the length limits not given are the bundle's
    if (s.vad.min_utterance_s is None) == (s.vad.max_utterance_s is None):
        VadSegmenter(vad)
    else:  # one limit given: whether it fits the other is known only with the bundle's
        with contextlib.suppress(ConfigError):
            VadSegmenter(vad)
