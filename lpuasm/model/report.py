"""Text and JSON reports of model builds, runs and checks (lpuasm model ..., lpuasm demo)."""

from __future__ import annotations

from ..config import ChipConfig
from ..sim import UNIT_KINDS
from .capacity import fmt_bytes


def _program_bytes(image) -> int:
    return sum(8 * len(w) for w in image.text.values())


def _data_bytes(image) -> int:
    return sum(0 if d.init is None else d.init.size for d in image.data)


def build_lines(built, chip: ChipConfig, image_bytes: int | None) -> list[str]:
    prog, image = built.program, built.image
    cfg = prog.cfg
    where = (f"prefill of {prog.seq} tokens" if prog.mode == "prefill"
             else f"decode at position {prog.pos} (KV cache of {prog.pos} tokens + the new one)")
    n = image.instruction_count()
    lines = [f"{cfg.display_name}: {cfg.num_hidden_layers} layer{'s' * (cfg.num_hidden_layers != 1)}, {where}, "
             f"chip {chip.name}" + (", timing only (no weights)" if prog.timing_only else ""),
             f"  program      {n:,} instructions ({n // max(cfg.num_hidden_layers, 1):,} per layer), "
             f"{fmt_bytes(_program_bytes(image))} of instruction words"]
    if image_bytes is not None:
        lines.append(f"  image        {fmt_bytes(image_bytes)} ({fmt_bytes(_data_bytes(image))} of SRAM data)")
    if prog.weight_bytes:
        lines.append(f"  weights      {fmt_bytes(prog.weight_bytes)} {prog.dtype}; program / weights = "
                     f"{_program_bytes(image) / prog.weight_bytes:.2f}")
    lines.append(f"  SRAM         {fmt_bytes(prog.plan.used_bytes())} placed of {fmt_bytes(chip.sram_bytes)}"
                 + (" (weights aliased: timing only)" if any(t.aliased for t in prog.plan.tensors.values()) else ""))
    lines.append(f"  build        {built.seconds_build:.2f} s, assemble {built.seconds_assemble:.2f} s "
                 f"({n / max(built.seconds_assemble, 1e-9):,.0f} instructions/s)")
    return lines


def _latency(res, chip: ChipConfig):
    cycles = res.result.stats.cycles
    secs = cycles / chip.clock_hz
    rows = res.meta["MODEL_ROWS"]
    return cycles, secs, rows / secs if secs else 0.0


def run_lines(res, chip: ChipConfig) -> list[str]:
    st = res.result.stats
    cycles, secs, tps = _latency(res, chip)
    per = res.layer_cycles()
    util = ", ".join(f"{u} {100 * st.utilisation(u):.1f}%" for u in UNIT_KINDS if st.per_unit.get(u))
    rows = res.meta["MODEL_ROWS"]
    what = "per token (decode)" if rows == 1 and res.meta["MODEL_POS"] + 1 == res.meta["MODEL_SEQ"] else \
        f"for {rows} tokens (prefill)"
    lines = [f"  cycles       {cycles:,} = {secs * 1e6:,.1f} us at {chip.clock_hz / 1e6:g} MHz",
             "  per layer    " + ", ".join(f"{c:,}" for c in per) + " cycles",
             f"  latency      {secs * 1e6:,.1f} us {what}: {tps:,.0f} tokens/s at the clock",
             f"  utilisation  {util}"]
    if st.macs:
        lines.append(f"  MXM          {st.macs:,} MACs = {2 * st.macs / secs / 1e12:.2f} TFLOP/s at the clock")
    lines.append(f"  simulator    {res.seconds:.2f} s wall ({st.instructions / max(res.seconds, 1e-9):,.0f} "
                 f"instructions/s{', timing only' if not res.hidden else ''})")
    return lines


def run_json(res, chip: ChipConfig) -> dict:
    cycles, secs, tps = _latency(res, chip)
    out = res.result.stats.to_json(chip)
    out.update(meta=res.meta, layer_cycles=res.layer_cycles(), latency_seconds=secs, tokens_per_second=tps,
               wall_seconds=res.seconds)
    return out


def verify_lines(errors, tol: float) -> list[str]:
    lines = [f"  layer {e.layer:<6} max |error| {e.max_abs:.2e}, relative {e.max_rel:.2e}  "
             f"{'ok' if e.max_rel <= tol else 'FAILED'}" for e in errors]
    ok = all(e.max_rel <= tol for e in errors)
    worst = max((e.max_rel for e in errors), default=0.0)
    lines.append(f"  verification {'OK' if ok else 'FAILED'}: max relative error {worst:.2e} "
                 f"(tolerance {tol:g} of each layer's max |value|, against lpuasm.model.reference)")
    return lines


def profile_lines(res, layer: int) -> list[str]:
    """Layer *layer*'s outermost macro calls (its steps) in source order: the
    instructions each issued, its first and last issue cycle, and the cycles its
    last issue adds past every call before it (the layer's critical path)."""
    o = res.outline
    calls = sorted((c for c in o.calls if o.layer.get(c.file) == layer), key=lambda c: (c.line, c.col))
    if not calls:
        return [f"  profile      layer {layer}: no instructions"]
    lines = [f"  profile of layer {layer} (its macro calls; 'adds': cycles past the calls above)",
             f"    {'line':>4}  {'call':<22} {'instructions':>12} {'first':>8} {'last':>8} {'adds':>7}"]
    reach = min(c.first for c in calls)
    for c in calls:
        adds = max(0, c.last - reach)
        reach = max(reach, c.last)
        lines.append(f"    {c.line:>4}  {c.name:<22} {c.count:>12,} {c.first:>8,} {c.last:>8,} {adds:>7,}")
    return lines
