"""Scheduling: the issue cycle of every instruction.

The chip has no interlocks, so a program is a static schedule.  This first
scheduler places each queue's instructions in source order: an instruction
issues at its pinned cycle (``@120``, or ``@+4`` = 4 cycles after the previous
instruction in the source), else at the first cycle its queue is free.  A pin
earlier than that is an error.  ``nop n`` keeps its queue idle for n cycles,
``repeat n, d`` for n*d cycles after the instruction it repeats, ``ifetch n``
busy for n cycles; everything else occupies its queue for one cycle.  An
unpinned ``halt`` issues once every earlier instruction has issued.

(The timing-aware placement, where an instruction waits for its operands to pass
its slice, arrives with the simulator's timing model.)
"""

from __future__ import annotations

import numpy as np

from . import isa
from .diagnostics import Diagnostic, Diagnostics
from .ir import IR, PIN_ABS, PIN_NONE, PIN_REL, field_array

_HALT = isa.TABLE["halt"]
_IFETCH = isa.TABLE["ifetch"]


def durations(ir: IR) -> np.ndarray:
    """Cycles each row keeps its queue busy."""
    dur = np.ones(len(ir), dtype=np.int64)
    for row, fn in ((isa.NOP, lambda w: field_array(w, isa.NOP, "n")),
                    (isa.REPEAT, lambda w: field_array(w, isa.REPEAT, "n") * field_array(w, isa.REPEAT, "d")),
                    (_IFETCH, lambda w: field_array(w, _IFETCH, "n"))):
        mask = ir.op == row.opcode
        if mask.any():
            dur[mask] = fn(ir.word[mask])
    return dur


def schedule(ir: IR, diags: Diagnostics) -> np.ndarray:
    """Issue cycle of every row (int64).  Errors go to *diags*."""
    dur = durations(ir)
    n = len(ir)
    if n and not ir.pin_kind.any() and not (ir.op == _HALT.opcode).any():
        return _unpinned(ir, dur)
    cycles = np.zeros(n, dtype=np.int64)
    free = [0] * len(ir.config.queues)
    prev = 0  # issue cycle of the previous instruction (nop and repeat don't count)
    last_issue = -1
    halt_row = None
    queue, op, kind, pin = ir.queue.tolist(), ir.op.tolist(), ir.pin_kind.tolist(), ir.pin.tolist()
    d = dur.tolist()
    names = ir.config.queues
    for i in range(n):
        q = queue[i]
        if op[i] == _HALT.opcode:
            if halt_row is not None:
                diags.error("a program has one 'halt'", ir.span(i),
                            notes=[Diagnostic("note", "first 'halt' here", ir.span(halt_row))])
            halt_row = i
            earliest = max(free[q], last_issue + 1)
        else:
            earliest = free[q]
        k = kind[i]
        if k == PIN_NONE:
            c = earliest
        else:
            c = pin[i] if k == PIN_ABS else prev + pin[i]
            if c < earliest:
                what = f"@{pin[i]}" if k == PIN_ABS else f"@+{pin[i]} (cycle {c})"
                if op[i] == _HALT.opcode and earliest > free[q]:
                    why = f"instructions before it issue until cycle {earliest - 1}"
                else:
                    why = f"queue {names[q]} is busy until cycle {earliest - 1}"
                diags.error(f"cannot issue at {what}: {why}", ir.span(i),
                            f"the earliest cycle is {earliest}; remove the pin or raise it")
                c = earliest
        cycles[i] = c
        free[q] = c + d[i]
        if op[i] != isa.NOP.opcode and op[i] != isa.REPEAT.opcode:
            prev = c
        last_issue = max(last_issue, c + d[i] - 1)
    if halt_row is not None:
        # a repeat keeps issuing until its last repetition
        last = cycles + np.where(ir.op == isa.REPEAT.opcode, dur - 1, 0)
        for i in np.nonzero(last > cycles[halt_row])[0].tolist():
            diags.error(f"this instruction issues at cycle {last[i]}, after 'halt' at cycle {cycles[halt_row]}",
                        ir.span(i), notes=[Diagnostic("note", "'halt' is here", ir.span(halt_row))])
    return cycles


def _unpinned(ir: IR, dur: np.ndarray) -> np.ndarray:
    """Fast path, no pins: each queue's cycles are the running sum of durations."""
    order = np.argsort(ir.queue, kind="stable")
    q_sorted = ir.queue[order]
    d_sorted = dur[order]
    ends = np.cumsum(d_sorted)
    starts = ends - d_sorted
    first = np.ones(len(order), dtype=bool)
    first[1:] = q_sorted[1:] != q_sorted[:-1]
    base = np.maximum.accumulate(np.where(first, starts, 0))
    cycles = np.empty(len(ir), dtype=np.int64)
    cycles[order] = starts - base
    return cycles


def issue_end(ir: IR, cycles: np.ndarray) -> int:
    """The cycle after the last issue of any instruction (repetitions included,
    idle ``nop`` time not)."""
    if not len(ir):
        return 0
    dur = durations(ir)
    last = cycles + np.where(ir.op == isa.REPEAT.opcode, dur, 1)
    last = last[ir.op != isa.NOP.opcode]
    return int(last.max()) if len(last) else 0
