"""``lpuasm demo``: the toolchain end to end on generated kernels.

Until the stdlib's transformer layers exist, the demo builds the two kernels
every layer is made of, as fully unrolled, statically scheduled programs: a
tiled fp16 matrix product on all four MXM planes and a streaming VXM chain over
many MEM slices.  For each it assembles the image, loads it back with every
check, runs it on the simulated chip, verifies the results against numpy bit
for bit, and reports cycles, time at the clock and unit utilisation; it also
disassembles one image and re-assembles it to check the round trip.
"""

from __future__ import annotations

import sys
import time

from . import imagefile
from .assembler import assemble
from .config import TSP_V1, ChipConfig
from .diagnostics import LpuError
from .disasm import disassemble
from .interp import run
from .kernels import assemble_ir, build
from .program import load_program
from .sim import UNIT_KINDS


def _step(out, n: int, total: int, text: str, t0: float) -> None:
    print(f"[{n}/{total}] {text} ({time.perf_counter() - t0:.2f} s)", file=out, flush=True)


def run_demo(config: ChipConfig | None, size: int, keep: str | None = None) -> int:
    """Build, assemble, run and verify a GEMM and a streaming kernel; report."""
    config = config or TSP_V1
    if size < 1:
        raise LpuError("--size must be at least 1")
    out = sys.stdout
    lanes = config.lanes
    jobs = [
        ("gemm", dict(M=size * 8, K=lanes * 2, N=lanes * 2, dtype="f16"),
         f"C = A @ B, fp16, {size * 8}x{lanes * 2} by {lanes * 2}x{lanes * 2} (MXM, all planes)"),
        ("stream", dict(rows=size * 16, dtype="f32"),
         f"y = relu(a*x + b), fp32, {size * 16} vectors per slice group (MEM -> VXM -> MEM)"),
    ]
    total = 4 * len(jobs) + 1
    step = 0
    ok = True
    reports = []
    for name, params, what in jobs:
        t0 = time.perf_counter()
        kernel = build(name, config, **params)
        step += 1
        _step(out, step, total, f"{name}: generated {len(kernel.ir):,} instructions for {what}", t0)
        t0 = time.perf_counter()
        image = assemble_ir(kernel.ir)
        blob = imagefile.to_bytes(image, config)
        image = imagefile.from_bytes(blob, config, f"{name}.lpu")
        step += 1
        _step(out, step, total, f"{name}: assembled and reloaded a {len(blob):,}-byte image", t0)
        t0 = time.perf_counter()
        result = run(load_program(image, config))
        step += 1
        _step(out, step, total, f"{name}: simulated {result.stats.cycles:,} cycles", t0)
        t0 = time.perf_counter()
        bad = kernel.mismatches(result)
        ok &= not bad
        step += 1
        _step(out, step, total, f"{name}: results {'match numpy bit for bit' if not bad else 'DIFFER in ' + ', '.join(bad)}",
              t0)
        reports.append((name, what, image, blob, result))
    # round trip of the smaller image through text
    t0 = time.perf_counter()
    name, _, image, blob, _ = min(reports, key=lambda r: len(r[3]))
    text = disassemble(image, config, f"{name}.lpu")
    again = imagefile.to_bytes(assemble(text, f"{name}.dis.lasm").image, config)
    identical = again == blob
    ok &= identical
    step += 1
    _step(out, step, total, f"{name}: disassembled ({text.count(chr(10)):,} lines) and re-assembled: "
                            f"{'byte-identical' if identical else 'DIFFERENT'}", t0)
    if keep:
        from pathlib import Path

        Path(keep).mkdir(parents=True, exist_ok=True)
        for name, _, _, blob, _ in reports:
            (Path(keep) / f"{name}.lpu").write_bytes(blob)
    print(file=out)
    print(f"  chip  {config.summary()}", file=out)
    for name, what, image, blob, result in reports:
        st = result.stats
        us = st.cycles / config.clock_hz * 1e6
        util = ", ".join(f"{u} {100 * st.utilisation(u):.1f}%" for u in UNIT_KINDS if st.per_unit.get(u))
        print(f"\n  {name}: {what}", file=out)
        print(f"    instructions  {st.instructions:,} ({len(blob):,}-byte image)", file=out)
        print(f"    cycles        {st.cycles:,} = {us:.2f} us at {config.clock_hz / 1e6:g} MHz", file=out)
        print(f"    utilisation   {util}", file=out)
        if st.macs:
            print(f"    MXM           {st.macs:,} MACs = {2 * st.macs / (st.cycles / config.clock_hz) / 1e12:.1f} "
                  f"TFLOP/s at the clock", file=out)
        print(f"    simulator     {st.wall_seconds:.2f} s, {st.instructions / max(st.wall_seconds, 1e-9):,.0f} "
              f"instructions/s", file=out)
    print(f"\n  verification  {'OK' if ok else 'FAILED'}", file=out)
    return 0 if ok else 1
