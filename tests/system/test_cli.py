"""The command line: real --help, clear errors, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_cli as _run
from support.paths import DEMO_BUNDLE

from edge_mmer.cli import build_parser, main


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
    assert main(["bundle", "verify", str(DEMO_BUNDLE)]) == 0
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
    assert out.returncode == 2 and needle in out.stderr and "edge-mmer train: " in out.stderr


def test_train_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    out = _run("train", "--dataset", "synthetic:" + str(tmp_path / "none"), "--out", str(tmp_path))
    assert out.returncode == 2 and "--overwrite" in out.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.needs_espeak
def test_synth_writes_a_dataset_and_the_demo_clip(tmp_path: Path) -> None:
    out = _run("-q", "synth", "--out", str(tmp_path / "ds"), "--speakers", "3", "--sessions", "1",
               "--utterances", "2", "--demo-clip", str(tmp_path / "clip.mp4"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ds" / "dataset.json").is_file()
    assert len((tmp_path / "ds" / "utterances.jsonl").read_text().splitlines()) == 6
    assert (tmp_path / "clip.mp4").stat().st_size > 10_000 and (tmp_path / "clip.labels.json").is_file()
    again = _run("-q", "synth", "--out", str(tmp_path / "ds"), "--speakers", "3")
    assert again.returncode == 2 and "edge-mmer synth: " in again.stderr and "--overwrite" in again.stderr


# ------------------------------------------------------------------------------ the exit policy


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """main's exit status (argparse's own errors included) and what it wrote on stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses the arguments before any command runs
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def _usage_errors(tmp: Path) -> dict[str, list[str]]:
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("mine")
    missing = str(tmp / "missing.toml")
    return {
        "run": ["run", "--config", missing],
        "profile": ["profile", "--out", str(tmp / "p"), "--compare", "fp32"],
        "synth": ["synth", "--out", str(tmp / "full")],
        "train": ["train", "--config", missing, "--out", str(tmp / "b")],
        "evaluate": ["evaluate", "--bundle", str(tmp / "b"), "--dataset", f"meld:{tmp / 'none'}"],
        "bundle verify": ["bundle", "verify"],
        "bundle show": ["bundle", "show", str(DEMO_BUNDLE), "--bogus"],
        "convert": ["convert", "--bundle", str(DEMO_BUNDLE), "--precision", "int9"],
        "calibrate build": ["calibrate", "build", "--bundle", str(tmp / "b"), "--utterances", "0",
                            "--out", str(tmp / "c.npz")],
        "calibrate record": ["calibrate", "record", "--config", missing, "--out", str(tmp / "c.npz")],
    }


def _failures(tmp: Path) -> dict[str, list[str]]:
    nope, empty = str(tmp / "nope"), f"synthetic:{tmp / 'empty'}"  # no bundle there; no espeak-ng to generate
    return {
        "run": ["run", "--bundle", nope],
        "profile": ["profile", "--bundle", nope, "--out", str(tmp / "p"), "--no-plots", "--no-device-probes"],
        "synth": ["synth", "--out", str(tmp / "s")],
        "train": ["train", "--dataset", empty, "--out", str(tmp / "b")],
        "evaluate": ["evaluate", "--bundle", nope, "--dataset", empty],
        "bundle verify": ["bundle", "verify", str(tmp)],
        "bundle show": ["bundle", "show", str(tmp)],
        "convert": ["convert", "--bundle", nope],
        "calibrate build": ["calibrate", "build", "--bundle", nope, "--out", str(tmp / "c.npz")],
        "calibrate record": ["calibrate", "record", "--bundle", nope, "--out", str(tmp / "c.npz")],
    }


COMMAND_NAMES = ["run", "profile", "synth", "train", "evaluate", "bundle verify", "bundle show", "convert",
                 "calibrate build", "calibrate record"]


