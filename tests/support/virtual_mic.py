"""A virtual ALSA microphone for the tests: PortAudio lists it as an input device that "hears" given audio.

ALSA's ``file`` plugin with an ``infile`` returns that file's bytes as captured samples (its slave,
the ``null`` device, only supplies the timing — none: capture runs as fast as it is read). A ``plug``
in front fixes the format to 16 kHz mono S16_LE, so whatever PortAudio asks for, the raw file is read
as what it is. No kernel module, no sound card, nothing beyond libasound2 (``file``, ``null`` and
``plug`` are built into it) and libportaudio2.

ALSA reads ``ALSA_CONFIG_PATH`` once, when PortAudio initialises, so use the returned variables in a
subprocess's environment (or set them before the first ``pyaudio.PyAudio()`` of a process)::

    env = {**os.environ, **virtual_mic_env(tmp_path, pcm)}
    subprocess.run([sys.executable, "-m", "edge_mmer.cli", "run", "--mic", DEVICE_NAME, ...], env=env)

Past the end of the given audio the device delivers ``pad_s`` seconds of silence, then junk (the
plugin stops reading and the ring buffer repeats); pad enough for the test.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import fcntl
import importlib.util
import os
import threading
import time
from pathlib import Path

import numpy as np

from .paths import DEMO_CLIP

DEVICE_NAME = "edge_mmer_vmic"
"""The input device's name as PortAudio lists it (pass it, or a part of it, as ``--mic``)."""

SAMPLE_RATE = 16_000
ALSA_CONF_CANDIDATES = (Path("/usr/share/alsa/alsa.conf"), Path("/usr/local/share/alsa/alsa.conf"))


def system_alsa_conf() -> Path | None:
    """The system's top-level ALSA configuration (it must stay first in ``ALSA_CONFIG_PATH``)."""
    return next((p for p in ALSA_CONF_CANDIDATES if p.is_file()), None)


def unavailable_reason() -> str | None:
    """Why the virtual microphone cannot work here (for ``pytest.skip``), or None when it can."""
    if importlib.util.find_spec("pyaudio") is None:
        return "PyAudio is not installed (pip install edge-mmer[capture])"
    if ctypes.util.find_library("asound") is None:
        return "libasound is missing (apt install libasound2)"
    if ctypes.util.find_library("portaudio") is None:
        return "PortAudio is missing (apt install libportaudio2)"
    if system_alsa_conf() is None:
        return f"no system alsa.conf in {', '.join(map(str, ALSA_CONF_CANDIDATES))} (apt install libasound2-data)"
    return None


def demo_pcm(path: Path = DEMO_CLIP) -> bytes:
    """The demo clip's audio track as raw s16le 16 kHz mono (decoded with PyAV)."""
    import av

    parts = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype("<i2").tobytes()


def asoundrc(infile: Path, as_default: bool = True) -> str:
    """The ALSA configuration of the virtual microphone reading ``infile`` (raw s16le 16 kHz mono)."""
    text = f"""
pcm.{DEVICE_NAME} {{
    type plug
    slave {{
        pcm {{
            type file
            slave.pcm "null"
            file "/dev/null"
            infile "{infile}"
            format "raw"
        }}
        format S16_LE
        rate {SAMPLE_RATE}
        channels 1
    }}
    hint.description "edge-mmer virtual microphone (test)"
}}
"""
    if as_default:
        text += f'pcm.!default "{DEVICE_NAME}"\n'
    return text


def _config_env(tmp_path: Path, infile: Path, as_default: bool) -> dict[str, str]:
    conf = system_alsa_conf()
    if conf is None:
        raise RuntimeError(unavailable_reason() or "no system alsa.conf")
    rc = tmp_path / "vmic.asoundrc"
    if ":" in str(rc):
        raise ValueError(f"{rc}: ALSA_CONFIG_PATH is ':'-separated; use a path without ':'")
    rc.write_text(asoundrc(infile, as_default))
    return {"ALSA_CONFIG_PATH": f"{conf}:{rc}", "JACK_NO_START_SERVER": "1"}


def _check_pcm(raw_pcm: bytes) -> None:
    if len(raw_pcm) % 2:
        raise ValueError("raw_pcm must be whole s16le samples (an even number of bytes)")


def virtual_mic_env(tmp_path: Path, raw_pcm: bytes, pad_s: float = 30.0, as_default: bool = True) -> dict[str, str]:
    """Write the raw audio (plus ``pad_s`` of silence) and an ALSA config into ``tmp_path``.

    Returns the environment variables that make PortAudio list the device :data:`DEVICE_NAME`
    (and, with ``as_default``, make it the default input). Capture is not paced.
    """
    _check_pcm(raw_pcm)
    tmp_path.mkdir(parents=True, exist_ok=True)
    infile = tmp_path / "vmic.s16"
    infile.write_bytes(raw_pcm + bytes(2 * int(pad_s * SAMPLE_RATE)))
    return _config_env(tmp_path, infile, as_default)


class PacedVirtualMic:
    """The virtual microphone fed at real time through a FIFO; a context manager (``env`` inside it).

    The writer holds the FIFO open read-write, so ALSA's open never blocks and PortAudio's device
    probing reads nothing; it writes 20 ms blocks (atomic pipe writes, the size MicrophoneSource
    reads) on a fixed schedule, ``speed`` times real time, then silence until :meth:`close`. A full
    pipe (no one reading yet: it holds ~128 ms) delays the schedule instead of losing audio.

    :meth:`pause` stops the writing with the FIFO still open: a reader blocks in its read (a driver
    that stopped delivering, not one that was unplugged) until :meth:`resume`; the audio resumes where
    it paused.
    """

    BLOCK = 320  # samples: 20 ms

    def __init__(self, tmp_path: Path, raw_pcm: bytes, speed: float = 1.0, as_default: bool = True) -> None:
        _check_pcm(raw_pcm)
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.fifo = tmp_path / "vmic.fifo"
        self.raw_pcm = raw_pcm
        self.speed = speed
        self.env = _config_env(tmp_path, self.fifo, as_default)
        self.samples_written = 0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None

    def pause(self) -> None:
        """Stop delivering (the FIFO stays open: reads block)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def __enter__(self) -> PacedVirtualMic:
        if self.fifo.exists():
            self.fifo.unlink()
        os.mkfifo(self.fifo)
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        # a small pipe: at most ~128 ms of audio waits for a reader that has not started yet
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, 4096)
        self._thread = threading.Thread(target=self._write, name="virtual-mic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._running.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _write(self) -> None:
        assert self._fd is not None
        block_bytes = 2 * self.BLOCK
        period = self.BLOCK / SAMPLE_RATE / self.speed
        silence = bytes(block_bytes)
        due = time.monotonic()
        k = 0
        while not self._stop.is_set():
            if not self._running.is_set():
                self._running.wait()
                due = time.monotonic()
                continue
            start = k * block_bytes
            data = self.raw_pcm[start:start + block_bytes] if start < len(self.raw_pcm) else silence
            data = data.ljust(block_bytes, b"\0")
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            while not self._stop.is_set():
                try:
                    os.write(self._fd, data)
                    break
                except OSError as e:
                    if e.errno != errno.EAGAIN:
                        raise
                    self._stop.wait(period / 4)  # the pipe is full: no one is reading yet
                    due = time.monotonic()
            self.samples_written += self.BLOCK
            k += 1
            due += period
