"""A microphone through PyAudio (PortAudio): 16 kHz mono int16 chunks stamped with ``time.monotonic()``.

The device is ``"default"`` (the system's default input), an index, or part of a device name
(case-insensitive; an exact name wins, else the first match). A device that does not exist is a
:class:`SourceError` listing the input devices (``index: name``).

The device is opened at 16 kHz mono when it accepts that; otherwise at its own default rate and/or
with all its channels, and the samples are downmixed (mean of the channels) and resampled to 16 kHz
with PyAV's resampler (libswresample). ``t`` of a chunk is the monotonic time at the end of the read
minus the chunk's duration: the time of its first sample. Overflows are not errors (PortAudio drops
samples and the timestamps show the gap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edge_mmer.runtime.chunks import AudioChunk, Chunk
from edge_mmer.runtime.sources.base import LiveSource, ReadPass, SourceError
from edge_mmer.runtime.sources.pacing import chunk_samples, import_av
from edge_mmer.vocab import SAMPLE_RATE

log = logging.getLogger(__name__)

_quiet_handlers: list[Any] = []  # installed no-op handlers, kept referenced so ctypes does not free them


def quiet_audio_libraries() -> None:
    """Silence libasound's and libjack's stderr chatter while PortAudio probes every configured device
    ("Unknown PCM cards.pcm.rear", "jack server is not running", ...): noise, not errors of ours.
    Left alone when this module logs at DEBUG level."""
    if _quiet_handlers or log.isEnabledFor(logging.DEBUG):
        return
    targets = [("asound", ["snd_lib_error_set_handler"],
                ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)),
               ("jack", ["jack_set_error_function", "jack_set_info_function"], ctypes.CFUNCTYPE(None, ctypes.c_char_p))]
    for lib_name, setters, handler_type in targets:
        found = ctypes.util.find_library(lib_name)
        if found is None:
            continue
        try:
            lib = ctypes.CDLL(found)
            handler = handler_type(lambda *args: None)
            for setter in setters:
                getattr(lib, setter)(handler)
        except (OSError, AttributeError) as e:
            log.debug("could not quiet %s: %s", lib_name, e)
            continue
        _quiet_handlers.append(handler)


def import_pyaudio() -> Any:
    """PyAudio, or a :class:`SourceError` that says how to install it."""
    try:
        import pyaudio
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SourceError("microphone capture needs PyAudio: pip install edge-mmer[capture] "
                          "(and the system library: apt install libportaudio2)") from e
    quiet_audio_libraries()
    return pyaudio


def _inputs(pa: Any) -> list[tuple[int, str]]:
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) > 0:
            devices.append((i, str(info["name"])))
    return devices


def list_input_devices() -> list[tuple[int, str]]:
    """``(index, name)`` of every input device PortAudio sees."""
    pa = import_pyaudio().PyAudio()
    try:
        return _inputs(pa)
    finally:
        pa.terminate()


def describe_devices(devices: list[tuple[int, str]]) -> str:
    return ", ".join(f"{i}: {name}" for i, name in devices) if devices else "(none found)"


def find_input_device(pa: Any, device: str | int) -> tuple[int, dict[str, Any]]:
    """Index and PortAudio info of the input device ``device`` names."""
    devices = _inputs(pa)
    listing = f"input devices: {describe_devices(devices)}"
    if device == "default":
        try:
            info = pa.get_default_input_device_info()
        except OSError as e:
            raise SourceError(f"microphone default: there is no default input device; {listing}") from e
        return int(info["index"]), info
    if isinstance(device, int):
        if device not in [i for i, _ in devices]:
            raise SourceError(f"microphone {device}: no input device with that index; {listing}")
        return device, pa.get_device_info_by_index(device)
    needle = device.lower()
    matches = ([i for i, name in devices if name.lower() == needle]
               or [i for i, name in devices if needle in name.lower()])
    if not matches:
        raise SourceError(f"microphone '{device}': no input device matches that name; {listing} "
                          f"(pass --mic with an index or part of a name)")
    if len(matches) > 1:
        log.warning("microphone '%s': %d devices match (%s); using %d", device, len(matches),
                    describe_devices([d for d in devices if d[0] in matches]), matches[0])
    return matches[0], pa.get_device_info_by_index(matches[0])


class ToMono16k:
    """Interleaved int16 at (``rate``, ``channels``) → 16 kHz mono int16, streaming (state kept across calls)."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = channels
        self._resampler: Any = None
        if rate != SAMPLE_RATE:
            av = import_av()
            self._av = av
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if self.channels > 1:
            frames = samples[: samples.size - samples.size % self.channels].reshape(-1, self.channels)
            samples = (frames.astype(np.int32).sum(axis=1) // self.channels).astype(np.int16)
        if self._resampler is None:
            return samples
        frame = self._av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        out = [o.to_ndarray().reshape(-1) for o in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.empty(0, dtype=np.int16)


class MicrophoneSource(LiveSource):
    """Audio chunks from a PyAudio input device."""

    has_video = False
    has_audio = True

    def __init__(self, device: str | int = "default", chunk_ms: float = 20) -> None:
        super().__init__()
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        self.device = device
        plain = isinstance(device, int) or device == "default"
        self.name = f"microphone {device}" if plain else f"microphone '{device}'"
        self._chunk = chunk_samples(chunk_ms)
        self.device_index: int | None = None
        self.device_name: str | None = None
        self.device_rate: int | None = None
        self.device_channels: int | None = None
        self._frames_per_read = self._chunk
        self._pa: Any = None
        self._stream: Any = None

    def open(self) -> None:
        pyaudio = import_pyaudio()
        self._new_pass()
        pa = pyaudio.PyAudio()
        try:
            index, info = find_input_device(pa, self.device)
            rate, channels = self._pick_format(pa, pyaudio, index, info)
            frames = max(1, round(self._chunk * rate / SAMPLE_RATE))
            try:
                stream = pa.open(format=pyaudio.paInt16, channels=channels, rate=rate, input=True,
                                 input_device_index=index, frames_per_buffer=frames)
            except (OSError, ValueError) as e:
                raise SourceError(f"{self.name}: cannot open input device {index}: {info['name']} at {rate} Hz, "
                                  f"{channels} channel(s) ({e})") from e
        except BaseException:
            pa.terminate()
            raise
        with self._lock:
            self._pa, self._stream = pa, stream
        self.device_index, self.device_name = index, str(info["name"])
        self.device_rate, self.device_channels, self._frames_per_read = rate, channels, frames
        native = (rate, channels) == (SAMPLE_RATE, 1)
        how = "" if native else f" (converting {rate} Hz, {channels} channel(s) to 16 kHz mono)"
        log.info("%s: opened input device %d: %s%s", self.name, index, self.device_name, how)

    def _pick_format(self, pa: Any, pyaudio: Any, index: int, info: dict[str, Any]) -> tuple[int, int]:
        default_rate = int(info["defaultSampleRate"])
        most = int(info["maxInputChannels"])
        candidates = list(dict.fromkeys([(SAMPLE_RATE, 1), (default_rate, 1), (SAMPLE_RATE, most),
                                         (default_rate, most)]))
        for rate, channels in candidates:
            try:
                pa.is_format_supported(rate, input_device=index, input_channels=channels, input_format=pyaudio.paInt16)
            except ValueError:
                continue
            return rate, channels
        raise SourceError(f"{self.name}: input device {index}: {info['name']} takes none of "
                          f"{', '.join(f'{r} Hz x {c} ch' for r, c in candidates)} as 16-bit input")

    def _holds_device(self) -> bool:
        return self._stream is not None

    def _detach(self) -> Any:
        pa, stream = self._pa, self._stream
        self._pa = self._stream = None
        return None if pa is None and stream is None else (pa, stream)

    def _release_handles(self, handles: Any) -> None:
        pa, stream = handles
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except OSError as e:
                log.debug("%s: closing the stream: %s", self.name, e)
        if pa is not None:
            pa.terminate()

    def chunks(self) -> Iterator[Chunk]:
        if self._stream is None:
            self.open()
        return self._read_loop(self._pass)

    def _read_loop(self, stop: ReadPass) -> Iterator[Chunk]:
        rate, channels = self.device_rate or SAMPLE_RATE, self.device_channels or 1
        convert = None if (rate, channels) == (SAMPLE_RATE, 1) else ToMono16k(rate, channels)
        frames = self._frames_per_read
        pending = np.empty(0, dtype=np.int16)
        anchor = 0.0  # monotonic time of pending[0]
        while self._begin_read(stop):
            with self._lock:
                stream = self._stream
            try:
                data = stream.read(frames, exception_on_overflow=False)
                t_read = time.monotonic() - frames / rate
            except (OSError, AttributeError) as e:
                if stop.is_set():
                    return
                raise SourceError(f"{self.name}: reading failed ({e})") from e
            finally:
                self._end_read(stop)
            if stop.is_set():
                return
            samples = np.frombuffer(data, dtype=np.int16)
            if convert is not None:
                samples = convert(samples)
            if pending.size == 0:
                anchor = t_read
            pending = np.concatenate([pending, samples]) if pending.size else samples
            while pending.size >= self._chunk:
                yield AudioChunk(anchor, pending[: self._chunk].copy(), SAMPLE_RATE)
                pending = pending[self._chunk:]
                anchor += self._chunk / SAMPLE_RATE
