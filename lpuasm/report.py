"""Run reports: the statistics table, JSON, and a Perfetto / Chrome trace."""

from __future__ import annotations

import json

import numpy as np

from . import isa
from .config import ChipConfig
from .program import Program
from .sim import UNIT_KINDS, Stats


def summary(name: str, stats: Stats, config: ChipConfig) -> str:
    ns = stats.cycles / config.clock_hz * 1e9
    return (f"{name}: {stats.cycles} cycles ({_time(ns)} at {config.clock_hz / 1e6:g} MHz), "
            f"{stats.instructions} instructions")


def _time(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.2f} us"
    return f"{ns / 1e6:.3f} ms"


def table(stats: Stats, config: ChipConfig, timing_only: bool = False) -> str:
    """The statistics as an aligned table."""
    lines = [
        f"  cycles              {stats.cycles}",
        f"  time at clock       {_time(stats.cycles / config.clock_hz * 1e9)} ({config.clock_hz / 1e6:g} MHz)",
        f"  instructions        {stats.instructions}",
        "  unit   queues  instructions  busy cycles  utilisation",
    ]
    for u in UNIT_KINDS:
        q = stats.queues_per_unit.get(u, 0)
        n = stats.per_unit.get(u, 0)
        lines.append(f"  {u:<6} {q:>6}  {n:>12}  {stats.busy_cycles(u):>11}  {100 * stats.utilisation(u):>10.2f}%")
    lines += [
        f"  SRAM read           {stats.sram_bytes_read} bytes",
        f"  SRAM written        {stats.sram_bytes_written} bytes",
        f"  MXM MACs            {stats.macs}",
    ]
    if not timing_only:
        lines.append(f"  NaN/Inf results     {stats.nan_inf}")
    rate = stats.instructions / stats.wall_seconds if stats.wall_seconds else 0.0
    lines.append(f"  simulator           {stats.wall_seconds:.3f} s wall, {rate:,.0f} instructions/s"
                 + (" (timing only)" if timing_only else ""))
    return "\n".join(lines)


def to_json(stats: Stats, config: ChipConfig, timing_only: bool = False) -> str:
    d = stats.to_json(config)
    d["chip"] = config.name
    d["timing_only"] = timing_only
    return json.dumps(d, indent=2)


def trace(program: Program, limit: int | None = None) -> dict:
    """Chrome Trace Event JSON (opens in Perfetto): one process for the chip,
    one track per instruction queue, one complete event per issued instruction
    (timestamps in microseconds at the chip clock)."""
    cfg = program.config
    us = 1e6 / cfg.clock_hz
    events = [{"ph": "M", "pid": 0, "name": "process_name", "args": {"name": f"LPU chip ({cfg.name})"}}]
    used = np.unique(program.queue).tolist() if len(program) else []
    for q in used:
        events.append({"ph": "M", "pid": 0, "tid": q, "name": "thread_name",
                       "args": {"name": f"{cfg.unit_of_queue(q)} {cfg.queues[q]}"}})
        events.append({"ph": "M", "pid": 0, "tid": q, "name": "thread_sort_index", "args": {"sort_index": q}})
    n = len(program) if limit is None else min(limit, len(program))
    names = {op: isa.BY_OPCODE[op].mnemonic for op in np.unique(program.op).tolist()}
    cycles, queues, ops = program.cycle[:n].tolist(), program.queue[:n].tolist(), program.op[:n].tolist()
    for i in range(n):
        events.append({"ph": "X", "pid": 0, "tid": queues[i], "name": names[ops[i]],
                       "ts": cycles[i] * us, "dur": us,
                       "args": {"cycle": cycles[i], "instruction": program.text(i), "source": program.source(i)}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"chip": cfg.name, "clock_hz": cfg.clock_hz, "events_truncated": n < len(program)}}
