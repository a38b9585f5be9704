"""Scheduling periodic runs of rows at once: the result of the row-by-row pass
of :mod:`lpuasm.schedule`, without running it on every row.

A ``.for`` loop lowers to a *run*: rows ``s .. e - 1`` where row ``r + P``
looks exactly like row ``r`` to the scheduler (the same decoded word, SRAM
word offsets aside, the same queue, no pin, no ``repeat``, one cycle of its
queue).  Placing one period (P rows) of such a run is a function of the
scheduler's state, and the pass is *equivariant* under a shift: add T cycles
to every cycle and P to every row of the part of the state a period looks at,
and the period does the same thing T cycles and P rows later.

So: place a period B normally but *traced* (every state container wrapped so
that each key it touches is recorded, with its value at the first touch,
``before``, and at the end of the period, ``after``), with the previous
period A as its "window".  Let T be the shift of B against A.  Period B + j
(j = 1 .. N) then behaves exactly like B shifted by j periods if, for every
container (key shift D: T cycles of its key for the occupancy tables, P for
the per-row ones, 0 for the per-queue/stream/plane "registers") and every
touched key x, with m(x) the least m >= 1 such that x + mD was touched too:

* C0: for 1 <= j < min(m(x), N + 1), the state now (after B) at x + jD is
  ``before(x)`` shifted by j periods (nothing else lies there: for the
  occupancy tables, usually no entry at all);
* CA: if m(x) <= N, ``after(x + m(x)D)`` is ``before(x)`` shifted by m(x)
  periods (a register, D = 0: ``after(x)`` is ``before(x)`` shifted by one);

(by induction on j: the first touch of every key in period B + j sees the
shifted value of its first touch in B, so the period takes the same branches
and writes the shifted values), and every row that a touched key or value
names lies in A or B (so the rows B + j names are structurally the rows B
names), B reported nothing, and the few reads that are not plain state are
checked for every j: the words of the MEM read/write pairs tested for a
hazard, the products of an MXM plane taken by ``acc`` (the same shift, or
still not the binding bound), the install cycle an ``abc`` waits for (never
binding in B, so never later).  The halt bookkeeping (maxima over every
issue and effect) decides nothing before the ``halt``: B computes its own
maxima, and period j's are B's plus j * T.  N is the largest number of
periods for which all of this holds (at most the periods left in the run).
The checks only read the keys B touched and their shifts: C0 looks up
x + jD only up to the highest key of the lane (kept by the scheduler).

Those periods are then written into the state directly (cycles, occupancy,
...), period by period, each key B modified as ``after`` shifted, except what
no later row can look at: the bookkeeping that only matters while a row is
the last of its queue (``consumed``, ``more_users``, ``inputs_of``: the last
period only), and the occupancy entries below :func:`entry_floor` (every
later access to a port or stream slot of a queue is at or after the queue's
floor, its free cycle less one or its one movable row; a path entry only
matters to values written upstream of it, a value in use only to writes
along its path).  Where the checks fail (a transient, another loop's values
in the way, two chains at different rates), periods are placed one by one as
before, and a later period is tried as B again (after 1, 2, 4, ... periods,
and only once the last two periods look alike).

The differential tests (a frozen copy of the row-by-row scheduler against
this one, final state included) and :data:`ENABLED` are the safety net; the
argument above is why they hold.
"""

from __future__ import annotations

import functools
from operator import itemgetter

import numpy as np

from .ir import PIN_NONE

#: a run needs this many periods, and rows, for the fast path to be tried
MIN_PERIODS = 6
MIN_ROWS = 24
#: periods placed row by row before the first template (the transient)
WARMUP = 2
#: a template is only worth it (it costs about as much as placing this many
#: rows one by one) when at least this many rows could follow it
MIN_GAIN = 96
#: set False to place every row one by one (tests compare the two)
ENABLED = True

_NEG = -(1 << 62)
_HIGH = 1 << 62
_ABSENT = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()
_first = itemgetter(0)

stats = {"runs": 0, "templates": 0, "periods": 0, "rows": 0}


