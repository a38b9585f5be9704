"""The optimised scheduler (lpuasm/schedule.py) places every row exactly as the
frozen reference copy (tests/_schedule_reference.py, the scheduler before its
speed-up) does: same cycles, same diagnostics, in the same order.

Each program is lowered once (``assemble(..., stop_after="lower")``); both
schedulers then run on their own copy of the IR with fresh Diagnostics.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpuasm import schedule as fast
from lpuasm.assembler import assemble
from lpuasm.diagnostics import Diagnostics, LpuError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _schedule_reference as reference  # noqa: E402
from test_schedule import chains  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "tests" / "corpus").glob("*.lasm")) + sorted((ROOT / "examples").glob("*.lasm"))


def run_one(module, ir):
    diags = Diagnostics()
    try:
        cycles = module.schedule(copy.deepcopy(ir), diags)
    except LpuError:  # too many errors: the diagnostics so far are compared
        cycles = None
    return (None if cycles is None else cycles.tolist()), diags.items


def same_schedule(src: str, filename: str = "t.lasm", **kwargs) -> list:
    """Schedule *src* with both schedulers; returns the diagnostics (identical)."""
    try:
        asm = assemble(src, filename, stop_after="lower", **kwargs)
    except LpuError:
        return []  # lowering errors: never reaches the scheduler
    want = run_one(reference, asm.ir)
    got = run_one(fast, asm.ir)
    assert got[0] == want[0]
    assert got[1] == want[1]
    if want[0] is not None:
        assert fast.issue_end(asm.ir, np.asarray(got[0])) == reference.issue_end(asm.ir, np.asarray(want[0]))
    return want[1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_files(path):
    same_schedule(path.read_text(), str(path), include_dirs=[ROOT / "examples" / "include", path.parent])


def test_some_files_have_schedule_errors():
    """The corpus exercises the diagnostics, not only clean placements."""
    found = [same_schedule(p.read_text(), str(p), include_dirs=[ROOT / "examples" / "include"])
             for p in sorted((ROOT / "tests" / "corpus").glob("errors_*.lasm"))]
    assert any(found)


@given(chains(), st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_chains(case, halt):
    data, order, _ = case
    src = "\n".join([".chip tsp-v1"] + data + [text for text, _ in order]) + "\n" + ("    halt\n" if halt else "")
    same_schedule(src, "chains.lasm")


@st.composite
def messy(draw):
    """Random rows on a few slices and streams, with pins, nops, repeats,
    conflicting writes and ports: mostly errors, to compare diagnostics."""
    lines = [".chip tsp-v1", ".space x, W1.b0[0], i8, 64", ".space y, E1.b1[0], i8, 64",
             ".space z, W2.b1[0], i8, 64", ".space u, E2.b0[0], i8, 64"]
    for _ in range(draw(st.integers(1, 30))):
        pin = draw(st.sampled_from(["", "", "", " @+1", " @+2", f" @{draw(st.integers(0, 40))}"]))
        s = draw(st.sampled_from(["s0e", "s1e", "s0w", "s1w"]))
        t = draw(st.sampled_from(["s0e", "s1e", "s0w", "s1w"]))
        alu = draw(st.integers(0, 2))
        k = draw(st.integers(0, 7))
        line = draw(st.sampled_from([
            f"    read x[{k}], {s}{pin}", f"    read u[{k}], {s}{pin}", f"    read z[{k}], {s}{pin}",
            f"    write {s}, y[{k}]{pin}", f"    write {s}, z[{k}]{pin}", f"    write {s}, x[{k}]{pin}",
            f"    vadd.i8 {s}, 1, {t}, alu{alu}{pin}", f"    vadd.i8 {s}, {t}, {t}, alu{alu}{pin}",
            f"    vrelu.i8 {s}, {t}, alu{alu}{pin}",
            f"    nop w1, {draw(st.integers(1, 3))}", f"    nop e1, {draw(st.integers(1, 3))}",
        ]))
        lines.append(line)
        if line.startswith("    read") and not pin and draw(st.integers(0, 3)) == 0:
            q = {"x": "w1", "u": "e2", "z": "w2"}[line.split()[1][0]]
            lines.append(f"    repeat {q}, {draw(st.integers(1, 3))}, {draw(st.integers(1, 2))}")
    if draw(st.booleans()):
        lines.append("    halt")
    return "\n".join(lines) + "\n"


@given(messy())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_messy_programs(src):
    same_schedule(src, "messy.lasm")


def test_large_generated_programs():
    sys.path.insert(0, str(ROOT / "bench"))
    import run
    import vexpand
    same_schedule(run.generate(20_000), "bench.lasm")
    same_schedule(vexpand.program(20_000), "bench.lasm")
