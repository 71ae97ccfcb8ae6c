"""The command line in a subprocess, as a user runs it: ``run_cli`` for a command that runs to its end,
``cli_child`` for an ``edge-mmer run`` that the test drives while it runs (waits on, signals, kills).

A :class:`Child` reads its stdout and stderr as they come, in two threads, so a test can wait for a
line or a log message without a pipe filling up, and a wait ends as soon as the child is gone
instead of running out its timeout. Leaving the ``with`` block kills whatever still runs: a failing
test never leaves a process behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from .paths import ROOT

CLI = (sys.executable, "-m", "edge_mmer.cli")


def run_cli(*args: str, timeout: float = 120, env: Mapping[str, str] | None = None,
            **popen: Any) -> subprocess.CompletedProcess[str]:
    """``python -m edge_mmer.cli ARGS`` from the repository root, to its end; ``env`` adds to the
    environment."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})}, check=False, **popen)


class Child:
    """A running child process, its output read as it comes."""

    def __init__(self, argv: Sequence[str], *, cwd: Path = ROOT, env: Mapping[str, str] | None = None,
                 stdin: bool = False) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=None if env is None else dict(env),
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._changed = threading.Condition()
        self._out: list[str] = []
        self._err: list[str] = []
        self._next = 0  # the next stdout line read_line returns
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    # ---- what it said ----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def stdout(self) -> str:
        with self._changed:
            return "".join(self._out)

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._err)

    def last_match(self, pattern: str) -> re.Match[str] | None:
        """The last stderr line's match of ``pattern`` (None while no line matches)."""
        with self._changed:
            lines = list(self._err)
        found = None
        for line in lines:
            m = re.search(pattern, line)
            if m:
                found = m
        return found

    def read_line(self, timeout: float = 30.0) -> str:
        """The next stdout line; "" when the child closed its stdout (or none came within ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._next >= len(self._out):
                left = deadline - time.monotonic()
                if left <= 0 or not self._readers[0].is_alive():
                    return ""
                self._changed.wait(min(left, 0.1))
            line = self._out[self._next]
            self._next += 1
            return line

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None, "started without stdin"
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def wait_for(self, pred: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> bool:
        """Poll ``pred`` until true; gives up at ``timeout`` or as soon as the child has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            if not self.running:
                break
            time.sleep(step)
        return pred()

    def tail(self, chars: int = 3000) -> str:
        """The end of stderr, for an assertion message."""
        return self.stderr[-chars:]

    # ---- ending it -------------------------------------------------------------------------------

    def send_signal(self, sig: int) -> None:
        if self.running:
            self.proc.send_signal(sig)

    def finish(self, timeout: float = 60.0) -> Child:
        """Wait for the child to exit by itself, and for the rest of its output."""
        self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> Child:
        """Send ``sig`` (SIGTERM: the clean stop) and wait for the exit."""
        self.send_signal(sig)
        return self.finish(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean up in the child; the process is just gone."""
        if self.running:
            self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def spawn(argv: Sequence[str], *, cwd: Path = ROOT, env: Mapping[str, str] | None = None,
          stdin: bool = False) -> Iterator[Child]:
    """Any command as a :class:`Child`; killed on leaving the block if it still runs."""
    with Child(argv, cwd=cwd, env=env, stdin=stdin) as child:
        yield child


@contextmanager
def cli_child(config: Path | None, *args: str, options: Sequence[str] = (),
              env: Mapping[str, str] | None = None) -> Iterator[Child]:
    """``python -m edge_mmer.cli [OPTIONS] run [--config CONFIG] ARGS`` from the repository root, running
    while the block runs; ``env`` replaces the environment."""
    argv = [*CLI, *options, "run", *(["--config", str(config)] if config is not None else []), *args]
    with spawn(argv, env=env) as child:
        yield child


class CliChildFactory(Protocol):
    """What the ``cli_child`` fixture gives: :func:`cli_child` without the ``with`` (the fixture
    kills every child it started when the test ends)."""

    def __call__(self, config: Path | None, *args: str, options: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> Child: ...
