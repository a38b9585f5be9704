"""The scheduler's periodic fast path (lpuasm/schedule_runs.py) against the
row-by-row pass: on random loop-heavy programs with interference (pinned reads
across the loops' streams, in-place writes, MXM pipelines, errors), the issue
cycles and the diagnostics must be identical with the fast path on and off."""

from __future__ import annotations

import pytest

from lpuasm import schedule_runs
from lpuasm.assembler import assemble
from lpuasm.diagnostics import LpuError

from randloops import program


def outcome(src: str):
    try:
        asm = assemble(src, "r.lasm")
    except LpuError as e:
        return "error", [(d.message, d.span.line if d.span else None) for d in e.diagnostics]
    return "ok", asm.cycles.tolist()


@pytest.mark.parametrize("seed", range(60))
def test_fast_path_changes_nothing(seed, monkeypatch):
    src = program(seed)
    fast = outcome(src)
    monkeypatch.setattr(schedule_runs, "ENABLED", False)
    slow = outcome(src)
    assert fast == slow


def test_the_fast_path_is_taken():
    """A long .for loop of a plain chain goes through the fast path (most rows)."""
    src = (".chip tsp-v1\n.for i, 0, 2000\n    read W3.b0[i % 64], s1e\n    vadd.i8 s1e, 1, s2e, alu0\n"
           "    write s2e, E2.b0[i % 64]\n.endfor\n    halt\n")
    before = dict(schedule_runs.stats)
    asm = assemble(src, "loop.lasm")
    assert len(asm.cycles) == 6001
    assert schedule_runs.stats["rows"] - before["rows"] > 5000
