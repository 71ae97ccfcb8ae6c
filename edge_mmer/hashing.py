"""Small sha256 helpers shared by the model bundle, calibration sets and converters (torch-free)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["is_sha256_hex", "sha256_bytes", "sha256_file"]

_HEX = frozenset("0123456789abcdef")


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Lower-case hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Lower-case hex sha256 of a file, read in ``chunk``-byte pieces (constant memory)."""
    if chunk <= 0:
        raise ValueError(f"chunk must be > 0, got {chunk}")
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def is_sha256_hex(value: object) -> bool:
    """True for a 64-character lower-case hex string (the form every manifest stores)."""
    return isinstance(value, str) and len(value) == 64 and all(ch in _HEX for ch in value)
