"""Views of the program around the current position: where it stands, the
toolbar, the source listing, each queue's progress, the run's figures, the
expressions shown after every stop (``display``), the disassembly and a
Perfetto trace of the rows issued so far."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from ..diagnostics import did_you_mean
from ..sim import UNIT_KINDS
from .errors import DebugError, _hint, _int


class PositionViews:
    """Debugger mixin: the commands that show the program and the position."""

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

    def info_units(self, window: int = 64) -> str:
        """Each queue with instructions: issued so far / total, its busy and
        idle cycles so far (a cycle is busy when the queue issues in it, as in
        ``stats``), its utilisation up to now, a sparkline of the last *window*
        cycles, and its next instruction."""
        self._need()
        if window < 1:
            raise DebugError("info units: the window must be at least 1 cycle")
        p, now = self.program, self.cycle
        lo = max(0, now - window)
        width = len(_sparkline(np.zeros(0, np.int64), lo, now, min(now - lo, _SPARK_WIDTH)))
        lines = [f"units at cycle {now}: busy = cycles with an issue; "
                 f"timeline of cycles {lo}..{max(now - 1, lo)} ({_per_char(now - lo, width)}; "
                 f"{_SPARK[-1]} all busy, {_IDLE} idle)",
                 "queue  unit  issued/total  busy  idle   util  timeline" + " " * max(0, width - 8) + "  next"]
        for q, rows in enumerate(self._queue_rows):
            if not len(rows):
                continue
            done = int(np.searchsorted(rows, self.row, "left"))
            busy_at = np.unique(p.cycle[rows[:done]])
            busy_at = busy_at[busy_at < now]  # issued before this cycle (rows issued at "now" are not done)
            busy = len(busy_at)
            idle = now - busy
            util = f"{100 * busy / now:5.1f}%" if now else "    -"
            spark = _sparkline(busy_at, lo, now, width)
            nxt = "done" if done >= len(rows) else f"@{int(p.cycle[rows[done]])} {p.text(int(rows[done]))}"
            name = p.config.queues[q]
            lines.append(f"{name:<6} {p.config.unit_of_queue(q):<5} {f'{done}/{len(rows)}':>12} {busy:>5} "
                         f"{idle:>5} {util}  {spark:<{max(width, 8)}}  {nxt}")
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

    # ---- display, disasm, trace ----------------------------------------------------------------------
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


_SPARK = "▁▂▃▄▅▆▇█"
_IDLE = "·"
_SPARK_WIDTH = 32


def _per_char(span: int, width: int) -> str:
    if width == 0:
        return "none yet"
    per = -(-span // width)
    return "1 cycle a mark" if per == 1 else f"{per} cycles a mark"


def _sparkline(busy_at: np.ndarray, lo: int, hi: int, width: int) -> str:
    """One mark per bucket of cycles lo..hi-1: idle, or eighths of the bucket busy."""
    if width == 0:
        return ""
    per = -(-(hi - lo) // width)
    edges = np.arange(lo, hi, per)
    counts = np.histogram(busy_at, bins=np.append(edges, hi))[0] if len(busy_at) else np.zeros(len(edges), int)
    sizes = np.diff(np.append(edges, hi))
    out = []
    for c, n in zip(counts.tolist(), sizes.tolist()):
        out.append(_IDLE if c == 0 else _SPARK[max(0, -(-c * 8 // n) - 1)])
    return "".join(out)
