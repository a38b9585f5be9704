"""The instruction table: the single source of truth for the LPU instruction set.

Each :class:`Instr` row names a mnemonic, its unit, its operands, its encoding
and its latency class.  Everything else is derived from this table: the
assembler's operand checks, the encoder and decoder (one generic
:func:`pack`/:func:`unpack` pair), the disassembler, docs/isa.md, the pygments
keyword lists and the REPL's completion and help.

Encoding
--------
Every instruction is one little-endian 64-bit word.  Bits 0-7 hold the opcode;
the row's fields follow from bit 8 upwards in declaration order: first the
dtype suffix field(s), then one field per operand, each as wide as its operand
kind declares (see :data:`KINDS`).  The table is checked when this module is
imported: opcodes unique, every field inside the word, no two fields overlapping.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

WORD_BITS = 64
OPCODE_BITS = 8

# Element types.  Code 0 means "no dtype"; the codes are part of the encoding.
DTYPES = {"i8": 1, "i16": 2, "i32": 3, "f16": 4, "f32": 5}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
DTYPE_BYTES = {"i8": 1, "i16": 2, "i32": 4, "f16": 2, "f32": 4}
INT_DTYPES = ("i8", "i16", "i32")
FLOAT_DTYPES = ("f16", "f32")
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES
DTYPE_BITS = 3


@dataclass(frozen=True)
class Kind:
    """An operand kind: how wide its field is and what it means."""

    name: str
    width: int
    selects_queue: bool  # the operand names the unit instance, hence the queue
    doc: str


KINDS = {k.name: k for k in (
    Kind("queue", 8, True, "an instruction queue: icu, w<slice>, e<slice>, alu<i>, mxm<i>, sxmw, sxme, c2c<i> (ranges depend on the chip config)"),
    Kind("stream", 6, False, "a stream register: s<N>e (eastward) or s<N>w (westward); bits 0-4 index, bit 5 direction (1 = west)"),
    Kind("addr", 20, True, "an SRAM word: <W|E><slice>.b<bank>[offset] or symbol[offset]; bits: offset 0-11, bank 12, slice 13-18, hemisphere 19 (1 = east)"),
    Kind("alu", 4, True, "a VXM ALU: alu0..alu15"),
    Kind("plane", 2, True, "an MXM plane: mxm0..mxm3"),
    Kind("sxm", 1, True, "an SXM: sxmw or sxme"),
    Kind("link", 4, True, "a C2C link: c2c0..c2c15"),
    Kind("src", 33, False, "a stream, or an immediate: bit 32 set means bits 0-31 hold the immediate (sign-extended int32, or fp32 bits for float dtypes)"),
    Kind("uimm", 0, False, "an unsigned immediate (width given per operand)"),
    Kind("simm", 0, False, "a signed immediate, two's complement (width given per operand)"),
)}


@dataclass(frozen=True)
class Operand:
    """One operand of a row: its name (used in docs and diagnostics), kind,
    field width, and default value when it may be omitted."""

    name: str
    kind: str
    width: int
    default: int | None = None

    @property
    def signed(self) -> bool:
        return self.kind == "simm"

    @property
    def optional(self) -> bool:
        return self.default is not None


@dataclass(frozen=True)
class Field:
    """A bit field of the encoded word."""

    name: str
    lo: int
    width: int
    signed: bool = False

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


@dataclass(frozen=True)
class Instr:
    """One row of the instruction table."""

    mnemonic: str
    unit: str
    opcode: int
    operands: tuple[Operand, ...]
    latency: str
    semantics: str
    dtypes: tuple[tuple[str, ...], ...] = ()  # allowed dtypes, one tuple per suffix
    queue: str | None = None  # fixed queue, for rows without a queue-selecting operand
    fields: tuple[Field, ...] = field(default=(), compare=False)

    @property
    def nsuffixes(self) -> int:
        return len(self.dtypes)

    @property
    def queue_operand(self) -> int | None:
        """Index of the operand that selects the queue, or None for a fixed queue."""
        for i, op in enumerate(self.operands):
            if KINDS[op.kind].selects_queue:
                return i
        return None

    @property
    def syntax(self) -> str:
        """Assembly syntax, e.g. ``vadd.<dt> a, b, d [, alu]``."""
        head = self.mnemonic + "".join(".<dt>" if i == 0 else ".<dt2>" for i in range(self.nsuffixes))
        required = [op.name for op in self.operands if not op.optional]
        optional = [op.name for op in self.operands if op.optional]
        text = head + (" " + ", ".join(required) if required else "")
        for name in optional:
            text += f" [, {name}]" if required else f" [{name}]"
        return text


def _ops(spec: str) -> tuple[Operand, ...]:
    """Parse a compact operand spec: ``"a:stream b:src n:uimm16 alu:alu=0"``."""
    out = []
    for item in spec.split():
        default = None
        if "=" in item:
            item, d = item.split("=")
            default = int(d)
        name, kind = item.split(":")
        width = 0
        for prefix in ("uimm", "simm"):
            if kind.startswith(prefix) and kind != prefix:
                width = int(kind[len(prefix):])
                kind = prefix
        width = width or KINDS[kind].width
        out.append(Operand(name, kind, width, default))
    return tuple(out)


_ANY = ALL_DTYPES
_FLOAT = FLOAT_DTYPES
_MXM_IN = ("i8", "f16")
_MXM_OUT = ("i32", "f32")

_ROWS: list[tuple] = [
    # mnemonic, unit, opcode, operands, latency, dtypes, semantics
    # ---- ICU: common to every queue --------------------------------------
    ("nop", "icu", 0x00, "q:queue n:uimm32", "icu", (), "queue q issues nothing for n cycles"),
    ("repeat", "icu", 0x01, "q:queue n:uimm16 d:uimm16 stride:simm16=0", "icu", (),
     "repeat the previous instruction of queue q n more times, d cycles apart, its SRAM address advanced by stride words each time"),
    ("sync", "icu", 0x02, "q:queue", "icu", (), "park queue q until a notify (program start only)"),
    ("notify", "icu", 0x03, "q:queue", "icu", (), "release every queue parked by sync (program start only)"),
    ("ifetch", "icu", 0x04, "q:queue n:uimm16", "icu", (), "fetch n instruction words into queue q's buffer (costs n cycles of the queue)"),
    ("config", "icu", 0x05, "q:queue key:uimm8 value:uimm32", "icu", (), "set configuration register key of queue q's unit to value"),
    ("halt", "icu", 0x06, "", "icu", (), "end of program: the chip stops once this issues"),
    # ---- MEM: one queue per slice ------------------------------------------
    ("read", "mem", 0x10, "a:addr d:stream", "mem.read", (), "read SRAM word a onto stream d"),
    ("write", "mem", 0x11, "s:stream a:addr", "mem.write", (), "write the vector on stream s into SRAM word a"),
    ("gather", "mem", 0x12, "a:addr map:stream d:stream", "mem.gather", (),
     "lane i of d = lane i of SRAM word a + map[i] (per-lane word offsets)"),
    ("scatter", "mem", 0x13, "s:stream map:stream a:addr", "mem.scatter", (),
     "lane i of SRAM word a + map[i] = lane i of s (per-lane word offsets)"),
    # ---- VXM: pointwise, one queue per ALU of the 16 in every lane ----------
    ("vadd", "vxm", 0x20, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = a + b (ints wrap)"),
    ("vsub", "vxm", 0x21, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = a - b (ints wrap)"),
    ("vmul", "vxm", 0x22, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = a * b (ints wrap)"),
    ("vmax", "vxm", 0x23, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = max(a, b)"),
    ("vmin", "vxm", 0x24, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = min(a, b)"),
    ("veq", "vxm", 0x25, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = 1 where a == b else 0"),
    ("vne", "vxm", 0x26, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = 1 where a != b else 0"),
    ("vlt", "vxm", 0x27, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = 1 where a < b else 0"),
    ("vle", "vxm", 0x28, "a:stream b:src d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = 1 where a <= b else 0"),
    ("vsel", "vxm", 0x29, "m:stream a:stream b:stream d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = a where m != 0 else b"),
    ("vmov", "vxm", 0x30, "a:stream d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = a"),
    ("vneg", "vxm", 0x31, "a:stream d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = -a (ints wrap)"),
    ("vabs", "vxm", 0x32, "a:stream d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = |a| (ints wrap)"),
    ("vrelu", "vxm", 0x33, "a:stream d:stream alu:alu=0", "vxm.alu", (_ANY,), "d = max(a, 0)"),
    ("vexp", "vxm", 0x34, "a:stream d:stream alu:alu=0", "vxm.transcendental", (_FLOAT,), "d = e ** a"),
    ("vrsqrt", "vxm", 0x35, "a:stream d:stream alu:alu=0", "vxm.transcendental", (_FLOAT,), "d = 1 / sqrt(a)"),
    ("vtanh", "vxm", 0x36, "a:stream d:stream alu:alu=0", "vxm.transcendental", (_FLOAT,), "d = tanh(a)"),
    ("vrcp", "vxm", 0x37, "a:stream d:stream alu:alu=0", "vxm.transcendental", (_FLOAT,), "d = 1 / a"),
    ("vcvt", "vxm", 0x38, "a:stream d:stream alu:alu=0", "vxm.convert", (_ANY, _ANY),
     "d (dtype dt2) = a (dtype dt) converted: float to int rounds to nearest even and saturates, int to int saturates"),
    # ---- MXM: weight-stationary matrix planes ---------------------------------
    ("lw", "mxm", 0x40, "s:stream p:plane", "mxm.load", (_MXM_IN,), "append the vector on s to plane p's weight buffer (one row of W)"),
    ("iw", "mxm", 0x41, "p:plane", "mxm.install", (), "install plane p's weight buffer into its array"),
    ("abc", "mxm", 0x42, "s:stream p:plane", "mxm.activation", (_MXM_IN,),
     "stream activation vector x on s through plane p, forming x @ W"),
    ("acc", "mxm", 0x43, "p:plane d:stream row:uimm10 mode:uimm1=1", "mxm.accumulate", (_MXM_OUT,),
     "take plane p's oldest product x @ W; accumulator row := product (mode 0) or row + product (mode 1); "
     "emit the row on stream group d"),
    # ---- SXM: shifts and permutations across lanes ----------------------------
    ("shift", "sxm", 0x50, "s:stream n:simm11 d:stream x:sxm", "sxm.shift", (),
     "d[i] = s[i - n], zero where i - n is outside the lanes (n > 0 shifts up)"),
    ("rotate", "sxm", 0x51, "s:stream n:simm11 d:stream x:sxm", "sxm.shift", (), "d[i] = s[(i - n) mod lanes]"),
    ("permute", "sxm", 0x52, "s:stream map:stream d:stream x:sxm", "sxm.permute", (),
     "d[i] = s[map[i]], map an i16 stream group holding a bijection of the lanes"),
    ("distribute", "sxm", 0x53, "s:stream map:stream d:stream x:sxm", "sxm.permute", (),
     "within each 16-lane superlane, d[i] = s[map[i]] (map[i] < 16), or 0 where map[i] = 255"),
    ("transpose", "sxm", 0x54, "s:stream d:stream x:sxm", "sxm.transpose", (),
     "treat streams s..s+15 as a 16x16 byte block per superlane and write its transpose to d..d+15"),
    # ---- C2C: chip-to-chip links -------------------------------------------
    ("send", "c2c", 0x60, "s:stream l:link", "c2c.link", (), "send the vector on s over link l"),
    ("receive", "c2c", 0x61, "l:link d:stream", "c2c.link", (), "put the next vector arriving on link l onto stream d"),
    ("deskew", "c2c", 0x62, "l:link", "c2c.link", (), "align link l's receive clock to this chip's"),
]

UNITS = ("icu", "mem", "vxm", "mxm", "sxm", "c2c")


#: The MEM co-issue bit: a slice issues one read-type and one write-type
#: instruction in one cycle (pseudo-dual-ported SRAM); the first carries it.
PAIR = "pair"
PAIR_BIT = 1 << 63


def _layout(mnemonic: str, unit: str, ndtypes: int, operands: tuple[Operand, ...]) -> tuple[Field, ...]:
    fields = [Field("op", 0, OPCODE_BITS)]
    lo = OPCODE_BITS
    for i in range(ndtypes):
        fields.append(Field("dt" if i == 0 else "dt2", lo, DTYPE_BITS))
        lo += DTYPE_BITS
    for op in operands:
        fields.append(Field(op.name, lo, op.width, op.signed))
        lo += op.width
    if unit == "mem":  # set by the assembler: this word and the next issue in the same cycle
        fields.append(Field(PAIR, WORD_BITS - 1, 1))
    return tuple(fields)


class TableError(Exception):
    """The instruction table is inconsistent (a bug in this file, found at import)."""


def _build() -> tuple[dict[str, Instr], dict[int, Instr]]:
    by_name: dict[str, Instr] = {}
    by_code: dict[int, Instr] = {}
    for mnemonic, unit, opcode, spec, latency, dtypes, semantics in _ROWS:
        operands = _ops(spec)
        row = Instr(mnemonic, unit, opcode, operands, latency, semantics, tuple(dtypes),
                    queue="icu" if mnemonic == "halt" else None,
                    fields=_layout(mnemonic, unit, len(dtypes), operands))
        _check(row)
        if mnemonic in by_name:
            raise TableError(f"duplicate mnemonic {mnemonic}")
        if opcode in by_code:
            raise TableError(f"{mnemonic}: opcode {opcode:#x} already used by {by_code[opcode].mnemonic}")
        by_name[mnemonic] = by_code[opcode] = row
    return by_name, by_code


def _check(row: Instr) -> None:
    if row.unit not in UNITS:
        raise TableError(f"{row.mnemonic}: unknown unit {row.unit}")
    if not 0 <= row.opcode < (1 << OPCODE_BITS):
        raise TableError(f"{row.mnemonic}: opcode does not fit {OPCODE_BITS} bits")
    used = 0
    for f in row.fields:
        if f.width <= 0:
            raise TableError(f"{row.mnemonic}: field {f.name} has no width")
        if f.lo + f.width > WORD_BITS:
            raise TableError(f"{row.mnemonic}: field {f.name} ends at bit {f.lo + f.width}, past the {WORD_BITS}-bit word")
        bits = f.mask << f.lo
        if used & bits:
            raise TableError(f"{row.mnemonic}: field {f.name} overlaps another field")
        used |= bits
    selectors = [op for op in row.operands if KINDS[op.kind].selects_queue]
    if len(selectors) + (row.queue is not None) != 1:
        raise TableError(f"{row.mnemonic}: needs exactly one queue-selecting operand or a fixed queue")
    for op in row.operands:
        if op.default is not None and not 0 <= (op.default if not op.signed else op.default + (1 << (op.width - 1))) < (1 << op.width):
            raise TableError(f"{row.mnemonic}: default of {op.name} does not fit its field")
    names = [f.name for f in row.fields]
    if len(set(names)) != len(names):
        raise TableError(f"{row.mnemonic}: duplicate field names")
    seen_optional = False
    for op in row.operands:
        if op.optional:
            seen_optional = True
        elif seen_optional:
            raise TableError(f"{row.mnemonic}: required operand {op.name} after an optional one")


TABLE, BY_OPCODE = _build()
NOP = TABLE["nop"]
REPEAT = TABLE["repeat"]


def lookup(mnemonic: str) -> Instr | None:
    return TABLE.get(mnemonic.lower())


# ---- generic pack / unpack ---------------------------------------------------
def pack(row: Instr, values: dict[str, int]) -> int:
    """Encode field values (operands, ``dt``/``dt2``) into one 64-bit word.
    Signed fields take negative values; every value must fit its field."""
    word = 0
    defaults = {op.name: op.default for op in row.operands if op.optional}
    defaults[PAIR] = 0
    for f in row.fields:
        v = row.opcode if f.name == "op" else values.get(f.name, defaults.get(f.name))
        if v is None:
            raise ValueError(f"{row.mnemonic}: no value for field {f.name}")
        if f.signed:
            if not -(1 << (f.width - 1)) <= v < (1 << (f.width - 1)):
                raise ValueError(f"{row.mnemonic}: {f.name}={v} does not fit a signed {f.width}-bit field")
            v &= f.mask
        elif not 0 <= v <= f.mask:
            raise ValueError(f"{row.mnemonic}: {f.name}={v} does not fit an unsigned {f.width}-bit field")
        word |= v << f.lo
    return word


def unpack(word: int) -> tuple[Instr, dict[str, int]]:
    """Decode one word: the row and its field values.  Raises ValueError on an
    unknown opcode or set bits outside the row's fields."""
    row = BY_OPCODE.get(word & 0xFF)
    if row is None:
        raise ValueError(f"unknown opcode {word & 0xFF:#04x}")
    values: dict[str, int] = {}
    used = 0
    for f in row.fields:
        v = (word >> f.lo) & f.mask
        used |= f.mask << f.lo
        if f.signed and v >> (f.width - 1):
            v -= 1 << f.width
        if f.name != "op":
            values[f.name] = v
    if word & ~used & ((1 << WORD_BITS) - 1):
        raise ValueError(f"{row.mnemonic}: reserved bits set in {word:#018x}")
    for i, allowed in enumerate(row.dtypes):
        code = values["dt" if i == 0 else "dt2"]
        if DTYPE_NAMES.get(code) not in allowed:
            what = f"dtype {DTYPE_NAMES[code]}" if code in DTYPE_NAMES else f"dtype code {code}"
            raise ValueError(f"{row.mnemonic}: {what} is not one of its dtypes ({', '.join(allowed)})")
    for op in row.operands:
        if op.kind == "src" and not values[op.name] & SRC_IMMEDIATE and values[op.name] >> 6:
            raise ValueError(f"{row.mnemonic}: operand {op.name}: stream operand {values[op.name]:#x} "
                             f"has stray bits above bit 5")
    return row, values


