"""The model builder's benchmarks (issue: macro language, stdlib, model builder).

    python bench/model.py [--only 1,2,3] [--preset NAME] [--seq N]

1. Expansion + assembly of a generated decoder layer: one layer of --preset
   (default tinyllama-1.1b, decode, --seq 512 positions, timing-only: no
   weights) built as source by lpuasm.model.build, then expanded (stages up to
   "lower") and fully assembled; instructions per wall second of each, next to
   the bare cost of generating the small source text.
2. A Llama-2-7B-shaped decoder layer (hidden 4096, 32 heads, FFN 11008),
   decode with a 4096-token KV cache, timing-only: instructions, cycles (and
   time at the clock), wall seconds of build, assembly and the timing run.
3. The demo model (tiny-llama, 2 layers, decode at position 15) run
   numerically: wall split into build, assemble, simulate; the simulated MACs
   per wall second against numpy's float32 matmul on the same shapes (every
   projection of every layer, m = 1), timed in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.common import best_of, print_table, timed  # noqa: E402
from lpuasm.assembler import assemble_file  # noqa: E402
from lpuasm.config import TSP_V1  # noqa: E402
from lpuasm.model import runner  # noqa: E402
from lpuasm.model.build import build_llama  # noqa: E402
from lpuasm.model.checkpoint import layer_tensors, random_weights  # noqa: E402
from lpuasm.model.config import preset  # noqa: E402


def bench_expansion(rows, name: str, seq: int, tmp: Path) -> None:
    cfg = preset(name).with_layers(1)
    t_src, prog = timed(lambda: build_llama(cfg, None, TSP_V1, "decode", seq, timing_only=True))
    path = prog.write(tmp / "expand")
    t_lower, asm = timed(lambda: assemble_file(path, stop_after="lower"))
    n = len(asm.ir)
    t_all, asm = timed(lambda: assemble_file(path))
    src_bytes = len(prog.source) + sum(len(t) for t in prog.files.values())
    rows += [
        ("1. layer source generated", f"{t_src:.3f} s", f"{cfg.display_name}, decode, seq {seq}: {src_bytes:,} bytes "
                                                        f"of lasm for {n:,} instructions"),
        ("1. expansion (to IR)", f"{n / t_lower:,.0f}/s", f"{t_lower:.2f} s: parse, macros, lowering"),
        ("1. whole assembly", f"{n / t_all:,.0f}/s", f"{t_all:.2f} s: + schedule, encode (target 2,000,000/s)"),
    ]


def bench_7b(rows) -> None:
    cfg = preset("llama2-7b").with_layers(1)
    built = runner.build(cfg, None, TSP_V1, "decode", 4096, timing_only=True)
    t_run, res = timed(lambda: runner.run_image(built.image, TSP_V1, timing_only=True))
    st = res.result.stats
    n = built.image.instruction_count()
    rows += [
        ("2. Llama-2-7B layer instructions", f"{n:,}", "decode, KV cache of 4096 tokens, timing-only"),
        ("2. Llama-2-7B layer cycles", f"{st.cycles:,}", f"{st.cycles / TSP_V1.clock_hz * 1e6:,.1f} us at "
                                                         f"{TSP_V1.clock_hz / 1e6:g} MHz; MXM "
                                                         f"{100 * st.utilisation('mxm'):.1f}% busy"),
        ("2. Llama-2-7B layer wall", f"{built.seconds_build + built.seconds_assemble + t_run:.1f} s",
         f"build {built.seconds_build:.2f} s, assemble {built.seconds_assemble:.1f} s, timing run {t_run:.1f} s"),
    ]


def bench_demo(rows) -> None:
    cfg = preset("tiny-llama")
    weights = random_weights(cfg, 0)
    inputs = runner.prepare(cfg, weights, "decode", 16)
    built = runner.build(cfg, weights, TSP_V1, "decode", 16, inputs)
    t_sim, res = timed(lambda: runner.run_image(built.image, TSP_V1))
    macs = res.result.stats.macs
    # numpy fp32 on the same shapes: x (1 x in) @ W^T for every weight matrix of every layer
    mats = [np.asarray(weights[n], np.float32) for i in range(cfg.num_hidden_layers)
            for n, s in layer_tensors(cfg, i).items() if len(s) == 2]
    x = [np.ones((1, w.shape[1]), np.float32) for w in mats]
    t_np, _ = best_of(20, lambda: [xi @ w.T for xi, w in zip(x, mats)])
    np_macs = sum(w.size for w in mats)
    sim_rate, np_rate = macs / t_sim, np_macs / t_np
    rows += [
        ("3. demo wall: build", f"{built.seconds_build:.2f} s", f"{cfg.display_name}, 2 layers, decode at position 15"),
        ("3. demo wall: assemble", f"{built.seconds_assemble:.2f} s",
         f"{built.image.instruction_count():,} instructions"),
        ("3. demo wall: simulate", f"{t_sim:.2f} s", f"{res.result.stats.cycles:,} cycles"),
        ("3. simulated MACs/s", f"{sim_rate / 1e6:,.1f} M/s", f"{macs:,} MACs (the MXM computes whole padded tiles)"),
        ("3. numpy fp32 MACs/s", f"{np_rate / 1e6:,.1f} M/s",
         f"{np_macs:,} MACs, same matrices, m = 1; simulator / numpy = {sim_rate / np_rate:.3f}"),
    ]


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="1,2,3", help="which benchmarks (default 1,2,3)")
    ap.add_argument("--preset", default="tinyllama-1.1b", help="model of benchmark 1")
    ap.add_argument("--seq", type=int, default=512, help="positions of benchmark 1")
    args = ap.parse_args()
    which = set(args.only.split(","))
    rows: list = []
    with tempfile.TemporaryDirectory() as tmp:
        if "1" in which:
            bench_expansion(rows, args.preset, args.seq, Path(tmp))
        if "3" in which:
            bench_demo(rows)
        if "2" in which:
            bench_7b(rows)
    print_table(rows)


if __name__ == "__main__":
    main()
