"""The labels of raw CMU-MOSI in the CMU-MultimodalSDK layout (``Raw/Video/Segmented/<vid>_<i>.mp4``).

The raw release ships ``Labels/OpinionLevelSentiment.csv``: headerless rows ``start, end, video_id,
segment_no, label``, which name each segment file's label outright. The labels ``.csd`` has no
segment numbers, only one row per segment in time order, so ``<vid>_<i>`` can be matched to row
``i - 1`` only when a video's files are exactly segments ``1..rows``; anything else would shift every
later label silently, and is refused naming the video. Used by :mod:`edge_mmer.datasets.mosi`.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import defaultdict
from pathlib import Path

from edge_mmer.datasets.base import DatasetError, DefectSummary

log = logging.getLogger(__name__)

__all__ = ["OPINION_CSV", "check_segment_files", "find_opinion_csv", "read_opinion_csv", "segment_files"]

OPINION_CSV = "OpinionLevelSentiment.csv"


def find_opinion_csv(root: Path) -> Path | None:
    """``root/Labels/OpinionLevelSentiment.csv`` as the release extracts, else the first one found below ``root``."""
    direct = root / "Labels" / OPINION_CSV
    if direct.is_file():
        return direct
    return next(iter(sorted(p for p in root.rglob(OPINION_CSV) if p.is_file())), None)


def read_opinion_csv(path: Path, summary: DefectSummary) -> dict[str, dict[int, float]]:
    """video_id -> segment_no -> score. A row that does not parse is counted ``bad_row`` (a header
    line, if a copy has one, is ``handled header_row``); a repeated (video, segment) keeps the first."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for lineno, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        try:
            float(cells[0]), float(cells[1])
            vid, seg, score = cells[2], int(float(cells[3])), float(cells[4])
        except (ValueError, IndexError):
            if lineno == 1:
                summary.handle("header_row", f"{path.name}:1")
            else:
                summary.skip("bad_row", f"{path.name}:{lineno}")
            continue
        if not vid:
            summary.skip("bad_row", f"{path.name}:{lineno}")
        elif seg in out[vid]:
            summary.skip("duplicate_segment", f"{vid}_{seg}")
        else:
            out[vid][seg] = score
    return dict(out)


def segment_files(video_dir: Path) -> dict[str, set[int]]:
    """video_id -> the segment numbers of its ``<vid>_<i>.mp4`` files (video ids may hold ``_``)."""
    out: dict[str, set[int]] = defaultdict(set)
    for p in video_dir.glob("*.mp4"):
        vid, _, num = p.stem.rpartition("_")
        if vid and num.isdigit() and not p.name.startswith("._"):
            out[vid].add(int(num))
    return dict(out)


def check_segment_files(vid: str, numbers: set[int], rows: int, labels_file: str) -> None:
    """Refuse a video whose files are not segments ``1..rows`` of the labels .csd (none at all is
    fine: its segments are counted missing)."""
    if not numbers or numbers == set(range(1, rows + 1)):
        return
    shown = ", ".join(str(n) for n in sorted(numbers)[:12]) + (", ..." if len(numbers) > 12 else "")
    raise DatasetError(
        f"CMU-MOSI raw segments: video {vid}: segment files {shown} but {rows} rows in {labels_file}, which "
        f"has no segment numbers (segment i = row i - 1), so the labels cannot be matched to the files; add "
        f"the raw release's Labels/{OPINION_CSV} (start, end, video_id, segment_no, label)")
