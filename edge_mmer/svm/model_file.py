"""The LIBSVM text model file, checked completely in Python before LIBSVM's C parser sees it.

LIBSVM's loader trusts its input: a corrupted file can crash the process or load a wrong model. So
the header is checked against :data:`_HEADER` (one row per key: how to read it, how many values, the
rule its values follow) and every support-vector line after ``SV`` is parsed; a problem raises
:class:`SVMModelError` naming the file and the line. Only RBF C-SVCs with probability information
(``probA``/``probB``, i.e. trained with ``-b 1``) are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_mmer.errors import SVMModelError

__all__ = ["ModelHeader", "read_model_header", "validate_model_text"]

_HEADER_KEYS = (
    "svm_type",
    "kernel_type",
    "degree",
    "gamma",
    "coef0",
    "nr_class",
    "total_sv",
    "rho",
    "label",
    "probA",
    "probB",
    "prob_density_marks",
    "nr_sv",
)


@dataclass(frozen=True)
class ModelHeader:
    nr_class: int
    total_sv: int
    gamma: float
    labels: tuple[int, ...]


class _Fail:
    """Builds the errors of one file: ``<source>[: line N]: not a valid LIBSVM model file: ...``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, line_no: int | None, msg: str) -> SVMModelError:
        where = f"{self.source}: line {line_no}" if line_no is not None else self.source
        return SVMModelError(f"{where}: not a valid LIBSVM model file: {msg}")


@dataclass
class _Header:
    """The header lines as read (key -> values, key -> line number) and the values checked so far."""

    fail: _Fail
    n_classes: int | None
    values: dict[str, list[str]] = field(default_factory=dict)
    line_of: dict[str, int] = field(default_factory=dict)
    got: dict[str, list[str] | list[int] | list[float]] = field(default_factory=dict)

    def number(self, key: str) -> int:
        return int(self.got[key][0])

    def pairs(self) -> int:
        nr_class = self.number("nr_class")
        return nr_class * (nr_class - 1) // 2

    def classes(self) -> int:
        return self.number("nr_class")


#: A row's rule: its values (words, ints or floats, by the row) and the header so far -> what is wrong, or None.
_Check = Callable[[Any, _Header], "str | None"]


@dataclass(frozen=True)
class _Row:
    """One header key: ``read`` = ``word`` (exactly one value), ``int`` or ``float`` (``count`` values,
    from what was read before), or ``absent`` (must not be there); ``check`` returns what is wrong."""

    key: str
    read: str
    count: Callable[[_Header], int] = lambda header: 1
    check: _Check | None = None
    required: bool = True
    missing: str | None = None  # the message when absent, if not "missing header line '<key>'"
    requires: tuple[str, ...] = ()  # keys whose absence gives ``missing`` (default: ``key`` itself)


def _labels_rule(labels: list[int], header: _Header) -> str | None:
    if len(set(labels)) != len(labels):
        return "labels must be distinct"
    n = header.n_classes
    if n is not None and not all(0 <= v < n for v in labels):
        return f"labels must be class indices 0..{n - 1}, got {labels}"
    return None


def _nr_sv_rule(nr_sv: list[int], header: _Header) -> str | None:
    total_sv = header.number("total_sv")
    if any(v < 0 for v in nr_sv) or sum(nr_sv) != total_sv:
        return f"nr_sv {nr_sv} does not add up to total_sv {total_sv}"
    return None


#: The header, checked in this order.
_HEADER: tuple[_Row, ...] = (
    _Row("svm_type", "word",
         check=lambda v, h: None if v[0] == "c_svc" else f"svm_type must be c_svc, got {v[0][:40]!r}"),
    _Row("kernel_type", "word",
         check=lambda v, h: None if v[0] == "rbf" else f"kernel_type must be rbf, got {v[0][:40]!r}"),
    _Row("gamma", "float", check=lambda v, h: "gamma must be > 0" if v[0] <= 0 else None),
    _Row("nr_class", "int", check=lambda v, h: None if 2 <= v[0] <= 1000 else f"nr_class must be 2..1000, got {v[0]}"),
    _Row("total_sv", "int",
         check=lambda v, h: None if 1 <= v[0] <= 10_000_000 else f"total_sv must be >= 1, got {v[0]}"),
    _Row("rho", "float", _Header.pairs),
    _Row("label", "int", _Header.classes, _labels_rule),
    _Row("probA", "float", _Header.pairs, requires=("probA", "probB"),
         missing="no probability information (probA/probB): train with -b 1"),
    _Row("probB", "float", _Header.pairs),
    _Row("prob_density_marks", "absent", missing="prob_density_marks is for one-class SVMs"),
    _Row("degree", "float", required=False),
    _Row("coef0", "float", required=False),
    _Row("nr_sv", "int", _Header.classes, _nr_sv_rule),
)


