"""Breakpoints and watchpoints: parsing their specs into the rows or cycles
where they may stop (known from the schedule, without simulating), checking
them when the position reaches one, and listing, enabling and deleting them.
Breakpoints and watchpoints share one numbering."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import isa
from ..diagnostics import did_you_mean
from ..image import DataSymbol
from ..sim import UNIT_KINDS, read_symbol
from .conditions import _check_expr
from .errors import DebugError, _hint, _int
from .notation import _STREAM_RE, _format, _inline


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


class Stops:
    """Debugger mixin: the breakpoint and watchpoint commands."""

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
        cycles, rows = w.writers
        lo, hi = np.searchsorted(cycles, self.cycle, "left"), np.searchsorted(cycles, self.cycle, "right")
        by = ", ".join(f"row {int(r)} (cycle {int(self.program.cycle[r])}): {self.program.text(int(r))}"
                       for r in rows[lo:hi][:3])
        return self._region_change(w, w.last, f"written by {by}")

    def _region_change(self, w: Watchpoint, old: np.ndarray | None, by: str) -> str | None:
        """The report of SRAM watchpoint *w* if its words changed from *old*
        (and it triggers: a new NaN/Inf for 'nan', its condition), else None."""
        new = self._region_value(w)
        if old is not None and new.tobytes() == old.tobytes():
            return None
        w.last = new
        if w.kind == "nan":
            bad_new = ~np.isfinite(new)
            if not (bad_new & (np.isfinite(old) if old is not None else True)).any():
                return None
        if w.condition is not None and not self._eval(w.condition, {"value": new, "old": old},
                                                      f"watchpoint {w.number}"):
            return None
        w.hits += 1
        sym = w.region[0]
        shape = "x".join(map(str, new.shape)) or "scalar"
        head = f"watchpoint {w.number}: {'NaN/Inf in ' if w.kind == 'nan' else ''}{w.spec.split()[-1] if w.kind == 'nan' else w.spec} " \
               f"({sym.dtype}, {shape}) changed at cycle {self.cycle}, {by}"
        return f"{head}\nold:{_inline(old)}\nnew:{_inline(new)}"

    def _watched_values(self) -> list:
        """(watchpoint, value now) of every enabled SRAM watchpoint, before a typed change."""
        return [(w, self._region_value(w)) for w in self.watchpoints if w.enabled and w.region is not None]

    def _typed_watch_reports(self, before: list, what: str) -> str:
        """Reports of the SRAM watchpoints that a change typed at the prompt
        (*what*) triggered: the debugger does not move, the change is shown."""
        out = []
        for w, old in before:
            text = self._region_change(w, old, f"written at the prompt by {what}")
            if text is not None:
                out.append(text)
        return "\n".join(out)

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
        """``break SPEC [if COND]``: SPEC is ``@CYCLE``, ``*PC`` or ``pc PC`` (a
        program row: the index in global issue order), ``FILE:LINE``, ``LINE``,
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
        m = re.fullmatch(r"(?:\*|pc\s+|pc=)\s*(\S+)", spec, re.IGNORECASE)
        if m:  # a pc: a program row, the index in global issue order (as disasm and where show it)
            r = _int(m.group(1), "break pc")
            if not 0 <= r < len(p):
                raise DebugError(f"break: pc {r} is outside the program (rows 0..{len(p) - 1} in issue order)")
            return dataclasses.replace(bp, rows=np.array([r], np.int64), cycle=None,
                                       what=f"pc {r} (cycle {int(p.cycle[r])}, "
                                            f"{cfg.queues[int(p.queue[r])]}: {p.text(r)})")
        m = re.fullmatch(r"layer\s+(\S+)", spec, re.IGNORECASE)
        if m:  # a layer of a built model (layer<N>.lasm), or any file of outermost calls
            rows, what = self.layer_rows(m.group(1))
            return dataclasses.replace(bp, rows=rows, cycle=None, what=what)
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
            if not len(rows):  # a macro call: the first instruction of each of its expansions
                site = self.call_site_rows(files, line)
                if site is None:
                    raise DebugError(f"break: no instruction at {spec}")
                return dataclasses.replace(bp, rows=site[0], cycle=None, what=site[1])
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
                raise DebugError(f"break: '{spec}' is not a label, line, layer, cycle, opcode or queue"
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


def _counted(items) -> str:
    nb = sum(not isinstance(i, Watchpoint) for i in items)
    nw = len(items) - nb
    parts = [f"{nb} breakpoint{'s' * (nb != 1)}"] if nb or not nw else []
    if nw:
        parts.append(f"{nw} watchpoint{'s' * (nw != 1)}")
    return " and ".join(parts)
