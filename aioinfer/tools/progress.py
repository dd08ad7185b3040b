"""A plain-text progress bar on stderr (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``[#####.....]  52% 5.2/10.0 s  130 iterations``, redrawn at most ``rate`` times a
    second; ``total`` is seconds or iterations, whichever limits the run."""

    def __init__(self, total: float, unit: str, *, stream: TextIO | None = None,
                 width: int = 40, rate: float = 10.0, enabled: bool = True) -> None:
        self.total = max(total, 1e-9)
        self.unit = unit
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = 1.0 / rate
        self.enabled = enabled
        self._last = 0.0
        self._drawn = False

    def update(self, done: float, iterations: int, *, force: bool = False) -> None:
        """Redraw with ``done`` (seconds or iterations) completed."""
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._last < self.interval):
            return
        self._last = now
        frac = min(max(done / self.total, 0.0), 1.0)
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        amount = (f"{done:.1f}/{self.total:.1f} s" if self.unit == "s"
                  else f"{int(done)}/{int(self.total)}")
        self.stream.write(f"\r[{bar}] {frac:4.0%} {amount} {iterations} iterations")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
