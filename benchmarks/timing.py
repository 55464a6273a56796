"""Shared timing helper for the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import time


def best_of(fn, repeats: int = 3):
    """Best wall time of ``repeats`` calls of ``fn`` and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out
