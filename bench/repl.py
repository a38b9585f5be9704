"""REPL benchmark: opening a large program and stepping through it, each
figure next to a baseline measured in the same run.

    python bench/repl.py [--rows R] [--macro]

Program: the generated ``stream`` kernel on tsp-v1 (R rows per slice group,
default 500: 110k issued instructions), or with ``--macro`` a macro-generated
program: lasm source whose ``.for`` loops stream R rows through a VXM chain on
each of 32 slice pairs (R = 700: 112k instructions), opened from its source
file (so "open" includes assembling it).  Figures: time to open it in the
debugger (load, analyse, first snapshot) against the whole-program analysis
alone; ``step`` and ``back 1`` latency (targets: under 100 ms per step, under
2 s to open) against the time per instruction of the whole program run by
``interp.run`` (the levels engine) and by the cycle engine the debugger steps;
``continue`` to the first change of a watchpoint on one output word against a
plain ``goto`` to the same cycle (the watchpoint is checked only at the cycles a
write to its words commits).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import common  # noqa: E402
from lpuasm import config, kernels  # noqa: E402
from lpuasm.analysis import analyse  # noqa: E402
from lpuasm.interp import run  # noqa: E402
from lpuasm.program import load_program  # noqa: E402
from lpuasm.repl.core import Debugger  # noqa: E402


def macro_source(rows: int, folder: Path) -> str:
    """32 `.for` loops, one per slice pair: read a row, scale, shift, relu, write
    (inputs in .npy files beside the source)."""
    import numpy as np

    lines = [".chip tsp-v1", f".equ ROWS, {rows}"]
    rng = np.random.default_rng(0)
    for k in range(32):
        np.save(folder / f"x{k}.npy", rng.integers(-40, 40, size=(rows, 320), dtype=np.int8))
        lines += [f'.npy   x{k}, W{k}.b0[0], "x{k}.npy"', f".space y{k}, E{k}.b1[0], i8, ROWS"]
    lines.append(".macro stage x, y, s, a")
    lines += ["    .for r, 0, ROWS",
              "        read     x[r], stream(s, e)",
              "        vmul.i8  stream(s, e), 3, stream(s, e), alu(a)",
              "        vsub.i8  stream(s, e), 2, stream(s, e), alu(a)",
              "        vrelu.i8 stream(s, e), stream(s, e), alu(a)",
              "        write    stream(s, e), y[r]",
              "    .endfor",
              ".endm"]
    lines += [f"    stage x{k}, y{k}, {k}, {k % 16}" for k in range(32)]
    lines.append("    halt")
    return "\n".join(lines) + "\n"


def timed(fn) -> float:
    return common.timed(fn)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--macro", action="store_true", help="a macro-generated program, opened from source")
    args = ap.parse_args(argv)
    cfg = config.TSP_V1
    source = None
    if args.macro:
        import tempfile

        from lpuasm.assembler import assemble_file

        source = Path(tempfile.mkdtemp()) / "macro_stream.lasm"
        source.write_text(macro_source(args.rows or 700, source.parent))
        t0 = time.perf_counter()
        image = assemble_file(source).image
        t_asm = time.perf_counter() - t0
        what = f"macro-generated program ({source.name}), assembled in {t_asm:.2f} s"
    else:
        k = kernels.build("stream", cfg, rows=args.rows or 500)
        image = kernels.assemble_ir(k.ir, check=False)
        what = "stream kernel"
    program = load_program(image, cfg)
    n = len(program)
    print(f"program: {what} on {cfg.name}, {n} instructions")

    t_analyse = timed(lambda: analyse(program))
    t_levels = timed(lambda: run(program))
    t_cycles = timed(lambda: run(program, engine_name="cycles"))
    d = Debugger()
    if source is not None:
        t_open = timed(lambda: d.load(str(source)))
    else:
        t_open = timed(lambda: d.load_image(image, cfg, name="stream"))
    print(f"baseline: analyse {t_analyse:.3f} s; whole run: levels engine {t_levels:.3f} s "
          f"({t_levels / n * 1e6:.2f} us/instr), cycle engine {t_cycles:.3f} s ({t_cycles / n * 1e6:.2f} us/instr)")
    print(f"open:      {t_open:.3f} s  ({t_open / t_analyse:.1f}x analyse; target < 2 s)")

    d.goto(program.cycle[n // 2])
    steps = [timed(lambda: d.step()) for _ in range(200)]
    backs = [timed(lambda: d.back()) for _ in range(50)]
    t_step100 = timed(lambda: d.step(100))
    t_cont = timed(lambda: d.cont())
    med_step, med_back = statistics.median(steps), statistics.median(backs)
    print(f"step:      median {med_step * 1e3:.2f} ms, max {max(steps) * 1e3:.2f} ms "
          f"({med_step / (t_cycles / n):.0f}x one instruction of the whole cycle-engine run; target < 100 ms)")
    print(f"back 1:    median {med_back * 1e3:.2f} ms, max {max(backs) * 1e3:.2f} ms "
          f"(snapshots every {d.snapshot_every} rows)")
    print(f"step 100:  {t_step100 * 1e3:.2f} ms")
    print(f"continue to the end from the middle: {t_cont:.3f} s "
          f"({t_cont / (t_cycles / 2):.2f}x half the cycle-engine run)")
    print(f"history:   {len(d.snaps)} snapshots, {d.history_size() / 2**20:.1f} MiB")

    # a watchpoint on one word of the output: checked only where a write to it commits
    d.reset()
    out = image.data[-1]
    t_watch_set = timed(lambda: d.add_watchpoint(f"{out.name}[0]"))
    w = d.watchpoints[-1]
    t_watch = timed(lambda: d.cont())
    hit = d.cycle
    d.delete([])
    d.reset()
    t_goto = timed(lambda: d.goto(hit))
    print(f"watch:     set {t_watch_set * 1e3:.1f} ms ({len(w.events)} commit cycles to check, of {d.analysis.end}); "
          f"continue to its first change (cycle {hit}): {t_watch * 1e3:.1f} ms "
          f"(baseline: goto there with no watchpoint {t_goto * 1e3:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
