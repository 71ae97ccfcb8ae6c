"""Checkpoints of a long run: one file per training stage, rewritten after every epoch, so a killed run
continues from its last epoch (``--resume``) instead of starting over.

The directory (``--checkpoint-dir``, default ``<out>.checkpoints`` beside the bundle) holds:

- ``run.json``: what the run is (the configuration, the dataset's digest, the modalities, the seed,
  the face initialisation, the epoch scale). ``--resume`` refuses a directory whose run differs,
  naming each field that differs; a new run refuses a directory that holds another run's
  checkpoints unless ``--overwrite`` is given.
- ``<stage>.last.pt``: the stage in progress after its last finished epoch: weights, optimizer,
  scheduler and gradient-scaler state, the best epoch's weights, the epochs without improvement,
  the training history and both random generators (numpy's, which draws the batches, and torch's).
- ``<stage>.done.pt``: a finished stage: its best weights and the generators' state at its end, so a
  resumed run skips it and draws exactly what an uninterrupted run would have drawn next.

Files are written to a temporary name and renamed (a kill never leaves a torn checkpoint behind)
and read with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only,
never code. A file that cannot be read (truncated, or not a checkpoint) is an error naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from edge_mmer.errors import TrainError

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_FORMAT", "CheckpointStore", "fingerprint_differences"]

CHECKPOINT_FORMAT = 1
RUN_FILE = "run.json"
FINISHED_FILE = "finished.json"
_STAGE = re.compile(r"[^A-Za-z0-9_.-]+")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def fingerprint_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: <saved> in the checkpoint, <current> now`` for every field that differs (dotted keys)."""
    a, b = _flatten(saved), _flatten(current)
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {json.dumps(a.get(key))} in the checkpoint, {json.dumps(b.get(key))} now")
    return out


class CheckpointStore:
    """The checkpoints of one run in ``root``; only the main rank writes (``writer``)."""

    def __init__(self, root: Path, fingerprint: Mapping[str, Any], *, resume: bool, overwrite: bool,
                 writer: bool = True) -> None:
        self.root = Path(root)
        self.writer = writer
        self.fingerprint = json.loads(json.dumps(dict(fingerprint)))  # plain JSON values, as saved
        run = self.root / RUN_FILE
        self.resumed = resume
        if not writer:  # another rank: the main rank checks, reads and broadcasts
            return
        if resume:
            if not run.is_file():
                raise TrainError(f"--resume: nothing to resume in {self.root} (no {RUN_FILE}: no run has written "
                                 "checkpoints there; start without --resume)")
            if (self.root / FINISHED_FILE).is_file():
                raise TrainError(f"--resume: the run in {self.root} finished (its bundle was written): nothing to "
                                 "resume; start without --resume to train again")
            try:
                saved = json.loads(run.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise TrainError(f"--resume: {run} is not readable ({exc})") from None
            diff = sorted(fingerprint_differences(saved, self.fingerprint), key=lambda d: d.startswith("config."))
            if diff:
                shown = "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
                raise TrainError(f"--resume: the checkpoints in {self.root} are from another run ({shown}): "
                                 "resume with the same dataset, configuration and options, or start over with "
                                 "--overwrite")
        else:
            finished = (self.root / FINISHED_FILE).is_file()
            if run.is_file() or any(self.root.glob("*.pt")):
                if not overwrite and not finished:
                    raise TrainError(f"{self.root} holds the checkpoints of an earlier run: --resume to continue it, "
                                     "--overwrite to start over")
                shutil.rmtree(self.root)
            self.root.mkdir(parents=True, exist_ok=True)
            _write_atomic(run, (json.dumps(self.fingerprint, indent=1, sort_keys=True) + "\n").encode("utf-8"))

    # ------------------------------------------------------------------------------------- files

    def path(self, stage: str, kind: str) -> Path:
        return self.root / f"{_STAGE.sub('_', stage)}.{kind}.pt"

    def load(self, stage: str, kind: str) -> dict[str, Any] | None:
        """A stage's ``last`` or ``done`` checkpoint, None when there is none (only on a resumed run)."""
        path = self.path(stage, kind)
        if not self.resumed or not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError ... on a torn file
            raise TrainError(f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}: {exc}); delete it "
                             "to redo that stage, or start over with --overwrite") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or state.get("stage") != stage:
            raise TrainError(f"checkpoint {path} is not an edge-mmer checkpoint of stage '{stage}' "
                             f"(format {CHECKPOINT_FORMAT}); delete it, or start over with --overwrite")
        return state

    def finish(self, bundle: Path) -> None:
        """Mark the run finished (its bundle written and verified): a new run may then reuse the
        directory without ``--overwrite``, and ``--resume`` says there is nothing left to do."""
        if self.writer:
            _write_atomic(self.root / FINISHED_FILE, (json.dumps({"bundle": str(bundle)}) + "\n").encode("utf-8"))

    def save(self, stage: str, kind: str, state: Mapping[str, Any]) -> None:
        """Write a stage's ``last`` or ``done`` checkpoint atomically (``done`` removes ``last``)."""
        if not self.writer:
            return
        path = self.path(stage, kind)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"format": CHECKPOINT_FORMAT, "stage": stage, **state}, tmp)
        os.replace(tmp, path)
        if kind == "done":
            self.path(stage, "last").unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
