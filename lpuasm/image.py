"""The ``.lpu`` binary image: what the assembler produces and the simulator loads.

This module holds the in-memory :class:`Image`; :mod:`lpuasm.imagefile` turns it
into bytes and back (format: docs/image-format.md).

Canonical order: every list in an image is kept sorted (constants and labels by
name, data by address, text by queue id), so that two assemblies of the same
program, in whatever source order, give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import isa

FORMAT_VERSION = 1


@dataclass
class DataSymbol:
    """A named tensor in SRAM.

    Layout: a tensor of shape (rows, cols) and a dtype of b bytes is split into b
    byte planes (plane k holds byte k, little-endian, of every element), and
    plane k lives in slice ``slice + k`` of the same hemisphere, at the same bank
    and offset, so that a stream group of b streams can be filled by b slices
    reading in the same pass, as on the real chip.  In each plane's slice the
    tensor occupies ``tiles * rows`` consecutive words, ``tiles = ceil(cols /
    lanes)``: word ``t * rows + r`` holds elements ``t*lanes .. t*lanes+lanes-1``
    of row r, zero-padded past ``cols``.  ``init`` is None for reserved space
    (``.space``), else a uint8 array of shape (b * tiles * rows, lanes) holding
    the planes one after another.
    """

    name: str
    addr: int  # an isa addr code: where plane 0 starts
    dtype: str
    rows: int
    cols: int
    init: np.ndarray | None = None

    @property
    def planes(self) -> int:
        return isa.DTYPE_BYTES[self.dtype]

    def words_per_plane(self, lanes: int) -> int:
        return -(-self.cols // lanes) * self.rows

    def nwords(self, lanes: int) -> int:
        """Words in all planes together (the rows of ``init``)."""
        return self.planes * self.words_per_plane(lanes)

    def plane_addr(self, plane: int) -> int:
        """Address code of word 0 of byte plane *plane*."""
        east, slice_, bank, offset = isa.addr_parts(self.addr)
        return isa.addr_code(east, slice_ + plane, bank, offset)


@dataclass
class ConstSymbol:
    """A compile-time constant (``.equ`` / ``.set``)."""

    name: str
    value: int | float


@dataclass
class LabelSymbol:
    """A label: the ``index``-th instruction (NOP words not counted) of ``queue``.
    ``queue`` is -1 for a label after the last instruction."""

    name: str
    queue: int
    index: int


@dataclass
class MacroFrame:
    """One link of a macro-expansion chain: expanded from ``macro`` called at
    file/line/col; ``parent`` is the index of the enclosing frame, or -1."""

    macro: str
    file: int
    line: int
    col: int
    parent: int = -1


@dataclass
class SourceMap:
    """Where every instruction came from.  One row per instruction (NOP words
    excluded), rows ordered by queue id then position in the queue.  ``chain``
    is an index into ``frames`` or -1."""

    files: list[str] = field(default_factory=list)
    file: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))
    line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))
    col: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))
    chain: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    frames: list[MacroFrame] = field(default_factory=list)


@dataclass
class Image:
    """An assembled program for one chip configuration."""

    config_name: str
    config_hash: bytes
    text: dict[int, np.ndarray]  # queue id -> uint64 words (NOP-compressed)
    data: list[DataSymbol] = field(default_factory=list)
    consts: list[ConstSymbol] = field(default_factory=list)
    labels: list[LabelSymbol] = field(default_factory=list)
    srcmap: SourceMap = field(default_factory=SourceMap)
    version: int = FORMAT_VERSION

    def instruction_count(self) -> int:
        """Instructions in the text, NOP words excluded."""
        return sum(int(np.count_nonzero((w & np.uint64(0xFF)) != isa.NOP.opcode)) for w in self.text.values())

    def word_count(self) -> int:
        return sum(len(w) for w in self.text.values())

    def equals(self, other: "Image") -> bool:
        """Same content (arrays compared by value, NaN constants equal by bits);
        lists are compared in order, so compare canonical images."""
        def arrays(a, b) -> bool:
            a, b = np.asarray(a), np.asarray(b)
            return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))

        def value(v):
            return ("f", np.float64(v).tobytes()) if isinstance(v, (float, np.floating)) else ("i", int(v))

        s, o = self.srcmap, other.srcmap
        return (
            self.config_name == other.config_name
            and bytes(self.config_hash) == bytes(other.config_hash)
            and self.version == other.version
            and list(self.text) == list(other.text)
            and all(arrays(self.text[q], other.text[q]) for q in self.text)
            and len(self.data) == len(other.data)
            and all((a.name, a.addr, a.dtype, a.rows, a.cols) == (b.name, b.addr, b.dtype, b.rows, b.cols)
                    and (a.init is None) == (b.init is None)
                    and (a.init is None or arrays(a.init, b.init))
                    for a, b in zip(self.data, other.data))
            and [(c.name, value(c.value)) for c in self.consts] == [(c.name, value(c.value)) for c in other.consts]
            and self.labels == other.labels
            and s.files == o.files and s.frames == o.frames
            and all(arrays(getattr(s, a), getattr(o, a)) for a in ("file", "line", "col", "chain"))
        )

    def srcmap_offsets(self) -> dict[int, int]:
        """Row of the source map where each queue's instructions start."""
        offsets, row = {}, 0
        for q in sorted(self.text):
            offsets[q] = row
            row += int(np.count_nonzero((self.text[q] & np.uint64(0xFF)) != isa.NOP.opcode))
        return offsets
