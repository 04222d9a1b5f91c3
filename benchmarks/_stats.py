"""Small helpers shared by the benchmarks: percentiles, ranges, GC pause accounting."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def median_range(values: Iterable[float], fmt: str = "{:.2f}") -> str:
    """``median (min..max)`` of repeats."""
    v = list(values)
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}..{fmt.format(max(v))})"


def rss_bytes() -> int:
    """The process's resident set size (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GcPauses:
    """Counts collections per generation and their pauses (``gc.callbacks``).

    ``label`` attributes pauses to whatever is being measured at the time.
    """

    def __init__(self) -> None:
        self.label = ""
        self.started = 0.0
        self.pauses: dict[str, list[tuple[int, float]]] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses.setdefault(self.label, []).append(
                (info["generation"], time.perf_counter() - self.started)
            )

    def summary(self, label: str) -> str:
        found = self.pauses.get(label, [])
        gen2 = [p for g, p in found if g == 2]
        longest = max((p for _, p in found), default=0.0)
        return f"{len(found)} ({len(gen2)} gen-2), max {longest * 1e3:.1f} ms"

    def close(self) -> None:
        gc.callbacks.remove(self._callback)