# ---- operand values ------------------------------------------------------------
def stream_code(index: int, west: bool) -> int:
    return index | (int(west) << 5)


def stream_name(code: int) -> str:
    return f"s{code & 31}{'w' if code >> 5 else 'e'}"


def addr_code(east: bool, slice_: int, bank: int, offset: int) -> int:
    return offset | (bank << 12) | (slice_ << 13) | (int(east) << 19)


def addr_parts(code: int) -> tuple[bool, int, int, int]:
    """(east, slice, bank, offset) of an address field."""
    return bool(code >> 19), (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF


def addr_name(code: int) -> str:
    east, slice_, bank, offset = addr_parts(code)
    return f"{'E' if east else 'W'}{slice_}.b{bank}[{offset}]"


SRC_IMMEDIATE = 1 << 32


_F32_MAX = 3.4028234663852886e38
_F32_OVERFLOW = 3.4028235677973366e38  # F32_MAX + half an ulp: rounds to inf from here


def f32_bits(value: float) -> int:
    """Bits of *value* rounded to fp32 (round to nearest even; inf beyond range)."""
    try:
        return struct.unpack("<I", struct.pack("<f", value))[0]
    except OverflowError:
        sign = 0x80000000 if value < 0 else 0
        return sign | (0x7F7FFFFF if abs(value) < _F32_OVERFLOW else 0x7F800000)


def bits_f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def format_src(code: int, dtype: str | None) -> str:
    """Text of a ``src`` field: a stream name or an immediate literal."""
    if not code & SRC_IMMEDIATE:
        return stream_name(code & 63)
    bits = code & 0xFFFFFFFF
    if dtype in FLOAT_DTYPES:
        return format_float(bits_f32(bits))
    return str(bits - (1 << 32) if bits >> 31 else bits)


def format_float(value: float) -> str:
    """The shortest decimal text that parses back to the same fp32 value."""
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    target = f32_bits(value)
    for digits in range(1, 18):
        text = f"{value:.{digits}g}"
        if f32_bits(float(text)) == target:
            break
    return text if any(c in text for c in ".en") else text + ".0"
