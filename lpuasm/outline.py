"""A program seen as its outermost calls: which source file and which
top-level macro call every instruction comes from, from the image's source
map alone (macro names from its frames; the files need not be on disk).

A built model (``lpuasm model build``, docs/model.md) includes one file per
transformer layer, ``layer<i>.lasm``, each a dozen stdlib macro calls, so the
outermost calls per file are its layers' building blocks.  Used by the
debugger (``info layers``, ``info calls``, ``break layer N``: lpuasm/repl/layers.py)
and by ``lpuasm model run`` (per-layer cycles, ``--profile``).

An instruction's *outermost call* is the root frame of its macro-expansion
chain (file, line, column and macro of the call), or, for an instruction
written outside any macro, the instruction itself.  Rows are the program's
issued instructions, in global issue order, so "first" is "first to issue".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import isa

LAYER_RE = re.compile(r"layer(\d+)\.lasm$")


@dataclass
class Call:
    """One outermost call (or one instruction written outside any macro)."""

    file: int        # index into the source map's files (-1: no source)
    line: int
    col: int
    name: str        # the macro's name, or the instruction's mnemonic
    macro: bool
    count: int       # instructions it produced
    first_row: int   # its first row in issue order
    first: int       # first and last issue cycle
    last: int


@dataclass
class Outline:
    """The outermost calls of a program, and its files as "layers"."""

    call_of: np.ndarray          # per program row: index into calls
    calls: list[Call]            # sorted by (file, line, col)
    files: list[int]             # files holding outermost calls, by last issue cycle (then first, then index)
    layer: dict[int, int]        # file -> N for files named layer<N>.lasm
    names: dict[int, str]        # file -> its short name (the base name unless two files share it)


def frame_roots(frames) -> np.ndarray:
    """The outermost frame of every frame of a source map."""
    root = np.full(len(frames), -1, np.int64)
    for k in range(len(frames)):
        path, j = [], k
        while root[j] < 0 and frames[j].parent >= 0:
            path.append(j)
            j = frames[j].parent
        r = root[j] if root[j] >= 0 else j
        root[j] = r
        for i in path:
            root[i] = r
    return root


def build_outline(program) -> Outline:
    p = program
    sm = p.image.srcmap
    n = len(p)
    nsrc = len(sm.line)
    sr = np.asarray(p.srcrow, np.int64)
    has = (sr >= 0) & (sr < nsrc)
    srs = np.where(has, sr, 0)
    if nsrc:
        file = np.where(has, sm.file[srs].astype(np.int64), -1)
        line = np.where(has, sm.line[srs].astype(np.int64), 0)
        col = np.where(has, sm.col[srs].astype(np.int64), 0)
        chain = np.where(has, sm.chain[srs].astype(np.int64), -1) if len(sm.chain) == nsrc else np.full(n, -1)
    else:
        file, line, col, chain = (np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
                                  np.full(n, -1, np.int64))
    if sm.frames:
        root = frame_roots(sm.frames)
        ff = np.array([f.file for f in sm.frames], np.int64)
        fl = np.array([f.line for f in sm.frames], np.int64)
        fc = np.array([f.col for f in sm.frames], np.int64)
        inm = chain >= 0
        r = root[np.maximum(chain, 0)]
        file = np.where(inm, ff[r], file)
        line = np.where(inm, fl[r], line)
        col = np.where(inm, fc[r], col)
    else:
        r = np.zeros(n, np.int64)
        inm = np.zeros(n, bool)
    key = ((file + 1) << 44) | (line << 16) | col
    keys, first_rows, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    last = np.full(len(keys), -1, np.int64)
    np.maximum.at(last, inverse, p.cycle)
    calls = []
    for c, fr in enumerate(first_rows.tolist()):
        if inm[fr]:
            name, macro = sm.frames[int(r[fr])].macro, True
        else:
            name, macro = isa.BY_OPCODE[int(p.op[fr])].mnemonic, False
        calls.append(Call(int(file[fr]), int(line[fr]), int(col[fr]), name, macro, int(counts[c]), fr,
                          int(p.cycle[fr]), int(last[c])))
    by_file: dict[int, list[Call]] = {}
    for c in calls:
        by_file.setdefault(c.file, []).append(c)
    files = sorted(by_file, key=lambda f: (max(c.last for c in by_file[f]), min(c.first for c in by_file[f]), f))
    layer, names = {}, {}
    base = [Path(f).name for f in sm.files]
    for f in files:
        if f < 0:
            names[f] = "(no source)"
            continue
        names[f] = base[f] if base.count(base[f]) == 1 else sm.files[f]
        m = LAYER_RE.search(base[f])
        if m:
            layer[f] = int(m.group(1))
    return Outline(inverse.reshape(-1).astype(np.int64), calls, files, layer, names)
