"""The debugger's view of a program as its outermost calls (the analysis:
lpuasm/outline.py): which source file and which top-level macro call every
instruction comes from, known from the image's source map alone.

A built model (``lpuasm model build``, docs/model.md) includes one file per
transformer layer, ``layer<i>.lasm``, each a dozen stdlib macro calls, so its
outermost calls per file are its layers' building blocks: ``info layers`` is
a per-layer cycle profile, ``info calls`` one of a layer's calls, and the
breakpoints ``break layer N`` and ``break FILE:LINE`` on a call site stop at
the first instruction a layer or a call issues.

An instruction's *outermost call* is the root frame of its macro-expansion
chain (file, line, column and macro of the call), or, for an instruction
written outside any macro, the instruction itself.  Rows are the program's
issued instructions, in global issue order, so "first" is "first to issue".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..diagnostics import did_you_mean
from ..outline import Call, Outline, build_outline
from .errors import DebugError, _hint

_SOURCE_WIDTH = 60
_MAX_CALLS = 200  # rows of info calls (a file without macros has one call per instruction line)


def _n(k: int, what: str) -> str:
    return f"{k} {what}{'s' * (k != 1)}"


class Layers:
    """Debugger mixin: ``info layers``, ``info calls`` and the rows of the
    breakpoints ``break layer N`` and ``break FILE:LINE`` on a call site."""

    def outline(self) -> Outline:
        self._need()
        if not len(self.program):
            raise DebugError("the program is empty")
        cached = getattr(self, "_outline", None)
        if cached is None or cached[0] is not self.program:
            self._outline = (self.program, build_outline(self.program))
        return self._outline[1]

    # ---- summaries -----------------------------------------------------------------------------
    def _file_rows(self, o: Outline) -> list[dict]:
        """Per file (table order): calls, instructions, issued, first, last, adds."""
        issued = np.bincount(o.call_of[:self.row], minlength=len(o.calls))
        out, frontier = [], -1
        for f in o.files:
            idx = [i for i, c in enumerate(o.calls) if c.file == f]
            first = min(o.calls[i].first for i in idx)
            last = max(o.calls[i].last for i in idx)
            out.append(dict(file=f, calls=idx, count=sum(o.calls[i].count for i in idx),
                            issued=int(sum(int(issued[i]) for i in idx)), first=first, last=last,
                            base=frontier, adds=max(0, last - frontier)))
            frontier = max(frontier, last)
        return out

    def _layer_name(self, o: Outline, f: int) -> str:
        return f"layer {o.layer[f]} ({o.names[f]})" if f in o.layer else o.names[f]

    def _call_name(self, c: Call) -> str:
        sm = self.program.image.srcmap
        where = f"{Path(sm.files[c.file]).name}:{c.line}" if c.file >= 0 else "(no source)"
        return f"{where} {c.name}"

    def _now(self, o: Outline) -> str:
        p = self.program
        if self.row >= len(p):
            return f"end of program: all {len(p)} instructions issued"
        c = o.calls[int(o.call_of[self.row])]
        done = int(np.count_nonzero(o.call_of[:self.row] == o.call_of[self.row]))
        return (f"next: row {self.row} (cycle {int(p.cycle[self.row])}) in {self._layer_name(o, c.file)}, "
                f"call {self._call_name(c)} ({done} of its {c.count} instructions issued)")

    def info_layers(self) -> str:
        """``info layers``: per file of outermost calls (per layer of a built model)."""
        o = self.outline()
        rows = self._file_rows(o)
        here = o.calls[int(o.call_of[self.row])].file if self.row < len(self.program) else None
        width = max(4, *(len(o.names[r["file"]]) for r in rows))
        lines = [f"layers at cycle {self.cycle}: each source file's outermost calls (adds: cycles its last issue "
                 f"adds to those above)",
                 f"   layer  {'file':<{width}}  calls  instructions  issued   first    last    adds"]
        for r in rows:
            f = r["file"]
            mark = "=>" if f == here else "  "
            lay = str(o.layer[f]) if f in o.layer else "-"
            lines.append(f"{mark} {lay:<5}  {o.names[f]:<{width}}  {len(r['calls']):>5}  {r['count']:>12}  "
                         f"{r['issued']:>6}  {r['first']:>6}  {r['last']:>6}  {r['adds']:>6}")
        lines.append(self._now(o))
        return "\n".join(lines)

    def _pick_file(self, o: Outline, arg: str, who: str) -> int:
        """A file of outermost calls: a layer number (``1``, ``layer 1``) or a file name."""
        arg = arg.strip()
        m = re.fullmatch(r"(?:layer\s*)?(\d+)", arg)
        if m:
            want = int(m.group(1))
            f = next((f for f, n in o.layer.items() if n == want), None)
            if f is None:
                have = sorted(o.layer.values())
                raise DebugError(f"{who}: no layer {want} " + (
                    f"(layers {have[0]}..{have[-1]})" if have else
                    "(no source file of the program is named layer<N>.lasm; give a file: "
                    + ", ".join(o.names[f] for f in o.files) + ")"))
            return f
        sm = self.program.image.srcmap
        for f in o.files:
            if f >= 0 and (sm.files[f] == arg or Path(sm.files[f]).name == Path(arg).name):
                return f
        raise DebugError(f"{who}: no layer or file '{arg}' with outermost calls"
                         + _hint(did_you_mean(Path(arg).name, [o.names[f] for f in o.files])))

    def info_calls(self, arg: str = "") -> str:
        """``info calls [LAYER]``: per outermost call of a layer (default: the
        layer of the next instruction)."""
        o = self.outline()
        p = self.program
        if arg.strip():
            f = self._pick_file(o, arg, "info calls")
        else:
            f = o.calls[int(o.call_of[min(self.row, len(p) - 1)])].file
        rows = {r["file"]: r for r in self._file_rows(o)}
        r = rows[f]
        calls = sorted((o.calls[i] for i in r["calls"]), key=lambda c: (c.line, c.col))
        issued = np.bincount(o.call_of[:self.row], minlength=len(o.calls))
        index = {id(c): i for i, c in enumerate(o.calls)}
        here = int(o.call_of[self.row]) if self.row < len(p) else -1
        sm = p.image.srcmap
        texts = [self.sources.line(sm.files[c.file], c.line) if c.file >= 0 else None for c in calls[:_MAX_CALLS]]
        width = max(4, *(len(c.name) for c in calls))
        head = (f"calls of {self._layer_name(o, f)} at cycle {self.cycle}: {_n(len(calls), 'call')}, "
                f"{_n(r['count'], 'instruction')}, issue cycles {r['first']}..{r['last']}, adds {r['adds']}")
        lines = [head, f"   line  {'call':<{width}}  instructions  issued   first    last    span    adds"
                 + ("  source" if any(t is not None for t in texts) else "")]
        frontier = r["base"]
        for k, (c, text) in enumerate(zip(calls, texts + [None] * (len(calls) - len(texts)))):
            if k == _MAX_CALLS:
                lines.append(f"   ... and {len(calls) - k} more calls (the first {k} in source order are shown)")
                break
            i = index[id(c)]
            adds = max(0, c.last - frontier)
            frontier = max(frontier, c.last)
            mark = "=>" if i == here else "  "
            src = ""
            if text is not None:
                text = text.strip()
                src = "  " + (text if len(text) <= _SOURCE_WIDTH else text[:_SOURCE_WIDTH - 3] + "...")
            lines.append(f"{mark} {c.line:<4}  {c.name:<{width}}  {c.count:>12}  {int(issued[i]):>6}  {c.first:>6}  "
                         f"{c.last:>6}  {c.last - c.first + 1:>6}  {adds:>6}{src}".rstrip())
        lines.append(self._now(o))
        return "\n".join(lines)

    # ---- breakpoints -------------------------------------------------------------------------------
    def layer_rows(self, arg: str) -> tuple[np.ndarray, str]:
        """``break layer N``: the layer's first instruction in issue order."""
        o = self.outline()
        f = self._pick_file(o, arg, "break")
        calls = [c for c in o.calls if c.file == f]
        first = min(calls, key=lambda c: c.first_row)
        count = sum(c.count for c in calls)
        row = first.first_row
        return (np.array([row], np.int64),
                f"{self._layer_name(o, f)}: its first instruction of {count} (row {row}, cycle "
                f"{int(self.program.cycle[row])}, call {self._call_name(first)})")

    def call_site_rows(self, files: list[int], line: int) -> tuple[np.ndarray, str] | None:
        """``break FILE:LINE`` on a macro call: the first instruction (in issue
        order) of each expansion of the call at that line; None if no macro is
        called there."""
        p = self.program
        sm = p.image.srcmap
        hit = [k for k, fr in enumerate(sm.frames) if fr.file in files and fr.line == line]
        if not hit:
            return None
        # the innermost frame of each chain that is a call at this line
        owner = np.full(len(sm.frames) + 1, -1, np.int64)  # index chain + 1; -1: none
        hitset = set(hit)
        for k in range(len(sm.frames)):
            j = k
            while j >= 0 and j not in hitset:
                j = sm.frames[j].parent
            owner[k + 1] = j
        sr = np.asarray(p.srcrow, np.int64)
        ok = (sr >= 0) & (sr < len(sm.chain))
        chain = np.where(ok, sm.chain[np.where(ok, sr, 0)].astype(np.int64), -1) if len(sm.chain) else np.full(
            len(p), -1)
        own = owner[chain + 1]
        rows = np.nonzero(own >= 0)[0]
        if not len(rows):
            return None
        _, first = np.unique(own[rows], return_index=True)
        starts = np.sort(rows[first])
        macro = sm.frames[hit[0]].macro
        where = f"{sm.files[sm.frames[hit[0]].file]}:{line}"
        if len(starts) == 1:
            r = int(starts[0])
            what = (f"{where} (call of {macro}: its first instruction of {len(rows)}, row {r} at cycle "
                    f"{int(p.cycle[r])})")
        else:
            what = (f"{where} (call of {macro}, {len(starts)} expansions: the first instruction of each, "
                    f"{len(rows)} instructions in all)")
        return starts.astype(np.int64), what
