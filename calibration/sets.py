"""A calibration set: real input tensors per network and input, with where they came from.

Saved as a compressed ``.npz`` without pickles: one array per sample under
``<network>/<input>/<index:06d>`` plus ``__provenance__``, a one-element unicode array holding the
provenance as JSON. Loaded with ``allow_pickle=False`` and checked (every network has the same
number of samples for each of its inputs, float32 tensors, indices contiguous).
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.errors import CalibrationError
from edge_mmer.hashing import sha256_file

log = logging.getLogger(__name__)

__all__ = ["PROVENANCE_KEY", "CalibrationError", "CalibrationSet", "load_calibration_set", "save_calibration_set"]

PROVENANCE_KEY = "__provenance__"
_KEY = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.+-]*)/([A-Za-z0-9_][A-Za-z0-9_.+-]*)/(\d{6})$")


@dataclass
class CalibrationSet:
    """``arrays``: network -> input name -> samples, each one full input tensor for one run (e.g.
    ``speech_encoder/log_mel`` (1, T, n_mels) with varying T, ``face_encoder/face`` (n, 3, S, S),
    ``fusion/x|h|c`` (1, D) per step). ``provenance``: source (``dataset:<path>:<split>`` or
    ``device``), counts per network, created, the bundle's model_id, and ``sha256`` of the saved file."""

    arrays: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Samples (runs) per network."""
        return {net: (len(next(iter(inputs.values()))) if inputs else 0) for net, inputs in self.arrays.items()}

    def samples(self, network: str) -> list[dict[str, np.ndarray]]:
        """One ``{input_name: array}`` feed per run of ``network``."""
        if network not in self.arrays:
            raise KeyError(f"calibration set has no samples for {network!r} (it has "
                           f"{', '.join(self.arrays) or 'none'})")
        inputs = self.arrays[network]
        n = len(next(iter(inputs.values()))) if inputs else 0
        return [{name: values[i] for name, values in inputs.items()} for i in range(n)]

    def validate(self, where: str = "calibration set") -> None:
        for net, inputs in self.arrays.items():
            if not inputs:
                raise CalibrationError(f"{where}: network {net!r} has no inputs")
            lengths = {name: len(v) for name, v in inputs.items()}
            if len(set(lengths.values())) != 1:
                raise CalibrationError(f"{where}: network {net!r} has different sample counts per input: {lengths}")
            for name, values in inputs.items():
                for i, a in enumerate(values):
                    if not isinstance(a, np.ndarray) or a.dtype != np.float32:
                        raise CalibrationError(f"{where}: key '{net}/{name}/{i:06d}': expected a float32 array, got "
                                               f"{getattr(a, 'dtype', type(a).__name__)}")
                    if not np.isfinite(a).all():
                        raise CalibrationError(f"{where}: key '{net}/{name}/{i:06d}': non-finite values")


def save_calibration_set(cs: CalibrationSet, path: str | os.PathLike[str]) -> str:
    """Write ``cs`` to ``path`` (``np.savez_compressed``, no pickles); returns the file's sha256 and
    records it in ``cs.provenance["sha256"]`` (the stored provenance cannot hold its own hash)."""
    target = Path(path)
    cs.validate(str(target))
    provenance = {k: v for k, v in cs.provenance.items() if k != "sha256"}
    provenance["counts"] = cs.counts()
    payload: dict[str, np.ndarray] = {PROVENANCE_KEY: np.array([json.dumps(provenance, sort_keys=True)])}
    for net, inputs in cs.arrays.items():
        for name, values in inputs.items():
            key_prefix = f"{net}/{name}/"
            if not _KEY.match(key_prefix + "000000"):
                raise CalibrationError(f"{target}: network/input name {net!r}/{name!r} cannot be stored")
            for i, a in enumerate(values):
                payload[f"{key_prefix}{i:06d}"] = np.ascontiguousarray(a, np.float32)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as f:
        np.savez_compressed(f, **payload)  # type: ignore[arg-type]
    os.replace(tmp, target)
    digest = sha256_file(target)
    cs.provenance = {**provenance, "sha256": digest}
    log.info("calibration set %s: %s, %.1f MB, sha256 %s", target,
             ", ".join(f"{n} {c}" for n, c in cs.counts().items()), target.stat().st_size / 1e6, digest[:12])
    return digest


def load_calibration_set(path: str | os.PathLike[str]) -> CalibrationSet:
    """Read and check a set written by :func:`save_calibration_set` (``allow_pickle=False``); the
    returned provenance carries the file's actual sha256. Raises :class:`CalibrationError`."""
    src = Path(path)
    if not src.is_file():
        raise CalibrationError(f"{src}: calibration set not found")
    try:
        npz = np.load(src, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"{src}: not a calibration set (.npz): {exc}") from None
    arrays: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    provenance: dict[str, Any] | None = None
    with npz:
        for key in npz.files:
            try:
                value = npz[key]
            except ValueError as exc:  # object arrays need pickle: refused
                raise CalibrationError(f"{src}: key {key!r}: {exc}") from None
            if key == PROVENANCE_KEY:
                try:
                    provenance = json.loads(str(value.reshape(-1)[0]))
                except (ValueError, IndexError) as exc:
                    raise CalibrationError(f"{src}: key {key!r}: not a JSON string: {exc}") from None
                if not isinstance(provenance, dict):
                    raise CalibrationError(f"{src}: key {key!r}: expected a JSON object")
                continue
            m = _KEY.match(key)
            if m is None:
                raise CalibrationError(f"{src}: unexpected key {key!r} (expected '<network>/<input>/<index:06d>')")
            if value.dtype != np.float32:
                raise CalibrationError(f"{src}: key {key!r}: dtype {value.dtype}, expected float32")
            arrays.setdefault(m[1], {}).setdefault(m[2], {})[int(m[3])] = value
    if provenance is None:
        raise CalibrationError(f"{src}: no {PROVENANCE_KEY!r} entry (not written by save_calibration_set?)")
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for net, inputs in arrays.items():
        out[net] = {}
        for name, by_index in inputs.items():
            if sorted(by_index) != list(range(len(by_index))):
                missing = sorted(set(range(max(by_index) + 1)) - set(by_index))
                raise CalibrationError(f"{src}: key '{net}/{name}/{missing[0]:06d}' missing (indices not contiguous)")
            out[net][name] = [by_index[i] for i in range(len(by_index))]
    cs = CalibrationSet(arrays=out, provenance={**provenance, "sha256": sha256_file(src)})
    cs.validate(str(src))
    recorded = provenance.get("counts")
    if isinstance(recorded, dict) and recorded != cs.counts():
        raise CalibrationError(f"{src}: sample counts {cs.counts()} differ from the recorded {recorded}")
    return cs
