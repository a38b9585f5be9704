"""Run control: moving the debugger's position forwards and backwards by
instructions (``step``, ``back``), cycles (``cycle``, ``goto``), to the next
breakpoint or watchpoint (``continue``) or until a condition holds
(``until``)."""

from __future__ import annotations

import ast

import numpy as np

from .conditions import _check_expr
from .errors import DebugError
from .history import _Interrupted
from .stops import Watchpoint


class RunControl:
    """Debugger mixin: the commands that move the position."""

    def _cycle_at(self, row: int) -> int:
        p = self.program
        return int(p.cycle[row]) if row < len(p) else int(self.analysis.end)

    def _forward(self, target: int) -> None:
        """Run forward to *target*, refusing to issue the row of a known violation."""
        if target > self.fault_row:
            self._run_to(self.fault_row)
            self.cycle = self._cycle_at(self.fault_row)
            self.stop_reason = "violation"
            raise DebugError(f"stopped before the violation: {self.violation}")
        self._run_to(target)

    def _moved(self, reason: str) -> str:
        self.stop_reason = reason
        self._watch_stop = False
        self.typed_streams = {}
        return self.where()

    def step(self, n: int = 1) -> str:
        """Issue the next *n* instructions (global issue order), stopping early
        at a breakpoint or watchpoint reached on the way (as gdb's step)."""
        self._need()
        if n < 1:
            raise DebugError("step: the count must be at least 1")
        if self.row >= len(self.program):
            raise DebugError("the program has finished (use: reset, back, goto)")
        start = self.row
        target = min(self.row + n, len(self.program))
        # never stops before the instruction it steps over: the key starts just before it issues
        text = self._run_stops((self.cycle, 1, self.row), (self._cycle_at(target), 1, target))
        if text is not None:
            done = self.row - start
            return self._early(text, f"step: stopped after {done} of {n} instruction{'s' * (n != 1)}")
        self._guarded(lambda: self._forward(target))
        self.cycle = self._cycle_at(self.row)
        return self._moved("step")

    def tick(self, n: int = 1) -> str:
        """Advance *n* cycles, stopping early at a breakpoint or watchpoint."""
        self._need()
        if n < 1:
            raise DebugError("cycle: the count must be at least 1")
        if self.cycle >= self.analysis.end:
            raise DebugError("the program has finished (use: reset, back, goto)")
        start = self.cycle
        to = min(self.cycle + n, self.analysis.end)
        limit = (to, 0, int(np.searchsorted(self.program.cycle, to, "left")))
        text = self._run_stops(self._resume_key(), limit)
        if text is not None:
            done = self.cycle - start
            return self._early(text, f"cycle: stopped after {done} of {n} cycle{'s' * (n != 1)}")
        return self.goto(to, reason="cycle")

    def _early(self, text: str, note: str) -> str:
        """A stop's report, with how far the command got."""
        head, _, where = text.rpartition("\n")
        return f"{head}\n{note}\n{where}"

    def goto(self, cycle: int, reason: str = "goto") -> str:
        """Go to the start of *cycle*, forwards or backwards."""
        self._need()
        end = self.analysis.end
        if not 0 <= cycle <= end:
            raise DebugError(f"goto: cycle {cycle} is outside the program (0..{end})")
        target = int(np.searchsorted(self.program.cycle, cycle, "left"))
        if cycle < self.cycle or target < self.row:
            self._rewind(target, cycle)
        else:
            self._guarded(lambda: self._forward(target))
        self.cycle = cycle
        return self._moved(reason)

    def back(self, n: int = 1) -> str:
        """Undo the last *n* issued instructions."""
        self._need()
        if n < 1:
            raise DebugError("back: the count must be at least 1")
        if self.row == 0:
            raise DebugError("already at the start of the program")
        target = max(self.row - n, 0)
        self._rewind(target)
        self.cycle = self._cycle_at(target)
        return self._moved("back")

    def _guarded(self, fn) -> None:
        try:
            fn()
        except _Interrupted:
            self.cycle = self._cycle_at(self.row)
            self.stop_reason = "interrupted"
            raise DebugError(f"interrupted; {self.where()}") from None
        except DebugError:
            self.cycle = self._cycle_at(self.row)
            if self.stop_reason != "violation":
                self.stop_reason = "error"
            raise

    def cont(self) -> str:
        """Run to the next breakpoint or watchpoint whose condition holds, or to the end.

        Stops are ordered by position key (cycle, phase, row): phase 0 is the
        start of a cycle (cycle breakpoints; watchpoints, once the SRAM writes
        due then have committed or a value passes), phase 1 is just before a
        row issues (row breakpoints)."""
        self._need()
        n = len(self.program)
        if self.row >= n and self.cycle >= self.analysis.end:
            raise DebugError("the program has finished (use: reset, back, goto)")
        text = self._run_stops(self._resume_key(), None)
        if text is not None:
            return text
        self._guarded(lambda: self._forward(n))
        self.cycle = self.analysis.end
        return self._moved("end of program")

    def _resume_key(self) -> tuple[int, int, int]:
        """Where a run resumes: as gdb, never stopping before the instruction it
        resumes at (but a fresh start, or a stop at a watchpoint, which happens
        before the rows of its cycle, may)."""
        n = len(self.program)
        at_row = self.row < n and self._cycle_at(self.row) == self.cycle
        resumed = at_row and self.stop_reason != "start of program" and not self._watch_stop
        return (self.cycle, 1 if resumed else 0, self.row)

    def _arm_watches(self) -> None:
        for w in self.watchpoints:
            if w.enabled and w.region is not None:
                w.last = self._region_value(w)

    def _run_stops(self, key, limit, arm: bool = True) -> str | None:
        """Run forward from position *key* through every breakpoint or
        watchpoint event up to position *limit* (None: no limit); at the first
        that stops, stand there and return its report, else return None (the
        position is then at the last event checked, at or before *limit*)."""
        if arm:
            self._arm_watches()
        self.typed_streams = {}
        while True:
            hit = self._next_event(key)
            if hit is None or (limit is not None and hit[0] > limit):
                return None
            key, items = hit
            cyc, _, row = key
            self._guarded(lambda: self._forward(row))
            self.cycle = cyc
            out, first = [], None
            for item in sorted(items, key=lambda b: b.number):
                if isinstance(item, Watchpoint):
                    text = self._check_watch(item)
                    if text is None:
                        continue
                    out.append(text)
                elif item.condition is None or self._condition(item):
                    item.hits += 1
                    out.append(f"breakpoint {item.number}: {item.spec}")
                else:
                    continue
                first = first or item
            if out:
                kind = "watchpoint" if isinstance(first, Watchpoint) else "breakpoint"
                self.stop_reason = f"{kind} {first.number} ({first.spec})"
                self._watch_stop = key[1] == 0
                return "\n".join(out) + "\n" + self.where()

    def _next_event(self, key):
        """The next position after *key* where a breakpoint or watchpoint may
        stop, with every one that may stop there: ((cycle, phase, row), items)."""
        kc, kphase, krow = key
        best, items = None, []
        for bp in self.breakpoints:
            if not bp.enabled:
                continue
            if bp.rows is None:
                if bp.cycle <= kc or bp.cycle > self.analysis.end:
                    continue
                k = (bp.cycle, 0, int(np.searchsorted(self.program.cycle, bp.cycle, "left")))
            else:
                i = int(np.searchsorted(bp.rows, krow + kphase, "left"))
                if i >= len(bp.rows):
                    continue
                row = int(bp.rows[i])
                k = (self._cycle_at(row), 1, row)
            if best is None or k < best:
                best, items = k, [bp]
            elif k == best:
                items.append(bp)
        for w in self.watchpoints:
            if not w.enabled:
                continue
            i = int(np.searchsorted(w.events, kc, "right"))
            if i >= len(w.events):
                continue
            c = int(w.events[i])
            k = (c, 0, int(np.searchsorted(self.program.cycle, c, "left")))
            if best is None or k < best:
                best, items = k, [w]
            elif k == best:
                items.append(w)
        return None if best is None else (best, items)

    def until(self, cond: str) -> str:
        """Run until *cond* holds.  It is evaluated where it can change: if it
        names only data symbols and constants, after each write to those
        symbols commits; otherwise at the start of every cycle in which an
        instruction issues or such a write commits (and at the end)."""
        self._need()
        cond = cond.strip()
        if not cond:
            raise DebugError("until: which condition? (e.g. until y[0, 0] > 10, until cycle >= 100)")
        tree = _check_expr(cond)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        p, a = self.program, self.analysis
        if self.row >= len(p) and self.cycle >= a.end:
            raise DebugError("the program has finished (use: reset, back, goto)")
        if self._eval(cond, None, "until"):
            raise DebugError(f"'{cond}' holds already at cycle {self.cycle}")
        syms = [d for d in self.data_symbols() if d.name in used]
        parts = [self._writers(d)[0] for d in syms]
        if used & {"cycle", "row", "queue"} or not syms:
            parts += [p.cycle[self.row:], np.array([a.end])]
        cycles = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        cycles = cycles[(cycles > self.cycle) & (cycles <= a.end)]
        key = self._resume_key()
        self._arm_watches()
        for c in cycles.tolist():
            target = int(np.searchsorted(p.cycle, c, "left"))
            stop = self._run_stops(key, (c, 0, target), arm=False)  # breakpoints and watchpoints first
            if stop is not None:
                return self._early(stop, f"until: stopped before '{cond}' held")
            key = (c, 0, target)
            self._guarded(lambda: self._forward(target))
            self.cycle = c
            if self._eval(cond, None, "until"):
                return self._moved(f"until {cond}")
        stop = self._run_stops(key, (a.end, 1, len(p)), arm=False)
        if stop is not None:
            return self._early(stop, f"until: stopped before '{cond}' held")
        self._guarded(lambda: self._forward(len(p)))
        self.cycle = a.end
        self._moved("end of program")
        raise DebugError(f"the program ended and '{cond}' never held; {self.where()}")
