"""MELD (Poria et al. 2019): Friends dialogues, 7 emotions and 3 sentiments, utterance clips with audio.

On disk (from ``MELD.Raw.tar.gz``): ``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv``
with columns ``Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,
StartTime,EndTime`` (the dyadic variant adds ``Old_Dialogue_ID,Old_Utterance_ID`` and drops ``Sr No.``),
and the clips ``dia{Dialogue_ID}_utt{Utterance_ID}.mp4`` in ``train_splits/``, ``dev_splits_complete/``
and ``output_repeated_splits_test/`` (searched in PATH and two folder levels below it).

The session (context sequence) is the dialogue, its utterances in ``Utterance_ID`` order. Splits are
MELD's own (dev = validation). Known defects are skipped or handled and counted, never raised:
a missing clip (dev ``dia110_utt7``), a clip with no CSV row (dev ``dia66_utt9``, test
``final_videos_testdia101_utt0``), a corrupt clip (train ``dia125_utt3``, found when decoding), an
overlong clip (test ``dia220_utt0``, 4-5 minutes: skipped above ``max_clip_s``, default 60 s),
one-digit hours in the times (``0:13:42,477``: parsed), CRLF line ends and curly quotes (read as
UTF-8, a cp1252 file is decoded as such), the C1 controls of MELD.Raw's CSVs (cp1252 bytes stored as
U+0080-U+009F: mapped back, ``c1_controls``), duplicate rows, unknown labels and AppleDouble
``._*`` files. The dyadic variant's ``*_sent_emo_dya.csv`` names are found too. A tree whose inner
``train.tar.gz`` / ``dev.tar.gz`` / ``test.tar.gz`` were never extracted is an error that says so.

Options: ``target=emotion`` (default; 7 classes) or ``sentiment`` (3 classes); ``max_clip_s``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from edge_mmer.datasets.base import DatasetError, DefectSummary, LoadedDataset, MediaUtterance
from edge_mmer.datasets.options import Options

log = logging.getLogger(__name__)

__all__ = ["EMOTIONS", "SENTIMENTS", "load_meld", "parse_meld_time", "read_meld_csv"]

EMOTIONS = ("neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust")
SENTIMENTS = ("negative", "neutral", "positive")
CSV_FILES = {"train": "train_sent_emo.csv", "val": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
#: The dyadic variant's names (MELD's ``*_sent_emo_dya.csv``), searched when the plain ones are absent.
DYADIC_FILES = {split: name.replace(".csv", "_dya.csv") for split, name in CSV_FILES.items()}
TARBALLS = {"train": "train", "val": "dev", "test": "test"}
CLIP_DIRS = {"train": "train_splits", "val": "dev_splits_complete", "test": "output_repeated_splits_test"}
REQUIRED = ("Utterance", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2})[,.](\d{1,3})\s*$")
_CLIP = re.compile(r"dia(\d+)_utt(\d+)$")
_C1 = re.compile("[\u0080-\u009f]")
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def parse_meld_time(text: str) -> tuple[float, bool]:
    """``hh:mm:ss,mmm`` (the hour may have one digit) -> (seconds, hour had one digit)."""
    m = _TIME.match(text)
    if m is None:
        raise ValueError(f"not a time hh:mm:ss,mmm: {text!r}")
    h, mi, s, ms = m.groups()
    if int(mi) >= 60 or int(s) >= 60:
        raise ValueError(f"minutes or seconds out of range: {text!r}")
    return int(h) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0, len(h) == 1


def _from_cp1252(m: re.Match[str]) -> str:
    """A C1 control back to the character its cp1252 byte stands for (U+0092 -> U+2019 ...); the five
    bytes cp1252 leaves undefined stay as they are."""
    try:
        return bytes([ord(m.group(0))]).decode("cp1252")
    except UnicodeDecodeError:
        return m.group(0)


def read_meld_csv(path: Path, summary: DefectSummary) -> list[dict[str, str]]:
    """The rows of one MELD CSV as dicts (UTF-8 with or without BOM; cp1252 as a fallback; CRLF or LF)."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        summary.handle("not_utf8", path.name)
    if _C1.search(text):  # MELD.Raw's CSVs: cp1252 bytes read as Latin-1, stored as UTF-8 (U+0092 for ')
        text = _C1.sub(_from_cp1252, text)
        summary.handle("c1_controls", path.name)
    if "\r\n" in text:
        summary.handle("crlf_line_ends", path.name)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'})")
    rows = []
    for row in reader:
        rows.append({(k or "").strip(): (v if isinstance(v, str) else "") for k, v in row.items()})
    return rows


def _find(root: Path, name: str, want_dir: bool) -> Path | None:
    for pattern in (name, f"*/{name}", f"*/*/{name}"):
        for cand in sorted(root.glob(pattern)):
            if cand.is_dir() if want_dir else cand.is_file():
                return cand
    return None


@dataclass
class _SplitFiles:
    """One split's CSV and clip folder, and what its rows have referenced and seen so far."""

    split: str
    csv_name: str
    clip_dir: Path | None
    referenced: set[str] = field(default_factory=set)
    seen: set[tuple[int, int]] = field(default_factory=set)


