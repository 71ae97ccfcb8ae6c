"""The command line: real --help, clear errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_mmer.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_mmer.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_help_explains_the_default_and_the_subcommands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    for word in ("synth", "train", "bundle", "SYNTHETIC", "no subcommand"):
        assert word in out.stdout
    train = _run("train", "--help")
    for option in ("--dataset", "--config", "--out", "--device", "--epochs-scale", "--overwrite"):
        assert option in train.stdout


def test_no_subcommand_means_train_with_defaults() -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "--overwrite"])
    assert (args.dataset, args.config, str(args.out)) == ("synthetic", "demo", "runs/demo")


def test_verify_of_a_non_bundle_names_the_manifest(tmp_path: Path) -> None:
    out = _run("bundle", "verify", str(tmp_path))
    assert out.returncode == 1 and "manifest.json" in out.stderr


def test_verify_and_show_the_committed_demo_bundle() -> None:
    assert main(["bundle", "verify", str(ROOT / "demo" / "bundle")]) == 0
    show = _run("bundle", "show", "demo/bundle")
    assert show.returncode == 0 and "SYNTHETIC" in show.stdout and "final" in show.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--config", "tiny"], "no such TOML file"),
        (["train", "--dataset", "ravdess:/x"], "synthetic:DIR"),
    ],
)
def test_bad_arguments_say_what_was_expected(args: list[str], needle: str, tmp_path: Path) -> None:
    out = _run(*args, "--out", str(tmp_path / "b"))
    assert out.returncode != 0 and needle in out.stderr


def test_train_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    out = _run("train", "--dataset", "synthetic:" + str(tmp_path / "none"), "--out", str(tmp_path))
    assert out.returncode != 0 and "--overwrite" in out.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_synth_writes_a_dataset_and_the_demo_clip(tmp_path: Path) -> None:
    out = _run("-q", "synth", "--out", str(tmp_path / "ds"), "--speakers", "3", "--sessions", "1",
               "--utterances", "2", "--demo-clip", str(tmp_path / "clip.mp4"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ds" / "dataset.json").is_file()
    assert len((tmp_path / "ds" / "utterances.jsonl").read_text().splitlines()) == 6
    assert (tmp_path / "clip.mp4").stat().st_size > 10_000 and (tmp_path / "clip.labels.json").is_file()
    again = _run("-q", "synth", "--out", str(tmp_path / "ds"), "--speakers", "3")
    assert again.returncode != 0 and "--overwrite" in again.stderr
