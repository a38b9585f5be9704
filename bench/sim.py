"""Simulator benchmarks on generated programs (lpuasm.kernels), each figure next
to a baseline measured in the same run.

    python bench/sim.py [--small] [--rows R] [--gemm M K N] [--repeat N]

1. stream: a >= 1M-instruction MEM/VXM streaming program on tsp-v1 (44 west
   slices of i8 rows -> vmul, vadd, vrelu -> 44 east slices).  Simulated
   instructions per wall second of a numeric run, against numpy doing only the
   arithmetic (the same three ops on the same arrays, vectorised).
2. gemm: C = A @ B, fp16 in, fp32 out, 2304x4096 by 4096x2048 on tsp-v1
   (``--small``: 576x1024 by 1024x512).  Simulated MACs per wall second
   against numpy's fp32 matmul on the same shapes.  Build, assembly (the full
   checking scheduler, and the pins-only fast path) and run times are shown.
3. timing-only: the largest program analysed without values; instructions per
   second against its own numeric run.

Every run's results are compared with the numpy reference bit for bit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from common import best_of, print_table, timed  # noqa: E402

from lpuasm import interp, kernels  # noqa: E402
from lpuasm.config import TSP_V1  # noqa: E402
from lpuasm.program import load_program  # noqa: E402


def si(x: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:,.2f} {prefix}{unit}"
    return f"{x:,.2f} {unit}"


def program_of(kernel, rows: list, label: str):
    """Assemble with both paths (checked, fast) and load; returns the program."""
    t_chk, image = timed(lambda: kernels.assemble_ir(kernel.ir))
    t_fast, image2 = timed(lambda: kernels.assemble_ir(kernel.ir, check=False))
    assert image.equals(image2), "fast assembly differs from the checked one"
    t_load, program = timed(lambda: load_program(image, TSP_V1))
    n = len(kernel.ir)
    rows.append((f"{label}: assemble (checked schedule)", f"{t_chk:.2f} s", f"{n / t_chk:,.0f} instr/s"))
    rows.append((f"{label}: assemble (pins only, fast)", f"{t_fast:.2f} s", f"{n / t_fast:,.0f} instr/s"))
    rows.append((f"{label}: load image", f"{t_load:.2f} s", ""))
    return program


def bench_stream(args, rows: list):
    t_build, k = timed(lambda: kernels.stream_kernel(TSP_V1, args.rows, TSP_V1.mem_slices_per_hemisphere, "i8"))
    n = len(k.ir)
    rows.append(("stream: instructions", f"{n:,}", f"{k.info['vectors']:,} vectors, {k.info['lanes']} VXM "
                                                     f"chains/cycle, {k.info['groups']} slices"))
    rows.append(("stream: build (IR + data + reference)", f"{t_build:.2f} s", f"{n / t_build:,.0f} instr/s"))
    program = program_of(k, rows, "stream")
    t_run, result = timed(lambda: interp.run(program))
    ok = not k.mismatches(result)
    x = k.info["x"]
    chain = k.info["chain"]
    t_np, _ = best_of(args.repeat, lambda: kernels.chain_reference(x, chain, "i8"))
    cyc = result.stats.cycles
    rows.append(("stream: numeric run", f"{t_run:.2f} s",
                 f"{n / t_run:,.0f} instr/s, {k.info['vectors'] / t_run:,.0f} vectors/s; "
                 f"{cyc:,} cycles = {cyc / TSP_V1.clock_hz * 1e6:,.1f} us on chip; bit-exact: {'yes' if ok else 'NO'}"))
    rows.append(("  baseline numpy (same 3 ops, same arrays)", f"{t_np:.4f} s",
                 f"{x.size * len(chain) / t_np / 1e9:,.2f} G element-ops/s"))
    rows.append(("  ratio simulator / numpy", f"{t_run / t_np:,.0f}x", "wall time for the same arithmetic"))
    return k, program, t_run


def bench_gemm(args, rows: list):
    M, K, N = args.gemm or ((576, 1024, 512) if args.small else (2304, 4096, 2048))
    t_build, k = timed(lambda: kernels.gemm(TSP_V1, M, K, N, "f16"))
    n = len(k.ir)
    nm, nk, nn = k.info["tiles"]
    rows.append((f"gemm {M}x{K} @ {K}x{N} f16: instructions", f"{n:,}",
                 f"{nm} M-chunks x {nk} K-tiles x {nn} N-tiles on planes {k.info['planes']}"))
    rows.append(("gemm: build (IR + data + reference)", f"{t_build:.2f} s", f"{n / t_build:,.0f} instr/s"))
    program = program_of(k, rows, "gemm")
    t_run, result = timed(lambda: interp.run(program))
    ok = not k.mismatches(result)
    macs = M * K * N
    cyc = result.stats.cycles
    chip_s = cyc / TSP_V1.clock_hz
    rows.append(("gemm: numeric run", f"{t_run:.2f} s",
                 f"{si(macs / t_run, 'MAC/s')} simulated, {n / t_run:,.0f} instr/s; bit-exact: {'yes' if ok else 'NO'}"))
    rows.append(("  on chip", f"{cyc:,} cycles",
                 f"{chip_s * 1e3:.3f} ms at {TSP_V1.clock_hz / 1e6:g} MHz = {si(2 * macs / chip_s, 'FLOP/s')}"))
    a32, b32 = k.inputs["A"].astype(np.float32), k.inputs["B"].astype(np.float32)
    t_np, _ = best_of(args.repeat, lambda: a32 @ b32)
    rows.append(("  baseline numpy fp32 matmul", f"{t_np:.3f} s", f"{si(macs / t_np, 'MAC/s')}"))
    rows.append(("  ratio simulator / numpy", f"{t_run / t_np:,.0f}x", "wall time for the same matmul"))
    return k, program, t_run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="GEMM 576x1024 @ 1024x512 instead of 2304x4096 @ 4096x2048")
    p.add_argument("--gemm", type=int, nargs=3, metavar=("M", "K", "N"), help="GEMM shape")
    p.add_argument("--rows", type=int, default=4600, help="rows per slice of the stream kernel (4600: 1.01M instr)")
    p.add_argument("--repeat", type=int, default=3, help="best of N for the numpy baselines")
    args = p.parse_args(argv)

    rows: list[tuple[str, str, str]] = []
    programs = []
    programs.append(bench_stream(args, rows))
    programs.append(bench_gemm(args, rows))

    k, program, t_num = max(programs, key=lambda x: len(x[0].ir))
    n = len(k.ir)
    t_timing, _ = best_of(args.repeat, lambda: interp.run(program, timing_only=True))
    rows.append((f"timing-only run of {k.name} ({n:,} instr)", f"{t_timing:.2f} s", f"{n / t_timing:,.0f} instr/s"))
    rows.append(("  baseline: its numeric run", f"{t_num:.2f} s", f"timing-only is {t_num / t_timing:,.1f}x faster"))

    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
