"""Timing analysis: the whole schedule checked at once, with numpy.

For every issued instruction it works out, without simulating values, where it
sits, which streams it samples and writes and when, which SRAM ports it uses and
when its effects happen; it then matches every stream sample with the write
whose value passes there at that cycle (docs/timing-model.md, "Positions and
streams").  The result serves three purposes:

* timing-only runs: cycles and statistics for programs too large to simulate;
* the fast interpreter: each input of each instruction comes from a known
  producer, so no stream registers are simulated at run time;
* diagnostics: the first violation in time, located at its instruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import chip, isa
from .ir import fields_of as ir_fields_of
from .program import Program
from .sim import UNIT_KINDS, SimError, Stats

# bytes of a dtype, indexed by dtype code (0 = none)
_BYTES = np.array([0, 1, 2, 4, 2, 4, 0, 0], dtype=np.int64)
_UNIT_INDEX = {u: i for i, u in enumerate(UNIT_KINDS)}
_MEM_READS = {isa.TABLE[m].opcode for m in ("read", "gather")}
_MEM_WRITES = {isa.TABLE[m].opcode for m in ("write", "scatter")}
_ABC = isa.TABLE["abc"].opcode
_HALT = isa.TABLE["halt"].opcode
PSPAN = 256  # positions fit in 8 bits (at most 2 * 64 + 5)


def fields_of(program: Program, opcode: int, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every field of the rows *rows* (all of opcode *opcode*), as int64 arrays."""
    return ir_fields_of(program.word[rows], isa.BY_OPCODE[opcode])


@dataclass
class StreamTable:
    """One row per byte stream sampled or written: the instruction row, which
    operand (index into chip.STREAM_INPUTS/OUTPUTS of its mnemonic) and plane,
    the stream (direction, index), position and cycle."""

    row: np.ndarray
    operand: np.ndarray
    plane: np.ndarray
    direction: np.ndarray
    index: np.ndarray
    position: np.ndarray
    cycle: np.ndarray

    @staticmethod
    def build(parts: list[tuple], n: int) -> "StreamTable":
        """One table from per-(opcode, operand) parts given in operand order,
        laid out by (row, operand, plane) without sorting: each entry goes to
        its row's start plus the entries of the row placed before it."""
        if not parts:
            z = np.zeros(0, np.int64)
            return StreamTable(z, z, z, z, z, z, z)
        counts = np.zeros(n, dtype=np.int64)
        for part in parts:
            counts += np.bincount(part[0], minlength=n)
        start = np.cumsum(counts) - counts
        filled = np.zeros(n, dtype=np.int64)
        total = int(counts.sum())
        cols = [np.empty(total, dtype=np.int64) for _ in range(7)]
        for part in parts:
            r, plane = part[0], part[2]
            dest = start[r] + filled[r] + plane
            for col, values in zip(cols, part):
                col[dest] = values
            filled += np.bincount(r, minlength=n)
        return StreamTable(*cols)


@dataclass
class Analysis:
    program: Program
    position: np.ndarray  # per row, -1 for ICU rows
    delay: np.ndarray     # per row: issue -> effect
    unit: np.ndarray      # per row: index into UNIT_KINDS
    fields: dict          # opcode -> (rows, {field: values})
    reads: StreamTable    # sorted by (row, operand, plane)
    writes: StreamTable   # sorted by (row, operand, plane)
    producer: np.ndarray  # per read: index into writes
    end: int              # cycles of the run
    stats: Stats


