"""The documentation works: the examples of docs/running.md run and print what the page shows, the
settings files the pages show load, every link between the README and docs/ resolves (file and
#anchor), and the README stays a short entry point whose sample event is a valid event.

A ``console`` block in docs/running.md is a runnable example: each ``$ edge-mmer ...`` line is run as
``python -m edge_mmer.cli ...`` from the repository root and must exit 0; the lines after it are its
expected output. A JSON event line is compared on what does not change between runs (sequence,
trigger, utterance, labels, confidence to 1e-3); any other line must appear in the output, spacing
aside; ``...`` stands for lines left out.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.paths import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
EVENT_SCHEMA = ROOT / "runtime" / "schema" / "emotion-event.v1.json"
README_MAX_LINES = 150

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
# the event fields that differ between runs of the same command
VOLATILE = {"session_id", "wall_time", "decision_latency_ms", "device_id"}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fences(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text outside fenced blocks and inline code (where a link or a heading is a real one)."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for m in HEADING.finditer(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


# ------------------------------------------------------------------------------ runnable examples


@dataclass
class Example:
    command: str
    expected: list[str] = field(default_factory=list)


def console_examples(page: Path) -> list[Example]:
    out: list[Example] = []
    for lang, body in fences(page.read_text(encoding="utf-8")):
        if lang != "console":
            continue
        for line in body.splitlines():
            if line.startswith("$ "):
                out.append(Example(line[2:].strip()))
            elif out:
                out[-1].expected.append(line)
    return out


RUNNING_EXAMPLES = console_examples(DOCS / "running.md")


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    assert words and words[0] == "edge-mmer", f"a runnable example must call edge-mmer: {command!r}"
    return [sys.executable, "-m", "edge_mmer.cli", *words[1:]]


def _normal(text: str) -> str:
    return " ".join(text.split())


def _check_event(expected: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    for key, value in expected.items():
        if key in VOLATILE:
            continue
        assert key in actual, f"{where}: no field {key!r}"
        if key == "confidence" or key == "scores":
            continue
        if key == "channels":
            for name, channel in value.items():
                got = actual["channels"][name]
                assert (channel is None) == (got is None), f"{where}: channel {name}"
                if channel is not None:
                    assert got["label"] == channel["label"], f"{where}: channel {name} label"
            continue
        assert actual[key] == value, f"{where}: {key} is {actual[key]!r}, the page shows {value!r}"
    assert actual["confidence"] == pytest.approx(expected["confidence"], abs=1e-3), where


def test_running_md_has_runnable_examples() -> None:
    commands = [e.command for e in RUNNING_EXAMPLES]
    assert any(" run " in f" {c} " for c in commands), "docs/running.md shows no runnable 'edge-mmer run'"
    assert any("bundle show" in c for c in commands) and any("--help" in c for c in commands)


@pytest.mark.parametrize("example", RUNNING_EXAMPLES, ids=[e.command for e in RUNNING_EXAMPLES])
def test_running_md_example_runs_and_prints_what_the_page_shows(example: Example) -> None:
    if "run" in shlex.split(example.command):
        for module in ("onnxruntime", "av", "webrtcvad", "cv2"):
            pytest.importorskip(module, reason="the demo loop needs the 'onnx' and 'capture' extras")
    env = {**os.environ, "COLUMNS": "100", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(_argv(example.command), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    where = f"docs/running.md: $ {example.command}"
    assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    out_lines = [_normal(line) for line in (proc.stdout + "\n" + proc.stderr).splitlines()]
    printed_events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    shown_events = []
    for line in example.expected:
        text = line.strip()
        if not text or text == "...":
            continue
        if text.startswith("{"):
            shown_events.append(json.loads(text))
            continue
        want = _normal(text)
        assert any(want in got for got in out_lines), f"{where}: the output has no line {text!r}"
    if shown_events:
        assert len(printed_events) == len(shown_events), f"{where}: {len(printed_events)} events printed"
        for i, (shown, printed) in enumerate(zip(shown_events, printed_events, strict=True)):
            _check_event(shown, printed, f"{where}, event {i + 1}")


def test_settings_files_shown_in_the_docs_load(tmp_path: Path) -> None:
    from edge_mmer.config import load_config
    from edge_mmer.runtime.settings import load_settings

    checked = 0
    for page in (DOCS / "running.md", DOCS / "sinks.md", DOCS / "training.md"):
        for i, (lang, body) in enumerate(fences(page.read_text(encoding="utf-8"))):
            if lang != "toml":
                continue
            path = tmp_path / f"{page.stem}-{i}.toml"
            path.write_text(body, encoding="utf-8")
            # a model config starts from a preset; a runtime settings file has [run] ... [mqtt] sections
            loaded: object = load_config(str(path)) if "preset" in body else load_settings(path)
            assert loaded is not None, f"{_rel(page)}: toml block {i}"
            checked += 1
    assert checked >= 3


# ------------------------------------------------------------------------------ links


def _links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=[_rel(p) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    problems = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            problems.append(f"{target}: no such file")
            continue
        if ROOT not in dest.parents and dest != ROOT:
            problems.append(f"{target}: outside the repository")
            continue
        if anchor:
            if dest.suffix != ".md":
                problems.append(f"{target}: an anchor into a file that is not Markdown")
            elif anchor not in anchors(dest):
                problems.append(f"{target}: {_rel(dest)} has no heading #{anchor}")
    assert not problems, f"{_rel(page)}:\n  " + "\n  ".join(problems)


def test_every_page_is_reachable_and_has_back_next_links() -> None:
    index = DOCS / "index.md"
    listed = {(DOCS / t.partition("#")[0]).resolve() for t in _links(index) if not t.startswith(("..", "#"))}
    for page in sorted(DOCS.glob("*.md")):
        if page == index:
            continue
        assert page.resolve() in listed, f"docs/index.md does not list {page.name}"
        text = page.read_text(encoding="utf-8")
        assert "**Back:**" in text and "(index.md)" in text, f"{page.name}: no Back / Contents links"
    readme_targets = {(ROOT / t.partition("#")[0]).resolve() for t in _links(README)}
    assert index.resolve() in readme_targets, "the README does not link docs/index.md"


# ------------------------------------------------------------------------------ the README


def test_readme_is_a_short_entry_point_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    commands = {line.split("#")[0].strip() for line in lines}
    assert {"./scripts/demo.sh", "./scripts/test.sh"} <= commands


def test_readme_sample_event_is_a_valid_event() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="the 'dev' extra validates events")
    schema = json.loads(EVENT_SCHEMA.read_text(encoding="utf-8"))
    events = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("schema") == schema["properties"]["schema"]["const"]:
            events.append(doc)
    assert events, "README.md has no line that is an emotion event"
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for event in events:
        errors = sorted(validator.iter_errors(event), key=lambda e: list(e.path))
        assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