def place_all(s) -> None:
    """Place every row of scheduler *s*, runs by the fast path."""
    runs = find_runs(s) if ENABLED and s.n >= MIN_ROWS else []
    i = 0
    for start, end, period in runs:
        if start < i:
            start += -(-(i - start) // period) * period
        nper = (end - start) // period
        if nper < MIN_PERIODS or (nper - max(1, WARMUP) - 1) * period < MIN_GAIN:
            continue
        s.place_rows(i, start)
        i = _run(s, start, end, period)
    s.place_rows(i, s.n)


# ---- finding runs ---------------------------------------------------------------------------
def find_runs(s) -> list[tuple[int, int, int]]:
    """Maximal (start, end, P): rows start .. end - 1 where every row from
    start + P on is structurally the row P before it (decoded word up to SRAM
    word offsets, queue; unpinned, not repeated, a one-cycle row of a kind the
    fast path takes)."""
    from .schedule import _K_ABC, _K_ACC, _K_LW, _K_PLAIN

    n = s.n
    classes: dict[tuple, int] = {}
    tcls = np.empty(len(s.table), dtype=np.int64)
    for k, d in enumerate(s.table):
        if d.kind in (_K_PLAIN, _K_LW, _K_ABC, _K_ACC):
            key = (d.kind, d.inputs, d.outputs, d.delay, d.pos, d.port, d.bank, d.plane, d.n, d.d)
            tcls[k] = classes.setdefault(key, len(classes))
        else:
            tcls[k] = -1
    cls = tcls[s.dec_index]
    ir = s.ir
    ok = (cls >= 0) & (ir.pin_kind == PIN_NONE) & (s.dur == 1)
    if s.rep_of:
        ok[np.fromiter(s.rep_of.keys(), dtype=np.int64)] = False
    nq = len(s.cfg.queues)
    idx = np.nonzero(ok)[0]
    sig = cls[idx] * nq + ir.queue[idx].astype(np.int64)
    order = np.argsort(sig, kind="stable")
    ss = sig[order]
    same = ss[1:] == ss[:-1]
    dist = np.zeros(n, dtype=np.int64)      # rows back to the previous row of the same signature
    rows = idx[order]
    dist[rows[1:][same]] = rows[1:][same] - rows[:-1][same]
    # segments of one distance P > 0: rows whose match is P rows back
    change = np.nonzero(np.diff(dist) != 0)[0] + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    p = dist[starts]
    keep = (p > 0) & (ends - starts >= p * (MIN_PERIODS - 1)) & (ends - starts + p >= MIN_ROWS)
    return [(a - q, b, q) for a, b, q in zip(starts[keep].tolist(), ends[keep].tolist(), p[keep].tolist())]


# ---- one run ----------------------------------------------------------------------------------
def _run(s, start: int, end: int, period: int) -> int:
    """Place the whole periods of run *start* .. *end* - 1; returns the first row
    not placed."""
    stats["runs"] += 1
    i = start + max(1, WARMUP) * period       # at least one period before a template: its window
    s.place_rows(start, i)
    fails = 0
    cycles = s.cycles
    while (end - i) // period >= 3 and ((end - i) // period - 1) * period >= MIN_GAIN // 2:
        left = (end - i) // period - 1        # periods after the template
        # a template only if the last two periods look alike (all rows T later)
        t = cycles[i - 1] - cycles[i - 1 - period]
        if t >= 1 and all(cycles[r] - cycles[r - period] == t for r in range(i - period, i - 1)):
            n = _template(s, i, period, left)
            i += period * (n + 1)
            if n:
                fails = 0
                continue
        fails += 1
        wait = min(1 << fails, (end - i) // period)
        s.place_rows(i, i + wait * period)
        i += wait * period
    return i


# ---- tracing ------------------------------------------------------------------------------------
class _TDict:
    """A dict that records the value of each key at its first touch (in
    *before*; lists copied when *copy*)."""

    __slots__ = ("d", "before", "copy")

    def __init__(self, d, copy: bool, before: dict | None = None) -> None:
        self.d = d
        self.before: dict = {} if before is None else before
        self.copy = copy

    def _t(self, k) -> None:
        b = self.before
        if k not in b:
            v = self.d.get(k, _ABSENT)
            b[k] = list(v) if self.copy and type(v) is list else v

    def get(self, k, default=None):
        self._t(k)
        return self.d.get(k, default)

    def __contains__(self, k) -> bool:
        self._t(k)
        return k in self.d

    def __getitem__(self, k):
        self._t(k)
        return self.d[k]

    def __setitem__(self, k, v) -> None:
        self._t(k)
        self.d[k] = v

    def __delitem__(self, k) -> None:
        self._t(k)
        del self.d[k]

    def setdefault(self, k, v):
        self._t(k)
        return self.d.setdefault(k, v)

    def pop(self, k, *default):
        self._t(k)
        return self.d.pop(k, *default)


class _TLanes:
    """An occupancy table (a list of per-lane dicts keyed by cycle): each lane
    touched is traced as a _TDict; before = {lane: {cycle: value}}."""

    __slots__ = ("d", "before", "copy", "lanes")

    def __init__(self, d, copy: bool) -> None:
        self.d = d
        self.before: dict = {}
        self.copy = copy
        self.lanes: dict = {}

    def __getitem__(self, lane):
        t = self.lanes.get(lane)
        if t is None:
            t = self.lanes[lane] = _TDict(self.d[lane], self.copy, self.before.setdefault(lane, {}))
        return t


class _TSet:
    __slots__ = ("d", "before")

    def __init__(self, d) -> None:
        self.d = d
        self.before: dict = {}

    def __contains__(self, k) -> bool:
        self.before.setdefault(k, k in self.d)
        return k in self.d

    def add(self, k) -> None:
        self.before.setdefault(k, k in self.d)
        self.d.add(k)


class _TList:
    """A list indexed by row (rows >= *fresh* are unplaced: before = absent) or
    by queue, stream or plane (fresh = None)."""

    __slots__ = ("d", "before", "fresh")

    def __init__(self, d, fresh) -> None:
        self.d = d
        self.before: dict = {}
        self.fresh = fresh

    def _t(self, k) -> None:
        b = self.before
        if k not in b:
            b[k] = _ABSENT if self.fresh is not None and k >= self.fresh else self.d[k]

    def __getitem__(self, k):
        self._t(k)
        return self.d[k]

    def __setitem__(self, k, v) -> None:
        self._t(k)
        self.d[k] = v

    def __len__(self) -> int:
        return len(self.d)


class _TProducts:
    """MXM products per plane: the length of each touched plane's list."""

    __slots__ = ("d", "before")

    def __init__(self, d) -> None:
        self.d = d
        self.before: dict = {}

    def __getitem__(self, p):
        self.before.setdefault(p, len(self.d[p]))
        return self.d[p]


# the scheduler's state, by how a period shift moves its keys:
_CYC = ("slots", "diagw", "live", "rport", "wport")     # lanes of cycles: T
_ROWD = ("consumed", "more_users")                      # dicts by row: P
_ROWL = ("cycles", "effect", "inputs_of")               # lists by row: P
_SETS = ("frozen", "pinned_use")                        # sets of rows
_REGL = ("free", "pair_open", "last_in_q", "last_lw", "last_iw", "accs")  # by queue or plane: 0
_REGD = ("last_writer",)                                # by stream: 0
# (and "products", by plane; plus the attributes of the halt bookkeeping and of @+ pins)


# values that name no row, and values that are a row
_NO_ROWS = ("cycles", "effect", "free", "last_lw")
_ROW_VALUES = ("slots", "rport", "wport", "consumed", "last_in_q", "last_writer")


@functools.lru_cache(maxsize=1024)
def _shifter(name: str, T: int, P: int):
    """Value of container *name* shifted by j periods: f(v, j)."""
    if name in ("slots", "rport", "wport", "consumed", "last_in_q", "last_writer"):
        return lambda v, j: v + j * P
    if name == "diagw":
        return lambda v, j: v + j * P if type(v) is int else tuple(w + j * P for w in v)
    if name == "live":
        step = (P << 32) + P          # producer << 32 | consumer, both P rows later
        return lambda v, j: v + j * step if type(v) is int else tuple(e + j * step for e in v)
    if name in ("cycles", "effect", "free"):
        return lambda v, j: v + j * T
    if name == "more_users":
        return lambda v, j: [u + j * P for u in v]
    if name == "inputs_of":
        def f(v, j):
            if v is None:
                return None
            prods, paths = v
            dp, dt = j * P, j * T
            return ({sid: r + dp for sid, r in prods.items()}, [(sid, dg + dt, lo, hi, p + dp)
                                                                for sid, dg, lo, hi, p in paths])
        return f
    if name == "pair_open":
        return lambda v, j: None if v is None else (v[0] + j * T, v[1], v[2] + j * P)
    if name == "last_lw":
        return lambda v, j: None if v is None else v + j * T
    raise KeyError(name)


def _shift(f, v, j):
    return v if v is _ABSENT else f(v, j)


def _rows_in(name: str, v):
    """The rows value *v* of container *name* names."""
    if v is _ABSENT or v is None:
        return ()
    if name in ("slots", "rport", "wport", "consumed", "last_in_q", "last_writer"):
        return (v,)
    if name == "diagw":
        return (v,) if type(v) is int else v
    if name == "live":
        return [r for e in ((v,) if type(v) is int else v) for r in (e >> 32, e & 0xFFFFFFFF)]
    if name == "more_users":
        return v
    if name == "inputs_of":
        return list(v[0].values()) + [p for *_, p in v[1]]
    if name == "pair_open":
        return (v[2],)
    return ()


def _template(s, b: int, P: int, left: int) -> int:
    """Place period *b* .. *b* + P - 1 traced; if the checks allow, write the
    next N (<= *left*) periods directly.  Returns N."""
    stats["templates"] += 1
    tracers: dict = {}
    for name in _CYC:
        tracers[name] = _TLanes(getattr(s, name), False)
    for name in _ROWD:
        tracers[name] = _TDict(getattr(s, name), name == "more_users")
    for name in _ROWL:
        tracers[name] = _TList(getattr(s, name), b)
    for name in _SETS:
        tracers[name] = _TSet(getattr(s, name))
    for name in _REGL:
        tracers[name] = _TList(getattr(s, name), None)
    for name in _REGD:
        tracers[name] = _TDict(getattr(s, name), False)
    tracers["products"] = _TProducts(s.products)
    real = {name: t.d for name, t in tracers.items()}
    hazards = []
    hazard = s.hazard

    def traced_hazard(w, r):
        h = hazard(w, r)
        hazards.append((w, r, h))
        return h

    bounds: list = []
    ndiag = len(s.diags.items)
    # the halt bookkeeping (maxima over every issue and effect so far) decides
    # nothing during the pass: B runs from scratch (-inf), so that it gives its
    # own maxima, then they are merged into the real ones
    regs0 = (s.last_issue, s.max_effect, s.max_effect_row)
    s.last_issue = s.max_effect = _NEG
    s.max_effect_row = -1
    for name, t in tracers.items():
        setattr(s, name, t)
    s.hazard = traced_hazard
    try:
        s.place_rows(b, b + P, bounds)
    finally:
        for name, d in real.items():
            setattr(s, name, d)
        del s.hazard
        mb = (s.last_issue, s.max_effect, s.max_effect_row)
        s.last_issue = max(regs0[0], mb[0])
        s.max_effect, s.max_effect_row = (mb[1], mb[2]) if mb[1] > regs0[1] else regs0[1:]
    if len(s.diags.items) != ndiag or left < 1:
        return 0
    T = s.cycles[b + P - 1] - tracers["cycles"].before.get(b - 1, s.cycles[b - 1])
    if T < 1 or mb[0] == _NEG or mb[1] == _NEG:
        return 0
    n = _check(s, b, P, T, left, tracers, real, hazards, bounds)
    if n >= 1:
        _apply(s, b, P, T, n, tracers, real)
        # period j's maxima are B's plus j * T (first reached at B's row plus j * P)
        s.last_issue = max(s.last_issue, mb[0] + n * T)
        if mb[1] + n * T > s.max_effect:
            s.max_effect, s.max_effect_row = mb[1] + n * T, mb[2] + n * P
        stats["periods"] += n
        stats["rows"] += n * P
    return n


def _keyed(name, before, cur, islist, unit, f, n, top, high=None):
    """C0 and CA (module docstring) for one table or lane: *before* maps the
    keys touched to their first values, *cur* is the table now (a list when
    *islist*), keys shift by *unit* per period; keys >= *top* (rows not placed
    yet) hold nothing, nor keys above *high* (a lane's bound).  Returns the
    largest n' <= n they allow (0: none)."""
    nxt = _next_m(before, unit)
    absent = []
    for k, v in before.items():
        m = nxt[k]
        if m <= n:                                   # CA
            y = k + m * unit
            a = (cur[y] if islist else cur.get(y, _ABSENT)) if top is None or y < top else _ABSENT
            if a != _shift(f, v, m):
                n = m - 1
                if n < 1:
                    return 0
        jmax = min(m - 1, n)                         # C0
        if jmax < 1:
            continue
        if v is _ABSENT and not islist and top is None:
            absent.append((k, jmax))
            continue
        for j in range(1, jmax + 1):
            y = k + j * unit
            if top is not None and y >= top:
                if v is not _ABSENT:
                    n = j - 1
                    if n < 1:
                        return 0
                break
            if (cur[y] if islist else cur.get(y, _ABSENT)) != _shift(f, v, j):
                n = j - 1
                if n < 1:
                    return 0
                break
    if absent:
        n = _first_hit(cur, absent, unit, n, high)
    return n


def _check(s, b, P, T, left, tracers, real, hazards, bounds) -> int:
    """The number of periods after B that behave as B shifted (see the module
    docstring), at most *left*; 0 if none."""
    from .schedule import _ADDR_LO_READ, _ADDR_LO_WRITE, _OP_READ, _OP_WRITE

    lo_row, hi_row = b - P, b + P
    n = left
    for name, t in tracers.items():
        before = t.before
        if not before or name in ("products", "accs", "last_iw"):
            continue    # below, with the bounds
        cur = real[name]
        # every row named (as a key or in a value, before and after) lies in the window (A and B)
        if name in _SETS:
            for k, v in before.items():
                if v or k in cur or not lo_row <= k < hi_row:
                    return 0      # a frozen or pinned-read row: not for the fast path
            continue
        if name in _ROWD or name in _ROWL:
            for k in before:
                if not lo_row <= k < hi_row:
                    return 0
        islist = name in _REGL or name in _ROWL
        if name not in _NO_ROWS:
            lanes = before.items() if name in _CYC else ((None, before),)
            plain = name in _ROW_VALUES
            for lane, bef in lanes:
                c = cur[lane] if lane is not None else cur
                for k, v in bef.items():
                    a = c[k] if islist else c.get(k, _ABSENT)
                    if plain:
                        if (v is not _ABSENT and not lo_row <= v < hi_row) or \
                                (a is not _ABSENT and not lo_row <= a < hi_row):
                            return 0
                        continue
                    for r in _rows_in(name, v):
                        if not lo_row <= r < hi_row:
                            return 0
                    for r in _rows_in(name, a):
                        if not lo_row <= r < hi_row:
                            return 0
        f = _shifter(name, T, P)
        if name in _REGL or name in _REGD:
            # registers: after = before shifted by one period
            for k, v in before.items():
                a = cur[k] if name in _REGL else cur.get(k, _ABSENT)
                if a != _shift(f, v, 1):
                    return 0
            continue
        if name in _CYC:
            tops = getattr(s, name + "_top")
            for lane, bef in before.items():
                if len(bef) == 1:
                    # one key, nothing at it before B (the common case): C0 is
                    # "no later key k + jT is in the lane" (_keyed, _first_hit)
                    for k, v in bef.items():
                        pass
                    if v is _ABSENT:
                        c = cur[lane]
                        jmax = min(n, (tops[lane] - k) // T)
                        if jmax >= 1:
                            for y in range(k + T, k + jmax * T + 1, T):
                                if y in c:
                                    n = (y - k) // T - 1
                                    if n < 1:
                                        return 0
                                    break
                        continue
                n = _keyed(name, bef, cur[lane], False, T, f, n, None, tops[lane])
                if n < 1:
                    return 0
        else:
            if min(before) >= b and all(v is _ABSENT for v in before.values()):
                # only rows of B, unplaced before it: no two keys a period
                # apart, and the key a period later is an unplaced row (C0 holds)
                continue
            n = _keyed(name, before, cur, name in _ROWL, P, f, n, b + P)
            if n < 1:
                return 0
    # MXM: products taken by acc, install cycles waited for by abc, per plane
    acc_t, prod_t, iw_t = tracers["accs"], tracers["products"], tracers["last_iw"]
    planes = set(acc_t.before) | set(prod_t.before) | set(iw_t.before)
    for p in planes:
        if iw_t.before.get(p, _ABSENT) is not _ABSENT and s.last_iw[p] != iw_t.before[p]:
            return 0          # an iw in B: not for the fast path
        added = len(s.products[p]) - prod_t.before.get(p, len(s.products[p]))
        taken = s.accs[p] - acc_t.before.get(p, s.accs[p])
        if added and taken:
            return 0
    for rec in bounds:
        if len(rec) == 3:     # abc: (row, ready, base before it): never binding
            _, ready, base = rec
            if ready > base:
                return 0
    for rec in bounds:
        if len(rec) != 4:
            continue
        # acc: (row, product index, its ready cycle, cycle before it): the same
        # product index of period j is ready j * T later (binding), or still in time
        i, k, ready, c = rec
        p = s.decs[i].plane
        taken = s.accs[p] - acc_t.before[p]
        prods = s.products[p]
        idx = k + taken * np.arange(1, n + 1)
        good = idx < len(prods)
        if not good.all():
            n = int(np.argmin(good))
            if n < 1:
                return 0
            idx = idx[:n]
        rd = np.array([prods[x][0] for x in idx.tolist()], dtype=np.int64)
        shift = T * np.arange(1, len(idx) + 1)
        ok = (rd == ready + shift) if ready > c else (rd <= c + shift)
        if not ok.all():
            n = int(np.argmin(ok))
            if n < 1:
                return 0
    if hazards:
        # the MEM read/write pairs tested: the same answer for the words of period j
        op, word = s.ir.op, s.ir.word
        js = np.arange(1, n + 1) * P
        for w, r, h in hazards:
            ws, rs = w + js, r + js
            aw = (word[ws] >> np.uint64(_ADDR_LO_WRITE)) & np.uint64(0xFFFFF)
            ar = (word[rs] >> np.uint64(_ADDR_LO_READ)) & np.uint64(0xFFFFF)
            hz = (op[ws] != _OP_WRITE) | (op[rs] != _OP_READ) | (aw == ar)
            ok = hz == h
            if not ok.all():
                n = int(np.argmin(ok))
                if n < 1:
                    return 0
    return n


def _next_m(keys, unit: int) -> dict:
    """For each key x: the least m >= 1 with x + m * unit in *keys* (else huge)."""
    if len(keys) <= 6:
        out = {}
        for k in keys:
            m = 1 << 62
            for y in keys:
                if y > k and (y - k) % unit == 0 and (y - k) // unit < m:
                    m = (y - k) // unit
            out[k] = m
        return out
    groups: dict[int, list[int]] = {}
    for k in keys:
        groups.setdefault(k % unit, []).append(k)
    out = {}
    for ks in groups.values():
        ks.sort()
        for a, b in zip(ks, ks[1:]):
            out[a] = (b - a) // unit
        out[ks[-1]] = 1 << 62
    return out


def _first_hit(d, keys, unit: int, n: int, high) -> int:
    """The largest n' <= n such that no key k + j * unit, 1 <= j <= min(jmax, n'),
    of the (k, jmax) in *keys* is in *d* (whose keys are all <= *high*, if given)."""
    has = d.__contains__
    for k, jmax in keys:
        jmax = min(jmax, n)
        if high is not None:
            jmax = min(jmax, (high - k) // unit)
        if jmax >= 1 and any(map(has, range(k + unit, k + jmax * unit + 1, unit))):
            j = next(j for j in range(1, jmax + 1) if k + j * unit in d)
            n = j - 1
            if n < 1:
                return 0
    return n


def _apply(s, b, P, T, n, tracers, real) -> None:
    """Write periods B + 1 .. B + n into the state: each key B modified, as
    after B shifted.  Where one key is written by two periods (a period
    modifies what the one before it wrote), the later period's value is
    written last: modified keys are taken in decreasing order (a key x + jD
    that is also x' + j'D with x' < x comes from the later period j > j').
    The per-row bookkeeping that only matters while a row is the last of its
    queue (consumed, more_users, inputs_of) is written for the last period
    only, and the stream slots and MEM ports no later row can look at (below
    :func:`lane_floor`) are not written at all."""
    for name, t in tracers.items():
        before = t.before
        if not before or name in ("products", "accs", "last_iw") or name in _SETS or name in _CYC:
            continue       # sets: checked, no touched row is (or becomes) a member; lanes: below
        cur = real[name]
        f = _shifter(name, T, P)
        if name in _REGL:
            for k in before:
                cur[k] = f(cur[k], n)
            continue
        if name in _REGD:
            for k in before:
                a = cur.get(k, _ABSENT)
                if a is not _ABSENT:
                    cur[k] = f(a, n)
            continue
        if name in _ROWD or name == "inputs_of":
            mods = _mods(before, cur, name in _ROWL)
            for k, a in mods:
                if a is _ABSENT:
                    cur.pop(k + n * P, None)
                else:
                    cur[k + n * P] = f(a, n)
        else:
            _apply_keyed(name, before, cur, True, P, P, T, n, f)
    # the lanes, once the queues and rows are in their state after the run
    s._floors = {}
    for name in _CYC:
        before = tracers[name].before
        cur = real[name]
        f = _shifter(name, T, P)
        tops = getattr(s, name + "_top")
        for lane, bef in before.items():
            keep = _last_diagonal(s, lane) if name == "diagw" else None
            hi = _apply_keyed(name, bef, cur[lane], False, T, P, T, n, f, (s, name, lane), keep)
            if hi > tops[lane]:
                tops[lane] = hi
    s._floors = None       # the queue floors of this state only
    # MXM planes
    acc_t, prod_t = tracers["accs"], tracers["products"]
    for p, n0 in prod_t.before.items():
        prods = s.products[p]
        new = prods[n0:]
        if new:
            for j in range(1, n + 1):
                prods.extend((r + j * T, row + j * P) for r, row in new)
    for p, a0 in acc_t.before.items():
        s.accs[p] += (s.accs[p] - a0) * n
    s.prev += n * T
    s.prev_row += n * P


def _mods(before, cur, islist):
    """The keys B modified, with their values after B, in decreasing order."""
    if islist:
        mods = [(k, cur[k]) for k, v in before.items() if cur[k] != v]
    else:
        get = cur.get
        mods = [(k, a) for k, v in before.items() if (a := get(k, _ABSENT)) != v]
    if len(mods) > 1:
        mods.sort(key=_first, reverse=True)
    return mods


def _apply_keyed(name, before, cur, islist, unit, P, T, n, f, lane=None, keep=None) -> int:
    """Periods 1 .. n of the keys B modified in one table or lane (*lane*:
    (scheduler, table, lane) of an occupancy lane; keys below its
    :func:`entry_floor` are dead: not written, but for key *keep*); returns the
    highest key written (or _NEG)."""
    high = _NEG
    for k, a in _mods(before, cur, islist):
        if a is _ABSENT:
            for key in range(k + unit, k + n * unit + 1, unit):
                cur.pop(key, None)
            continue
        low = None if lane is None else entry_floor(lane[0], lane[1], lane[2], a)
        j0 = 1 if low is None else max(1, -((k - low) // unit))    # first j with k + j * unit >= low
        if keep is not None and keep < low and (keep - k) % unit == 0 and 1 <= (keep - k) // unit < min(j0, n + 1):
            j = (keep - k) // unit
            cur[keep] = f(a, j)
            if keep > high:
                high = keep
        if j0 > n:
            continue
        keys = range(k + j0 * unit, k + n * unit + 1, unit)
        if k + n * unit > high:
            high = k + n * unit
        if name in ("cycles", "effect"):
            cur[k + P:k + n * P + 1:P] = range(a + T, a + n * T + 1, T)
        elif type(a) is int and name in ("slots", "rport", "wport", "diagw"):
            cur.update(zip(keys, range(a + j0 * P, a + n * P + 1, P)))
        elif type(a) is int and name == "live":
            step = (P << 32) + P
            cur.update(zip(keys, range(a + j0 * step, a + n * step + 1, step)))
        elif islist:
            for j, key in enumerate(keys, j0):
                cur[key] = f(a, j)
        else:
            cur.update((key, f(a, j)) for j, key in enumerate(keys, j0))
    return high


def lane_floor(s, name: str, lane: int) -> int | None:
    """No row placed from now on looks at a key of lane *lane* of table *name*
    below this (None: no such bound is kept for the table).  Every later access
    to a port of queue q, or to a stream slot written by rows of q, is at or
    after the cycle a row of q issues at, placed (never before the queue's
    free cycle less one, where a read joins a write) or moved (later than the
    last row of q, or the row its repeat repeats: the only one that may move),
    pinned ones included (a pin before that is an error and the row issues
    at the free cycle)."""
    if name in ("rport", "wport"):
        return _queue_floor(s, lane)
    if name == "slots":
        return min(_queue_floor(s, q) for q in _slot_writers(s)[lane])
    # a path lane (stream, keyed by diagonal): every later write of the stream
    # (and check of a value in use) is on a diagonal at or after its writer's
    # floor plus or minus its position, and so is every later check of a path
    # (the diagonal of its producer), but for the value the stream's last writer
    # put there (see _last_diagonal)
    return min(_queue_floor(s, q) + dpos for q, dpos in _stream_writers(s).get(lane, ()))


def entry_floor(s, name: str, lane: int, value) -> int | None:
    """Like :func:`lane_floor`, for the entry *value* of a lane: a key below it
    holding that value is never looked at again (or looked at without effect).
    A path lane entry (a writer of the stream at position y, on a diagonal) only
    matters to a path check of a value written upstream of y on that diagonal
    (west stream: at a higher position; east: lower); an entry in use (the
    value of a producer on its way to a consumer, positions lo .. hi) only to a
    write of the stream at a position in lo .. hi on that diagonal."""
    memo = s.__dict__.get("_floors")
    if name not in ("diagw", "live"):
        if memo is None:
            return lane_floor(s, name, lane)
        if name == "slots":
            low = _HIGH
            sq = s.__dict__.get("_slot_queues")
            qs = sq.get(lane) if sq is not None else None
            for q in (_slot_queues(s, lane) if qs is None else qs):
                f = memo.get(q)
                if f is None:
                    f = _queue_floor(s, q)
                if f < low:
                    low = f
            return low
        f = memo.get(lane)
        return _queue_floor(s, lane) if f is None else f
    decs = s.decs
    west = lane & 32
    low = None
    for e in (value if type(value) is tuple else (value,)):
        if name == "diagw":
            y = decs[e].pos
            key = ("up", lane, y)
        else:
            x, pp = decs[e & 0xFFFFFFFF].pos, decs[e >> 32].pos
            key = ("in", lane) + ((x, pp - 1) if west else (pp + 1, x))
        f = memo.get(key) if memo is not None else None
        if f is None:
            f = _HIGH
            for q, dpos in _entry_writers(s, key):
                g = memo.get(q) if memo is not None else None
                g = (_queue_floor(s, q) if g is None else g) + dpos
                if g < f:
                    f = g
            if memo is not None:
                memo[key] = f
        low = f if low is None else min(low, f)
    return low


def _entry_writers(s, key) -> tuple:
    """The (queue, position offset) of the writers of stream key[1] that an
    entry keyed *key* matters to (see :func:`entry_floor`): ("up", lane, y),
    the writers upstream of y; ("in", lane, lo, hi), the writers at lo .. hi."""
    cache = s.__dict__.get("_entry_writers")
    if cache is None:
        cache = s._entry_writers = {}
    out = cache.get(key)
    if out is None:
        west = key[1] & 32
        out = []
        for q, dpos in _stream_writers(s).get(key[1], ()):
            pos = dpos if west else -dpos
            if (key[0] == "up" and (pos > key[2] if west else pos < key[2])) or \
                    (key[0] == "in" and key[2] <= pos <= key[3]):
                out.append((q, dpos))
        out = cache[key] = tuple(out)
    return out


def _last_diagonal(s, sid: int) -> int | None:
    """The diagonal of the value the last writer of stream *sid* put on it:
    a later consumer may check the path of that value."""
    p = s.last_writer.get(sid)
    if p is None:
        return None
    d = s.decs[p]
    return s.cycles[p] + d.delay + (d.pos if sid & 32 else -d.pos)


def _queue_floor(s, q: int) -> int:
    memo = s.__dict__.get("_floors")
    if memo is not None and q in memo:
        return memo[q]
    last = s.last_in_q[q]
    if last < 0:
        f = -1
    else:
        base = _rep_base(s).get(last)
        f = min(s.free[q] - 1, s.cycles[last if base is None else base])
    if memo is not None:
        memo[q] = f
    return f


def _rep_base(s) -> dict:
    rb = s.__dict__.get("_rep_base")
    if rb is None:
        rb = s._rep_base = {r: b for b, r in s.rep_of.items()}
    return rb


def _slot_writers(s) -> dict:
    """Stream-slot lane -> the queues of every row (of the program) writing it."""
    if "_slot_writers" not in s.__dict__:
        _writers(s)
    return s._slot_writers


def _slot_queues(s, lane: int) -> tuple:
    """The queues writing stream-slot lane *lane*, as a tuple (memoised)."""
    sq = s.__dict__.get("_slot_queues")
    if sq is None:
        sq = s._slot_queues = {}
    t = sq.get(lane)
    if t is None:
        t = sq[lane] = tuple(_slot_writers(s)[lane])
    return t


def _stream_writers(s) -> dict:
    """Stream -> (queue, position offset of its diagonal) of every row writing it."""
    if "_stream_writers" not in s.__dict__:
        _writers(s)
    return s._stream_writers


def _writers(s) -> None:
    slots: dict = {}
    streams: dict = {}
    pairs = np.unique(s.dec_index.astype(np.int64) << 20 | s.ir.queue.astype(np.int64))
    for k, q in zip((pairs >> 20).tolist(), (pairs & 0xFFFFF).tolist()):
        for sid, sk, dpos in s.table[k].okeys:
            slots.setdefault(sk, set()).add(q)
            streams.setdefault(sid, set()).add((q, dpos))
    s._slot_writers, s._stream_writers = slots, streams
