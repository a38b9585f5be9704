"""The fast interpreter: numpy-vectorised, deterministic, cycle-accurate to
docs/timing-model.md.

:func:`run` analyses the program (:mod:`lpuasm.analysis`), then evaluates it
with the level engine (:mod:`lpuasm.levels`: whole-program dataflow batches)
where it can, else with the cycle engine defined here, which also serves the
debugger's stepping.

The cycle engine: the analysis has already matched every stream sample with its
producer, so no stream registers exist at run time: each instruction's inputs
are read from a ring buffer of produced values.  The program runs in issue order, and all instructions issued in one cycle with the
same opcode and dtypes execute as one batch (one numpy call over a (B, lanes)
array).  Idle cycles cost nothing.  SRAM writes and MXM state changes are
queued and applied once their cycle has passed, so every instruction sees
exactly the state the model says it sees.  MXM products are computed lazily, in
one matrix product per plane for all activations waiting when a result is
first needed.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from . import chip, isa
from . import semantics as sem
from .analysis import Analysis, analyse, error_at
from .levels import LevelEngine
from .levels import supported as levels_supported
from .program import Program
from .sim import RunResult, SimError, Stats, initial_sram
from .units import UnitEngine, group_keys


class Interrupted(Exception):
    """Ctrl-C during a run: carries the statistics so far."""

    def __init__(self, stats: Stats, cycle: int | None):
        super().__init__("interrupted" + (f" at cycle {cycle}" if cycle is not None else ""))
        self.stats, self.cycle = stats, cycle


@dataclass
class _Plane:
    """State of one MXM plane."""

    buffer: list = field(default_factory=list)       # rows of W being loaded
    buffer_dtype: str | None = None
    weights: np.ndarray | None = None                # installed (K, lanes)
    dtype: str | None = None
    version: int = 0                                 # install counter
    installed: bool = False
    pending: list = field(default_factory=list)      # [ready, x, version, weights, product or None]
    acc: dict = field(default_factory=dict)          # accumulator rows


def run(program: Program, *, timing_only: bool = False, allow_uninit: bool = False, strict_fp: bool = False,
        max_cycles: int | None = None, engine_name: str = "auto") -> RunResult:
    """Run *program*; raises SimError on a violation (with ``stats`` so far).
    *engine_name*: "levels" (whole-program dataflow batches, the fast one),
    "cycles" (issue order, one batch per cycle and opcode: also runs gather and
    scatter), or "auto" (levels where it can)."""
    t0 = time.perf_counter()
    a = analyse(program)
    if max_cycles is not None and a.end > max_cycles:
        err = SimError(f"the program needs {a.end} cycles, more than --max-cycles {max_cycles}")
        err.stats = a.stats
        raise err
    if timing_only:
        a.stats.wall_seconds = time.perf_counter() - t0
        return RunResult(program.config, program.image, a.stats, None)
    if not len(program):
        return RunResult(program.config, program.image, a.stats, initial_sram(program.image, program.config)[0])
    engine = LevelEngine(a, allow_uninit, strict_fp) if (engine_name == "levels" or (
        engine_name == "auto" and levels_supported(a))) else _Engine(a, allow_uninit, strict_fp)
    try:
        engine.run()
    except SimError as e:
        e.stats = a.stats
        raise
    except KeyboardInterrupt:
        raise Interrupted(a.stats, getattr(engine, "cycle", None)) from None
    a.stats.nan_inf = engine.nan_inf
    a.stats.wall_seconds = time.perf_counter() - t0
    return RunResult(program.config, program.image, a.stats, engine.sram)


class _Engine(UnitEngine):
    def __init__(self, a: Analysis, allow_uninit: bool, strict_fp: bool):
        p = a.program
        self.a, self.p, self.cfg = a, p, p.config
        self.allow_uninit, self.strict_fp = allow_uninit, strict_fp
        self.sram, self.valid = initial_sram(p.image, self.cfg)
        self.nan_inf = 0
        n = len(p)
        reads, writes = a.reads, a.writes
        # where each row's stream reads and writes start in the tables (sorted by row)
        self.r_start = np.searchsorted(reads.row, np.arange(n))
        self.w_start = np.searchsorted(writes.row, np.arange(n))
        # ring buffer of produced values: a value lives until its last reader issues
        nw = len(writes.row)
        issue = p.cycle[writes.row]
        last = issue.copy()
        if len(reads.row):
            np.maximum.at(last, a.producer, reads.cycle)
        ring = int((np.searchsorted(issue, last, "right") - np.arange(nw)).max()) + 1 if nw else 1
        self.ring = max(ring, 1)
        self.store = np.zeros((self.ring, self.cfg.lanes), dtype=np.uint8)
        self.owner = np.full(self.ring, -1, dtype=np.int64)  # which write each slot holds
        self._keys = None  # group keys, computed on the first run_rows
        self.undo: list | None = None  # the debugger's SRAM undo log, when set
        self.pending_writes: list = []  # heap of (commit, seq, kind, payload)
        self.seq = 0
        self.planes = [_Plane() for _ in range(self.cfg.mxm_planes)]
        self.events: list = []  # heap of (cycle, seq, plane, kind, payload)

    # ---- the main loop ---------------------------------------------------------------
    def run(self) -> None:
        self.run_rows(0, len(self.p))
        self.settle(1 << 62)

    def run_rows(self, start: int, stop: int) -> None:
        """Issue program rows ``start .. stop-1`` (rows before *start* have
        issued): one batch per (cycle, group key), as :meth:`run` does.  The
        debugger (:mod:`lpuasm.repl.core`) stops between any two rows this way."""
        if stop <= start:
            return
        p = self.p
        if self._keys is None:
            self._keys = group_keys(p)
        key = self._keys[start:stop]
        cycle = p.cycle[start:stop]
        order = np.lexsort((key, cycle))
        cyc, k = cycle[order], key[order]
        cut = np.nonzero((cyc[1:] != cyc[:-1]) | (k[1:] != k[:-1]))[0] + 1
        starts = np.concatenate(([0], cut)).tolist()
        ends = np.concatenate((cut, [len(order)])).tolist()
        cycles = cyc[starts].tolist()
        ops = p.op[start:stop][order][starts].tolist()
        order = order + start
        handlers = {op: getattr(self, "_" + isa.BY_OPCODE[op].unit) for op in set(ops)}
        for s, e, t, op in zip(starts, ends, cycles, ops):
            self.cycle = t
            if self.pending_writes and self.pending_writes[0][0] <= t:
                self._commit(t)
            if self.events and self.events[0][0] <= t:
                self._apply_events(t)
            handlers[op](order[s:e], isa.BY_OPCODE[op])

    def settle(self, t: int) -> None:
        """Apply every SRAM write and MXM state change due by cycle *t*."""
        self._commit(t)
        self._apply_events(t)

    def save_state(self) -> dict:
        """Everything but SRAM and its valid mask (which the debugger keeps an
        undo log of): enough to resume from this point with :meth:`load_state`.
        Stored arrays are never modified in place, so shallow copies suffice."""
        return {"store": self.store.copy(), "owner": self.owner.copy(), "pending_writes": list(self.pending_writes),
                "seq": self.seq, "events": list(self.events), "nan_inf": self.nan_inf,
                "cycle": getattr(self, "cycle", 0),
                "planes": [_Plane(list(pl.buffer), pl.buffer_dtype, pl.weights, pl.dtype, pl.version, pl.installed,
                                  [list(e) for e in pl.pending], dict(pl.acc)) for pl in self.planes]}

    def load_state(self, st: dict) -> None:
        """Undo to a :meth:`save_state` point (SRAM is the caller's business)."""
        self.store[...] = st["store"]
        self.owner[...] = st["owner"]
        self.pending_writes, self.events = list(st["pending_writes"]), list(st["events"])
        self.seq, self.nan_inf, self.cycle = st["seq"], st["nan_inf"], st["cycle"]
        self.planes = [_Plane(list(pl.buffer), pl.buffer_dtype, pl.weights, pl.dtype, pl.version, pl.installed,
                              [list(e) for e in pl.pending], dict(pl.acc)) for pl in st["planes"]]

    def state_bytes(self, st: dict) -> int:
        """Rough size of a :meth:`save_state` result (for the debugger's memory budget)."""
        n = st["store"].nbytes + st["owner"].nbytes
        n += sum(e[3].nbytes for e in st["pending_writes"])
        for pl in st["planes"]:
            n += sum(v.nbytes for v in pl.acc.values()) + sum(e[1].nbytes for e in pl.pending)
            n += sum(v.nbytes for v in pl.buffer)
        return n

    def stream_value(self, write: int) -> np.ndarray | None:
        """The byte plane that stream write *write* (an index into the
        analysis' write table) produced, if the ring buffer still holds it."""
        slot = write % self.ring
        return self.store[slot].copy() if self.owner[slot] == write else None

    # ---- operands -------------------------------------------------------------------
    def _inputs(self, rows: np.ndarray) -> np.ndarray:
        """(B, planes, lanes) bytes of every stream the rows sample, in
        operand-then-plane order."""
        a = self.a
        first = self.r_start[rows[0]]
        count = (self.r_start[rows[0] + 1] if rows[0] + 1 < len(self.r_start) else len(a.reads.row)) - first
        if count == 0:
            return np.zeros((len(rows), 0, self.cfg.lanes), np.uint8)
        idx = self.r_start[rows][:, None] + np.arange(count)[None, :]
        return self.store[a.producer[idx] % self.ring]

    def _outputs(self, rows: np.ndarray, planes: np.ndarray) -> None:
        idx = self.w_start[rows][:, None] + np.arange(planes.shape[1])[None, :]
        self.store[idx % self.ring] = planes
        self.owner[idx % self.ring] = idx

    def _violate(self, row: int, cause: str, hint: str | None = None) -> None:
        raise error_at(self.p, row, cause, hint)

    def _mem(self, rows, row) -> None:
        t = self.cycle
        f = self._fields(rows, row)
        code = f["a"]
        h, sl, b, off = (code >> 19) & 1, (code >> 13) & 63, (code >> 12) & 1, code & 0xFFF
        lanes = self.cfg.lanes
        mn = row.mnemonic
        if mn == "read":
            self._check_valid(rows, h, sl, b, off[:, None])
            self._outputs(rows, self.sram[h, sl, b, off][:, None, :])
        elif mn == "write":
            self._queue_write(t + self.a.delay[rows[0]], (h, sl, b, off), self._inputs(rows)[:, 0].copy())
        elif mn == "gather":
            offs = off[:, None] + self._inputs(rows)[:, 0].astype(np.int64)
            self._check_offsets(rows, offs)
            self._check_valid(rows, h, sl, b, offs)
            lane = np.arange(lanes)[None, :]
            vals = self.sram[h[:, None], sl[:, None], b[:, None], offs, lane]
            self._outputs(rows, vals[:, None, :])
        else:  # scatter
            planes = self._inputs(rows)
            offs = off[:, None] + planes[:, 1].astype(np.int64)
            self._check_offsets(rows, offs)
            self._queue_write(t + self.a.delay[rows[0]], (h, sl, b, offs), planes[:, 0].copy())

    def _check_offsets(self, rows, offs) -> None:
        bad = offs >= self.cfg.words_per_bank
        if bad.any():
            i = int(np.nonzero(bad.any(axis=1))[0][0])
            raise error_at(self.p, int(rows[i]), f"{self.p.text(int(rows[i])).split()[0]} offset "
                                                 f"{int(offs[i].max())} leaves the bank")

    def _check_valid(self, rows, h, sl, b, offs) -> None:
        if self.allow_uninit:
            return
        ok = self.valid[h[:, None], sl[:, None], b[:, None], offs]
        if not ok.all():
            i = int(np.nonzero(~ok.all(axis=1))[0][0])
            word = int(offs[i][~ok[i]][0])
            raise error_at(self.p, int(rows[i]), f"uninitialised SRAM read of "
                                                 f"{'E' if h[i] else 'W'}{int(sl[i])}.b{int(b[i])}[{word}]",
                           "nothing was written there and it holds no initial data; "
                           "--allow-uninit reads such words as zeros")

    def _queue_write(self, commit: int, where, values) -> None:
        heapq.heappush(self.pending_writes, (int(commit), self.seq, where, values))
        self.seq += 1

    def _commit(self, t: int) -> None:
        """Apply the SRAM writes that commit by cycle *t*, in order."""
        lanes = np.arange(self.cfg.lanes)[None, :]
        while self.pending_writes and self.pending_writes[0][0] <= t:
            _, _, (h, sl, b, off), values = heapq.heappop(self.pending_writes)
            if off.ndim == 1:
                where = widx = (h, sl, b, off)
            else:  # scatter: lane i of word off[i]
                widx = (h[:, None], sl[:, None], b[:, None], off)
                where = widx + (lanes,)
            if self.undo is not None:
                self.undo.append((where, self.sram[where], widx, self.valid[widx]))
            self.sram[where] = values
            self.valid[widx] = True

    # ---- MXM ----------------------------------------------------------------------------
    def _event(self, cycle: int, plane: int, kind: str, payload=None) -> None:
        # loads before installs in one cycle, else in issue order
        heapq.heappush(self.events, (int(cycle), kind != "append", self.seq, plane, kind, payload))
        self.seq += 1

    def _apply_events(self, t: int) -> None:
        cfg = self.cfg
        while self.events and self.events[0][0] <= t:
            cycle, _, _, p, kind, payload = heapq.heappop(self.events)
            st = self.planes[p]
            if kind == "append":
                dtype, vec, row = payload
                k = chip.mxm_k(cfg, dtype)
                if st.buffer and st.buffer_dtype != dtype:
                    raise error_at(self.p, row, f"dtype mismatch: the weight buffer of mxm{p} holds "
                                                f"{st.buffer_dtype} rows, lw.{dtype} adds {dtype}")
                if len(st.buffer) >= k:
                    raise error_at(self.p, row, f"weight buffer of mxm{p} holds {k} rows already (K = {k})")
                st.buffer.append(vec)
                st.buffer_dtype = dtype
            else:  # install; an empty buffer installs zero weights of no dtype
                dtype = st.buffer_dtype
                if dtype is None:
                    st.weights, st.dtype = None, None
                else:
                    w = np.zeros((chip.mxm_k(cfg, dtype), cfg.lanes), dtype=sem.NP[dtype])
                    w[:len(st.buffer)] = np.stack(st.buffer)
                    st.weights, st.dtype = w, dtype
                st.installed = True
                st.version += 1
                st.buffer, st.buffer_dtype = [], None

    def _mxm(self, rows, row) -> None:
        t = self.cycle
        f = self._fields(rows, row)
        planes = self._inputs(rows)
        cfg = self.cfg
        for i, r in enumerate(rows.tolist()):
            p = int(f["p"][i])
            st = self.planes[p]
            mn = row.mnemonic
            if mn == "iw":
                self._event(t + self.a.delay[r], p, "install")
                continue
            dt = isa.DTYPE_NAMES[int(f["dt"][i])]
            if mn == "lw":
                vec = sem.from_planes(planes[i:i + 1], dt)[0].copy()
                self._event(t + self.a.delay[r], p, "append", (dt, vec, r))
            elif mn == "abc":
                if not st.installed:
                    raise error_at(self.p, r, f"no weights installed on mxm{p}")
                if st.dtype is not None and st.dtype != dt:
                    raise error_at(self.p, r, f"dtype mismatch: mxm{p} holds {st.dtype} weights, "
                                              f"abc.{dt} streams {dt}")
                k = chip.mxm_k(cfg, dt)
                w = st.weights if st.weights is not None else np.zeros((k, cfg.lanes), sem.NP[dt])
                x = sem.from_planes(planes[i:i + 1], dt)[0][:k].copy()
                st.pending.append([t + self.a.delay[r], x, (st.version, dt), w, None, dt])
            else:  # acc
                self._acc(r, p, st, dt, int(f["row"][i]), int(f["mode"][i]), t)

    def _acc(self, r: int, p: int, st: _Plane, dt: str, acc_row: int, mode: int, t: int) -> None:
        if not st.pending or st.pending[0][0] > t:
            raise error_at(self.p, r, f"no product ready on mxm{p}")
        head = st.pending[0]
        wdt = head[5]
        want = "i32" if wdt == "i8" else "f32"
        if dt != want:
            raise error_at(self.p, r, f"acc.{dt} on mxm{p} whose weights are {wdt} (use acc.{want})")
        if acc_row >= self.cfg.mxm_acc_rows:
            raise error_at(self.p, r, f"accumulator row {acc_row} does not exist "
                                      f"(mxm{p} has {self.cfg.mxm_acc_rows})")
        if head[4] is None:
            # one matrix product for every waiting activation that uses the same weights
            batch = [e for e in st.pending if e[4] is None and e[2] == head[2]]
            prod = sem.matmul(np.stack([e[1] for e in batch]), head[3], wdt)
            for e, y in zip(batch, prod):
                e[4] = y
        product = st.pending.pop(0)[4]
        prev = st.acc.get(acc_row)
        with np.errstate(all="ignore"):
            value = product if (mode == 0 or prev is None) else (prev + product).astype(product.dtype)
        st.acc[acc_row] = value
        self._check_fp(np.array([r]), value[None, :])
        self._outputs(np.array([r]), sem.to_planes(value[None, :]))
