"""The ISA reference, generated from the instruction table.

* :func:`markdown` renders docs/isa.md; regenerate it with
  ``python -m lpuasm.isadoc > docs/isa.md`` (a test checks it is up to date).
* :func:`text` renders the terminal help: ``lpuasm isa`` lists every
  instruction, ``lpuasm isa vadd`` shows one in full.
* :func:`suggest` proposes a mnemonic for a misspelt one.

Everything here comes from :mod:`lpuasm.isa` and the ``tsp-v1`` latency table
of :mod:`lpuasm.config`; nothing is written by hand except the unit blurbs.
"""

from __future__ import annotations

import sys

from . import config, isa
from .diagnostics import did_you_mean

#: One line per unit, used as section introductions.
UNIT_TITLES = {
    "icu": "ICU: instruction control, common to every queue",
    "mem": "MEM: SRAM slices, one queue per slice",
    "vxm": "VXM: vector ALUs, one queue per ALU of the 16 in every lane",
    "mxm": "MXM: weight-stationary matrix planes, one queue per plane",
    "sxm": "SXM: shifts and permutations across lanes, one queue per hemisphere",
    "c2c": "C2C: chip-to-chip links, one queue per link",
}

LATENCY_CONFIG = config.TSP_V1

_C = LATENCY_CONFIG
UNIT_BLURBS = {
    "icu": ("Control instructions go to the queue named by their first operand (`halt` "
            "always goes to `icu`); they take no unit time beyond their own issue slot."),
    "mem": (f"{_C.mem_slices} slices on {_C.name} ({_C.mem_slices_per_hemisphere} per hemisphere), "
            f"{_C.banks_per_slice} banks of {_C.words_per_bank} words each; a word is one "
            f"{_C.lanes}-byte vector.  Per slice per cycle: one read from one bank plus one write "
            "to the other.  The address operand selects the slice, hence the queue."),
    "vxm": (f"{_C.vxm_alus_per_lane} ALUs per lane on {_C.name}.  Pointwise operations on stream "
            "groups (1, 2 or 4 streams for 1-, 2- and 4-byte dtypes).  The optional ALU operand "
            "selects the queue."),
    "mxm": (f"{_C.mxm_planes} planes of {_C.lanes}x{_C.lanes} multiply-accumulate cells on "
            f"{_C.name}; int8 or fp16 inputs, int32 or fp32 accumulation.  Load weights with "
            "`lw`, install them with `iw`, stream activations through with `abc`, read the "
            "results with `acc`."),
    "sxm": "One SXM per hemisphere (`sxmw`, `sxme`), named by the last operand.",
    "c2c": f"{_C.c2c_links} links on {_C.name}; the unit of transfer is one vector.",
}

_REGEN = "python -m lpuasm.isadoc > docs/isa.md"


# ---- shared helpers -----------------------------------------------------------------
def _rows_by_unit() -> dict[str, list[isa.Instr]]:
    out: dict[str, list[isa.Instr]] = {u: [] for u in isa.UNITS}
    for row in isa.TABLE.values():
        out[row.unit].append(row)
    return out


def _bits(f: isa.Field) -> str:
    return f"{f.lo + f.width - 1}:{f.lo}"


def _dtype_text(row: isa.Instr) -> str:
    if not row.dtypes:
        return "none"
    parts = []
    for i, allowed in enumerate(row.dtypes):
        parts.append(f"{'dt' if i == 0 else 'dt2'} in {{{', '.join(allowed)}}}")
    return "; ".join(parts)


def _queue_text(row: isa.Instr) -> str:
    qi = row.queue_operand
    if qi is None:
        return f"always `{row.queue}`"
    op = row.operands[qi]
    return f"selected by operand `{op.name}` ({op.kind})"


def _latency_text(row: isa.Instr, code: bool = False) -> str:
    lat = LATENCY_CONFIG.latency(row.latency)
    key = f"`{row.latency}`" if code else row.latency
    return f"{key} ({LATENCY_CONFIG.name}: delay {lat.delay}, skew {lat.skew})"


def _operand_text(op: isa.Operand) -> str:
    """``stream, 6 bits`` / ``simm, 16 bits, default 0``."""
    s = f"{op.kind}, {op.width} bit{'s' if op.width != 1 else ''}"
    if op.optional:
        s += f", optional, default {op.default}"
    return s