def _check_times(row: dict[str, str], uid: str, summary: DefectSummary) -> None:
    """Counts a row's time defects; the clip is already cut to the utterance, so the times are only checked."""
    try:
        if row.get("StartTime") and row.get("EndTime"):
            start, one_a = parse_meld_time(row["StartTime"])
            end, one_b = parse_meld_time(row["EndTime"])
            if one_a or one_b:
                summary.handle("one_digit_hour", uid)
            if end <= start:
                summary.handle("bad_time", uid)
    except ValueError:
        summary.handle("bad_time", uid)


def _row_utterance(row: dict[str, str], lineno: int, files: _SplitFiles, column: str, labels: tuple[str, ...],
                   summary: DefectSummary) -> MediaUtterance | None:
    """One CSV row as an utterance, or None with the defect counted."""
    split = files.split
    try:
        dia, utt = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
        clip_dia = int(row.get("Old_Dialogue_ID") or dia)
        clip_utt = int(row.get("Old_Utterance_ID") or utt)
    except ValueError:
        summary.skip("bad_id", f"{files.csv_name}:{lineno}")
        return None
    uid = f"{split}/dia{dia}_utt{utt}"
    if (dia, utt) in files.seen:
        summary.skip("duplicate_row", uid)
        return None
    files.seen.add((dia, utt))
    label = row[column].strip().lower()
    if label not in labels:
        summary.skip("unknown_label", f"{uid} ({row[column]!r})")
        return None
    _check_times(row, uid, summary)
    text = row["Utterance"]
    if text != text.translate(_CURLY):
        summary.handle("curly_quotes", uid)
    clip_name = f"dia{clip_dia}_utt{clip_utt}.mp4"
    files.referenced.add(clip_name)
    clip = files.clip_dir / clip_name if files.clip_dir is not None else None
    if clip is None or not clip.is_file():
        summary.skip("missing_clip", uid)
        return None
    return MediaUtterance(
        id=uid, session=f"{split}/dia{dia}", index=utt, speaker=row.get("Speaker", "").strip(), split=split,
        label=label, label_index=labels.index(label), video_path=clip, text=text.translate(_CURLY))


def _split_utterances(files: _SplitFiles, csv_path: Path, column: str, labels: tuple[str, ...],
                      summary: DefectSummary) -> list[MediaUtterance]:
    """Every usable row of one split's CSV; clips no row refers to are counted."""
    rows = read_meld_csv(csv_path, summary)
    utts = [u for lineno, row in enumerate(rows, start=2)
            if (u := _row_utterance(row, lineno, files, column, labels, summary)) is not None]
    if files.clip_dir is not None:
        for clip in sorted(files.clip_dir.glob("*.mp4")):
            if clip.name.startswith("._"):  # macOS AppleDouble metadata, not a clip
                continue
            if clip.name not in files.referenced:
                summary.skip("clip_without_row", f"{files.split}/{clip.name}")
    return utts


def load_meld(root: Path, options: Options, spec: str = "") -> LoadedDataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: MELD directory does not exist")
    target = options.choice("target", ("emotion", "sentiment"), "emotion")
    options.check_used()
    labels = EMOTIONS if target == "emotion" else SENTIMENTS
    column = "Emotion" if target == "emotion" else "Sentiment"
    summary = DefectSummary()
    utts: list[MediaUtterance] = []
    found_csv = False
    unpacked: list[Path] = []
    for split, csv_name in CSV_FILES.items():
        csv_path = _find(root, csv_name, want_dir=False)
        if csv_path is None:
            csv_name = DYADIC_FILES[split]
            csv_path = _find(root, csv_name, want_dir=False)
        if csv_path is None:
            log.warning("MELD: %s not found under %s: no '%s' split", csv_name, root, split)
            continue
        found_csv = True
        clip_dir = _find(root, CLIP_DIRS[split], want_dir=True)
        if clip_dir is None:
            tarball = _find(root, f"{TARBALLS[split]}.tar.gz", want_dir=False)
            if tarball is not None:
                unpacked.append(tarball)
            log.warning("MELD: clip folder %s/ not found under %s: every %s clip is missing%s", CLIP_DIRS[split],
                        root, split, f" ({tarball} is not extracted)" if tarball is not None else "")
        utts.extend(_split_utterances(_SplitFiles(split, csv_name, clip_dir), csv_path, column, labels,
                                      summary))
    if not found_csv:
        raise DatasetError(f"{root}: none of {', '.join(CSV_FILES.values())} found (MELD root expected)")
    if unpacked and not utts:
        raise DatasetError(f"{root}: no clip found; MELD.Raw.tar.gz holds the clips in inner tarballs that are not "
                           f"extracted yet: {', '.join(str(t) for t in unpacked)} (extract each in its folder: "
                           "tar -xzf train.tar.gz ...)")
    log.info("MELD (%s): %d utterances in %d dialogues (%s)", target, len(utts), len({u.session for u in utts}),
             summary.format())
    return LoadedDataset(kind="meld", spec=spec, root=root, labels=labels, all_utterances=tuple(utts),
                         summary=summary, task=target, info={"context": "dialogue", "splits": "MELD train/dev/test"})
