"""``lpuasm demo``: the toolchain end to end.

Until whole transformer layers exist in the stdlib, the demo runs the pieces
every layer is made of: a tiled fp16 matrix product on all four MXM planes and
a streaming VXM chain over many MEM slices (fully unrolled, statically
scheduled programs from :mod:`lpuasm.kernels`), and a Llama SwiGLU MLP block
written with the stdlib's macros (on the tiny chip, whose layout it is written
for).  For each it assembles the image, loads it back with every check, runs it
on the simulated chip, verifies the results against numpy bit for bit (the MLP
also against the independent reference of :mod:`lpuasm.model.reference`), and
reports cycles, time at the clock and unit utilisation; it also disassembles
one image and re-assembles it to check the round trip.
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


def _reload_and_run(out, step: int, total: int, name: str, image, config: ChipConfig, t0: float):
    """Serialise *image*, load it back with every check, run it: two steps."""
    blob = imagefile.to_bytes(image, config)
    image = imagefile.from_bytes(blob, config, f"{name}.lpu")
    step += 1
    _step(out, step, total, f"{name}: assembled and reloaded a {len(blob):,}-byte image", t0)
    t0 = time.perf_counter()
    result = run(load_program(image, config))
    step += 1
    _step(out, step, total, f"{name}: simulated {result.stats.cycles:,} cycles", t0)
    return image, blob, result, step


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
    total = 4 * (len(jobs) + 1) + 1
    step = 0
    ok = True
    reports = []
    for name, params, what in jobs:
        t0 = time.perf_counter()
        kernel = build(name, config, **params)
        step += 1
        _step(out, step, total, f"{name}: generated {len(kernel.ir):,} instructions for {what}", t0)
        t0 = time.perf_counter()
        image, blob, result, step = _reload_and_run(out, step, total, name, assemble_ir(kernel.ir), config, t0)
        t0 = time.perf_counter()
        bad = kernel.mismatches(result)
        ok &= not bad
        step += 1
        _step(out, step, total, f"{name}: results {'match numpy bit for bit' if not bad else 'DIFFER in ' + ', '.join(bad)}",
              t0)
        reports.append((name, what, image, blob, result, config))
    mlp_ok, mlp_report, step = _mlp_block(out, step, total)
    ok &= mlp_ok
    reports.append(mlp_report)
    # round trip of the smaller image through text
    t0 = time.perf_counter()
    name, _, image, blob, _, cfg = min(reports[:len(jobs)], key=lambda r: len(r[3]))
    text = disassemble(image, cfg, f"{name}.lpu")
    again = imagefile.to_bytes(assemble(text, f"{name}.dis.lasm").image, cfg)
    identical = again == blob
    ok &= identical
    step += 1
    _step(out, step, total, f"{name}: disassembled ({text.count(chr(10)):,} lines) and re-assembled: "
                            f"{'byte-identical' if identical else 'DIFFERENT'}", t0)
    if keep:
        from pathlib import Path

        Path(keep).mkdir(parents=True, exist_ok=True)
        for name, _, _, blob, _, _ in reports:
            (Path(keep) / f"{name}.lpu").write_bytes(blob)
    print(file=out)
    print(f"  chip  {config.summary()}", file=out)
    for name, what, image, blob, result, cfg in reports:
        st = result.stats
        us = st.cycles / cfg.clock_hz * 1e6
        util = ", ".join(f"{u} {100 * st.utilisation(u):.1f}%" for u in UNIT_KINDS if st.per_unit.get(u))
        print(f"\n  {name}: {what}", file=out)
        print(f"    instructions  {st.instructions:,} ({len(blob):,}-byte image)", file=out)
        print(f"    cycles        {st.cycles:,} = {us:.2f} us at {cfg.clock_hz / 1e6:g} MHz"
              + (f" (chip {cfg.name})" if cfg is not config else ""), file=out)
        print(f"    utilisation   {util}", file=out)
        if st.macs:
            flops = 2 * st.macs / (st.cycles / cfg.clock_hz)
            rate = f"{flops / 1e12:.1f} TFLOP/s" if flops >= 1e12 else f"{flops / 1e9:.1f} GFLOP/s"
            print(f"    MXM           {st.macs:,} MACs = {rate} at the clock", file=out)
        print(f"    simulator     {st.wall_seconds:.2f} s, {st.instructions / max(st.wall_seconds, 1e-9):,.0f} "
              f"instructions/s", file=out)
    print(f"\n  verification  {'OK' if ok else 'FAILED'}", file=out)
    return 0 if ok else 1


def _mlp_block(out, step: int, total: int):
    """A Llama SwiGLU MLP block (stdlib/mlp.lasm) on the tiny chip: assemble,
    run, check bit for bit against the chip's numpy model and closely against
    the independent float32 reference."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from .config import TINY
    from .model import blocks
    from .model import reference as ref

    m, hidden, ffn = 3, 16, 40
    g = np.random.default_rng(7)
    x = g.standard_normal((m, hidden)).astype(np.float16)
    wg = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(np.float16)  # (out, in), as HF stores them
    wu = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(np.float16)
    wd = (g.standard_normal((hidden, ffn)) / np.sqrt(ffn)).astype(np.float16)
    what = f"Llama SwiGLU MLP + residual from stdlib macros, {m} tokens, hidden {hidden}, ffn {ffn}"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        src = blocks.mlp_source(x, wg, wu, wd, True, TINY)
        asm = assemble(src, str(Path(tmp) / "mlp_block.lasm"))
    step += 1
    _step(out, step, total, f"mlp: expanded the stdlib macros into {len(asm.ir):,} instructions for {what}", t0)
    image, blob, result, step = _reload_and_run(out, step, total, "mlp", asm.image, TINY, time.perf_counter())
    t0 = time.perf_counter()
    want = blocks.tile_act(blocks.model_mlp(x, wg, wu, wd, True, TINY.lanes)[0], TINY.lanes)
    got = result.tensor("y")
    exact = got.view(np.uint32).tobytes() == want.view(np.uint32).tobytes()
    xf = x.astype(np.float32)
    expect = ref.linear(ref.silu(ref.linear(xf, wg)) * ref.linear(xf, wu), wd) + xf
    err = float(np.abs(blocks.untile_act(got, m, hidden, TINY.lanes) - expect).max())
    ok = exact and err < 2e-3
    step += 1
    _step(out, step, total, f"mlp: results {'match' if exact else 'DIFFER from'} the chip's numpy model bit for bit; "
                            f"max |error| against the float32 reference {err:.1e}", t0)
    return ok, ("mlp", what, image, blob, result, TINY), step
