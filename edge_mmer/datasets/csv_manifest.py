"""Users' own recordings: a CSV manifest ``path,label[,session,start,end]``.

* ``path``: a video with an audio track (mp4, mkv, avi, flv, ...) or an audio file (wav, flac, mp3:
  no face channel), relative to the manifest's folder or absolute.
* ``label``: any string; the labels are the sorted distinct values (``labels=a,b,c`` fixes the order).
* ``session`` (optional): utterances of a session form one context sequence, ordered by ``start``
  then by row. Without it, the rows of one file form a session.
* ``start`` / ``end`` (optional): seconds inside the file (a window of a longer recording).

A header row is optional (recognised by a first cell ``path``); with a header, two more optional
columns are read: ``speaker`` and ``split`` (``train`` / ``val`` / ``test``). Without a ``split``
column, splits are assigned by speaker (when given) or by session, group-independent and stable
(a hash of the name; ``val`` / ``test`` fractions 0.1 / 0.2). Rows whose file is missing or whose
times are not numbers are skipped and counted.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from edge_mmer.datasets.base import SPLITS, DatasetError, DefectSummary, LoadedDataset, MediaUtterance, assign_splits
from edge_mmer.datasets.options import Options

log = logging.getLogger(__name__)

__all__ = ["AUDIO_SUFFIXES", "load_csv_manifest"]

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus"})
POSITIONAL = ("path", "label", "session", "start", "end")


def _rows(path: Path) -> tuple[list[dict[str, str]], bool]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc})") from None
    table = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    if not table:
        raise DatasetError(f"{path}: the manifest is empty (expected rows path,label[,session,start,end])")
    header = [c.strip().lower() for c in table[0]]
    if header and header[0] == "path":
        if "label" not in header:
            raise DatasetError(f"{path}: header has no 'label' column (found: {', '.join(header)})")
        return [dict(zip(header, (c.strip() for c in r), strict=False)) for r in table[1:]], True
    return [dict(zip(POSITIONAL, (c.strip() for c in r), strict=False)) for r in table], False


def load_csv_manifest(path: Path, options: Options, spec: str = "") -> LoadedDataset:
    if not path.is_file():
        raise DatasetError(f"{path}: CSV manifest does not exist")
    fixed = options.string("labels")
    val_f, test_f = options.fraction("val", 0.1), options.fraction("test", 0.2)
    options.check_used()
    rows, has_header = _rows(path)
    base = path.parent
    summary = DefectSummary()
    items = []
    for i, row in enumerate(rows, start=2 if has_header else 1):
        where = f"{path.name}:{i}"
        media, label = row.get("path", ""), row.get("label", "")
        if not media or not label:
            summary.skip("missing_path_or_label", where)
            continue
        file = Path(media) if Path(media).is_absolute() else base / media
        if not file.is_file():
            summary.skip("missing_clip", f"{where} ({media})")
            continue
        try:
            start = float(row["start"]) if row.get("start") else None
            end = float(row["end"]) if row.get("end") else None
        except ValueError:
            summary.skip("bad_time", where)
            continue
        if start is not None and end is not None and end <= start:
            summary.skip("bad_time", where)
            continue
        split = row.get("split", "").lower()
        if split and split not in SPLITS:
            raise DatasetError(f"{where}: column 'split' must be one of {', '.join(SPLITS)}, got {row['split']!r}")
        session = row.get("session") or media
        items.append((i, file, label, session, start, end, row.get("speaker", ""), split))
    if not items:
        raise DatasetError(f"{path}: no usable rows ({summary.format()})")
    if fixed:
        labels = tuple(x.strip() for x in fixed.split(",") if x.strip())
        unknown = sorted({it[2] for it in items} - set(labels))
        if unknown:
            raise DatasetError(f"{path}: labels {unknown} are not in the 'labels' option {list(labels)}")
    else:
        labels = tuple(sorted({it[2] for it in items}))
    if len(labels) < 2:
        raise DatasetError(f"{path}: needs two or more distinct labels, found {list(labels)}")
    given = [it for it in items if it[7]]
    if given and len(given) != len(items):
        raise DatasetError(f"{path}: column 'split' is empty on some rows: give it on every row or on none")
    if not given:
        by_speaker = all(it[6] for it in items)
        groups = assign_splits((it[6] if by_speaker else it[3] for it in items), val_f, test_f, order="hash")
        items = [(*it[:7], groups[it[6] if by_speaker else it[3]]) for it in items]
    order = sorted(items, key=lambda it: (it[3], it[4] if it[4] is not None else -1.0, it[0]))
    index: dict[str, int] = {}
    utts = []
    for row_no, file, label, session, start, end, speaker, split in order:
        audio_only = file.suffix.lower() in AUDIO_SUFFIXES
        k = index.get(session, 0)
        index[session] = k + 1
        utts.append(MediaUtterance(
            id=f"{path.stem}:{row_no}", session=session, index=k, speaker=speaker or session, split=split,
            label=label, label_index=labels.index(label), video_path=None if audio_only else file,
            audio_path=file if audio_only else None, start_s=start, end_s=end))
    log.info("CSV manifest %s: %d utterances, labels %s (%s)", path, len(utts), list(labels), summary.format())
    return LoadedDataset(kind="csv", spec=spec, root=path, labels=labels, all_utterances=tuple(utts), summary=summary,
                         task="emotion", info={"split_by": "column" if given else ("speaker" if all(
                             it[6] for it in items) else "session")})