@pytest.mark.parametrize("command", COMMAND_NAMES)
def test_a_usage_error_exits_2_naming_the_command(command: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _exit(_usage_errors(tmp_path)[command], capsys)
    assert code == 2, err
    assert f"edge-mmer {command}: " in err and "FAILED" not in err and "Traceback" not in err


# these commands import the training stack before they can fail on their input
TRAINING_COMMANDS = ("train", "evaluate", "calibrate build")


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.needs_torch) if c in TRAINING_COMMANDS else c
                                     for c in COMMAND_NAMES])
def test_a_failing_run_exits_1_naming_the_command(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # synth (and a synthetic dataset to generate) needs espeak-ng
    code, err = _exit(["-q", *_failures(tmp_path)[command]], capsys)
    assert code == 1, err
    assert f"edge-mmer {command}: FAILED: " in err and "Traceback" not in err


def test_an_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import edge_mmer.bundle

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(edge_mmer.bundle, "read_bundle", interrupted)
    assert _exit(["bundle", "verify", str(DEMO_BUNDLE)], capsys) == (
        130, "edge-mmer bundle verify: interrupted\n")


def test_no_subcommand_is_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from edge_mmer.cli import run as run_command
    from edge_mmer.cli import with_default_command

    assert with_default_command([]) == ["run"]
    assert with_default_command(["-q", "-vv"]) == ["-q", "-vv", "run"]
    assert with_default_command(["-q", "--max-events", "2"]) == ["-q", "run", "--max-events", "2"]
    for argv in (["--help"], ["-v", "--version"], ["train"], ["-q", "trian"]):  # argparse refuses a misspelt command
        assert with_default_command(argv) == argv
    seen: list[argparse.Namespace] = []

    def fake_run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(run_command, "run", fake_run)
    assert main(["-q"]) == 0
    assert seen[0].command == "run" and seen[0].bundle is None and seen[0].max_events == 0
    assert main(["-q", "--max-events", "2"]) == 0 and seen[1].max_events == 2


def test_python_m_edge_mmer_cli_applies_the_same_policy(tmp_path: Path) -> None:
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("edge-mmer ")
    out = _run("run", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2 and out.stderr.startswith("edge-mmer run: ") and "no such TOML file" in out.stderr
    out = _run("bundle", "verify", str(tmp_path))
    assert out.returncode == 1 and out.stderr.startswith("edge-mmer bundle verify: FAILED: ")


def test_run_and_profile_share_the_backend_and_precision_vocabulary() -> None:
    from edge_mmer.cli.args import INT8_FLAVOURS
    from edge_mmer.vocab import BACKENDS, PRECISIONS

    parser = build_parser()
    for command in ("run", "profile"):
        given = parser.parse_args([command])
        assert (given.backend, given.precision, given.threads, given.bundle, given.config) == (None,) * 5
        for backend in BACKENDS:
            assert parser.parse_args([command, "--backend", backend]).backend == backend
        for precision in PRECISIONS:
            assert parser.parse_args([command, "--precision", precision]).precision == precision
        assert isinstance(parser.parse_args([command, "--bundle", "b"]).bundle, Path)
    for flavour in INT8_FLAVOURS:  # profile also names the INT8 flavour exactly; run lets the runtime choose
        assert parser.parse_args(["profile", "--precision", flavour]).precision == flavour
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "--precision", flavour])


@pytest.mark.needs_convert
def test_convert_offers_the_tensorrt_releases_it_checks_against() -> None:
    from edge_mmer.cli.convert import TRT_RELEASES
    from edge_mmer.convert.opcheck import TENSORRT_RELEASES

    assert TRT_RELEASES == TENSORRT_RELEASES


@pytest.mark.parametrize("args", [
    ["train", "--dataset", "synthetic:{tmp}", "--out", "{tmp}/out"],
    ["calibrate", "build", "--bundle", str(DEMO_BUNDLE), "--out", "{tmp}/c.npz"],
])
def test_a_missing_training_stack_says_what_to_install(args: list[str], tmp_path: Path) -> None:
    """On a device install (no torch), a training-side command fails with the line that installs it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; from edge_mmer.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    (tmp_path / "dataset.json").write_text("{}")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "needs torch, which is not installed: pip install 'edge-mmer[train]'" in out.stderr
