"""Placing a model program's tensors in SRAM: a small allocator over slice groups.

A tensor of a b-byte dtype occupies b consecutive slices of one hemisphere
(its byte planes, docs/language.md "SRAM tensor layout"), the same words of
one bank in each.  The builder says, per tensor, which hemisphere and which
slice *pool* it goes to (weights near the MXM edge, activations near the VXM)
and which other tensors' slices it must avoid (the stdlib macros' layout
rules: "w and x in different slices"); the allocator picks the least-used
slice group and bank that satisfies that, bump-allocating words.  Nothing is
ever freed: a program's tensors all live for the whole program, so no two
instructions that the scheduler may reorder share words by accident.

``alias=True`` (timing-only builds of models larger than one chip): a tensor
that does not fit is replaced by an earlier one of the same pool and dtype and
at least its size (its *twin*: the program uses the twin's symbol), so the
program moves the same bytes through slices and banks of the same kind as a
chip with more SRAM would; the cycle count is that of such a layout, the
values are meaningless.  docs/model.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import ChipConfig
from ..diagnostics import LpuError

DTYPE_BYTES = {"i8": 1, "i16": 2, "f16": 2, "i32": 4, "f32": 4}


@dataclass
class Placed:
    name: str
    dtype: str
    words: int          # words per byte plane
    hemi: str           # "W" or "E"
    slice: int          # first slice (byte plane 0)
    bank: int
    offset: int
    data: np.ndarray | None = None   # initial values (rows x cols) or None for .space
    aliased: bool = False            # timing-only: stands in as *twin* (no words of its own)
    pool: str = ""
    twin: str = ""

    @property
    def slices(self) -> range:
        return range(self.slice, self.slice + DTYPE_BYTES[self.dtype])

    def address(self) -> str:
        return f"{self.hemi}{self.slice}.b{self.bank}[{self.offset}]"


@dataclass
class Pool:
    """Slices ``first .. first+count-1`` of one hemisphere, cut into groups of
    ``group`` slices (4: any f32 or f16 tensor fits one group's first slices)."""

    hemi: str
    first: int
    count: int
    group: int = 4


@dataclass
class SramPlan:
    config: ChipConfig
    pools: dict[str, Pool]
    alias: bool = False
    tensors: dict[str, Placed] = field(default_factory=dict)
    _used: dict = field(default_factory=dict)   # (hemi, slice, bank) -> next free word
    _cursor: dict = field(default_factory=dict)  # pool -> next group to try

    def place(self, name: str, dtype: str, words: int, pool: str, avoid=(), data: np.ndarray | None = None,
              sub: int | None = None, near: str | None = None) -> Placed:
        """Place *name* (*words* words per byte plane) in *pool*, in slices none
        of the tensors named in *avoid* use.  *sub* picks the slice offset
        inside a group (default: any that fits); *near* places it in the same
        slices as that tensor (other words)."""
        if name in self.tensors:
            raise LpuError(f"model builder: tensor '{name}' placed twice")
        nbytes = DTYPE_BYTES[dtype]
        p = self.pools[pool]
        banned = set()
        for other in avoid:
            t = self.tensors[other]
            if t.hemi == p.hemi:
                banned.update(t.slices)
        cap = self.config.words_per_bank
        best = None
        subs = [sub] if sub is not None else list(range(0, p.group - nbytes + 1, nbytes))
        starts = list(range(p.first, p.first + p.count - nbytes + 1, p.group))
        if near is not None:
            starts, subs = [self.tensors[near].slice], [0]
        else:  # round robin: consecutive tensors in different slices, so that the
            # queue order of one tensor's slices rarely waits on another's
            k = self._cursor.get(pool, 0) % len(starts)
            starts = starts[k:] + starts[:k]
        for i, g0 in enumerate(starts):
            for s in subs:
                first = g0 + s
                sl = range(first, first + nbytes)
                if sl[-1] >= p.first + p.count or banned.intersection(sl):
                    continue
                for bank in range(2):
                    off = max(self._used.get((p.hemi, x, bank), 0) for x in sl)
                    if off + words <= cap and (best is None or off < best[3]):
                        best = (i, first, bank, off)
                if best is not None:
                    break
            if best is not None:
                break
        if best is not None and near is None:
            self._cursor[pool] = self._cursor.get(pool, 0) + best[0] + 1
        if best is None:
            if not self.alias:
                need = words * nbytes * self.config.lanes
                raise LpuError(f"model does not fit: tensor '{name}' ({need:,} bytes, {words:,} words per slice) "
                               f"finds no room in {p.hemi}{p.first}..{p.hemi}{p.first + p.count - 1} "
                               f"({cap:,} words per bank); use --timing-only to time it anyway")
            # timing-only: stand in for it with an earlier tensor of the same pool, dtype and
            # at least its size (the program then moves the same bytes through that
            # tensor's slices and bank; values are meaningless, cycles are the layout's)
            twin = next((t for t in reversed(self.tensors.values())
                         if t.pool == pool and t.dtype == dtype and t.words >= words and not t.aliased
                         and not banned.intersection(t.slices)), None)
            if twin is None:
                raise LpuError(f"model does not fit even for timing: no room and no stand-in for '{name}' "
                               f"({words:,} words of {dtype}) in pool {pool}")
            t = Placed(name, dtype, words, twin.hemi, twin.slice, twin.bank, twin.offset, None, True, pool,
                       twin.name)
            self.tensors[name] = t
            return t
        _, first, bank, off = best
        for x in range(first, first + nbytes):
            self._used[(p.hemi, x, bank)] = off + words
        t = Placed(name, dtype, words, p.hemi, first, bank, off, data, False, pool)
        self.tensors[name] = t
        return t

    def used_bytes(self) -> int:
        return sum(t.words * DTYPE_BYTES[t.dtype] * self.config.lanes for t in self.tensors.values()
                   if not t.aliased)
