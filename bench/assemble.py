"""Assembly speed of a generated transformer-layer program (stdlib macros), stage
by stage, each figure next to a baseline measured in the same run.

    python bench/assemble.py [--m M] [--blocks B] [--repeat R] [--against OLD_SCHEDULE_PY]

The program (tsp-v1): B blocks of four 800x800 fp16 projections
(``matmul_tiled_f16`` of matmul_tiled.lasm, m rows of activations, on mxm0 and
mxm1), an elementwise product and a residual add (vector.lasm), a SwiGLU MLP
(mlp.lasm's ``mlp_swiglu_f16``, with its residual) and a SiLU; m=128, B=3 gives
about 740k instructions, nearly all of them ``.for`` loop bodies (read/read/lw,
iw, read/read/abc, acc/write and VXM chains).

1. expansion + lowering (``stop_after="lower"``) with the vectorised loop path
   (lpuasm.vexpand), against the per-instruction path (on a smaller program of
   the same shape: m <= 32, one block);
2. scheduling (lpuasm.schedule.schedule on the lowered IR), rows/s, and how
   many rows the periodic fast path (lpuasm.schedule_runs) wrote, against
   scheduling the same rows once every row is pinned at the cycle found
   (pinned rows take the row-by-row path: pin checks only), and, with
   --against, against another schedule.py (e.g. a frozen copy of an older
   version), whose cycles and diagnostics must be identical;
3. encoding, and the whole ``assemble`` call end to end (the product goal is
   >= 2M instructions/s for expansion + assembly).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from common import best_of, print_table, timed  # noqa: E402
from lpuasm import schedule_runs, vexpand  # noqa: E402
from lpuasm.assembler import assemble  # noqa: E402
from lpuasm.diagnostics import Diagnostics  # noqa: E402
from lpuasm.encode import encode  # noqa: E402
from lpuasm.ir import PIN_ABS  # noqa: E402
from lpuasm.schedule import schedule  # noqa: E402

H = 160        # tsp-v1: LANES // 2, the f16 K tile
KT = NT = 5    # 800 = 5 tiles of 160


def program(m: int, blocks: int) -> str:
    """The layer program: every weight tile set (800x800 f16, 4000 words) in a bank
    of its own, activations and results in the west hemisphere as the macros want."""
    d = KT * H
    a = NT * m
    lines = [
        "; generated transformer-layer benchmark (bench/assemble.py)",
        ".chip tsp-v1",
        '.include "matmul_tiled.lasm"',
        '.include "vector.lasm"',
        '.include "mlp.lasm"',
        ".space wq, W0.b0[0], f16, 4000", ".space wk, W0.b1[0], f16, 4000",
        ".space wv, W2.b0[0], f16, 4000", ".space wo, W2.b1[0], f16, 4000",
        ".space wg, W6.b0[0], f16, 4000", ".space wu, W6.b1[0], f16, 4000",
        ".space wd, W24.b0[0], f16, 4000",
        f".space x, W4.b0[0], f16, {KT * m}", f".space h, W4.b1[0], f16, {KT * m}",
        f".space q, W8.b0[0], f32, {a}", f".space k, W12.b0[0], f32, {a}",
        f".space v, W16.b0[0], f32, {a}", f".space o, W20.b0[0], f32, {a}",
        f".space gate, W8.b1[0], f32, {a}", f".space up, W12.b1[0], f32, {a}",
        f".space y, W16.b1[0], f32, {a}", f".space xr, W20.b1[0], f32, {a}",
        f".space r, E0.b0[0], f32, {a}", f".space r2, E4.b0[0], f32, {a}",
    ]
    for _ in range(blocks):
        lines += [
            f"    matmul_tiled_f16 wq, x, q, {m}, {d}, {d}",
            f"    matmul_tiled_f16 wk, x, k, {m}, {d}, {d}, plane=mxm1",
            f"    matmul_tiled_f16 wv, x, v, {m}, {d}, {d}",
            f"    vec_binary_f32 VOP_MUL, q, k, r, {a}",
            f"    matmul_tiled_f16 wo, x, o, {m}, {d}, {d}, plane=mxm1",
            f"    residual_add_f32 o, v, r2, {a}",
            f"    mlp_swiglu_f16 x, wg, wu, wd, y, {m}, {d}, {d}, gate, up, h, residual=1, xr=xr",
            f"    silu_f32 y, r, {a}",
        ]
    lines.append("    halt")
    return "\n".join(lines) + "\n"


def load_scheduler(path: str):
    """The ``schedule`` function of another copy of schedule.py (imports made absolute)."""
    text = Path(path).read_text()
    for mod in ("chip", "isa"):
        text = text.replace(f"from . import {mod}", f"from lpuasm import {mod}")
    text = text.replace("from . import chip, isa", "from lpuasm import chip, isa")
    text = text.replace("from .", "from lpuasm.")
    spec = importlib.util.spec_from_loader("_bench_old_schedule", loader=None)
    mod = importlib.util.module_from_spec(spec)
    exec(compile(text, path, "exec"), mod.__dict__)
    return mod.schedule


def run_schedule(fn, ir):
    diags = Diagnostics()
    cycles = fn(ir, diags)
    return cycles, [(d.severity, d.message, d.span) for d in diags.items]


def pinned(ir, cycles):
    """The IR with every row pinned at its cycle (absolute pins)."""
    import dataclasses
    return dataclasses.replace(ir, pin_kind=np.full(len(ir), PIN_ABS, dtype=ir.pin_kind.dtype),
                               pin=np.asarray(cycles, dtype=ir.pin.dtype))


def rate(n: int, t: float) -> str:
    return f"{n / t:,.0f} instr/s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--m", type=int, default=128, help="rows of activations (default 128)")
    p.add_argument("--blocks", type=int, default=3, help="layer blocks (default 3: about 740k instructions)")
    p.add_argument("--repeat", type=int, default=1, help="best of N for each timing")
    p.add_argument("--against", metavar="SCHEDULE_PY", help="also time this schedule.py and check it agrees")
    args = p.parse_args(argv)

    src = program(args.m, args.blocks)
    assemble(program(1, 1), "warmup.lasm")   # builds the parser, imports everything

    rows: list[tuple[str, str, str]] = []
    t_low, asm = best_of(args.repeat, lambda: assemble(src, "layer.lasm", stop_after="lower"))
    ir = asm.ir
    n = len(ir)
    rows.append(("instructions", f"{n:,}", f"m={args.m}, {args.blocks} block(s) on tsp-v1"))
    rows.append(("expansion + lowering (vectorised loops)", f"{t_low:.2f} s", rate(n, t_low)))
    row_slow = len(rows)

    ff0 = dict(schedule_runs.stats)
    t_sch, (cycles, diags) = best_of(args.repeat, lambda: run_schedule(schedule, ir))
    ff = {k: (schedule_runs.stats[k] - ff0[k]) // args.repeat for k in ff0}
    assert not [d for d in diags if d[0] == "error"], diags[:3]
    rows.append(("schedule", f"{t_sch:.2f} s", f"{n / t_sch:,.0f} rows/s; {int(cycles.max()):,} cycles"))
    rows.append(("  rows written by the periodic fast path", f"{ff['rows']:,}",
                 f"{ff['rows'] / n:.1%}: {ff['runs']:,} runs, {ff['templates']:,} traced periods "
                 f"(lpuasm.schedule_runs)"))
    pir = pinned(ir, cycles)
    t_pin, (pc, pd) = best_of(args.repeat, lambda: run_schedule(schedule, pir))
    assert np.array_equal(pc, cycles) and not pd, "pinning the schedule changed it"
    rows.append(("  baseline: the same rows pinned (checks only)", f"{t_pin:.2f} s",
                 f"{n / t_pin:,.0f} rows/s; ratio schedule / pinned {t_sch / t_pin:.2f}x"))
    if args.against:
        old = load_scheduler(args.against)
        t_old, (oc, od) = best_of(args.repeat, lambda: run_schedule(old, ir))
        same = np.array_equal(oc, cycles) and od == diags
        rows.append((f"  baseline: {Path(args.against).name}", f"{t_old:.2f} s",
                     f"{n / t_old:,.0f} rows/s; speed-up {t_old / t_sch:.2f}x; "
                     f"identical cycles and diagnostics: {'yes' if same else 'NO'}"))

    t_enc, _ = best_of(args.repeat, lambda: encode(ir, cycles))
    rows.append(("encode", f"{t_enc:.2f} s", rate(n, t_enc)))
    t_all, full = best_of(args.repeat, lambda: assemble(src, "layer.lasm"))
    assert np.array_equal(full.cycles, cycles)
    rows.append(("assemble, end to end", f"{t_all:.2f} s", f"{rate(n, t_all)} (goal >= 2,000,000)"))
    # last: the per-instruction path leaves a lot of garbage behind
    small = program(min(args.m, 32), 1)
    t_fast, fast = timed(lambda: assemble(small, "small.lasm", stop_after="lower"))
    vexpand.ENABLED = False
    try:
        t_slow, slow = timed(lambda: assemble(small, "small.lasm", stop_after="lower"))
    finally:
        vexpand.ENABLED = True
    assert np.array_equal(slow.ir.word, fast.ir.word), "the two expansion paths differ"
    ns = len(slow.ir)
    rows.insert(row_slow, ("  baseline: per-instruction expansion", f"{t_slow:.2f} s",
                           f"{rate(ns, t_slow)} on m={min(args.m, 32)}, 1 block ({ns:,} instr), where the "
                           f"vectorised path is {t_slow / t_fast:.1f}x faster"))
    rows.append(("  shares: lower / schedule / encode", f"{t_low / t_all:.0%} / {t_sch / t_all:.0%} / "
                 f"{t_enc / t_all:.0%}", ""))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