def _read_lines(lines: list[str], header: _Header) -> int:
    """Fill ``header`` from the lines before ``SV``; returns the index of the ``SV`` line."""
    for i, line in enumerate(lines):
        parts = line.split()
        if not parts:
            raise header.fail(i + 1, "blank line in the header")
        key = parts[0]
        if key == "SV" and len(parts) == 1:
            return i
        if key not in _HEADER_KEYS:
            raise header.fail(i + 1, f"unknown header key {key[:40]!r}")
        if key in header.values:
            raise header.fail(i + 1, f"duplicate header key {key!r}")
        header.values[key] = parts[1:]
        header.line_of[key] = i + 1
    raise header.fail(None, "no 'SV' line")


def _parse(row: _Row, vals: list[str], header: _Header) -> list[str] | list[int] | list[float]:
    line = header.line_of[row.key]
    if row.read == "word":
        if len(vals) != 1:
            raise header.fail(line, f"'{row.key}' needs exactly one value")
        return vals
    count = row.count(header)
    if len(vals) != count:
        raise header.fail(line, f"'{row.key}' needs {count} values, has {len(vals)}")
    if row.read == "int":
        try:
            return [int(v) for v in vals]
        except ValueError:
            raise header.fail(line, f"'{row.key}' values must be integers") from None
    try:
        out = [float(v) for v in vals]
    except ValueError:
        raise header.fail(line, f"'{row.key}' values must be numbers") from None
    if not all(math.isfinite(v) for v in out):
        raise header.fail(line, f"'{row.key}' values must be finite")
    return out


def _check_header(header: _Header) -> None:
    for row in _HEADER:
        present = row.key in header.values
        if row.read == "absent":
            if present:
                raise header.fail(header.line_of[row.key], row.missing or row.key)
            continue
        if not all(k in header.values for k in row.requires or (row.key,)):
            if row.required:
                raise header.fail(None, row.missing or f"missing header line '{row.key}'")
            continue
        header.got[row.key] = _parse(row, header.values[row.key], header)
        problem = row.check(header.got[row.key], header) if row.check is not None else None
        if problem:
            raise header.fail(header.line_of[row.key], problem)


def _check_vector(line: str, line_no: int, n_coef: int, n_features: int | None, fail: _Fail) -> None:
    tokens = line.split()
    if len(tokens) < n_coef:
        raise fail(line_no, f"support vector needs {n_coef} coefficients")
    try:
        coefs = [float(t) for t in tokens[:n_coef]]
    except ValueError:
        raise fail(line_no, "bad coefficient") from None
    if not all(math.isfinite(v) for v in coefs):
        raise fail(line_no, "non-finite coefficient")
    last = 0
    for tok in tokens[n_coef:]:
        idx_s, sep, val_s = tok.partition(":")
        if not sep:
            raise fail(line_no, f"expected index:value, got {tok[:40]!r}")
        try:
            idx = int(idx_s)
            val = float(val_s)
        except ValueError:
            raise fail(line_no, f"bad index:value {tok[:40]!r}") from None
        if idx <= last:
            raise fail(line_no, "feature indices must be increasing and >= 1")
        if n_features is not None and idx > n_features:
            raise fail(line_no, f"feature index {idx} > number of features {n_features}")
        if not math.isfinite(val):
            raise fail(line_no, "non-finite feature value")
        last = idx


def read_model_header(data: bytes, source: str, n_classes: int | None, n_features: int | None) -> ModelHeader:
    """Check the whole file (header, then every support vector line) and return its header facts."""
    fail = _Fail(source)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise fail(None, f"non-ASCII byte at offset {exc.start}") from None
    lines = text.split("\n")
    header = _Header(fail, n_classes)
    sv_line = _read_lines(lines, header)
    _check_header(header)
    total_sv = header.number("total_sv")
    body = lines[sv_line + 1 :]
    if body and body[-1] == "":
        body = body[:-1]
    if len(body) != total_sv:
        raise fail(sv_line + 2 + min(len(body), total_sv),
                   f"expected {total_sv} support vector lines, found {len(body)}")
    n_coef = header.number("nr_class") - 1
    for j, line in enumerate(body):
        _check_vector(line, sv_line + 2 + j, n_coef, n_features, fail)
    labels = tuple(int(v) for v in header.got["label"])
    return ModelHeader(nr_class=header.number("nr_class"), total_sv=total_sv, gamma=float(header.got["gamma"][0]),
                       labels=labels)


def validate_model_text(
    data: bytes, source: str, n_classes: int | None = None, n_features: int | None = None
) -> tuple[int, ...]:
    """Check a LIBSVM text model completely (header and every SV line) before LIBSVM parses it.

    Requires an RBF C-SVC with probability information (``probA``/``probB``). Returns the labels in
    the file's order. Raises :class:`SVMModelError` naming ``source`` and the line.
    """
    return read_model_header(data, source, n_classes, n_features).labels
