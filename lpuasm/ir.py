"""The columnar IR: a program as numpy arrays of instruction fields.

One row per instruction in source order.  ``word`` is the instruction already
encoded by the table (so field values are recovered with :func:`field_array`);
the other columns say where the instruction goes (``queue``), when it was asked
to issue (``pin_kind``/``pin``) and where it came from (``loc_*``).  Programs
of millions of instructions cost a few dozen bytes per row and are built in
chunks of arrays by :class:`IRBuilder`, without per-instruction objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import isa
from .config import ChipConfig
from .image import DataSymbol, MacroFrame
from .syntax import Span

PIN_NONE, PIN_ABS, PIN_REL = 0, 1, 2

_COLUMNS = {
    "op": np.uint8,
    "word": np.uint64,
    "queue": np.uint16,
    "pin_kind": np.uint8,
    "pin": np.int64,
    "loc_file": np.uint16,
    "loc_line": np.uint32,
    "loc_col": np.uint16,
    "loc_width": np.uint16,
    "loc_chain": np.int32,
}


@dataclass
class IR:
    """A lowered program: instruction columns plus its data and symbols."""

    config: ChipConfig
    op: np.ndarray
    word: np.ndarray
    queue: np.ndarray
    pin_kind: np.ndarray
    pin: np.ndarray
    loc_file: np.ndarray
    loc_line: np.ndarray
    loc_col: np.ndarray
    loc_width: np.ndarray
    loc_chain: np.ndarray
    files: list[str] = field(default_factory=list)
    frames: list[MacroFrame] = field(default_factory=list)  # macro expansion chains (file: index in files)
    data: list[DataSymbol] = field(default_factory=list)
    consts: dict[str, int | float] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # label -> row it names (len(self) = end)

    def __len__(self) -> int:
        return len(self.op)

    def span(self, row: int) -> Span:
        """Source span of instruction *row*, for diagnostics."""
        col = int(self.loc_col[row])
        return Span(self.files[int(self.loc_file[row])], int(self.loc_line[row]), col,
                    col + max(1, int(self.loc_width[row])))

    def chain_notes(self, row: int) -> list:
        """``in expansion of macro`` notes for instruction *row*, innermost first."""
        from .diagnostics import Diagnostic

        notes, k = [], int(self.loc_chain[row])
        while k >= 0:
            f = self.frames[k]
            span = Span(self.files[f.file], f.line, f.col, f.col + max(1, len(f.macro)))
            notes.append(Diagnostic("note", f"in expansion of macro '{f.macro}'", span))
            k = f.parent
        return notes

    def depth(self, chain: int) -> int:
        """Macro expansion depth of a row whose ``loc_chain`` is *chain*."""
        d = 0
        while chain >= 0:
            d, chain = d + 1, self.frames[chain].parent
        return d


class IRBuilder:
    """Accumulates rows, one at a time (text assembly) or as arrays (generators)."""

    def __init__(self, config: ChipConfig) -> None:
        self.config = config
        self._rows: dict[str, list] = {name: [] for name in _COLUMNS}
        self._chunks: list[dict[str, np.ndarray]] = []
        self._count = 0
        self.files: list[str] = []
        self._file_ids: dict[str, int] = {}
        self.frames: list[MacroFrame] = []
        self._frame_ids: dict[tuple, int] = {}

    def __len__(self) -> int:
        return self._count

    def file_id(self, name: str) -> int:
        fid = self._file_ids.get(name)
        if fid is None:
            fid = self._file_ids[name] = len(self.files)
            self.files.append(name)
        return fid

    def add_frame(self, macro: str, span: Span, parent: int = -1) -> int:
        """A new macro expansion frame (called at *span*); returns its index."""
        self.frames.append(MacroFrame(macro, self.file_id(span.file), span.line, span.col, parent))
        return len(self.frames) - 1

    def intern_frame(self, macro: str, file: str, line: int, col: int, parent: int = -1) -> int:
        """The index of a frame with this content, added if new (for ``.loc`` chains)."""
        key = (macro, file, line, col, parent)
        k = self._frame_ids.get(key)
        if k is None:
            k = self._frame_ids[key] = len(self.frames)
            self.frames.append(MacroFrame(macro, self.file_id(file), line, col, parent))
        return k

    def add(self, row: isa.Instr, word: int, queue: int, pin_kind: int, pin: int,
            span: Span, chain: int = -1) -> int:
        """Append one instruction; returns its row index."""
        r = self._rows
        r["op"].append(row.opcode)
        r["word"].append(word)
        r["queue"].append(queue)
        r["pin_kind"].append(pin_kind)
        r["pin"].append(pin)
        r["loc_file"].append(self.file_id(span.file))
        r["loc_line"].append(span.line)
        r["loc_col"].append(span.col)
        r["loc_width"].append(span.end_col - span.col)
        r["loc_chain"].append(chain)
        self._count += 1
        return self._count - 1

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        """Append many rows at once; missing columns default to zero (no pin)
        and ``loc_chain`` to -1."""
        self._flush()
        n = len(columns["word"])
        chunk = {}
        for name, dtype in _COLUMNS.items():
            if name in columns:
                chunk[name] = np.asarray(columns[name], dtype=dtype)
            else:
                chunk[name] = np.full(n, -1 if name == "loc_chain" else 0, dtype=dtype)
        if "op" not in columns:
            chunk["op"] = (chunk["word"] & np.uint64(0xFF)).astype(np.uint8)
        self._chunks.append(chunk)
        self._count += n

    def _flush(self) -> None:
        if self._rows["op"]:
            self._chunks.append({name: np.array(vals, dtype=_COLUMNS[name]) for name, vals in self._rows.items()})
            self._rows = {name: [] for name in _COLUMNS}

    def finish(self, **extra) -> IR:
        self._flush()
        cols = {}
        for name, dtype in _COLUMNS.items():
            parts = [c[name] for c in self._chunks]
            cols[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        return IR(config=self.config, files=list(self.files), frames=list(self.frames), **cols, **extra)


def field_array(words: np.ndarray, row: isa.Instr, name: str) -> np.ndarray:
    """Vectorised unpack of field *name* from words that all encode *row* (int64)."""
    f = next(f for f in row.fields if f.name == name)
    v = ((words >> np.uint64(f.lo)) & np.uint64(f.mask)).astype(np.int64)
    if f.signed:
        v = np.where(v >> (f.width - 1), v - (1 << f.width), v)
    return v


def fields_of(words: np.ndarray, row: isa.Instr) -> dict[str, np.ndarray]:
    """Every field but the opcode of words that all encode *row*, as int64 arrays."""
    return {f.name: field_array(words, row, f.name) for f in row.fields if f.name != "op"}
