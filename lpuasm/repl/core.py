"""The debugger core: a loaded program, a position in it, and the commands'
logic, with no terminal (the front end is :mod:`lpuasm.repl.session`).

Position.  The program's rows (:class:`lpuasm.program.Program`) are the issued
instructions in global issue order.  The debugger stands at ``(row, cycle)``:
rows ``0 .. row-1`` have issued, the others not, and ``cycle`` is "now", with
``cycle[row-1] <= now <= cycle[row]``.  ``step`` stops before the next row at
the cycle it issues; ``cycle N`` stops at the start of cycle now + N.  What is
shown of SRAM is what an instruction issued now would see (docs/timing-model.md,
"State changes").

Reverse execution.  The simulator is deterministic, so going back means
replaying forward from an earlier snapshot.  Every ``snapshot_every`` rows the
engine's small state is copied (stream ring buffer, pending SRAM writes, MXM
planes: :meth:`lpuasm.interp._Engine.save_state`), but SRAM itself (220 MiB on
tsp-v1) is never copied: instead every SRAM write records the old bytes of the
words it overwrites in an undo log, one segment per snapshot.  Going back to row
r undoes the segments newer than the last snapshot at or before r (newest
first), restores that snapshot and replays the rows up to r, so ``back 1``
costs at most ``snapshot_every`` rows of simulation.  Memory: the snapshots and
undo log are kept under ``history_bytes`` (default 256 MiB) by dropping the
oldest snapshot and its segment; going back before the oldest kept snapshot
starts again from the image (slower, never wrong).
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import chip, isa
from .. import semantics as sem
from ..analysis import Analysis, analyse
from ..config import ChipConfig
from ..diagnostics import LpuError, SourceCache, did_you_mean
from ..image import DataSymbol, Image
from ..interp import _Engine
from ..program import Program, load_program
from ..sim import UNIT_KINDS, SimError, read_symbol


class DebugError(Exception):
    """A command failed; the message is one line and the state is intact."""


class _Interrupted(Exception):
    pass


@dataclass
class Breakpoint:
    """A breakpoint: stops before any row in ``rows`` issues (or at the start
    of cycle ``cycle``), when ``condition`` (an expression) holds."""

    number: int
    spec: str
    what: str                       # human description
    rows: np.ndarray | None         # sorted program rows, or None for a cycle breakpoint
    cycle: int | None = None
    condition: str | None = None
    enabled: bool = True
    hits: int = 0


@dataclass
class Watchpoint:
    """A watchpoint: ``kind`` "change" (an SRAM region or symbol slice changed),
    "nan" (NaN/Inf appeared in a float symbol) or "stream" (a value passes a
    stream at a position).  ``events`` are the only cycles it can trigger at,
    known from the schedule: when a write to its words commits (``writers``:
    the writing row of each, parallel to ``events`` before np.unique), or when a
    value passes its stream position."""

    number: int
    spec: str
    what: str
    kind: str
    condition: str | None = None
    enabled: bool = True
    hits: int = 0
    events: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # sorted unique cycles
    writers: tuple = (np.zeros(0, np.int64), np.zeros(0, np.int64))  # (commit cycle, row), sorted by cycle
    region: tuple | None = None      # (DataSymbol, numpy index or None) for SRAM kinds
    stream: tuple | None = None      # (direction, index, position) for a stream watch
    last: np.ndarray | None = None   # the value last seen (SRAM kinds)


@dataclass
class _Snapshot:
    state: dict
    undo: list = field(default_factory=list)  # SRAM writes since this snapshot: (where, old, vwhere, oldvalid)
    undo_bytes: int = 0
    state_bytes: int = 0


# names a breakpoint condition may use besides the data symbols
_COND_FUNCS = {"abs": np.abs, "any": np.any, "all": np.all, "isnan": np.isnan, "isinf": np.isinf,
               "isfinite": np.isfinite, "max": np.max, "min": np.min, "sum": np.sum, "mean": np.mean}
_ALLOWED_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name,
                  ast.Load, ast.Subscript, ast.Slice, ast.Tuple, ast.Call, ast.cmpop, ast.boolop, ast.operator,
                  ast.unaryop)
_ADDR_RE = re.compile(r"^([we])(\d+)\.b(\d+)(?:\[(.*)\])?$", re.IGNORECASE)
_STREAM_RE = re.compile(r"^s(\d+)([ew])@([a-z0-9()]+)(?::(\d+))?$", re.IGNORECASE)


class Debugger:
    """An interactive session's state: program, position, breakpoints, history."""

    def __init__(self, config: ChipConfig | None = None, *, snapshot_every: int | None = None,
                 history_bytes: int = 256 << 20, allow_uninit: bool = False):
        self.config = config
        self.snapshot_every_wanted = snapshot_every
        self.history_bytes = history_bytes
        self.allow_uninit = allow_uninit
        self.program: Program | None = None
        self.analysis: Analysis | None = None
        self.engine: _Engine | None = None
        self.path: str | None = None
        self.sources = SourceCache()
        self.breakpoints: list[Breakpoint] = []
        self.watchpoints: list[Watchpoint] = []
        self.displays: list[tuple[int, str, str | None]] = []  # (number, expression, format)
        self._next_display = 1
        self.equs: dict[str, int | float] = {}  # .equ typed at the prompt
        self.typed_streams: dict = {}  # (direction, index) -> byte plane: results of typed instructions
        self._watch_stop = False
        self._next_bp = 1
        self._interrupt = False
        self.row = 0
        self.cycle = 0
        self.stop_reason = "no program loaded"

    # ---- loading ---------------------------------------------------------------------------
    def load(self, path: str) -> str:
        """Assemble a ``.lasm`` file or load a ``.lpu`` image, and reset."""
        from .. import imagefile
        from ..assembler import assemble_file
        from ..disasm import config_of

        p = Path(path)
        try:
            if p.suffix == ".lpu":
                image = imagefile.load(p, self.config)
                cfg = self.config or config_of(image)
                if cfg is None:
                    raise DebugError(f"{p}: built for chip config '{image.config_name}', which is not built in; "
                                     f"give its file with --config")
                sources = SourceCache()
            else:
                asm = assemble_file(p, config=self.config)
                image, cfg, sources = asm.image, asm.config, asm.sources
        except LpuError as e:
            raise DebugError(_one_line(e)) from None
        return self.load_image(image, cfg, sources, str(p))

    def load_image(self, image: Image, config: ChipConfig, sources: SourceCache | None = None,
                   name: str = "<image>") -> str:
        """Debug an assembled image."""
        program = load_program(image, config)
        self.violation: str | None = None
        self.fault_row = len(program)
        try:
            analysis = analyse(program)
        except SimError as e:
            analysis = analyse(program, check=False)
            self.violation = _one_line(e)
            self.fault_row = _blamed_row(program, analysis, e)
        self.program, self.analysis, self.path = program, analysis, name
        self.sources = sources or SourceCache()
        n = len(program)
        self.snapshot_every = self.snapshot_every_wanted or int(min(4096, max(256, n // 256)))
        self._queue_rows = [np.nonzero(program.queue == q)[0] for q in range(len(config.queues))]
        self.breakpoints = [self._rebind(b) for b in self.breakpoints]
        self.watchpoints = [self._rebind_watch(w) for w in self.watchpoints]
        self._fresh()
        msg = (f"{name}: {n} instructions on {len(image.text)} queues, {analysis.end} cycles, chip {config.name}")
        if self.violation:
            msg += f"\nwarning: the schedule has a violation; stepping stops before it: {self.violation}"
        return msg

    def _need(self) -> None:
        if self.program is None:
            raise DebugError("no program loaded (use: load FILE)")

    def _fresh(self) -> None:
        """A new engine at row 0 from the image's initial data."""
        self.engine = _Engine(self.analysis, self.allow_uninit, False)
        self.snaps: dict[int, _Snapshot] = {}
        self.snap_rows: list[int] = []
        self._current: _Snapshot | None = None
        self.row, self.cycle = 0, self._cycle_at(0)
        self._take_snapshot()
        self.stop_reason = "start of program"
        self._watch_stop = False
        self.typed_streams = {}

    def reset(self) -> str:
        """Back to cycle 0."""
        self._need()
        self._rewind(0)
        self.cycle = self._cycle_at(0)
        self.stop_reason = "start of program"
        self._watch_stop = False
        self.typed_streams = {}
        return self.where()

    # ---- snapshots and the undo log ----------------------------------------------------------
    def _take_snapshot(self) -> None:
        if self.snaps and self._current is not None:  # the previous segment is complete: count it once
            self._current.undo_bytes = sum(w[1].nbytes + w[3].nbytes for w in self._current.undo)
        st = self.engine.save_state()
        snap = _Snapshot(st, state_bytes=self.engine.state_bytes(st))
        self.snaps[self.row] = snap
        bisect.insort(self.snap_rows, self.row)
        self.engine.undo = snap.undo
        self._current = snap

    def history_size(self) -> int:
        """Bytes held by snapshots and the undo log."""
        for s in self.snaps.values():
            s.undo_bytes = sum(w[1].nbytes + w[3].nbytes for w in s.undo) if s is self._current else s.undo_bytes
        return sum(s.undo_bytes + s.state_bytes for s in self.snaps.values())

    def _trim(self) -> None:
        while len(self.snap_rows) > 1 and self.history_size() > self.history_bytes:
            oldest = self.snap_rows.pop(0)
            del self.snaps[oldest]

    def _rewind(self, target: int) -> None:
        """Go back to the state where rows < *target* have issued."""
        sram, valid = self.engine.sram, self.engine.valid
        base = [r for r in self.snap_rows if r <= target]
        if not base:
            self._fresh()
        else:
            s = base[-1]
            for r in reversed([r for r in self.snap_rows if r >= s]):
                for where, old, vwhere, oldvalid in reversed(self.snaps[r].undo):
                    sram[where] = old
                    valid[vwhere] = oldvalid
                if r > s:
                    del self.snaps[r]
            self.snap_rows = [r for r in self.snap_rows if r <= s]
            snap = self.snaps[s]
            snap.undo.clear()
            snap.undo_bytes = 0
            self.engine.load_state(snap.state)
            self.engine.undo = snap.undo
            self._current = snap
            self.row = s
        self._run_to(target, interruptible=False)

    def _run_to(self, target: int, interruptible: bool = True) -> None:
        """Issue rows up to *target* (exclusive), taking snapshots on the way.
        A violation leaves the position just before the row that fails."""
        every = self.snapshot_every
        while self.row < target:
            if interruptible and self._interrupt:
                self._interrupt = False
                raise _Interrupted()
            stop = min(target, (self.row // every + 1) * every)
            start = self.row
            try:
                self.engine.run_rows(start, stop)
            except SimError as e:
                self._rewind(start)
                self._locate_error(stop)
                raise DebugError(_one_line(e)) from None
            self.row = stop
            if stop % every == 0 and stop not in self.snaps:
                self._take_snapshot()
                self._trim()

    def _locate_error(self, stop: int) -> None:
        """From a good state, issue one row at a time until one fails."""
        while self.row < stop:
            try:
                self.engine.run_rows(self.row, self.row + 1)
            except SimError:
                failed = self.row
                self._rewind(failed)
                self.cycle = self._cycle_at(failed)
                self.stop_reason = "error"
                return
            self.row += 1

    def interrupt(self) -> None:
        """Ask a running ``continue`` (or long step) to stop at the next chance."""
        self._interrupt = True

    # ---- moving ---------------------------------------------------------------------------------
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
        """Issue the next *n* instructions (global issue order)."""
        self._need()
        if n < 1:
            raise DebugError("step: the count must be at least 1")
        if self.row >= len(self.program):
            raise DebugError("the program has finished (use: reset, back, goto)")
        target = min(self.row + n, len(self.program))
        self._guarded(lambda: self._forward(target))
        self.cycle = self._cycle_at(self.row)
        return self._moved("step")

    def tick(self, n: int = 1) -> str:
        """Advance *n* cycles."""
        self._need()
        if n < 1:
            raise DebugError("cycle: the count must be at least 1")
        if self.cycle >= self.analysis.end:
            raise DebugError("the program has finished (use: reset, back, goto)")
        return self.goto(min(self.cycle + n, self.analysis.end), reason="cycle")

    def goto(self, cycle: int, reason: str = "goto") -> str:
        """Go to the start of *cycle*, forwards or backwards."""
        self._need()
        end = self.analysis.end
        if not 0 <= cycle <= end:
            raise DebugError(f"goto: cycle {cycle} is outside the program (0..{end})")
        target = int(np.searchsorted(self.program.cycle, cycle, "left"))
        if cycle < self.cycle or target < self.row:
            self._rewind(target)
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
        # as gdb, resuming never stops before the instruction it resumes at (but a fresh start, or a
        # stop at a watchpoint, which happens before the rows of its cycle, may)
        at_row = self.row < n and self._cycle_at(self.row) == self.cycle
        resumed = at_row and self.stop_reason != "start of program" and not self._watch_stop
        key = (self.cycle, 1 if resumed else 0, self.row)
        for w in self.watchpoints:
            if w.enabled and w.region is not None:
                w.last = self._region_value(w)
        self.typed_streams = {}
        while True:
            hit = self._next_event(key)
            if hit is None:
                self._guarded(lambda: self._forward(n))
                self.cycle = self.analysis.end
                return self._moved("end of program")
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

    # ---- watchpoints ---------------------------------------------------------------------------
    def add_watchpoint(self, spec: str, condition: str | None = None) -> str:
        """``watch WHAT [if COND]``: WHAT is a symbol slice (``y[0, 0:4]``), SRAM
        words (``E2.b1[0:2]``), ``nan SYMBOL`` or a stream at a position (``s3e@e2``)."""
        self._need()
        if condition is not None:
            _check_expr(condition)
        w = self._resolve_watch(Watchpoint(self._next_bp, spec.strip(), "", "change", condition))
        self._next_bp += 1
        self.watchpoints.append(w)
        return f"watchpoint {w.number}: {w.what}" + (f" if {condition}" if condition else "")

    def _rebind_watch(self, w: Watchpoint) -> Watchpoint:
        try:
            return self._resolve_watch(w)
        except DebugError:
            return dataclasses.replace(w, events=np.zeros(0, np.int64), region=None, stream=None,
                                       what=w.spec + " (not in this program)")

    def _resolve_watch(self, w: Watchpoint) -> Watchpoint:
        spec = w.spec
        m = _STREAM_RE.match(spec)
        if m:
            if m.group(4) is not None:
                raise DebugError("watch: a stream watchpoint takes no :CYCLE")
            direction, idx, pos = self._stream_place(m)
            wt = self.analysis.writes
            up = (wt.direction == direction) & (wt.index == idx) & (
                (wt.position <= pos) if direction == 0 else (wt.position >= pos))
            passes = wt.cycle[up] + np.abs(pos - wt.position[up])
            events = np.unique(passes[passes <= self.analysis.end])
            return dataclasses.replace(w, kind="stream", events=events, stream=(direction, idx, pos), region=None,
                                       what=f"stream {spec} ({len(events)} value{'s' * (len(events) != 1)} pass)")
        kind = "change"
        if spec.split()[0].lower() == "nan" and len(spec.split()) > 1:
            kind, spec = "nan", spec.split(None, 1)[1].strip()
        sym, index, label = self._region(spec, None, "watch")
        if kind == "nan" and sym.dtype not in ("f16", "f32"):
            raise DebugError(f"watch nan: {label} is {sym.dtype}, which cannot hold NaN/Inf")
        cycles, rows = self._writers(sym)
        what = f"{'NaN/Inf in ' if kind == 'nan' else ''}{label} ({len(rows)} writing " \
               f"instruction{'s' * (len(rows) != 1)})"
        return dataclasses.replace(w, kind=kind, events=np.unique(cycles), writers=(cycles, rows),
                                   region=(sym, index), stream=None, what=what)

    def _writers(self, sym: DataSymbol) -> tuple[np.ndarray, np.ndarray]:
        """(commit cycle, row) of every write that may change a word of *sym*,
        sorted by cycle: from the schedule's address fields (a scatter counts
        if its 256-word reach overlaps), no simulation."""
        a, p = self.analysis, self.program
        n = sym.words_per_plane(p.config.lanes)
        rows_out = []
        for mn in ("write", "scatter"):
            op = isa.TABLE[mn].opcode
            if op not in a.fields:
                continue
            rows, f = a.fields[op]
            code = f["a"]
            h, sl, b, off = (code >> 19) & 1, (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF
            reach = 1 if mn == "write" else 256
            hit = np.zeros(len(rows), bool)
            for plane in range(sym.planes):
                east, slice_, bank, lo = isa.addr_parts(sym.plane_addr(plane))
                hit |= (h == int(east)) & (sl == slice_) & (b == bank) & (off < lo + n) & (off + reach > lo)
            rows_out.append(rows[hit])
        rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
        cycles = p.cycle[rows] + a.delay[rows]
        order = np.argsort(cycles, kind="stable")
        return cycles[order].astype(np.int64), rows[order].astype(np.int64)

    def _region_value(self, w: Watchpoint) -> np.ndarray:
        sym, index = w.region
        self._settle()
        t = read_symbol(self.engine.sram, sym, self.program.config)
        return np.array(t[index] if index is not None else t)

    def _check_watch(self, w: Watchpoint) -> str | None:
        """At one of *w*'s event cycles: the report if it triggers, else None."""
        extra = {}
        if w.kind == "stream":
            direction, idx, pos = w.stream
            try:
                value, producer = self._stream_byte(direction, idx, pos, self.cycle)
            except DebugError as e:
                value, producer, note = None, None, str(e)
            extra["value"] = value if value is not None else np.zeros(0, np.int8)
            if w.condition is not None and (value is None or not self._eval(w.condition, extra, f"watchpoint "
                                                                                              f"{w.number}")):
                return None
            w.hits += 1
            if value is None:
                return f"watchpoint {w.number}: {w.spec} at cycle {self.cycle}: {note}"
            return (f"watchpoint {w.number}: {w.spec} at cycle {self.cycle} (i8, from row {producer}: "
                    f"{self.program.text(producer)}):\n{_format(value)}")
        new, old = self._region_value(w), w.last
        if old is not None and new.tobytes() == old.tobytes():
            return None
        w.last = new
        if w.kind == "nan":
            bad_new = ~np.isfinite(new)
            if not (bad_new & (np.isfinite(old) if old is not None else True)).any():
                return None
        extra.update(value=new, old=old)
        if w.condition is not None and not self._eval(w.condition, extra, f"watchpoint {w.number}"):
            return None
        w.hits += 1
        cycles, rows = w.writers
        lo, hi = np.searchsorted(cycles, self.cycle, "left"), np.searchsorted(cycles, self.cycle, "right")
        by = ", ".join(f"row {int(r)} (cycle {int(self.program.cycle[r])}): {self.program.text(int(r))}"
                       for r in rows[lo:hi][:3])
        sym = w.region[0]
        shape = "x".join(map(str, new.shape)) or "scalar"
        head = f"watchpoint {w.number}: {'NaN/Inf in ' if w.kind == 'nan' else ''}{w.spec.split()[-1] if w.kind == 'nan' else w.spec} " \
               f"({sym.dtype}, {shape}) changed at cycle {self.cycle}, written by {by}"
        return f"{head}\nold:{_inline(old)}\nnew:{_inline(new)}"

    def info_watchpoints(self) -> str:
        if not self.watchpoints:
            return "no watchpoints"
        lines = ["Num  Enb  Hits  What"]
        for w in self.watchpoints:
            lines.append(f"{w.number:<4} {'y' if w.enabled else 'n':<4} {w.hits:<5} {w.what}"
                         + (f" if {w.condition}" if w.condition else ""))
        return "\n".join(lines)

    # ---- breakpoints ---------------------------------------------------------------------------
    def add_breakpoint(self, spec: str, condition: str | None = None) -> str:
        """``break SPEC [if COND]``: SPEC is ``@CYCLE``, ``FILE:LINE``, ``LINE``,
        a mnemonic, a queue (``w3``, ``alu0``), a unit kind (``mem``) or a label."""
        self._need()
        if condition is not None:
            _check_expr(condition)
        bp = self._resolve(Breakpoint(self._next_bp, spec, "", None, None, condition))
        self._next_bp += 1
        self.breakpoints.append(bp)
        return f"breakpoint {bp.number}: {bp.what}" + (f" if {condition}" if condition else "")

    def _rebind(self, bp: Breakpoint) -> Breakpoint:
        try:
            return self._resolve(bp)
        except DebugError:
            return dataclasses.replace(bp, rows=np.zeros(0, np.int64), what=bp.spec + " (not in this program)")

    def _resolve(self, bp: Breakpoint) -> Breakpoint:
        p, cfg, spec = self.program, self.program.config, bp.spec
        rows = None
        if spec.startswith("@") or spec.startswith("cycle="):
            c = _int(spec.split("@", 1)[1] if spec.startswith("@") else spec[6:], "cycle")
            return dataclasses.replace(bp, rows=None, cycle=c, what=f"at cycle {c}")
        m = re.fullmatch(r"(?:(.+):)?(\d+)", spec)
        if m:
            file, line = m.group(1), int(m.group(2))
            sm = p.image.srcmap
            files = [i for i, f in enumerate(sm.files) if file is None and i == 0 or file is not None and (
                f == file or Path(f).name == Path(file).name)]
            if not files:
                raise DebugError(f"break: no source file '{file}' in the program"
                                 + _hint(did_you_mean(file or "", [Path(f).name for f in sm.files])))
            srcrows = np.nonzero(np.isin(sm.file, files) & (sm.line == line))[0]
            rows = np.nonzero(np.isin(p.srcrow, srcrows))[0]
            if not len(rows):
                raise DebugError(f"break: no instruction at {spec}")
            what = f"{sm.files[files[0]]}:{line}"
        elif spec.lower() in isa.TABLE:
            rows = np.nonzero(p.op == isa.TABLE[spec.lower()].opcode)[0]
            what = f"opcode {spec.lower()}"
        elif cfg.queue_id(spec.lower()) is not None:
            rows = np.nonzero(p.queue == cfg.queue_id(spec.lower()))[0]
            what = f"queue {spec.lower()}"
        elif spec.lower() in UNIT_KINDS:
            rows = np.nonzero(self.analysis.unit == UNIT_KINDS.index(spec.lower()))[0]
            what = f"unit {spec.lower()}"
        else:
            label = next((lb for lb in p.image.labels if lb.name == spec), None)
            if label is None:
                names = [lb.name for lb in p.image.labels] + list(isa.TABLE) + list(cfg.queues)
                raise DebugError(f"break: '{spec}' is not a label, line, cycle, opcode or queue"
                                 + _hint(did_you_mean(spec, names)))
            if label.queue < 0:
                rows = np.zeros(0, np.int64)
            else:
                srcrow = p.image.srcmap_offsets()[label.queue] + label.index
                rows = np.nonzero((p.queue == label.queue) & (p.srcrow == srcrow))[0]
            what = f"label {spec}"
        return dataclasses.replace(bp, rows=np.asarray(rows, np.int64), cycle=None,
                                   what=f"{what} ({len(rows)} instruction{'s' * (len(rows) != 1)})")

    def _find_bps(self, numbers: list[int]) -> list:
        """Breakpoints and watchpoints (one numbering) by number, or all."""
        every = sorted(self.breakpoints + self.watchpoints, key=lambda b: b.number)
        if not numbers:
            return every
        out = []
        for n in numbers:
            bp = next((b for b in every if b.number == n), None)
            if bp is None:
                raise DebugError(f"no breakpoint or watchpoint number {n}")
            out.append(bp)
        return out

    def delete(self, numbers: list[int]) -> str:
        gone = self._find_bps(numbers)
        self.breakpoints = [b for b in self.breakpoints if all(b is not g for g in gone)]
        self.watchpoints = [w for w in self.watchpoints if all(w is not g for g in gone)]
        return f"deleted {_counted(gone)}"

    def enable(self, numbers: list[int], on: bool) -> str:
        bps = self._find_bps(numbers)
        for b in bps:
            b.enabled = on
        return f"{'enabled' if on else 'disabled'} {_counted(bps)}"

    def info_breakpoints(self) -> str:
        """Breakpoints and watchpoints, by number."""
        every = sorted(self.breakpoints + self.watchpoints, key=lambda b: b.number)
        if not every:
            return "no breakpoints"
        lines = ["Num  Enb  Hits  What"]
        for b in every:
            what = ("watch " if isinstance(b, Watchpoint) else "") + b.what
            lines.append(f"{b.number:<4} {'y' if b.enabled else 'n':<4} {b.hits:<5} {what}"
                         + (f" if {b.condition}" if b.condition else ""))
        return "\n".join(lines)

    def _condition(self, bp: Breakpoint) -> bool:
        return self._eval(bp.condition, {"hits": bp.hits}, f"breakpoint {bp.number}")

    def _eval(self, text: str, extra: dict | None = None, who: str = "condition") -> bool:
        """Evaluate a restricted condition now: numpy functions, cycle, row,
        queue, constants (.equ) and the data symbols it names (only those are read)."""
        tree = _check_expr(text)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names = dict(_COND_FUNCS)
        names.update({c.name: c.value for c in self.program.image.consts})
        names.update(self.equs)
        names.update(cycle=self.cycle, row=self.row)
        if self.row < len(self.program):
            names["queue"] = self.program.config.queues[int(self.program.queue[self.row])]
        names.update(extra or {})
        syms = [d for d in self.program.image.data if d.name in used and d.name not in (extra or {})]
        if syms:
            self._settle()
        for d in syms:
            names[d.name] = read_symbol(self.engine.sram, d, self.program.config)
        try:
            return bool(np.all(eval(compile(tree, "<condition>", "eval"), {"__builtins__": {}}, names)))
        except Exception as e:  # a condition is user code: any failure is one line
            raise DebugError(f"{who}: condition '{text}' failed: {e}") from None

    # ---- state ------------------------------------------------------------------------------------
    def _settle(self) -> None:
        """Commit the SRAM writes that an instruction issued now would see."""
        self.engine._commit(self.cycle)

    def sram_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(SRAM, valid mask) as seen now: for tests and ``x``."""
        self._need()
        self._settle()
        return self.engine.sram, self.engine.valid

    def examine(self, expr: str, fmt: str | None = None) -> str:
        """``print``/``x``: a data symbol (``y``, ``y[0:2, 0:8]``), an SRAM
        region (``W3.b0[0:4]``) or a stream at a position (``s3e@w2``,
        ``s3e@w2:15`` at an earlier cycle)."""
        self._need()
        expr = expr.strip()
        if not expr:
            raise DebugError("print: what? (a symbol, an address like W3.b0[0:4], or a stream like s3e@w2)")
        if fmt is not None and fmt not in isa.DTYPE_BYTES and fmt not in ("x", "u8"):
            raise DebugError(f"unknown format '/{fmt}'; use one of {', '.join(isa.DTYPE_BYTES)}, u8, x"
                             + _hint(did_you_mean(fmt, list(isa.DTYPE_BYTES))))
        m = _STREAM_RE.match(expr)
        if m:
            return self._examine_stream(m, fmt)
        m = re.fullmatch(r"s(\d+)([ew])", expr, re.IGNORECASE)
        if m:
            return self._examine_typed(int(m.group(1)), 0 if m.group(2).lower() == "e" else 1, fmt)
        if re.match(r"mxm\d+\b", expr, re.IGNORECASE) and expr.split("[")[0] not in self.symbol_names():
            return self._examine_mxm(expr, fmt)
        cfg = self.program.config
        sym, index, _ = self._region(expr, fmt, "print")
        shown = fmt if fmt in isa.DTYPE_BYTES else sym.dtype
        if shown != sym.dtype:
            sym = dataclasses.replace(sym, dtype=shown)
        self._settle()
        tensor = read_symbol(self.engine.sram, sym, cfg)
        if fmt in ("x", "u8"):
            tensor = tensor.view(np.dtype(f"u{tensor.dtype.itemsize}"))
        if index is not None:
            try:
                tensor = tensor[index]
            except IndexError as e:
                raise DebugError(f"{expr}: {e}") from None
        return f"{expr} ({sym.dtype}, {'x'.join(map(str, np.shape(tensor))) or 'scalar'}) at cycle " \
               f"{self.cycle}:\n{_format(tensor, fmt == 'x')}"

    def _region(self, expr: str, fmt: str | None, who: str):
        """A data symbol or SRAM words: (DataSymbol, numpy index or None, label)."""
        name, index = _split_subscript(expr)
        sym = next((d for d in self.program.image.data if d.name == name), None)
        cfg = self.program.config
        if sym is None:
            a = _ADDR_RE.match(name)
            if a is None:
                raise DebugError(f"no data symbol '{name}'" + _hint(did_you_mean(
                    name, [d.name for d in self.program.image.data])))
            east, slice_, bank = a.group(1).lower() == "e", int(a.group(2)), int(a.group(3))
            if slice_ >= cfg.mem_slices_per_hemisphere or bank >= cfg.banks_per_slice:
                raise DebugError(f"no SRAM slice {a.group(1).upper()}{slice_}.b{bank} on chip {cfg.name}")
            words = _slice_bounds(index[0] if index else None, cfg.words_per_bank)
            sym = DataSymbol(name.upper(), isa.addr_code(east, slice_, bank, words.start), "i8",
                             len(range(words.start, words.stop)), cfg.lanes)
            index = None
            if sym.rows == 0:
                raise DebugError(f"{name}: the word range is empty")
        return sym, index, expr

    def _stream_place(self, m: re.Match) -> tuple[int, int, int]:
        """(direction, index, position) of a ``s3e@w2`` match."""
        geo = chip.Geometry(self.program.config)
        where = m.group(3).lower()
        pos = _position(geo, where)
        if pos is None:
            raise DebugError(f"no position '{where}' (a queue like w3, e0, alu0, or vxm, sxmw, sxme, mxmw, mxme)")
        idx = int(m.group(1))
        if idx >= self.program.config.streams_per_direction:
            raise DebugError(f"no stream s{idx}: chip {self.program.config.name} has "
                             f"{self.program.config.streams_per_direction} per direction")
        return (0 if m.group(2).lower() == "e" else 1), idx, pos

    def _stream_byte(self, direction: int, idx: int, pos: int, at: int) -> tuple[np.ndarray, int]:
        """The byte plane passing *pos* on stream (direction, idx) at cycle *at*, and its producer row."""
        geo = chip.Geometry(self.program.config)
        w = self.analysis.writes
        same = (w.direction == direction) & (w.index == idx) & (
            (w.position <= pos) if direction == 0 else (w.position >= pos))
        same &= (w.cycle + np.abs(pos - w.position)) == at
        cand = np.nonzero(same)[0]
        name = f"s{idx}{'ew'[direction]}"
        if not len(cand):
            raise DebugError(f"no value passes {geo.position_name(pos)} on stream {name} at cycle {at}")
        j = int(cand[np.argmin(np.abs(pos - w.position[cand]))])  # the nearest upstream write wins
        value = self.engine.stream_value(j)
        if value is None:
            raise DebugError(f"the value on {name} at {geo.position_name(pos)}, cycle {at}, is no longer kept "
                             f"(no instruction reads it after cycle {at})")
        return value.view(np.int8), int(w.row[j])

    def _examine_stream(self, m: re.Match, fmt: str | None) -> str:
        p, cfg = self.program, self.program.config
        geo = chip.Geometry(cfg)
        direction, idx, pos = self._stream_place(m)
        at = self.cycle if m.group(4) is None else int(m.group(4))
        if at > self.cycle:
            raise DebugError(f"cycle {at} is in the future (now {self.cycle}); step there first")
        dtype = fmt if fmt in isa.DTYPE_BYTES else "i8"
        b = isa.DTYPE_BYTES[dtype]
        if idx % b or idx + b > cfg.streams_per_direction:
            raise DebugError(f"a {dtype} stream group starts at a multiple of {b} below {cfg.streams_per_direction}")
        planes, producers = [], []
        for k in range(b):
            value, row = self._stream_byte(direction, idx + k, pos, at)
            planes.append(value.view(np.uint8))
            producers.append(row)
        values = sem.from_planes(np.stack(planes)[None], dtype)[0]
        if fmt == "x":
            values = values.view(np.dtype(f"u{values.dtype.itemsize}"))
        src = p.text(producers[0])
        return (f"s{idx}{'ew'[direction]}@{geo.position_name(pos)} at cycle {at} ({dtype}, from row {producers[0]}: "
                f"{src}):\n{_format(values, fmt == 'x')}")

    def _examine_typed(self, idx: int, direction: int, fmt: str | None) -> str:
        """``print s2e``: the result of a typed instruction on that stream."""
        dtype = fmt if fmt in isa.DTYPE_BYTES else "i8"
        b = isa.DTYPE_BYTES[dtype]
        name = f"s{idx}{'ew'[direction]}"
        planes = [self.typed_streams.get((direction, idx + k)) for k in range(b)]
        if any(pl is None for pl in planes):
            raise DebugError(f"no typed instruction has written {name} here (a stream in the program needs a "
                             f"position: {name}@vxm)")
        values = sem.from_planes(np.stack(planes)[None], dtype)[0]
        if fmt == "x":
            values = values.view(np.dtype(f"u{values.dtype.itemsize}"))
        return f"{name} ({dtype}, typed) at cycle {self.cycle}:\n{_format(values, fmt == 'x')}"

    # ---- MXM planes and VXM ALUs ------------------------------------------------------------------
    def _plane(self, text: str):
        m = re.fullmatch(r"mxm(\d+)", text, re.IGNORECASE)
        n = self.program.config.mxm_planes
        if m is None or int(m.group(1)) >= n:
            raise DebugError(f"no MXM plane '{text}' (mxm0..mxm{n - 1})")
        self._settle()
        try:
            self.engine._apply_events(self.cycle)
        except SimError as e:
            raise DebugError(_one_line(e)) from None
        return int(m.group(1)), self.engine.planes[int(m.group(1))]

    def info_mxm(self, which: str = "") -> str:
        """``info mxm`` / ``info mxm0``: each plane's weights, buffer, products, accumulators."""
        self._need()
        cfg = self.program.config
        names = [which] if which else [f"mxm{i}" for i in range(cfg.mxm_planes)]
        out = []
        for name in names:
            p, st = self._plane(name)
            if st.installed and st.weights is not None:
                w = f"{st.dtype} {st.weights.shape[0]}x{st.weights.shape[1]} (install {st.version})"
            else:
                w = "zeros of any dtype (empty install)" if st.installed else "none installed"
            buf = (f"{len(st.buffer)} {st.buffer_dtype} row{'s' * (len(st.buffer) != 1)} of "
                   f"{chip.mxm_k(cfg, st.buffer_dtype)}" if st.buffer else "empty")
            ready = [int(e[0]) for e in st.pending]
            pend = (f"{len(ready)} (ready at cycle {', '.join(map(str, ready[:6]))}"
                    f"{', ...' if len(ready) > 6 else ''})" if ready else "none")
            acc = _ranges(sorted(st.acc)) if st.acc else "none"
            out.append(f"mxm{p} at cycle {self.cycle}:\n  weights     {w}\n  buffer      {buf}\n"
                       f"  products    {pend}\n  accumulator rows in use: {acc}"
                       + (f" ({len(st.acc)} of {cfg.mxm_acc_rows})" if st.acc else ""))
        return "\n".join(out)

    def _examine_mxm(self, expr: str, fmt: str | None) -> str:
        """``mxm0`` (as info mxm0), ``mxm0.weights[...]``, ``mxm0.buffer``, ``mxm0.acc[ROW]``."""
        name, index = _split_subscript(expr)
        plane, _, part = name.partition(".")
        if not part:
            if index is not None:
                raise DebugError(f"{expr}: index one of {plane}.weights, {plane}.buffer, {plane}.acc")
            return self.info_mxm(plane)
        p, st = self._plane(plane)
        if part == "weights":
            if not st.installed:
                raise DebugError(f"mxm{p} has no weights installed at cycle {self.cycle}")
            t = st.weights if st.weights is not None else np.zeros((0, self.program.config.lanes), np.int8)
        elif part == "buffer":
            if not st.buffer:
                raise DebugError(f"the weight buffer of mxm{p} is empty at cycle {self.cycle}")
            t = np.stack(st.buffer)
        elif part == "acc":
            if not st.acc:
                raise DebugError(f"no accumulator row of mxm{p} is in use at cycle {self.cycle}")
            if index is not None and isinstance(index[0], int):
                if index[0] not in st.acc:
                    raise DebugError(f"accumulator row {index[0]} of mxm{p} is not in use (in use: "
                                     f"{_ranges(sorted(st.acc))})")
                t, index = st.acc[index[0]], index[1:] or None
            else:
                rows = sorted(st.acc)
                t = np.stack([st.acc[r] for r in rows])
        else:
            raise DebugError(f"no '{part}' of an MXM plane (weights, buffer, acc)")
        t = np.asarray(t)
        dt = {np.dtype(v): k for k, v in sem.NP.items()}.get(t.dtype, t.dtype.name)
        if fmt == "x" or fmt == "u8":
            t = t.view(np.dtype(f"u{t.dtype.itemsize}"))
        elif fmt in isa.DTYPE_BYTES and np.dtype(sem.NP[fmt]) != t.dtype:
            if np.dtype(sem.NP[fmt]).itemsize != t.dtype.itemsize:
                raise DebugError(f"{name} holds {dt} values; /{fmt} needs the same element size")
            t = t.view(sem.NP[fmt])
        if index is not None:
            try:
                t = t[index]
            except IndexError as e:
                raise DebugError(f"{expr}: {e}") from None
        if fmt in isa.DTYPE_BYTES:
            dt = fmt
        return (f"{expr} ({dt}, {'x'.join(map(str, np.shape(t))) or 'scalar'}) at cycle {self.cycle}:\n"
                f"{_format(t, fmt == 'x')}")

    def info_vxm(self) -> str:
        """``info vxm``: each ALU's last issued instruction (and when its result
        is on its stream) and its next one."""
        self._need()
        p, cfg = self.program, self.program.config
        lines = [f"VXM ALUs at cycle {self.cycle}:"]
        for q, rows in enumerate(self._queue_rows):
            if cfg.unit_of_queue(q) != "vxm":
                continue
            done = int(np.searchsorted(rows, self.row, "left"))
            if done:
                r = int(rows[done - 1])
                ready = int(p.cycle[r] + self.analysis.delay[r])
                state = "result in flight" if ready > self.cycle else "idle"
                last = f"last @{int(p.cycle[r])} {p.text(r)} (result at cycle {ready}: {state})"
            else:
                last = "nothing issued yet"
            nxt = "done" if done >= len(rows) else f"@{int(p.cycle[rows[done]])} {p.text(int(rows[done]))}"
            lines.append(f"  {cfg.queues[q]:<5} {done}/{len(rows)}  {last}; next {nxt}")
        if len(lines) == 1:
            lines.append("  (no VXM instructions in the program)")
        return "\n".join(lines)

    # ---- views ---------------------------------------------------------------------------------------
    def where(self) -> str:
        """One line: the cycle and the next instruction."""
        if self.program is None:
            return "no program loaded"
        p = self.program
        if self.row >= len(p):
            return f"cycle {self.cycle}: end of program ({len(p)} instructions issued)"
        q = p.config.queues[int(p.queue[self.row])]
        when = "" if int(p.cycle[self.row]) == self.cycle else f" (issues at cycle {int(p.cycle[self.row])})"
        return (f"cycle {self.cycle}, row {self.row}/{len(p)}{when}: {q:<5} {p.text(self.row)}  "
                f"; {self._short_source(self.row)}")

    def toolbar(self) -> str:
        """The bottom toolbar's text."""
        if self.program is None:
            return " no program loaded (load FILE) "
        p = self.program
        nxt = f"{p.config.queues[int(p.queue[self.row])]} {p.text(self.row)}" if self.row < len(p) else "end"
        return f" cycle {self.cycle}/{self.analysis.end} | row {self.row}/{len(p)} | next: {nxt} | {self.stop_reason} "

    def _short_source(self, row: int) -> str:
        src = self.program.source(row)
        path, _, rest = src.partition(":")
        return f"{Path(path).name}:{rest}" if rest else src

    def list_source(self, context: int = 5) -> str:
        """Source lines around the next instruction, with its macro expansion chain."""
        self._need()
        p = self.program
        row = min(self.row, len(p) - 1)
        if row < 0:
            return "the program is empty"
        sm = p.image.srcmap
        r = int(p.srcrow[row])
        if not 0 <= r < len(sm.line):
            return f"row {row}: no source"
        file, line = sm.files[int(sm.file[r])], int(sm.line[r])
        out = [f"{file}:{line}" + ("" if self.row < len(p) else " (the last instruction)")]
        lo = max(1, line - context)
        for n in range(lo, line + context + 1):
            text = self.sources.line(file, n)
            if text is None:
                if n > line:
                    break
                continue
            out.append(f"{'=>' if n == line else '  '} {n:>4}  {text}")
        if len(out) == 1:
            out.append(f"   (source not available) {p.text(row)}")
        chain = int(sm.chain[r]) if len(sm.chain) > r else -1
        while chain >= 0:
            fr = sm.frames[chain]
            out.append(f"   in expansion of macro {fr.macro} at {sm.files[fr.file]}:{fr.line}")
            chain = fr.parent
        return "\n".join(out)

    def info_units(self) -> str:
        """Each queue with instructions: issued so far, total, and its next instruction."""
        self._need()
        p = self.program
        lines = ["queue  unit  issued/total  next"]
        for q, rows in enumerate(self._queue_rows):
            if not len(rows):
                continue
            done = int(np.searchsorted(rows, self.row, "left"))
            nxt = "done" if done >= len(rows) else f"@{int(p.cycle[rows[done]])} {p.text(int(rows[done]))}"
            name = p.config.queues[q]
            lines.append(f"{name:<6} {p.config.unit_of_queue(q):<5} {f'{done}/{len(rows)}':>12}  {nxt}")
        return "\n".join(lines)

    def stats(self) -> str:
        """Figures of the whole schedule (as ``lpuasm run --stats``) and of the run so far."""
        from ..report import table

        self._need()
        st = dataclasses.replace(self.analysis.stats, nan_inf=self.engine.nan_inf)
        issued = np.bincount(self.analysis.unit[:self.row], minlength=len(UNIT_KINDS))
        so_far = ", ".join(f"{u} {int(issued[i])}" for i, u in enumerate(UNIT_KINDS) if st.per_unit.get(u))
        lines = table(st, self.program.config, timing_only=False).splitlines()[:-1]  # no simulator speed line
        lines[-1] += " (so far)"
        lines.append(f"  issued so far       {self.row} of {len(self.program)} at cycle {self.cycle}"
                     + (f" ({so_far})" if so_far else ""))
        lines.append(f"  history             {len(self.snaps)} snapshots, {self.history_size() / 2**20:.1f} MiB")
        return "\n".join(lines)

    # ---- display, until, disasm, trace ------------------------------------------------------------
    def add_display(self, expr: str, fmt: str | None = None) -> str:
        """``display[/FMT] EXPR``: show it now and after every stop."""
        self._need()
        expr = expr.strip()
        if not expr:
            return self.show_displays() or "no displays"
        text = self.examine(expr, fmt)  # fails now, not at every stop, if it cannot be shown
        number = self._next_display
        self._next_display += 1
        self.displays.append((number, expr, fmt))
        return f"{number}: {text}"

    def undisplay(self, numbers: list[int]) -> str:
        if not numbers:
            n, self.displays = len(self.displays), []
            return f"deleted {n} display{'s' * (n != 1)}"
        for n in numbers:
            if all(d[0] != n for d in self.displays):
                raise DebugError(f"no display number {n}")
        self.displays = [d for d in self.displays if d[0] not in numbers]
        return f"deleted {len(numbers)} display{'s' * (len(numbers) != 1)}"

    def show_displays(self) -> str:
        """Every display, each as 'N: ...'; one that cannot be shown now says why."""
        out = []
        for n, expr, fmt in self.displays:
            try:
                out.append(f"{n}: {self.examine(expr, fmt)}")
            except DebugError as e:
                out.append(f"{n}: {expr}: {e}")
        return "\n".join(out)

    def info_display(self) -> str:
        if not self.displays:
            return "no displays"
        return "\n".join(f"{n}: {'/' + fmt + ' ' if fmt else ''}{expr}" for n, expr, fmt in self.displays)

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
        syms = [d for d in p.image.data if d.name in used]
        parts = [self._writers(d)[0] for d in syms]
        if used & {"cycle", "row", "queue"} or not syms:
            parts += [p.cycle[self.row:], np.array([a.end])]
        cycles = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        cycles = cycles[(cycles > self.cycle) & (cycles <= a.end)]
        self.typed_streams = {}
        for c in cycles.tolist():
            target = int(np.searchsorted(p.cycle, c, "left"))
            self._guarded(lambda: self._forward(target))
            self.cycle = c
            if self._eval(cond, None, "until"):
                return self._moved(f"until {cond}")
        self._guarded(lambda: self._forward(len(p)))
        self.cycle = a.end
        self._moved("end of program")
        raise DebugError(f"the program ended and '{cond}' never held; {self.where()}")

    def disasm(self, where: str | None = None, count: int = 10) -> str:
        """``disasm [ROW|@CYCLE|LABEL] [N]``: N rows of the issue order around
        a row (default: the next one), with cycle, queue and source."""
        self._need()
        p = self.program
        if count < 1:
            raise DebugError("disasm: the count must be at least 1")
        if where is None:
            center = self.row
        elif where.startswith("@"):
            center = int(np.searchsorted(p.cycle, _int(where[1:], "disasm"), "left"))
        elif re.fullmatch(r"\d+|0x[0-9a-fA-F]+", where):
            center = _int(where, "disasm")
            if not 0 <= center < len(p):
                raise DebugError(f"disasm: row {center} is outside the program (0..{len(p) - 1})")
        else:
            label = next((lb for lb in p.image.labels if lb.name == where), None)
            if label is None:
                raise DebugError(f"disasm: '{where}' is not a row, @CYCLE or label"
                                 + _hint(did_you_mean(where, self.label_names())))
            srcrow = p.image.srcmap_offsets().get(label.queue, -1) + label.index if label.queue >= 0 else -1
            rows = np.nonzero((p.queue == label.queue) & (p.srcrow == srcrow))[0]
            if not len(rows):
                raise DebugError(f"disasm: label {where} marks no instruction")
            center = int(rows[0])
        lo = max(0, min(center - count // 2, len(p) - count))
        bp_rows = set()
        for b in self.breakpoints:
            if b.enabled and b.rows is not None:
                bp_rows.update(b.rows[(b.rows >= lo) & (b.rows < lo + count)].tolist())
        lines = []
        for r in range(lo, min(lo + count, len(p))):
            mark = "=>" if r == self.row else "  "
            mark += "b" if r in bp_rows else " "
            q = p.config.queues[int(p.queue[r])]
            lines.append(f"{mark} {r:>6}  @{int(p.cycle[r]):<6} {q:<5} {p.text(r)}  ; {self._short_source(r)}")
        if self.row >= len(p) and lo + count >= len(p):
            lines.append(f"=>  {len(p):>6}  @{int(self.analysis.end):<6} (end of program)")
        return "\n".join(lines) if lines else "the program is empty"

    def trace(self, path: str) -> str:
        """``trace FILE``: a Perfetto / Chrome JSON trace of the rows issued so far."""
        import json

        from ..report import trace

        self._need()
        path = path.strip()
        if not path:
            raise DebugError("trace: which file? (e.g. trace run.json, then open it in ui.perfetto.dev)")
        data = trace(self.program, limit=self.row)
        try:
            with open(path, "w") as f:
                json.dump(data, f)
        except OSError as e:
            raise DebugError(f"cannot write {path}: {e.strerror}") from None
        return f"wrote {path}: {self.row} instruction{'s' * (self.row != 1)} issued up to cycle {self.cycle}"

    # ---- completion data -----------------------------------------------------------------------------
    def symbol_names(self) -> list[str]:
        return [d.name for d in self.program.image.data] if self.program else []

    def label_names(self) -> list[str]:
        return [lb.name for lb in self.program.image.labels] if self.program else []

    def queue_names(self) -> list[str]:
        return list(self.program.config.queues) if self.program else []


def _inline(values) -> str:
    """A tensor on the rest of a line, or from the next line if it needs several."""
    if values is None:
        return " (not seen)"
    text = _format(values)
    return (" " if "\n" not in text else "\n") + text


def _counted(items) -> str:
    nb = sum(not isinstance(i, Watchpoint) for i in items)
    nw = len(items) - nb
    parts = [f"{nb} breakpoint{'s' * (nb != 1)}"] if nb or not nw else []
    if nw:
        parts.append(f"{nw} watchpoint{'s' * (nw != 1)}")
    return " and ".join(parts)


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ", ".join(out)


# ---- helpers ------------------------------------------------------------------------------------------
def _one_line(e: Exception) -> str:
    if isinstance(e, LpuError) and e.diagnostics:
        d = e.diagnostics[0]
        where = f"{d.span.file}:{d.span.line}: " if getattr(d, "span", None) is not None else ""
        return where + d.message
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _hint(h: str | None) -> str:
    return f"; {h}" if h else ""


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise DebugError(f"{what}: '{text}' is not a number") from None


def _blamed_row(p: Program, a: Analysis, e: SimError) -> int:
    """The first row that must not issue, for a violation found at load."""
    rows = np.arange(len(p))
    if e.queue is not None and e.cycle is not None:
        q = p.config.queue_id(e.queue)
        at = rows[(p.queue == q) & (p.cycle <= e.cycle)]
        best = int(at[-1]) if len(at) else len(p)
    else:
        best = len(p)
    bad = a.reads.row[a.producer < 0]
    if len(bad):
        best = min(best, int(bad.min()))
    return best


def _check_expr(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise DebugError(f"cannot parse the condition '{text}'") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES) or (isinstance(node, ast.Name) and node.id.startswith("_")):
            raise DebugError(f"condition '{text}': only arithmetic, comparisons, and/or/not, indexing and "
                             f"{', '.join(_COND_FUNCS)} are allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _COND_FUNCS):
            raise DebugError(f"condition '{text}': only {', '.join(_COND_FUNCS)} may be called")
    return tree


def _split_subscript(expr: str):
    """``name[...]`` -> (name, numpy index or None); only integers and slices."""
    m = re.fullmatch(r"([A-Za-z_][\w.]*)\s*(?:\[(.*)\])?", expr)
    if not m:
        raise DebugError(f"cannot read '{expr}' (write a symbol, optionally with [rows, cols] like y[0:2, 0:8])")
    if m.group(2) is None:
        return m.group(1), None
    parts = [s.strip() for s in m.group(2).split(",")]
    index = []
    for part in parts:
        if ":" in part:
            bits = part.split(":")
            if len(bits) > 3:
                raise DebugError(f"bad slice '{part}'")
            vals = [None if not b.strip() else _int(b.strip(), "index") for b in bits]
            index.append(slice(*vals))
        else:
            index.append(_int(part, "index"))
    return m.group(1), tuple(index)


def _slice_bounds(ix, n: int) -> range:
    if ix is None:
        return range(0, 1)
    if isinstance(ix, int):
        if not 0 <= ix < n:
            raise DebugError(f"word {ix} is outside the bank (0..{n - 1})")
        return range(ix, ix + 1)
    r = range(n)[ix]
    if r.step != 1:
        raise DebugError("an SRAM word range takes no step")
    return r


def _position(geo: chip.Geometry, where: str) -> int | None:
    fixed = {"vxm": geo.vxm, "sxmw": geo.sxm(False), "sxme": geo.sxm(True), "mxmw": 0, "mxme": 2 * geo.n + 4}
    if where in fixed:
        return fixed[where]
    q = geo.config.queue_id(where)
    return geo.queue_position(q) if q is not None else None


def _format(values, hexa: bool = False) -> str:
    opts = dict(threshold=4000, linewidth=110)
    if hexa:
        width = np.asarray(values).dtype.itemsize * 2
        opts["formatter"] = {"int": lambda v: f"0x{int(v):0{width}x}"}
    with np.printoptions(**opts):
        return str(np.asarray(values))
