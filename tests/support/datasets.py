"""Builders of tiny datasets in each real layout (RAVDESS, CREMA-D, MELD, CMU-MOSI, CSV manifests),
written for real in a temporary folder: mp4 / flv clips with audio encoded by PyAV (a rendered talking
face whose expression follows the label, a tone whose pitch follows the label), wavs, CSVs with the
real columns and the known defects, HDF5 ``.csd`` files in the CMU-MultimodalSDK layout and pickles
in the MMSA / MulT layouts. Small enough that a test builds one in a second or two."""

from __future__ import annotations

import pickle
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from edge_mmer.datasets.mosi import STANDARD_FOLDS
from edge_mmer.synth.face import random_identity, render_face, sample_expression

SR = 16000
EXPRESSIONS = ("neutral", "happy", "angry", "sad", "fear", "disgust")


def tone(label_index: int, seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    """A voiced-like tone whose pitch and modulation depend on the label (learnable by the speech encoder)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    f0 = 140.0 + 55.0 * (label_index % 7) + rng.uniform(-5, 5)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * (2.0 + label_index) * t)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3)) * env * 0.25
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(sr)
        wf.writeframes(pcm.tobytes())
    return path


def write_clip(path: Path, label_index: int, *, seconds: float = 0.8, speaker: int = 0, seed: int = 0,
               size: int = 96, fps: int = 8, audio: bool = True, video_codec: str = "mpeg4", face: bool = True,
               audio_rate: int | None = None, stereo: bool = False) -> Path:
    """A talking-face clip with an audio track (AAC in mp4, MP3 in flv) written by PyAV. ``face=False``:
    frames of a blank wall (no detectable face); ``audio_rate`` / ``stereo``: the track as the real
    datasets store it (RAVDESS and MELD: 48 kHz stereo AAC)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([speaker, label_index, seed])
    ident = random_identity(np.random.default_rng(1000 + speaker))
    expr = sample_expression(EXPRESSIONS[label_index % len(EXPRESSIONS)], rng, jitter=0.3)
    n_frames = max(1, round(seconds * fps))
    wav = tone(label_index, seconds, seed + 7 * speaker)
    fmt = "flv" if path.suffix == ".flv" else "mp4"
    with av.open(str(path), mode="w", format=fmt) as out:
        vs = out.add_stream(video_codec, rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        a_s = None
        if audio:
            a_s = out.add_stream("mp3" if fmt == "flv" else "aac",
                                 rate=audio_rate or (SR if fmt != "flv" else 22050))
            a_s.layout = "stereo" if stereo else "mono"
        for i in range(n_frames):
            img = (render_face(ident, expr, talk=float(0.5 + 0.5 * np.sin(i)), rng=rng, size=(size, size)) if face
                   else np.full((size, size, 3), 90 + 10 * (i % 3), dtype=np.uint8))
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if a_s is not None:
            rate = a_s.rate
            data = wav if rate == SR else np.interp(np.arange(round(seconds * rate)) / rate,
                                                     np.arange(wav.size) / SR, wav).astype(np.float32)
            chunk = 1152 if fmt == "flv" else 1024
            for pos in range(0, data.size, chunk):
                part = data[pos: pos + chunk]
                if stereo:  # packed L R L R ...
                    af = av.AudioFrame.from_ndarray(np.repeat(part, 2).reshape(1, -1), format="flt",
                                                    layout="stereo")
                else:
                    af = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="flt", layout="mono")
                af.sample_rate = rate
                af.pts = pos
                af.time_base = Fraction(1, rate)
                out.mux(a_s.encode(af))
            out.mux(a_s.encode(None))
    return path


# ------------------------------------------------------------------------------------------ RAVDESS


def make_ravdess(root: Path, actors: tuple[int, ...] = (1, 18, 20),
                 emotions: tuple[str, ...] = ("01", "03", "05", "04"),
                 statements: tuple[str, ...] = ("01", "02")) -> dict[str, int]:
    """The Zenodo zips extracted into one folder: ``Video_Speech_Actor_XX/Actor_XX/01-01-EE-01-SS-01-XX.mp4``
    (H.264-like mp4 with 48 kHz stereo AAC, as the real files) for every actor, emotion and statement,
    a video-only ``02-`` file beside them (no sound, as in the real folders), and from the audio zip
    ``Audio_Speech_Actors_01-24/Actor_01/03-*.wav`` at 48 kHz: one of a trial that has its mp4 (the
    wav is then the sound), one of a trial without (audio only). Plus files the loader must ignore: a
    song (vocal channel 02), a stray file. The default actors 01 / 18 / 20 are one of each split
    (the split is fixed by actor number: 01-17 train, 18-19 validation, 20-24 test)."""
    n = 0
    for a in actors:
        folder = root / f"Video_Speech_Actor_{a:02d}" / f"Actor_{a:02d}"
        for ei, e in enumerate(emotions):
            for s in statements:
                write_clip(folder / f"01-01-{e}-01-{s}-01-{a:02d}.mp4", int(e) - 1, speaker=a,
                           seed=ei * 10 + int(s), audio_rate=48000, stereo=True)
                n += 1
    first = root / f"Video_Speech_Actor_{actors[0]:02d}" / f"Actor_{actors[0]:02d}"
    write_clip(first / f"02-01-{emotions[1]}-01-01-01-{actors[0]:02d}.mp4", int(emotions[1]) - 1, speaker=actors[0],
               audio=False)
    audio = root / "Audio_Speech_Actors_01-24" / f"Actor_{actors[0]:02d}"
    write_wav(audio / f"03-01-{emotions[1]}-01-01-01-{actors[0]:02d}.wav", tone(2, 0.5, 0, sr=48000), sr=48000)
    write_wav(audio / f"03-01-07-01-01-01-{actors[0]:02d}.wav", tone(6, 0.6, 1, sr=48000), sr=48000)  # no mp4
    write_clip(first / f"01-02-03-01-01-01-{actors[0]:02d}.mp4", 2, speaker=actors[0])
    (first / "notes.mp4").write_bytes(b"")
    return {"clips": n + 1, "not_audio_video": 1, "audio_only": 1, "other_vocal_channel": 1, "unrecognised_name": 1}


# ------------------------------------------------------------------------------------------ CREMA-D


def make_cremad(root: Path, actors: tuple[int, ...] = (1001, 1002, 1003),
                emotions: tuple[str, ...] = ("NEU", "HAP", "ANG", "SAD"),
                sentences: tuple[str, ...] = ("DFA", "IEO"), mismatched: bool = False) -> dict[str, int]:
    """``AudioWAV/<actor>_<sentence>_<emotion>_XX.wav`` (16 kHz mono) + ``VideoFlash/...flv`` (FLV1 video
    with an MP3 track, as the real flvs), matching 1:1 as in the real set. ``mismatched=True`` adds what
    the real set does not have but a partial copy can: the first wav's flv removed (audio only) and a
    stray flv without its wav (skipped)."""
    from edge_mmer.datasets.cremad import LABELS

    emo = {"NEU": "neutral", "HAP": "happy", "ANG": "angry", "SAD": "sad", "FEA": "fear", "DIS": "disgust"}
    n = 0
    for a in actors:
        for e in emotions:
            for s in sentences:
                stem = f"{a}_{s}_{e}_XX"
                li = LABELS.index(emo[e])
                write_wav(root / "AudioWAV" / f"{stem}.wav", tone(li, 0.8, 1000 * n + a))
                if not (mismatched and a == actors[0] and e == emotions[0] and s == sentences[0]):
                    write_clip(root / "VideoFlash" / f"{stem}.flv", li, speaker=a % 100, seed=n, video_codec="flv")
                n += 1
    if not mismatched:
        return {"clips": n}
    write_clip(root / "VideoFlash" / f"{actors[0]}_ITS_HAP_HI.flv", 1, speaker=1, video_codec="flv")
    return {"clips": n, "audio_without_video": 1, "video_without_audio": 1}


def lfs_pointer(path: Path, size: int) -> Path:
    """A git-LFS pointer stub as a clone without git-lfs (or a GitHub zip) leaves it in place of the
    media: three lines, ~130 bytes (the format of CheyneyComputerScience/CREMA-D's AudioWAV files)."""
    import hashlib

    oid = hashlib.sha256(path.name.encode()).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n")
    return path


def make_cremad_lfs_stubs(root: Path, actors: tuple[int, ...] = (1001, 1002, 1003)) -> int:
    """CREMA-D as a GitHub zip download holds it: every wav and flv a pointer stub."""
    n = 0
    for a in actors:
        for e in ("NEU", "HAP", "ANG"):
            stem = f"{a}_DFA_{e}_XX"
            lfs_pointer(root / "AudioWAV" / f"{stem}.wav", 80_044)
            lfs_pointer(root / "VideoFlash" / f"{stem}.flv", 311_233)
            n += 1
    return n


# --------------------------------------------------------------------------------------------- MELD

MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
_SENT = {"neutral": "neutral", "joy": "positive", "surprise": "positive", "anger": "negative", "sadness": "negative",
         "fear": "negative", "disgust": "negative"}


@dataclass
class MeldFixture:
    root: Path
    rows: dict[str, int] = field(default_factory=dict)  # split -> rows written
    loaded: dict[str, int] = field(default_factory=dict)  # split -> utterances the loader must return
    sessions: dict[str, int] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    overlong: list[str] = field(default_factory=list)


def make_meld(root: Path, dialogues: int = 3, utterances: int = 4, faces: bool = True,
              audio_rate: int | None = None, stereo: bool = False) -> MeldFixture:
    """The three CSVs (CRLF, curly quotes, one-digit hours) and clip folders with the known defects:
    dev ``dia110_utt7`` has a row but no clip; dev ``dia66_utt9`` and test
    ``final_videos_testdia101_utt0`` are clips with no row; train ``dia125_utt3`` is corrupt; test
    ``dia220_utt0`` is overlong (3 s here: the tests load with ``max_clip_s=2``)."""
    from edge_mmer.datasets.meld import EMOTIONS

    fx = MeldFixture(root)
    folders = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
    cycle = ("neutral", "joy", "anger", "sadness")
    for split_no, (split, folder) in enumerate(folders.items()):
        lines = [MELD_HEADER]
        sr = 1
        loaded = 0
        for d in range(dialogues):
            for u in range(utterances):
                emo = cycle[(d + u) % len(cycle)] if split == "train" else cycle[(d * 3 + u) % len(cycle)]
                speaker = ("Rachel", "Ross", "Monica")[u % 3]
                text = "\u201cOh my God\u201d, I\u2019m fine." if u == 0 else "Yeah, sure."
                hour = "0" if (d + u) % 2 else "00"
                lines.append(f'{sr},"{text}",{speaker},{emo},{_SENT[emo]},{d},{u},3,{d + 1},'
                             f'"{hour}:13:4{u},477","{hour}:13:4{u + 1},100"')
                sr += 1
                write_clip(root / folder / f"dia{d}_utt{u}.mp4", EMOTIONS.index(emo), speaker=u % 3,
                           seed=100 * split_no + d * 10 + u, seconds=0.7, face=faces, audio_rate=audio_rate,
                           stereo=stereo)
                loaded += 1
        if split == "train":
            lines.append(f'{sr},"It\u2019s broken.",Joey,anger,negative,125,3,3,1,"0:01:02,000","0:01:03,500"')
            (root / folder / "dia125_utt3.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
            fx.corrupt.append("train/dia125_utt3")
        if split == "dev":
            lines.append(f'{sr},"Where is it?",Ross,surprise,positive,110,7,3,2,"00:02:00,000","00:02:01,000"')
            write_clip(root / folder / "dia66_utt9.mp4", 0, seconds=0.5, seed=901)
        if split == "test":
            lines.append(f'{sr},"Long one.",Chandler,neutral,neutral,220,0,3,4,"0:05:00,000","0:05:02,000"')
            write_clip(root / folder / "dia220_utt0.mp4", 0, seconds=3.0, fps=4, seed=902)
            write_clip(root / folder / "final_videos_testdia101_utt0.mp4", 0, seconds=0.5, seed=903)
            fx.overlong.append("test/dia220_utt0")
            loaded += 1
        if split == "train":
            loaded += 1
        name = {"train": "train", "dev": "val", "test": "test"}[split]
        (root / f"{split}_sent_emo.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
        fx.rows[name] = len(lines) - 1
        fx.loaded[name] = loaded
        fx.sessions[name] = dialogues + (1 if split in ("train", "test") else 0)
    return fx


# --------------------------------------------------------------------------------------------- MOSI


def mosi_videos(per_split: int = 1) -> dict[str, list[str]]:
    return {s: list(STANDARD_FOLDS[s][:per_split]) for s in ("train", "val", "test")}


def _scores(n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    base = [-2.4, 1.8, -1.2, 2.6, 0.0, -0.6, 1.0, -2.0]
    return [round(base[i % len(base)] + float(rng.uniform(-0.2, 0.2)) * (base[i % len(base)] != 0), 3)
            for i in range(n)]


def make_mosi_raw_mmsa(root: Path, clips: int = 5, per_split: int = 1) -> dict[str, int]:
    """MMSA layout: ``label.csv`` (video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode) and
    ``Raw/<video_id>/<clip_id>.mp4``; one row has no clip (skipped)."""
    lines = ["video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode"]
    mode = {"train": "train", "val": "valid", "test": "test"}
    n = 0
    for split, vids in mosi_videos(per_split).items():
        for vi, vid in enumerate(vids):
            for c, score in enumerate(_scores(clips, vi + len(split)), start=1):
                ann = "Positive" if score > 0 else "Negative" if score < 0 else "Neutral"
                lines.append(f'{vid},{c},"some words",{score},0,0,0,{ann},{mode[split]}')
                write_clip(root / "Raw" / vid / f"{c}.mp4", 1 if score >= 0 else 2, speaker=vi, seed=100 * n + c,
                           seconds=0.7)
                n += 1
    lines.append(f"{STANDARD_FOLDS['train'][0]},99,missing,1.0,0,0,0,Positive,train")
    (root / "label.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"segments": n, "missing_clip": 1}


def _csd(path: Path, name: str, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """A computational sequence: ``<name>/data/<key>/{features,intervals}`` and ``<name>/metadata``."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        g = f.create_group(name)
        d = g.create_group("data")
        for key, (feats, intervals) in data.items():
            k = d.create_group(key)
            k.create_dataset("features", data=feats)
            k.create_dataset("intervals", data=intervals)
        meta = g.create_group("metadata")
        meta.create_dataset("root name", data=name)
        meta.create_dataset("dimension names", data='["x"]')
    return path


def make_mosi_csd(root: Path, segments: int = 8, per_split: int = 3, extra_video: bool = True) -> dict[str, int]:
    """Unaligned COVAREP (74-d, 100 Hz), FACET (35-d, 10 Hz) and opinion labels (one row per segment,
    with its interval) for videos of the standard folds, plus a video outside the folds (skipped)."""
    rng = np.random.default_rng(0)
    audio, vision, labels = {}, {}, {}
    vids = mosi_videos(per_split)
    if extra_video:
        vids = {**vids, "none": ["notAFoldVid"]}
    n = 0
    for vi, vid in enumerate(v for vs in vids.values() for v in vs):
        scores = _scores(segments, vi)
        seg_int = np.array([[2.0 * i, 2.0 * i + 1.5] for i in range(segments)])
        labels[vid] = (np.array(scores, dtype=np.float32).reshape(-1, 1), seg_int)
        t_a = np.arange(0, 2.0 * segments, 0.01)
        t_v = np.arange(0, 2.0 * segments, 0.1)
        pol_a = np.array([np.sign(scores[min(int(t // 2.0), segments - 1)]) or 1.0 for t in t_a])
        pol_v = np.array([np.sign(scores[min(int(t // 2.0), segments - 1)]) or 1.0 for t in t_v])
        a = rng.standard_normal((t_a.size, 74)) * 0.5 + pol_a[:, None] * np.linspace(0, 1, 74)[None]
        a[::37, 3] = -np.inf  # COVAREP has -inf values
        audio[vid] = (a.astype(np.float32), np.stack([t_a, t_a + 0.01], 1))
        v = rng.standard_normal((t_v.size, 35)) * 0.5 + pol_v[:, None] * np.linspace(1, 0, 35)[None]
        vision[vid] = (v.astype(np.float32), np.stack([t_v, t_v + 0.1], 1))
        n += segments if vid != "notAFoldVid" else 0
    _csd(root / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    _csd(root / "CMU_MOSI_Visual_Facet_42.csd", "FACET_4.2", vision)
    _csd(root / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    return {"segments": n, "per_split": segments * per_split, "videos_per_split": per_split}


@dataclass
class MosiSdkFixture:
    segments: int  # segment video files written
    missing_clip: int  # labelled segments without a video file
    scores: dict[str, float]  # "<vid>_<i>" -> its true score


def make_mosi_raw_sdk(root: Path, segments: int = 3, labels: str = "csv") -> MosiSdkFixture:
    """SDK layout: ``Raw/Video/Segmented/<vid>_<i>.mp4``, ``Raw/Audio/WAV_16000/Segmented/<vid>_<i>.wav``
    (one missing: audio from the mp4) and the labels: ``labels='csv'`` the raw release's headerless
    ``Labels/OpinionLevelSentiment.csv`` (start, end, video_id, segment_no, label; one labelled
    segment per video has no video file), ``'csd'`` the labels ``.csd`` (one row per file, in time
    order, no segment numbers), ``'both'``. Segment numbers are not in time order here (segment 2
    comes after segment 3), so only the CSV's (video_id, segment_no) gives each file its label.
    Returns the files written, the labelled segments without a file and each file's true score."""
    rows: list[str] = []
    csd: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    truth: dict[str, float] = {}
    n = 0
    order = [1, *range(segments, 1, -1)]  # time order of the segment numbers: 1, n, n-1, ..., 2
    for vi, vid in enumerate(v for vs in mosi_videos(1).values() for v in vs):
        scores = _scores(segments, vi)
        for i, s in enumerate(scores, start=1):
            write_clip(root / "Raw" / "Video" / "Segmented" / f"{vid}_{i}.mp4", 1 if s >= 0 else 2, speaker=vi,
                       seed=100 * n + i, seconds=0.6)
            if not (vi == 0 and i == 1):
                write_wav(root / "Raw" / "Audio" / "WAV_16000" / "Segmented" / f"{vid}_{i}.wav",
                          tone(i, 0.6, 100 * n + i))
            truth[f"{vid}_{i}"] = s
            n += 1
        timed = [(2.0 * t, seg, scores[seg - 1]) for t, seg in enumerate(order)]
        rows += [f"{t:.3f},{t + 1.5:.3f},{vid},{seg},{score}" for t, seg, score in timed]
        rows.append(f"{2.0 * segments:.3f},{2.0 * segments + 1.5:.3f},{vid},{segments + 1},1.0")  # no video
        csd[vid] = (np.array([[score] for _t, _seg, score in timed], dtype=np.float32),
                    np.array([[t, t + 1.5] for t, _seg, _score in timed]))
    if labels in ("csv", "both"):
        (root / "Labels").mkdir(parents=True, exist_ok=True)
        (root / "Labels" / "OpinionLevelSentiment.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    if labels in ("csd", "both"):
        _csd(root / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", csd)
    return MosiSdkFixture(segments=n, missing_clip=3 if labels != "csd" else 0, scores=truth)


def _pickle_split(n: int, seed: int, steps: int = 50, da: int = 5, dv: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.array(_scores(n, seed), dtype=np.float32)
    pol = np.where(scores >= 0, 1.0, -1.0)
    audio = rng.standard_normal((n, steps, da)) * 0.5 + pol[:, None, None] * 0.8
    audio[:, ::11, 0] = -np.inf  # MulT's audio has -inf
    vision = rng.standard_normal((n, steps, dv)) * 0.5 + pol[:, None, None] * 0.6
    return {"audio": audio.astype(np.float32), "vision": vision.astype(np.float32), "scores": scores}


def make_mosi_mmsa_pickle(path: Path, videos: int = 3, clips: int = 8) -> dict[str, int]:
    """MMSA ``aligned_50.pkl``: splits train/valid/test with audio, vision, text, text_bert, raw_text, id
    (``vid$_$clip``), audio_lengths, vision_lengths, regression_labels, classification_labels, annotations."""
    data = {}
    for si, (split, name) in enumerate((("train", "train"), ("val", "valid"), ("test", "test"))):
        vids = STANDARD_FOLDS[split][:videos]
        n = len(vids) * clips
        arr = _pickle_split(n, si)
        ids = np.array([f"{v}$_${c}" for v in vids for c in range(1, clips + 1)], dtype=object)
        data[name] = {
            "raw_text": np.array(["words"] * n, dtype=object), "audio": arr["audio"], "vision": arr["vision"],
            "id": ids, "text": np.zeros((n, 50, 768), np.float32)[:, :, :4],
            "text_bert": np.zeros((n, 3, 50), np.float32),
            "audio_lengths": [50 - (i % 5) for i in range(n)], "vision_lengths": [50 - (i % 3) for i in range(n)],
            "annotations": ["Positive" if s > 0 else "Negative" for s in arr["scores"]],
            "classification_labels": np.where(arr["scores"] > 0, 2, np.where(arr["scores"] < 0, 0, 1)),
            "regression_labels": arr["scores"],
        }
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return {"per_split": videos * clips}


def make_mosi_mult_pickle(path: Path, n: int = 12) -> dict[str, int]:
    """MulT ``mosi_data.pkl``: ``[split]['vision'|'text'|'audio'|'labels'|'id']``, labels (N, 1, 1)."""
    data = {}
    for si, split in enumerate(("train", "valid", "test")):
        arr = _pickle_split(n, 10 + si)
        vid = STANDARD_FOLDS[{"valid": "val"}.get(split, split)][0]
        data[split] = {"vision": arr["vision"], "audio": arr["audio"], "text": np.zeros((n, 50, 300), np.float32),
                       "labels": arr["scores"].reshape(n, 1, 1),
                       # MulT's id: [video, start_s, end_s] as bytes; here two segments start in each
                       # whole second (the real set has such pairs), and rows are not in time order
                       "id": np.array([[vid.encode(), f"{0.5 * j + 0.125:.3f}".encode(),
                                        f"{0.5 * j + 0.6:.3f}".encode()] for j in reversed(range(n))])}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return {"per_split": n}


# ---------------------------------------------------------------------------------------------- CSV


def make_csv_manifest(root: Path, speakers: int = 3, per_speaker: int = 6) -> dict[str, int]:
    """A header manifest ``path,label,session,start,end,speaker``: one long recording per speaker cut
    into windows, a wav-only row, a missing file and a bad time (both skipped)."""
    labels = ("calm", "excited")
    lines = ["path,label,session,start,end,speaker"]
    n = 0
    for s in range(speakers):
        for k in range(per_speaker):
            li = (k + s) % 2
            clip = write_clip(root / "rec" / f"spk{s}_{k}.mp4", li * 2 + 1, speaker=s, seed=k, seconds=0.8)
            lines.append(f"rec/{clip.name},{labels[li]},s{s},,,spk{s}")
            n += 1
    long = root / "rec" / "long.mp4"
    write_clip(long, 1, seconds=2.0, speaker=7)
    lines.append("rec/long.mp4,excited,s0,0.2,0.9,spk0")
    lines.append("rec/long.mp4,calm,s0,1.1,1.8,spk0")
    write_wav(root / "rec" / "voice.wav", tone(3, 0.8, 3))
    lines.append("rec/voice.wav,excited,s1,,,spk1")
    lines.append("rec/nothere.mp4,calm,s2,,,spk2")
    lines.append("rec/long.mp4,calm,s2,abc,1.0,spk2")
    (root / "manifest.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return {"utterances": n + 3, "missing_clip": 1, "bad_time": 1}
