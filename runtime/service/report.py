"""The doctor's findings: one :class:`Check` per thing looked at, a table for people, JSON for scripts.

A check is ``ok``, ``absent`` (not there and not asked for: a unit without a camera), ``warn``
(works, but look: a synthetic model, clocks not pinned, little disk), ``fail`` (something the
settings need is broken) or ``info`` (versions). Only ``fail`` makes ``edge-mmer doctor`` exit 1;
each ``fail`` and ``warn`` says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ABSENT", "FAIL", "INFO", "OK", "STATUSES", "WARN", "Check", "render_table", "to_json"]

OK, ABSENT, WARN, FAIL, INFO = "ok", "absent", "warn", "fail", "info"
STATUSES = (OK, ABSENT, WARN, FAIL, INFO)
SCHEMA = "edge-mmer/doctor"


@dataclass(frozen=True)
class Check:
    """One finding: ``name`` (what was looked at), ``status``, ``detail`` (what was found), ``fix``
    (what to do, for ``fail`` / ``warn``), ``data`` (the figures, for scripts)."""

    name: str
    status: str
    detail: str
    fix: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, got {self.status!r}")

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, "status": self.status, "detail": self.detail}
        if self.fix:
            record["fix"] = self.fix
        if self.data:
            record["data"] = dict(self.data)
        return record


def failed(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


def to_json(checks: Sequence[Check]) -> dict[str, Any]:
    """``{"schema", "ok", "failed": [names], "checks": [...]}``."""
    return {"schema": SCHEMA, "ok": not failed(checks), "failed": [c.name for c in failed(checks)],
            "checks": [c.to_record() for c in checks]}


def render_table(checks: Sequence[Check], width: int = 120) -> str:
    """Aligned rows ``STATUS  NAME  DETAIL`` (a ``-> fix`` line under each failure and warning), and a verdict."""
    name_w = max((len(c.name) for c in checks), default=4)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():<6}  {c.name:<{name_w}}  {c.detail}")
        if c.fix and c.status in (FAIL, WARN):
            lines.append(f"{'':<6}  {'':<{name_w}}  -> {c.fix}")
    bad = failed(checks)
    warnings = sum(1 for c in checks if c.status == WARN)
    if bad:
        lines.append(f"\n{len(bad)} check(s) failed: {', '.join(c.name for c in bad)}")
    else:
        lines.append(f"\nall needed checks passed ({warnings} warning(s))")
    return "\n".join(line if len(line) <= width * 3 else line[: width * 3] + "…" for line in lines)
