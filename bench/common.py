"""What every benchmark script shares: timing a call and printing the table."""

from __future__ import annotations

import time


def timed(fn):
    """(wall seconds, result) of one call of *fn*."""
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def best_of(repeat: int, fn):
    """(fastest wall seconds of *repeat* calls, result of the last call)."""
    best, result = None, None
    for _ in range(repeat):
        t, result = timed(fn)
        best = t if best is None else min(best, t)
    return best, result


def print_table(rows) -> None:
    """Rows of (benchmark, value, note), aligned."""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'benchmark':<{w0}}  {'value':>{w1}}  note")
    for name, value, note in rows:
        print(f"{name:<{w0}}  {value:>{w1}}  {note}")
