"""A loaded program: an image's instruction streams decoded once into flat columns.

NOP words disappear into issue cycles and every ``repeat`` is expanded into the
instructions it issues (its SRAM address advanced by the stride), so each row is
one issued instruction.  Rows are in issue order (cycle, then queue id).  This
is what the timing analysis, both interpreters and the REPL consume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import isa
from .config import ChipConfig
from .diagnostics import LpuError
from .image import Image
from .ir import field_array

_ADDR_LO = {row.opcode: next(f.lo for f in row.fields if f.name == "a")
            for row in isa.TABLE.values() if any(op.kind == "addr" for op in row.operands)}
# per opcode: does the row have an SRAM address field, and its lowest bit
_HAS_ADDR = np.zeros(256, dtype=bool)
_ADDR_LO_OF = np.zeros(256, dtype=np.uint64)
for _op, _lo in _ADDR_LO.items():
    _HAS_ADDR[_op], _ADDR_LO_OF[_op] = True, _lo
_IFETCH = isa.TABLE["ifetch"].opcode
_MEM_OPS = [row.opcode for row in isa.TABLE.values() if row.unit == "mem"]


@dataclass
class Program:
    """Issued instructions of an image, one row each, in issue order."""

    config: ChipConfig
    image: Image
    queue: np.ndarray   # int32
    cycle: np.ndarray   # int64
    op: np.ndarray      # uint8
    word: np.ndarray    # uint64
    srcrow: np.ndarray  # int64: source-map row of the instruction (the base one for a repetition)
    rep: np.ndarray     # int32: 0, or k for the k-th repetition issued by a repeat

    def __len__(self) -> int:
        return len(self.op)

    def source(self, i: int) -> str:
        """``file:line:col`` of row *i* (with the repetition, if one)."""
        sm = self.image.srcmap
        r = int(self.srcrow[i])
        if r < 0 or r >= len(sm.line):
            return "<no source>"
        where = f"{sm.files[int(sm.file[r])]}:{int(sm.line[r])}:{int(sm.col[r])}"
        return where + (f" (repetition {int(self.rep[i])})" if self.rep[i] else "")

    def text(self, i: int) -> str:
        """Disassembly of row *i*."""
        from .disasm import format_instruction

        row, fields = isa.unpack(int(self.word[i]))
        return format_instruction(row, fields, self.config, pad=False)


def load_program(image: Image, config: ChipConfig) -> Program:
    """Decode *image* (already checked by the loader) into a :class:`Program`."""
    parts = []
    offsets = image.srcmap_offsets()
    for q in sorted(image.text):
        words = image.text[q]
        op = (words & np.uint64(0xFF)).astype(np.uint8)
        dur = np.ones(len(words), dtype=np.int64)
        is_nop = op == isa.NOP.opcode
        dur[is_nop] = field_array(words[is_nop], isa.NOP, "n")
        is_rep = op == isa.REPEAT.opcode
        n_rep = field_array(words[is_rep], isa.REPEAT, "n")
        d_rep = field_array(words[is_rep], isa.REPEAT, "d")
        dur[is_rep] = n_rep * d_rep
        is_fetch = op == _IFETCH
        dur[is_fetch] = field_array(words[is_fetch], isa.TABLE["ifetch"], "n")
        dur[np.isin(op, _MEM_OPS) & (words >> np.uint64(63)).astype(bool)] = 0  # co-issued with the next word
        start = np.cumsum(dur) - dur
        keep = ~is_nop
        position = np.cumsum(keep) - 1  # index among the queue's non-NOP words
        srcrow = offsets[q] + position
        real = keep & ~is_rep
        parts.append((np.full(int(real.sum()), q, np.int32), start[real], op[real], words[real], srcrow[real],
                      np.zeros(int(real.sum()), np.int32)))
        if is_rep.any():
            parts.append(_expand_repeats(q, words, op, start, srcrow, is_rep, n_rep, d_rep, config))
    if not parts:
        empty = np.zeros(0, np.int64)
        return Program(config, image, empty.astype(np.int32), empty, empty.astype(np.uint8),
                       empty.astype(np.uint64), empty, empty.astype(np.int32))
    cols = [np.concatenate(c) for c in zip(*parts)]
    queue, cycle, op, word, srcrow, rep = cols
    order = np.lexsort((queue, cycle))
    return Program(config, image, queue[order], cycle[order], op[order], word[order], srcrow[order], rep[order])


def _expand_repeats(q, words, op, start, srcrow, is_rep, n_rep, d_rep, config):
    rep_idx = np.nonzero(is_rep)[0]
    base_idx = rep_idx - 1  # the loader guarantees a repeat follows an instruction of its queue
    if (base_idx < 0).any() or (op[np.maximum(base_idx, 0)] == isa.NOP.opcode).any():
        # a NOP between an instruction and its repeat: find the real base
        base_idx = np.array([_base(op, i) for i in rep_idx], dtype=np.int64)
    stride = field_array(words[rep_idx], isa.REPEAT, "stride")
    counts = n_rep
    total = int(counts.sum())
    k = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + 1  # 1..n per repeat
    base = np.repeat(base_idx, counts)
    cycle = start[base] + k * np.repeat(d_rep, counts)
    word = words[base].copy()
    bop = op[base]
    step = np.repeat(stride, counts) * k
    has_addr = _HAS_ADDR[bop]
    if has_addr.any():
        lo = _ADDR_LO_OF[bop[has_addr]]
        offset = ((word[has_addr] >> lo) & np.uint64(0xFFF)).astype(np.int64) + step[has_addr]
        if ((offset < 0) | (offset >= config.words_per_bank)).any():
            bad = int(np.nonzero((offset < 0) | (offset >= config.words_per_bank))[0][0])
            raise LpuError(f"queue {config.queues[q]}: a repeat advances an address to word {int(offset[bad])}, "
                           f"outside the bank (0..{config.words_per_bank - 1})")
        cleared = word[has_addr] & ~(np.uint64(0xFFF) << lo)
        word[has_addr] = cleared | (offset.astype(np.uint64) << lo)
    return (np.full(total, q, np.int32), cycle, bop, word, srcrow[base], k.astype(np.int32))


def _base(op: np.ndarray, i: int) -> int:
    j = i - 1
    while j >= 0 and op[j] == isa.NOP.opcode:
        j -= 1
    return j