def analyse(program: Program, check: bool = True) -> Analysis:
    """Analyse *program*; with *check*, raise SimError at the first violation."""
    cfg = program.config
    geo = chip.Geometry(cfg)
    n = len(program)
    qpos = np.array([geo.queue_position(q) if geo.queue_position(q) is not None else -1
                     for q in range(len(cfg.queues))], dtype=np.int64)
    qunit = np.array([_UNIT_INDEX[cfg.unit_of_queue(q)] for q in range(len(cfg.queues))], dtype=np.int64)
    position = qpos[program.queue] if n else np.zeros(0, np.int64)
    unit = qunit[program.queue] if n else np.zeros(0, np.int64)
    delay = np.zeros(n, dtype=np.int64)
    fields: dict[int, tuple[np.ndarray, dict]] = {}
    rparts, wparts = [], []
    for opcode in np.unique(program.op).tolist():
        rows = np.nonzero(program.op == opcode)[0]
        row = isa.BY_OPCODE[opcode]
        f = fields_of(program, opcode, rows)
        fields[opcode] = (rows, f)
        delay[rows] = chip.delay(cfg, row)
        for slot, name in enumerate(chip.STREAM_INPUTS.get(row.mnemonic, ())):
            sel = np.ones(len(rows), bool)
            if name == "b":
                sel = (f[name] & isa.SRC_IMMEDIATE) == 0
            rparts.append(_planes(row, name, slot, rows[sel], {k: v[sel] for k, v in f.items()},
                                  position, program.cycle, 0))
        for slot, name in enumerate(chip.STREAM_OUTPUTS.get(row.mnemonic, ())):
            wparts.append(_planes(row, name, slot, rows, f, position, program.cycle, chip.delay(cfg, row)))
    reads = StreamTable.build(rparts, n)
    writes = StreamTable.build(wparts, n)
    effect = program.cycle + delay
    halt_rows = np.nonzero(program.op == _HALT)[0]
    last_effect = int(effect.max()) if n else -1
    end_cycle = int(program.cycle[halt_rows[0]]) if len(halt_rows) else last_effect
    end = (end_cycle + 1 + cfg.superlanes - 1) if n else 0
    producer, write_keys = _match(reads, writes)
    stats = _stats(program, unit, fields, end)
    a = Analysis(program, position, delay, unit, fields, reads, writes, producer, end, stats)
    if check:
        _check(a, halt_rows, effect, write_keys)
    return a


def _planes(row, name, slot, rows, f, position, cycle, delay):
    """Expand operand *name* of *rows* into one entry per byte stream of its group."""
    code = f[name] & 63
    if row.mnemonic == "transpose":
        g = np.full(len(rows), 16)
    elif row.mnemonic == "permute" and name == "map":
        g = np.full(len(rows), 2)
    elif row.unit in ("vxm", "mxm") and row.dtypes:
        key = "dt2" if (row.mnemonic == "vcvt" and name == "d") else "dt"
        g = _BYTES[f[key]]
    else:
        g = np.ones(len(rows), dtype=np.int64)
    total = int(g.sum())
    rep = np.repeat(np.arange(len(rows)), g)
    plane = np.arange(total) - np.repeat(np.cumsum(g) - g, g)
    r = rows[rep]
    return (r, np.full(total, slot), plane, code[rep] >> 5, (code[rep] & 31) + plane, position[r], cycle[r] + delay)


def _keys(t: StreamTable, base: int) -> np.ndarray:
    """(stream, diagonal, position) packed into one sortable int64.  The
    diagonal is constant along a value's path: cycle - position going east,
    cycle + position going west."""
    diag = np.where(t.direction == 0, t.cycle - t.position, t.cycle + t.position) + PSPAN
    sid = t.direction * 32 + t.index
    return (sid * base + diag) * PSPAN + t.position


