"""The driver's one-line progress display of a Ray build (`index/ray_build.py`): documents read, texts embedded."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line progress display on the driver: documents read, texts embedded, throughput."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._every = 0.1 if self._tty else every
        self._last = 0.0
        self._phase = ""
        self._done = self._total = 0
        self._t0 = time.perf_counter()
        self.workers = 0

    @property
    def phase(self) -> str:
        """"read" or "embed": what is being counted now."""
        return self._phase

    def start(self, phase: str, total: int) -> None:
        self._phase, self._done, self._total, self._t0, self._last = phase, 0, total, time.perf_counter(), 0.0

    def advance(self, n: int) -> None:
        self._done += n
        now = time.perf_counter()
        if now - self._last >= self._every or self._done >= self._total:
            self._last = now
            self._show(final=self._done >= self._total)

    def _show(self, final: bool) -> None:
        seconds = max(time.perf_counter() - self._t0, 1e-9)
        rate = self._done / seconds
        unit = "documents read" if self._phase == "read" else "texts embedded"
        line = f"ray: {self._done:,}/{self._total:,} {unit}, {rate:,.1f}/s, {self.workers} workers"
        if self._tty:
            self._stream.write("\r" + line + (" " * 8) + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
