"""``lpuasm demo``: a small Llama-style model, end to end on the simulated chip.

It builds a transformer with random weights (the ``tiny-llama`` preset by
default: hidden 256, 4 heads with 2 KV heads, FFN 688, 2 layers) as one fully
unrolled program from the stdlib macros (lpuasm.model.build), assembles it,
writes the image and loads it back with every check, runs it on the simulated
``tsp-v1`` chip, runs the independent numpy forward pass
(lpuasm.model.reference) on the same tokens, and compares every layer.
With ``--roundtrip`` it also disassembles the image and re-assembles the text
(byte-identical; ~25 s for the default model, whose 11 MiB of SRAM data become
base64 ``.blob`` lines).  The report: instructions, image and weight sizes,
cycles per layer, latency per token, tokens/s at the clock, unit utilisation,
the error per layer.

Decode (the default) runs one new token at position seq-1 after a KV cache of
the earlier tokens (computed on the host by the reference and laid into SRAM);
prefill runs seq tokens from an empty cache.  Everything goes through the same
API as ``lpuasm model build/run/verify`` (lpuasm.model.runner).
"""

from __future__ import annotations

import sys
import time

from . import imagefile
from .config import TSP_V1, ChipConfig
from .diagnostics import LpuError

DEFAULT_PRESET = "tiny-llama"


def _step(out, n: int, total: int, text: str, t0: float) -> None:
    print(f"[{n}/{total}] {text} ({time.perf_counter() - t0:.2f} s)", file=out, flush=True)


def run_demo(config: ChipConfig | None, seq: int = 16, mode: str | None = None, layers: int | None = None,
             keep: str | None = None, preset_name: str = DEFAULT_PRESET, roundtrip: bool = False) -> int:
    from .assembler import assemble
    from .disasm import disassemble
    from .model import runner
    from .model.checkpoint import random_weights
    from .model.config import preset
    from .model.report import build_lines, run_lines, verify_lines

    from .model.build import check_chip

    chip = config or TSP_V1
    check_chip(chip)
    if seq < 1:
        raise LpuError(f"--seq must be at least 1, got {seq}")
    if layers is not None and layers < 1:
        raise LpuError(f"--layers must be at least 1, got {layers}")
    out = sys.stdout
    from .model.config import PRESETS

    if preset_name.lower() not in PRESETS:
        from .diagnostics import did_you_mean

        hint = did_you_mean(preset_name, PRESETS)
        raise LpuError(f"unknown model preset '{preset_name}'" + (f"; {hint}" if hint else ""))
    cfg = preset(preset_name)
    mode = mode or ("prefill" if cfg.arch == "bert" else "decode")
    if layers is not None:
        cfg = cfg.with_layers(layers)
    total = 6 if roundtrip else 5
    t_all = t0 = time.perf_counter()
    from .model.capacity import estimate

    cap = estimate(cfg, chip=chip, mode=mode, seq=seq, lm_head_on_chip=False)
    if not cap.fits:
        raise LpuError(cap.message() + "; try lpuasm model build --timing-only")
    weights = random_weights(cfg, seed=0)
    inputs = runner.prepare(cfg, weights, mode, seq, seed=0)
    nl = cfg.num_hidden_layers
    _step(out, 1, total, f"{cfg.display_name}: random weights ({nl} layer{'s' * (nl != 1)}, hidden "
                         f"{cfg.hidden_size}, {cfg.num_attention_heads} heads / {cfg.num_key_value_heads} KV heads, "
                         f"FFN {cfg.intermediate_size}), {mode} of {seq} tokens", t0)
    t0 = time.perf_counter()
    built = runner.build(cfg, weights, chip, mode, seq, inputs, source_dir=keep)
    n = built.image.instruction_count()
    _step(out, 2, total, f"built the program from the stdlib macros and assembled it: {n:,} instructions", t0)
    t0 = time.perf_counter()
    blob = imagefile.to_bytes(built.image, chip)
    image = imagefile.from_bytes(blob, chip, "model.lpu")
    if keep:
        from pathlib import Path

        (Path(keep) / "model.lpu").write_bytes(blob)
    _step(out, 3, total, f"wrote and reloaded a {len(blob):,}-byte image", t0)
    t0 = time.perf_counter()
    res = runner.run_image(image, chip)
    _step(out, 4, total, f"simulated {res.result.stats.cycles:,} cycles on {chip.name}", t0)
    t0 = time.perf_counter()
    errors = runner.compare(res.hidden, runner.reference_layers(cfg, weights, inputs, mode))
    ok = all(e.ok for e in errors)
    worst = max(e.max_rel for e in errors)
    _step(out, 5, total, f"numpy reference forward pass: max relative error {worst:.1e} "
                         f"({'within' if ok else 'BEYOND'} {runner.TOLERANCE:g})", t0)
    if roundtrip:
        t0 = time.perf_counter()
        text = disassemble(image, chip, "model.lpu")
        again = imagefile.to_bytes(assemble(text, "model.dis.lasm", config=chip).image, chip)
        same = again == blob
        ok &= same
        _step(out, 6, total, f"disassembled ({text.count(chr(10)):,} lines) and re-assembled: "
                             f"{'byte-identical' if same else 'DIFFERENT'}", t0)
    print(file=out)
    for line in build_lines(built, chip, len(blob)) + run_lines(res, chip) + verify_lines(errors, runner.TOLERANCE):
        print(line, file=out)
    print(f"  wall         {time.perf_counter() - t_all:.1f} s in all", file=out)
    return 0 if ok else 1
