"""Chip geometry for the timing model: where each unit sits on a superlane row,
and which streams and SRAM ports each instruction uses.  Shared by the
scheduler, the timing analysis and both interpreters (docs/timing-model.md).

Positions along a row, west to east, for n MEM slices per hemisphere::

    0        1      2 .. n+1          n+2    n+3 .. 2n+2       2n+3   2n+4
    MXM(W)   SXM(W) W(n-1) .. W0      VXM    E0 .. E(n-1)      SXM(E) MXM(E)

Eastward streams carry a value one position east per cycle, westward streams
one position west.  MXM planes 0..P/2-1 and C2C links 0..L/2-1 sit at the west
edge, the others at the east edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import isa
from .config import ChipConfig

EAST, WEST = 0, 1


@dataclass(frozen=True)
class Geometry:
    """Positions of a chip config's units."""

    config: ChipConfig

    @property
    def n(self) -> int:
        return self.config.mem_slices_per_hemisphere

    @property
    def positions(self) -> int:
        return 2 * self.n + 5

    @property
    def vxm(self) -> int:
        return self.n + 2

    def mem(self, east: bool, slice_: int) -> int:
        return self.n + 3 + slice_ if east else self.n + 1 - slice_

    def sxm(self, east: bool) -> int:
        return 2 * self.n + 3 if east else 1

    def mxm(self, plane: int) -> int:
        return 2 * self.n + 4 if plane >= self.config.mxm_planes // 2 else 0

    def c2c(self, link: int) -> int:
        return 2 * self.n + 4 if link >= self.config.c2c_links // 2 else 0

    def queue_position(self, qid: int) -> int | None:
        """Position of the unit behind queue *qid* (None for the ICU queue)."""
        name = self.config.queues[qid]
        if name == "icu":
            return None
        if name.startswith("alu"):
            return self.vxm
        if name.startswith("mxm"):
            return self.mxm(int(name[3:]))
        if name.startswith("sxm"):
            return self.sxm(name == "sxme")
        if name.startswith("c2c"):
            return self.c2c(int(name[3:]))
        return self.mem(name[0] == "e", int(name[1:]))

    def position_name(self, pos: int) -> str:
        n = self.n
        if pos == self.vxm:
            return "VXM"
        if pos in (0, 2 * n + 4):
            return "MXM(W)" if pos == 0 else "MXM(E)"
        if pos in (1, 2 * n + 3):
            return "SXM(W)" if pos == 1 else "SXM(E)"
        if pos < self.vxm:
            return f"W{n + 1 - pos}"
        return f"E{pos - n - 3}"


def group_size(row: isa.Instr, operand: str, fields: dict) -> int:
    """How many consecutive streams operand *operand* of a decoded instruction
    spans: the dtype's bytes for typed VXM/MXM operands, 16 for transpose, 2 for
    a permute map, else 1."""
    if row.mnemonic == "transpose":
        return 16
    if row.mnemonic == "permute" and operand == "map":
        return 2
    if row.unit in ("vxm", "mxm") and row.dtypes:
        key = "dt2" if (row.mnemonic == "vcvt" and operand == "d") else "dt"
        return isa.DTYPE_BYTES[isa.DTYPE_NAMES[fields[key]]]
    return 1


# Which operands a row reads from streams and which it writes to streams.
STREAM_INPUTS = {
    "write": ("s",), "gather": ("map",), "scatter": ("s", "map"),
    "lw": ("s",), "abc": ("s",),
    "shift": ("s",), "rotate": ("s",), "permute": ("s", "map"), "distribute": ("s", "map"), "transpose": ("s",),
    "send": ("s",),
}
STREAM_OUTPUTS = {
    "read": ("d",), "gather": ("d",), "acc": ("d",), "receive": ("d",),
    "shift": ("d",), "rotate": ("d",), "permute": ("d",), "distribute": ("d",), "transpose": ("d",),
}
for _row in isa.TABLE.values():
    if _row.unit == "vxm":
        STREAM_INPUTS[_row.mnemonic] = tuple(op.name for op in _row.operands if op.kind in ("stream", "src") and op.name != "d")
        STREAM_OUTPUTS[_row.mnemonic] = ("d",)


def stream_inputs(row: isa.Instr, fields: dict) -> list[tuple[int, int]]:
    """(direction, stream index) of every stream the instruction samples."""
    out = []
    for name in STREAM_INPUTS.get(row.mnemonic, ()):
        code = fields[name]
        if name == "b" and code & isa.SRC_IMMEDIATE:
            continue
        d, i = code >> 5 & 1, code & 31
        out += [(d, i + k) for k in range(group_size(row, name, fields))]
    return out


def stream_outputs(row: isa.Instr, fields: dict) -> list[tuple[int, int]]:
    """(direction, stream index) of every stream the instruction writes."""
    out = []
    for name in STREAM_OUTPUTS.get(row.mnemonic, ()):
        code = fields[name]
        d, i = code >> 5 & 1, code & 31
        out += [(d, i + k) for k in range(group_size(row, name, fields))]
    return out


def delay(config: ChipConfig, row: isa.Instr) -> int:
    """Cycles from issue to the instruction's effect (its latency class's delay)."""
    return config.latency(row.latency).delay


def mxm_k(config: ChipConfig, dtype: str) -> int:
    """Rows of W a plane holds: all lanes for int8, half for fp16 (the published
    K = 160 of a 320-lane plane pair, modelled as one plane)."""
    return config.lanes if dtype == "i8" else config.lanes // 2
