"""Disassembly: an :class:`Image` back to lasm source.

The text re-assembles to a byte-identical image: every instruction is printed
with its absolute issue cycle (``@120``), ``.loc`` lines carry the source map
(with the macro expansion chain of each instruction),
and the data, constants and labels are printed as directives (small tensors as
``.data`` lists, large ones, and any holding a NaN, as exact ``.blob`` base64).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from . import config as chipconfig
from . import isa
from .config import ChipConfig
from .image import DataSymbol, Image
from .layout import words_to_tensor


@dataclass
class Record:
    """One word of a queue's stream, decoded."""

    queue: int
    word_index: int
    position: int  # index among the queue's non-NOP words (-1 for NOP words)
    cycle: int
    word: int
    row: isa.Instr
    fields: dict
    srcrow: int  # row of the source map (-1 for NOP words)


def walk(image: Image) -> list[Record]:
    """Every word of every queue with its issue cycle, in queue order."""
    out = []
    offsets = image.srcmap_offsets()
    for q in sorted(image.text):
        t = 0
        pos = 0
        for wi, word in enumerate(image.text[q].tolist()):
            row, fields = isa.unpack(word)
            if row is isa.NOP:
                out.append(Record(q, wi, -1, t, word, row, fields, -1))
                t += fields["n"]
                continue
            out.append(Record(q, wi, pos, t, word, row, fields, offsets[q] + pos))
            pos += 1
            if row is isa.REPEAT:
                t += fields["n"] * fields["d"]
            elif row.mnemonic == "ifetch":
                t += fields["n"]
            elif not fields.get(isa.PAIR):
                t += 1
    return out


def config_of(image: Image) -> ChipConfig | None:
    """The built-in config an image was made for, if it is one."""
    cfg = chipconfig.BUILTIN.get(image.config_name)
    return cfg if cfg is not None and cfg.hash == image.config_hash else None


class _Symbolizer:
    """Prints SRAM addresses as ``symbol[word]`` (``symbol.pK[word]`` for byte
    plane K > 0) where a data symbol covers them."""

    def __init__(self, data: list[DataSymbol], lanes: int) -> None:
        self.ranges = []
        for d in data:
            n = d.words_per_plane(lanes)
            for plane in range(d.planes):
                east, slice_, bank, offset = isa.addr_parts(d.plane_addr(plane))
                name = d.name if plane == 0 else f"{d.name}.p{plane}"
                self.ranges.append(((east, slice_, bank), offset, offset + n, name))

    def __call__(self, code: int) -> str:
        east, slice_, bank, offset = isa.addr_parts(code)
        for key, lo, hi, name in self.ranges:
            if key == (east, slice_, bank) and lo <= offset < hi:
                return name if offset == lo and "." not in name else f"{name}[{offset - lo}]"
        return isa.addr_name(code)


def format_instruction(row: isa.Instr, fields: dict, config: ChipConfig, addr=isa.addr_name, pad: bool = True) -> str:
    """Assembly text of one decoded instruction (without pin); *pad* aligns the
    operands in a column."""
    dts = [isa.DTYPE_NAMES[fields[k]] for k in ("dt", "dt2")[: row.nsuffixes]]
    mnemonic = row.mnemonic + "".join(f".{d}" for d in dts)
    ops = []
    for spec in row.operands:
        v = fields[spec.name]
        if spec.optional and v == spec.default:
            continue
        kind = spec.kind
        if kind == "stream":
            ops.append(isa.stream_name(v))
        elif kind == "src":
            ops.append(isa.format_src(v, dts[0] if dts else None))
        elif kind == "addr":
            ops.append(addr(v))
        elif kind == "queue":
            ops.append(config.queues[v] if v < len(config.queues) else f"q{v}")
        elif kind == "alu":
            ops.append(f"alu{v}")
        elif kind == "plane":
            ops.append(f"mxm{v}")
        elif kind == "sxm":
            ops.append("sxme" if v else "sxmw")
        elif kind == "link":
            ops.append(f"c2c{v}")
        else:
            ops.append(str(v))
    return f"{mnemonic:<{10 if pad else 0}} {', '.join(ops)}".rstrip()


