"""The feature cache: one ``.npz`` per utterance, keyed by its files' sha256 and the front-end settings.

A second training run on the same files with the same front ends loads the log-mels and face
crops instead of decoding; a run that was interrupted finds the utterances it had finished (each
entry is written atomically, temp file then rename, as soon as it is computed). A failed
extraction (a corrupt clip) is cached too, so it is not decoded again. Changing a file changes its
hash and so its key; changing a front-end setting changes every key.

File hashes are remembered in ``files.jsonl`` by (path, size, mtime) so unchanged files are not
read again. Entries hold only numpy arrays and strings (``allow_pickle=False``).

The cache holds log-mel features and face crops of the dataset's people: it lives where the user
points it (``--cache DIR``; default ``$XDG_CACHE_HOME/edge-mmer/features``) and ``--no-cache``
turns it off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.hashing import sha256_file as file_sha256

log = logging.getLogger(__name__)

__all__ = ["CacheEntry", "FeatureCache", "default_cache_dir", "file_sha256"]

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-mmer" / "features"


@dataclass
class CacheEntry:
    """What the front ends produced for one utterance, or why they could not."""

    mel: np.ndarray | None
    faces: np.ndarray | None
    error: str | None = None  # a defect reason ("corrupt", "overlong", "no_audio", ...)
    detail: str = ""


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), int(st.st_size), int(st.st_mtime_ns)


class FeatureCache:
    """``root/ab/abcdef....npz`` entries plus ``root/files.jsonl`` (known file hashes)."""

    def __init__(self, root: Path, settings: dict[str, Any], load_index: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings_json = json.dumps({"format": CACHE_FORMAT, **settings}, sort_keys=True)
        self._hashes: dict[tuple[str, int, int], str] = {}
        index = self.root / "files.jsonl"
        if load_index and index.is_file():
            for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    self._hashes[(row["path"], int(row["size"]), int(row["mtime_ns"]))] = str(row["sha256"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line from an interrupted run

    # ------------------------------------------------------------------ file hashes

    def known_hash(self, path: Path) -> str | None:
        try:
            return self._hashes.get(_stat_key(path))
        except OSError:
            return None

    def remember(self, path: Path, sha256: str) -> None:
        try:
            key = _stat_key(path)
        except OSError:
            return
        if self._hashes.get(key) == sha256:
            return
        self._hashes[key] = sha256
        with open(self.root / "files.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": sha256}) + "\n")

    # ------------------------------------------------------------------ entries

    def key(self, file_hashes: list[str], window: tuple[float | None, float | None], sampling: str) -> str:
        blob = json.dumps({"settings": self.settings_json, "files": file_hashes, "window": list(window),
                           "sampling": sampling}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> CacheEntry | None:
        return load_entry(self.path(key))

    def put(self, key: str, entry: CacheEntry) -> None:
        save_entry(self.path(key), entry)


def save_entry(path: Path, entry: CacheEntry) -> None:
    """Atomic write: a temp file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"error": np.array(entry.error or ""), "detail": np.array(entry.detail)}
    if entry.mel is not None:
        arrays["mel"] = entry.mel
    if entry.faces is not None:
        arrays["faces"] = entry.faces
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def load_entry(path: Path) -> CacheEntry | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            error = str(z["error"]) or None
            mel = z["mel"] if "mel" in names else None
            faces = z["faces"] if "faces" in names else None
            return CacheEntry(mel=mel, faces=faces, error=error, detail=str(z["detail"]))
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: unreadable cache entry (%s): extracting again", path, exc)
        return None