def _field_meaning(row: isa.Instr, f: isa.Field) -> str:
    if f.name == "op":
        return f"opcode = {row.opcode:#04x}"
    if f.name in ("dt", "dt2"):
        allowed = row.dtypes[0 if f.name == "dt" else 1]
        return "dtype code: " + ", ".join(f"{d} = {isa.DTYPES[d]}" for d in allowed)
    if f.name == isa.PAIR:
        return ("co-issue: set by the assembler when this word and the next (a MEM read and a MEM write "
                "of this slice) issue in the same cycle")
    op = next(o for o in row.operands if o.name == f.name)
    return "operand: " + _operand_text(op)


def _reserved(row: isa.Instr) -> tuple[int, int] | None:
    """(hi, lo) of the unused top bits of the word, or None if it is full."""
    top = max(f.lo + f.width for f in row.fields if f.name != isa.PAIR)
    end = isa.WORD_BITS - 1 if all(f.name != isa.PAIR for f in row.fields) else isa.WORD_BITS - 2
    return (end, top) if top <= end else None


def _md(s: str) -> str:
    """Escape the characters that markdown would take as markup in prose or tables."""
    for ch in "\\`*_|<":
        s = s.replace(ch, "\\" + ch)
    return s


# ---- markdown --------------------------------------------------------------------------
def markdown() -> str:
    """docs/isa.md: the full ISA reference."""
    lat_name = LATENCY_CONFIG.name
    by_unit = _rows_by_unit()
    out: list[str] = []
    w = out.append

    w("# lpuasm ISA reference")
    w("")
    w(f"<!-- Generated from lpuasm/isa.py by `{_REGEN}`; do not edit by hand. -->")
    w("")
    w(f"{len(isa.TABLE)} instructions in {len(isa.UNITS)} units.  Every instruction is one "
      f"little-endian {isa.WORD_BITS}-bit word.")
    w("")
    w("## How to read this reference")
    w("")
    w("- **Syntax**: `mnemonic.<dt> a, b, [c]`.  `.<dt>` (and `.<dt2>`) are dtype suffixes, "
      "e.g. `vadd.f32`, `vcvt.f16.f32`.  An operand in brackets may be omitted and then "
      "takes its default value.  Operand names are those used in the semantics and in "
      "diagnostics; their kinds are listed below.")
    w("- **Queue**: the instruction queue that issues the instruction: the one named by its "
      "queue-selecting operand (a queue, an SRAM address, an ALU, a plane, an SXM or a link), "
      "or a fixed queue.")
    w(f"- **Latency**: the latency class, and its timing in the `{lat_name}` chip config: "
      "`delay` cycles from issue until the result leaves the unit, and `skew` cycles per "
      "superlane (superlane k acts at issue + k x skew).  Groq never published "
      "per-instruction latencies: these numbers are our assumptions, and other chip configs "
      "may change them (see docs/timing-model.md).")
    w(f"- **Encoding**: bits {isa.OPCODE_BITS - 1}:0 hold the opcode; the fields follow from bit "
      f"{isa.OPCODE_BITS} upwards in declaration order: first the dtype suffix field(s) "
      f"({isa.DTYPE_BITS} bits each), then one field per operand, as wide as its kind "
      "declares.  Bits are numbered `hi:lo`, both inclusive.  Unused high bits are reserved "
      "and must be zero: the decoder rejects a word with any of them set.")
    w("")
    w("## Operand kinds")
    w("")
    w("| kind | field bits | selects the queue | meaning |")
    w("|---|---|---|---|")
    for k in isa.KINDS.values():
        width = str(k.width) if k.width else "per operand"
        w(f"| `{k.name}` | {width} | {'yes' if k.selects_queue else 'no'} | {_md(k.doc)} |")
    w("")
    w("## Data types")
    w("")
    w(f"Dtype fields are {isa.DTYPE_BITS} bits wide; code 0 means no dtype.  Multi-byte types "
      "travel on stream groups: one stream per byte.")
    w("")
    w("| dtype | code | bytes | class |")
    w("|---|---|---|---|")
    for name, code in isa.DTYPES.items():
        cls = "integer" if name in isa.INT_DTYPES else "float"
        w(f"| `{name}` | {code} | {isa.DTYPE_BYTES[name]} | {cls} |")
    w("")
    w("## Summary")
    w("")
    w("| mnemonic | unit | opcode | syntax |")
    w("|---|---|---|---|")
    for unit, rows in by_unit.items():
        for row in rows:
            w(f"| [`{row.mnemonic}`](#{row.mnemonic}) | {unit} | `{row.opcode:#04x}` | `{row.syntax}` |")
    w("")

    for unit, rows in by_unit.items():
        w(f"## {UNIT_TITLES.get(unit, unit)}")
        w("")
        if unit in UNIT_BLURBS:
            w(UNIT_BLURBS[unit])
            w("")
        for row in rows:
            w(f"### {row.mnemonic}")
            w("")
            w(f"`{row.syntax}`")
            w("")
            w(_md(row.semantics[0].upper() + row.semantics[1:]) + ".")
            w("")
            w(f"- opcode: `{row.opcode:#04x}`")
            w(f"- queue: {_queue_text(row)}")
            w(f"- latency: {_latency_text(row, code=True)}")
            w(f"- dtypes: {_dtype_text(row)}")
            if row.operands:
                w("- operands: " + "; ".join(f"`{op.name}` {_operand_text(op)}" for op in row.operands))
            w("")
            w("| field | bits | meaning |")
            w("|---|---|---|")
            res = _reserved(row)
            if res:
                w(f"| - | {res[0]}:{res[1]} | reserved, zero |")
            for f in reversed(row.fields):
                w(f"| `{f.name}` | {_bits(f)} | {_md(_field_meaning(row, f))} |")
            w("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


# ---- terminal text ---------------------------------------------------------------------
def _find(mnemonic: str) -> isa.Instr:
    """The row of *mnemonic* (case-insensitive; a dtype suffix such as ``.f32`` is ignored)."""
    row = isa.lookup(mnemonic.strip().split(".")[0]) if mnemonic.strip() else None
    if row is None:
        raise KeyError(mnemonic)
    return row


def suggest(name: str) -> str | None:
    """A hint such as ``did you mean 'vadd'?`` for an unknown mnemonic, or None."""
    return did_you_mean(name.strip().split(".")[0], isa.TABLE)


def text(mnemonic: str | None = None) -> str:
    """Terminal help.  Without an argument: every instruction, grouped by unit, one line
    each (syntax and semantics).  With one: the full entry of that instruction.
    Raises KeyError for an unknown mnemonic (see :func:`suggest`)."""
    if mnemonic is not None:
        return _entry(_find(mnemonic)).rstrip("\n") + "\n"
    by_unit = _rows_by_unit()
    width = max(len(r.syntax) for r in isa.TABLE.values())
    lines: list[str] = []
    for unit, rows in by_unit.items():
        if lines:
            lines.append("")
        lines.append(UNIT_TITLES.get(unit, unit))
        for row in rows:
            lines.append(f"  {row.syntax:<{width}}  {row.semantics}")
    lines.append("")
    lines.append("'lpuasm isa MNEMONIC' shows operands, timing and encoding of one instruction.")
    return "\n".join(lines) + "\n"


def _entry(row: isa.Instr) -> str:
    lines = [
        row.syntax,
        f"  {row.semantics}",
        "",
        f"  unit      {row.unit}",
        f"  opcode    {row.opcode:#04x}",
        f"  queue     {_queue_text(row).replace('`', '')}",
        f"  latency   {_latency_text(row)}",
        f"  dtypes    {_dtype_text(row)}",
    ]
    if row.operands:
        lines.append("")
        lines.append("  operands")
        nw = max(len(op.name) for op in row.operands)
        for op in row.operands:
            lines.append(f"    {op.name:<{nw}}  {_operand_text(op)}: {isa.KINDS[op.kind].doc}")
    lines.append("")
    lines.append(f"  encoding ({isa.WORD_BITS}-bit word)")
    fw = max(len(f.name) for f in row.fields)
    res = _reserved(row)
    if res:
        lines.append(f"    {f'{res[0]}:{res[1]}':>5}  {'-':<{fw}}  reserved, zero")
    for f in reversed(row.fields):
        lines.append(f"    {_bits(f):>5}  {f.name:<{fw}}  {_field_meaning(row, f)}")
    return "\n".join(lines)


# ---- command line ------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m lpuasm.isadoc`` prints docs/isa.md; ``--text [MNEMONIC]`` prints
    the terminal help instead."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        sys.stdout.write(markdown())
        return 0
    if args[0] in ("-h", "--help"):
        print(f"usage: {_REGEN}\n       python -m lpuasm.isadoc --text [MNEMONIC]")
        return 0
    if args[0] == "--text" and len(args) <= 2:
        name = args[1] if len(args) == 2 else None
        try:
            print(text(name))
        except KeyError:
            hint = suggest(name or "")
            print(f"lpuasm: error: unknown mnemonic '{name}'" + (f"\n  hint: {hint}" if hint else ""),
                  file=sys.stderr)
            return 1
        return 0
    print("lpuasm: error: expected no arguments or --text [MNEMONIC]; see --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