def _value(v, dtype: str) -> str:
    if dtype in isa.INT_DTYPES:
        return str(int(v))
    text = str(v)  # numpy prints the shortest text that round-trips in v's dtype
    return text if any(c in text for c in ".ena") else text + ".0"


#: Tensors with more elements than this disassemble to ``.blob`` (compact, fast to parse).
LITERAL_LIMIT = 256


def _data_directive(d: DataSymbol, lanes: int) -> str:
    addr = isa.addr_name(d.addr)
    if d.init is None:
        return f".space {d.name}, {addr}, {d.dtype}, {d.rows}, {d.cols}"
    values = words_to_tensor(d.init, d.dtype, d.rows, d.cols)
    if values.size > LITERAL_LIMIT or (d.dtype in isa.FLOAT_DTYPES and np.isnan(values).any()):
        raw = base64.b64encode(values.astype(values.dtype.newbyteorder("<")).tobytes()).decode()
        return f'.blob {d.name}, {addr}, {d.dtype}, {d.rows}, {d.cols}, "{raw}"'
    rows = ", ".join("[" + ", ".join(_value(v, d.dtype) for v in r) + "]" for r in values)
    return f".data {d.name}, {addr}, {d.dtype}, [{rows}]"


def _const_value(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def disassemble(image: Image, config: ChipConfig | None = None, source_name: str = "") -> str:
    """Source text that assembles back to *image*, byte for byte."""
    cfg = config or config_of(image)
    if cfg is None:
        raise ValueError(f"image is for chip config '{image.config_name}', which is not built in; pass its config")
    lines = [f"; disassembly of {source_name or 'an lpuasm image'}: chip {cfg.name}, "
             f"{image.instruction_count()} instructions"]
    if cfg.name in chipconfig.BUILTIN:
        lines.append(f".chip {cfg.name}")
    else:
        lines.append(f"; assemble with --config for chip '{cfg.name}'")
    for c in image.consts:
        lines.append(f".equ {c.name}, {_const_value(c.value)}")
    for d in image.data:
        lines.append(_data_directive(d, cfg.lanes))
    labels: dict[tuple[int, int], list[str]] = {}
    for lab in image.labels:
        labels.setdefault((lab.queue, lab.index), []).append(lab.name)
    symbolize = _Symbolizer(image.data, cfg.lanes)
    records = [r for r in walk(image) if r.row is not isa.NOP]
    records.sort(key=lambda r: (r.cycle, r.queue, r.position))
    sm = image.srcmap
    last_loc = None
    for r in records:
        for name in labels.get((r.queue, r.position), ()):
            lines.append(f"{name}:")
        loc = (int(sm.file[r.srcrow]), int(sm.line[r.srcrow]), int(sm.col[r.srcrow]),
               int(sm.chain[r.srcrow]) if len(sm.chain) else -1)
        if loc != last_loc:
            lines.append(f'    .loc "{_escape(sm.files[loc[0]])}", {loc[1]}, {loc[2]}{_chain(sm, loc[3])}')
            last_loc = loc
        text = format_instruction(r.row, r.fields, cfg, symbolize)
        pin = "" if r.row is isa.REPEAT else f" @{r.cycle}"
        lines.append(f"    {text:<40}{pin}".rstrip())
    for name in labels.get((-1, 0), ()):
        lines.append(f"{name}:")
    return "\n".join(lines) + "\n"


def _chain(sm, k: int) -> str:
    """The macro expansion chain of a ``.loc``: ``, "MACRO", "FILE", LINE, COL`` per frame, innermost first."""
    out = []
    while k >= 0:
        f = sm.frames[k]
        out.append(f', "{_escape(f.macro)}", "{_escape(sm.files[f.file])}", {f.line}, {f.col}')
        k = f.parent
    return "".join(out)


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')

