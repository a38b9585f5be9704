"""lpuasm benchmarks: each figure next to a baseline measured in the same run.

    python bench/run.py [--lines N] [--repeat R]

Text assembly: a generated N-line kernel (default 100k) assembled end to end
(parse, lower, schedule, encode, serialise) against lark's own bare LALR parse
of the same text with the same grammar (target: at most 2x).  Image size:
bytes per instruction for the text and source map.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import best_of, print_table  # noqa: E402
from lpuasm import imagefile  # noqa: E402
from lpuasm.assembler import assemble  # noqa: E402
from lpuasm.parser import bare_parse  # noqa: E402


def generate(lines: int) -> str:
    """A kernel of about *lines* lines that the scheduler places by data: each
    of 32 west slices streams its rows through a VXM chain (vmul, vsub, vrelu)
    to its east twin, with labels and comments; no pins."""
    slices = 32
    rows = max(1, -(-lines // (5 * slices)))
    out = ["; generated benchmark kernel", ".chip tsp-v1", f".equ ROWS, {min(rows, 4096)}"]
    for k in range(slices):
        out.append(f".space x{k}, W{k}.b0[0], i8, ROWS")
        out.append(f".space y{k}, E{k}.b1[0], i8, ROWS")
    i = 0
    while len(out) < lines:
        r, k = divmod(i, slices)
        r %= 4096
        if k == 0 and r % 64 == 0:
            out.append(f"row{r}_{i}:  ; a label and a comment")
        out.append(f"    read     x{k}[{r}], s{k}e")
        out.append(f"    vmul.i8  s{k}e, 3, s{k}e, alu{k % 16}  ; scale")
        out.append(f"    vsub.i8  s{k}e, 2, s{k}e, alu{k % 16}")
        out.append(f"    vrelu.i8 s{k}e, s{k}e, alu{k % 16}")
        out.append(f"    write    s{k}e, y{k}[{r}]")
        i += 1
    out.append("    halt")
    return "\n".join(out[:lines]) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    text = generate(args.lines)
    nlines = text.count("\n")
    bare_parse("nop w0, 1\n")  # build both parsers before timing
    assemble(".chip tsp-v1\nnop w0, 1\n")

    t_lark, _ = best_of(args.repeat, lambda: bare_parse(text))
    t_ours, blob = best_of(args.repeat, lambda: imagefile.to_bytes(assemble(text, "bench.lasm").image))
    asm = assemble(text, "bench.lasm")
    n = asm.image.instruction_count()
    sm_bytes = sum(a.nbytes for a in (asm.image.srcmap.file, asm.image.srcmap.line,
                                      asm.image.srcmap.col, asm.image.srcmap.chain))
    text_bytes = sum(w.nbytes for w in asm.image.text.values())

    rows = [
        ("lines", f"{nlines:,}", ""),
        ("instructions", f"{n:,}", ""),
        ("lark bare LALR parse", f"{t_lark:.2f} s", f"{nlines / t_lark:,.0f} lines/s"),
        ("lpuasm assembly, end to end", f"{t_ours:.2f} s", f"{nlines / t_ours:,.0f} lines/s"),
        ("ratio assembly / bare parse", f"{t_ours / t_lark:.2f}x", "target <= 2x"),
        ("image size", f"{len(blob):,} B", f"{len(blob) / n:.1f} B/instruction"),
        ("  text words (incl. NOPs)", f"{text_bytes:,} B", f"{text_bytes / n:.1f} B/instruction"),
        ("  source map rows", f"{sm_bytes:,} B", f"{sm_bytes / n:.1f} B/instruction"),
    ]
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
