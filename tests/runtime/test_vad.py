"""VAD segmentation: chunking does not matter (the demo clip, and property-based on arbitrary speech and
noise), the demo clip's utterances are found, limits hold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.demo import demo_av, demo_timeline

from edge_mmer.config import ConfigError
from edge_mmer.runtime.chunks import AudioChunk
from edge_mmer.runtime.vad import Utterance, VadSegmenter, VadSettings


def segment(audio: np.ndarray, chunk: int, settings: VadSettings | None = None) -> list[Utterance]:
    seg = VadSegmenter(settings)
    out = []
    for i in range(0, len(audio), chunk):
        out += seg.feed(AudioChunk(i / 16000, audio[i : i + chunk], 16000))
    return out + seg.flush()


def test_demo_clip_utterances_match_the_timeline() -> None:
    audio, _ = demo_av()
    utts = segment(audio, 320)
    tl = demo_timeline()
    assert len(utts) == len(tl)
    for u, truth in zip(utts, tl, strict=True):
        # each segment covers its sentence, with at most pre-roll + onset slack before and hangover after
        assert u.start <= truth["start_s"] + 0.05 and u.start >= truth["start_s"] - 0.5
        assert u.end >= truth["end_s"] and u.end <= truth["end_s"] + 0.7
        assert len(u.samples) == round((u.end - u.start) * 16000)


@pytest.mark.parametrize("chunk", [160, 333, 4000, 10**7])
def test_segments_do_not_depend_on_chunking(chunk: int) -> None:
    audio, _ = demo_av()
    ref = segment(audio, 320)
    got = segment(audio, chunk)
    assert [(u.start, u.end) for u in got] == [(u.start, u.end) for u in ref]
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(got, ref, strict=True))


def test_long_speech_is_cut_into_windows_and_short_bursts_dropped() -> None:
    audio, _ = demo_av()
    tl = demo_timeline()
    # concatenate the speech of all sentences without pauses: one long run of speech
    speech = np.concatenate([audio[int(x["start_s"] * 16000) : int(x["end_s"] * 16000)] for x in tl])
    settings = VadSettings(max_utterance_s=4.0)
    utts = segment(np.concatenate([np.zeros(8000, np.int16), speech, np.zeros(16000, np.int16)]), 320, settings)
    assert len(utts) >= len(speech) / 16000 / 4.0 - 1
    assert all(u.duration <= 4.0 + 1e-6 for u in utts)
    assert any(u.cut for u in utts)
    # a 0.1 s click is below min_utterance_s: no utterance, counted
    click = np.zeros(32000, np.int16)
    click[16000:17600] = (np.sin(np.arange(1600) * 0.3) * 12000).astype(np.int16)
    seg = VadSegmenter(VadSettings(min_utterance_s=0.5, hangover_ms=100, pre_roll_ms=0, start_frames=2, start_window=3))
    assert seg.feed(AudioChunk(0.0, click, 16000)) + seg.flush() == []


def test_silence_and_bad_input() -> None:
    seg = VadSegmenter()
    assert seg.feed(AudioChunk(0.0, np.zeros(16000 * 3, np.int16), 16000)) == []
    with pytest.raises(ValueError, match="16000 Hz"):
        seg.feed(AudioChunk(0.0, np.zeros(441, np.int16), 44100))
    with pytest.raises(ValueError, match="int16"):
        seg.feed(AudioChunk(0.0, np.zeros(320, np.float32), 16000))
    with pytest.raises(ConfigError, match=r"vad\.frame_ms"):
        VadSegmenter(VadSettings(frame_ms=25))
    with pytest.raises(ConfigError, match=r"vad\.aggressiveness"):
        VadSettings(aggressiveness=7).validate()


@st.composite
def audio_and_cuts(draw: st.DrawFn) -> tuple[np.ndarray, list[int]]:
    """A slice of the demo clip's speech (with noise added) or pure noise, and where to cut it."""
    audio, _ = demo_av()
    n = draw(st.integers(1, 16000 * 6) | st.integers(16000 * 2, 16000 * 6))
    if draw(st.integers(0, 3)):
        start = draw(st.integers(0, len(audio) - n))
        x = audio[start:start + n].astype(np.int32)
    else:
        x = np.zeros(n, np.int32)
    seed = draw(st.integers(0, 2**32 - 1))
    level = draw(st.sampled_from([0, 0, 30, 300, 32767]))
    x = np.clip(x + np.random.default_rng(seed).integers(-level, level + 1, n), -32768, 32767).astype(np.int16)
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=40)))
    return x, cuts


def _segments(seg: VadSegmenter, chunks: list[np.ndarray]) -> list[tuple[float, float, bytes, bool]]:
    out, offset = [], 0
    for c in chunks:
        out += seg.feed(AudioChunk(offset / 16000, c, 16000))
        offset += len(c)
    out += seg.flush()
    return [(round(u.start, 9), round(u.end, 9), u.samples.tobytes(), u.cut) for u in out]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(audio_and_cuts(), st.sampled_from([VadSettings(), VadSettings(frame_ms=10, hangover_ms=150, max_utterance_s=1.5),
                                          VadSettings(frame_ms=30, aggressiveness=0, min_utterance_s=0.1)]))
def test_vad_segments_do_not_depend_on_how_the_audio_is_chunked(case: tuple[np.ndarray, list[int]],
                                                                vad: VadSettings) -> None:
    audio, cuts = case
    assume(len(audio) > 0)
    bounds = [0, *cuts, len(audio)]
    chunks = [audio[a:b] for a, b in itertools.pairwise(bounds)]
    assert sum(len(c) for c in chunks) == len(audio)
    assert _segments(VadSegmenter(vad), chunks) == _segments(VadSegmenter(vad), [audio])
