"""Expansion + lowering speed of a large `.for` loop: vectorised fast path
(lpuasm.vexpand) against the per-instruction path; and end-to-end `assemble`.

    python bench/vexpand.py [N_INSTRUCTIONS]
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lpuasm import vexpand  # noqa: E402
from lpuasm.assembler import assemble  # noqa: E402

BODY = """\
    read x[i % 1024], s0e
    vadd.i8 s0e, i % 100 - 50, s1e, alu(i % 4)
    vmax.i8 s1e, 0, s2e, alu(4 + i % 4)
    write s2e, y.p1[(i * 7) % 1024]
"""


def program(n: int) -> str:
    return f""".chip tsp-v1
.space x, W0.b0[0], i8, 1024, 320
.space y, E0.b0[0], i16, 1024, 320
.for i, 0, {n // 4}
{BODY}.endfor
    halt
"""


def timed(src, stop_after, fast):
    vexpand.ENABLED = fast
    t = time.perf_counter()
    asm = assemble(src, "bench.lasm", stop_after=stop_after)
    return time.perf_counter() - t, asm


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    src = program(n)
    assemble(program(8), "warmup.lasm")  # builds the parser once
    dt, asm = timed(src, "lower", True)
    rows = len(asm.ir)
    print(f"fast path: expansion + lowering of {rows} instructions: {dt:.3f} s, {rows / dt / 1e6:.2f} M instr/s")
    ns = min(n, 100_000)
    dts, slow = timed(program(ns), "lower", False)
    print(f"slow path: expansion + lowering of {len(slow.ir)} instructions: {dts:.3f} s, "
          f"{len(slow.ir) / dts / 1e3:.1f} k instr/s")
    dte, asm = timed(src, "encode", True)
    print(f"end to end (fast path, per-row scheduling): assemble {rows} instructions: {dte:.2f} s, "
          f"{rows / dte / 1e3:.0f} k instr/s")
    vexpand.ENABLED = True


if __name__ == "__main__":
    main()