def _match(reads: StreamTable, writes: StreamTable) -> tuple[np.ndarray, np.ndarray]:
    """For each read, the index of the write whose value passes it, or -1; and
    the writes' keys in sorted order (for the duplicate check)."""
    top = max(int(reads.cycle.max()) if len(reads.row) else 0, int(writes.cycle.max()) if len(writes.row) else 0)
    base = top + 2 * PSPAN + 1
    wk = _keys(writes, base)
    order = np.argsort(wk, kind="stable")  # stable: of two writes on one slot, the first is kept
    ks = wk[order]
    if not len(reads.row):
        return np.zeros(0, np.int64), ks
    rk = _keys(reads, base)
    east = reads.direction == 0
    cand = np.where(east, np.searchsorted(ks, rk, "right") - 1, np.searchsorted(ks, rk, "left"))
    ok = (cand >= 0) & (cand < len(ks))
    safe = np.clip(cand, 0, max(len(ks) - 1, 0))
    if len(ks):
        ok &= (ks[safe] // PSPAN) == (rk // PSPAN)
        return np.where(ok, order[safe], -1), ks
    return np.full(len(rk), -1, dtype=np.int64), ks


def _stats(program: Program, unit: np.ndarray, fields: dict, end: int) -> Stats:
    cfg = program.config
    st = Stats(cycles=end, instructions=len(program))
    counts = np.bincount(unit, minlength=len(UNIT_KINDS)) if len(unit) else np.zeros(len(UNIT_KINDS), int)
    st.per_unit = {u: int(counts[i]) for i, u in enumerate(UNIT_KINDS)}
    busy = counts.copy()
    if len(unit):  # co-issued MEM pairs share a queue-cycle
        key = program.queue.astype(np.int64) * (int(program.cycle.max()) + 1) + program.cycle
        first = np.ones(len(key), bool)
        first[1:] = key[1:] != key[:-1]  # rows are in (cycle, queue) order: a pair is adjacent
        busy = np.bincount(unit[first], minlength=len(UNIT_KINDS))
    st.busy = {u: int(busy[i]) for i, u in enumerate(UNIT_KINDS)}
    st.queues_per_unit = {u: 0 for u in UNIT_KINDS}
    for q in range(len(cfg.queues)):
        st.queues_per_unit[cfg.unit_of_queue(q)] += 1
    mem_r = sum(len(fields[o][0]) for o in _MEM_READS if o in fields)
    mem_w = sum(len(fields[o][0]) for o in _MEM_WRITES if o in fields)
    st.sram_bytes_read = mem_r * cfg.lanes
    st.sram_bytes_written = mem_w * cfg.lanes
    if _ABC in fields:
        dts = fields[_ABC][1]["dt"]
        st.macs = int(np.sum(np.where(dts == isa.DTYPES["i8"], cfg.lanes, cfg.lanes // 2))) * cfg.lanes
    return st


# ---- violations -------------------------------------------------------------------------
def _check(a: Analysis, halt_rows: np.ndarray, effect: np.ndarray, write_keys: np.ndarray) -> None:
    """Raise the earliest violation (by cycle) among all kinds found."""
    found: list[tuple[int, int, str]] = []  # (cycle, row, cause)
    p, geo = a.program, chip.Geometry(a.program.config)
    bad = np.nonzero(a.producer < 0)[0]
    if len(bad):
        i = int(bad[np.argmin(a.reads.cycle[bad])])
        found.append((int(a.reads.cycle[i]), int(a.reads.row[i]), _no_value(a, i, geo)))
    if len(write_keys) > 1 and (write_keys[1:] == write_keys[:-1]).any():
        w = a.writes
        key = _keys(w, int(max(w.cycle.max(), a.reads.cycle.max() if len(a.reads.row) else 0)) + 2 * PSPAN + 1)
        order = np.argsort(key, kind="stable")
        dup = np.nonzero(key[order][1:] == key[order][:-1])[0]
        j = int(order[dup[np.argmin(w.cycle[order[dup + 1]])] + 1])
        found.append((int(w.cycle[j]), int(w.row[j]),
                      f"two producers write stream {_sname(w.direction[j], w.index[j])} at "
                      f"{geo.position_name(int(w.position[j]))} at cycle {int(w.cycle[j])}"))
    found += _port_conflicts(a, geo)
    if len(halt_rows) > 0:
        h = int(p.cycle[halt_rows[0]])
        late = np.nonzero(effect > h)[0]
        if len(late):
            i = int(late[np.argmin(effect[late])])
            found.append((int(p.cycle[i]), i, f"effect at cycle {int(effect[i])} after halt at cycle {h}"))
    if found:
        cycle, row, cause = min(found)
        raise error_at(p, row, cause)


def error_at(p: Program, row: int, cause: str, hint: str | None = None) -> SimError:
    """A SimError located at program row *row*."""
    from .syntax import Span

    cfg = p.config
    q = int(p.queue[row])
    sm = p.image.srcmap
    span = None
    r = int(p.srcrow[row])
    if 0 <= r < len(sm.line):
        col = int(sm.col[r])
        span = Span(sm.files[int(sm.file[r])], int(sm.line[r]), col, col + 1)
    return SimError(cause, cycle=int(p.cycle[row]), queue=cfg.queues[q], unit=cfg.unit_of_queue(q),
                    text=p.text(row), source=p.source(row), span=span, hint=hint)


def _sname(direction, index) -> str:
    return f"s{int(index)}{'w' if direction else 'e'}"


def _no_value(a: Analysis, i: int, geo: chip.Geometry) -> str:
    r, w = a.reads, a.writes
    d, idx, x, c = int(r.direction[i]), int(r.index[i]), int(r.position[i]), int(r.cycle[i])
    same = (w.direction == d) & (w.index == idx) & ((w.position <= x) if d == 0 else (w.position >= x))
    passing = w.cycle[same] + np.abs(x - w.position[same])
    before = passing[passing < c]
    tail = f"; it last passed at cycle {int(before.max())}" if len(before) else "; nothing has passed there yet"
    return f"no value passes {geo.position_name(x)} on stream {_sname(d, idx)} at cycle {c}{tail}"


def _port_conflicts(a: Analysis, geo: chip.Geometry) -> list:
    """At most one SRAM read and one write per slice per cycle, on different banks."""
    p = a.program
    events = []  # (slice id, cycle, bank, is_write, row)
    for opcodes, is_write in ((_MEM_READS, 0), (_MEM_WRITES, 1)):
        for o in opcodes:
            if o not in a.fields:
                continue
            rows, f = a.fields[o]
            code = f["a"]
            sid = (code >> 19) * 64 + ((code >> 13) & 63)
            cyc = p.cycle[rows] + (a.delay[rows] if is_write else 0)
            events.append((sid, cyc, (code >> 12) & 1, np.full(len(rows), is_write), rows))
    if not events:
        return []
    sid, cyc, bank, isw, rows = (np.concatenate(c) for c in zip(*events))
    out = []
    key = (sid * 2 + isw) * (int(cyc.max()) + 1) + cyc
    order = np.lexsort((rows, key))  # the later-issued of two is blamed
    dup = np.nonzero(key[order][1:] == key[order][:-1])[0]
    if len(dup):
        j = int(order[dup[0] + 1])
        what = "two writes" if isw[j] else "two reads"
        out.append((int(cyc[j]), int(rows[j]), f"bank-port conflict on slice {_slice_name(int(sid[j]))}: "
                                               f"{what} at cycle {int(cyc[j])}"))
    # a read and a write in one cycle must use different banks
    rkey = sid * (int(cyc.max()) + 1) + cyc
    reads = isw == 0
    common, ri, wi = np.intersect1d(rkey[reads], rkey[~reads], return_indices=True)
    if len(common):
        rb, wb = bank[reads][ri], bank[~reads][wi]
        same = np.nonzero(rb == wb)[0]
        if len(same):
            j = int(np.nonzero(reads)[0][ri[same[0]]])
            out.append((int(cyc[j]), int(rows[j]), f"bank-port conflict on slice {_slice_name(int(sid[j]))}: "
                                                   f"a read and a write on bank {int(bank[j])} at cycle {int(cyc[j])}"))
    return out


def _slice_name(sid: int) -> str:
    return f"{'E' if sid >= 64 else 'W'}{sid % 64}"
