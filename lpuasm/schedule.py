"""Scheduling: the issue cycle of every instruction (a static, timing-aware schedule).

The chip has no interlocks, so the assembler decides when every instruction
issues, as Groq's compiler does.  It walks the IR rows once, in source order,
and places each row using the timing model of docs/timing-model.md (positions
from :mod:`lpuasm.chip`, delays from the chip config).  The rules, which
docs/language.md ("Pins and scheduling") states for users:

* Every queue issues its rows in source order; a row keeps its queue busy for
  :func:`durations` cycles (``nop n``: n, ``ifetch n``: n, ``repeat n, d``:
  n*d, anything else 1).  A MEM slice's queue may issue a read-type and a
  write-type row in one cycle (the pseudo-dual-ported SRAM): a row joins the
  previous row's cycle when they are of the two kinds, unless it reads the word
  that previous write stores (it must see the new value).
* **Pinned** rows (``@N``, or ``@+N`` after the previous non-nop, non-repeat
  row) issue at the pin.  Errors: the queue is still busy; an output stream slot
  is taken (another row writes the same stream at the same position and cycle,
  or a value on its way to an unpinned consumer already placed passes there
  then); a MEM
  port is taken (per slice and cycle one read, at issue, and one write, at issue
  + delay, and if both then on different banks).  Whether their operands arrive
  is not checked here: the simulator does that.
* **Unpinned rows with stream inputs** (VXM ops, ``write``, ``lw``, ``abc``,
  SXM ops, ...) issue when their data passes them.  The producer of each input
  stream is the latest earlier row in source order that writes it (a
  ``repeat`` is not a producer: the instruction it repeats is).  The value
  appears at the producer's position ``delay`` cycles after it issues and
  passes the consumer ``|x - p|`` cycles later, if the stream flows that way.
  All inputs must pass at the same cycle c, the queue must be free at c (an
  ``abc`` must also come after its plane's weights are installed), the value
  must not be overwritten on its way, and the row's own outputs and ports must
  be free at c.
* **Producer delaying**: when an input arrives too early (before another input,
  before the queue is free, or before an ``abc``'s weights are installed), and
  its producer is unpinned, has no stream inputs itself (a ``read``, an
  ``acc``, a ``receive``), is still the last row of its queue (its own
  ``repeat`` may follow it: it moves along), is not the anchor of an ``@+`` pin
  and has not been used by another consumer, the producer is moved later so
  that the inputs line up (if its slots and ports are free at the new cycle).  Otherwise the
  early arrival is an error.  When all producers of a row are movable and the
  row cannot issue when its data arrives (its outputs or ports are taken, or an
  input would be overwritten), they are all delayed to the first cycle where it
  can (at most ``_SEARCH`` cycles later).
* **Chain delaying**: only when that finds no cycle (so a program that places
  without it places exactly as before), and a producer that has to move has
  stream inputs itself (an unpinned VXM or SXM op: read -> vmul -> ...), the
  search is repeated with each producer that has to move delayed together with
  its upstream cone (:meth:`_Scheduler.cone`: the producer, its producers,
  theirs, ... back to rows without stream inputs), all by the same number of
  cycles, so the values between them still line up.  Every row of a cone must
  be unpinned, not an ``@+`` anchor, still the last row of its queue (its own
  ``repeat`` moves along), read by no row outside the cone (a pinned reader
  included; the producer itself by no row yet), and the cone's new slots,
  ports and paths must be free.  Otherwise the error of the rule above stands,
  word for word.
* **MXM**: ``iw`` issues no earlier than its plane's last ``lw`` + d(mxm.load);
  ``acc`` takes the k-th product of its plane (k = earlier ``acc`` issues on
  the plane) and issues no earlier than that ``abc`` + d(mxm.activation).
* **Unpinned rows without stream inputs** (``read``, ``iw``, ``acc``, ICU rows)
  issue at the first cycle >= their queue's free cycle where their output slots
  and MEM ports are free, for the row and all its repetitions.
* **halt** (unpinned) issues at the first cycle after every earlier issue and
  at or after every earlier row's last effect (issue + delay, for a repeat its
  last repetition + delay).  Nothing may issue, or take effect, after it.

Everything is one pass in source order (:meth:`_Scheduler.place_rows`) with
small dict lookups: words are decoded once per distinct word (SRAM word offsets
masked out), and the occupancy tables hold one dict per lane (stream and
position, or queue) keyed by cycle.  The rows of a ``.for`` loop, structurally
the same row every P rows, are not all placed one by one: one period is placed
traced, and when the scheduler's state is provably the same as one period
earlier shifted by T cycles, the following periods are written directly
(:mod:`lpuasm.schedule_runs`, which states the argument); the result is exactly
that of the row-by-row pass.
"""

from __future__ import annotations

import gc

import numpy as np

from . import chip, isa
from .diagnostics import Diagnostic, Diagnostics
from .ir import IR, PIN_ABS, PIN_NONE, PIN_REL, field_array

_HALT = isa.TABLE["halt"]
_IFETCH = isa.TABLE["ifetch"]

# row kinds
_K_PLAIN, _K_NOP, _K_REPEAT, _K_HALT, _K_LW, _K_IW, _K_ABC, _K_ACC = range(8)
_MXM_KINDS = {"lw": _K_LW, "iw": _K_IW, "abc": _K_ABC, "acc": _K_ACC}
# MEM ports: none, the read port at issue, the write port at issue + delay
_P_NONE, _P_READ, _P_WRITE = 0, 1, 2
_SEARCH = 1024  # cycles past the data's arrival an unpinned consumer may wait for free slots
_PORTS = {"read": _P_READ, "gather": _P_READ, "write": _P_WRITE, "scatter": _P_WRITE}
_OP_READ, _OP_WRITE = isa.TABLE["read"].opcode, isa.TABLE["write"].opcode
_ADDR_LO_READ = next(f.lo for f in isa.TABLE["read"].fields if f.name == "a")
_ADDR_LO_WRITE = next(f.lo for f in isa.TABLE["write"].fields if f.name == "a")
# opcode -> mask that clears the 12-bit word offset of its SRAM address field
_OFFSET_MASK = {isa.TABLE[m].opcode: ~(0xFFF << next(f.lo for f in isa.TABLE[m].fields if f.name == "a")) & (2**64 - 1)
                for m in _PORTS}


def durations(ir: IR) -> np.ndarray:
    """Cycles each row keeps its queue busy."""
    dur = np.ones(len(ir), dtype=np.int64)
    for row, fn in ((isa.NOP, lambda w: field_array(w, isa.NOP, "n")),
                    (isa.REPEAT, lambda w: field_array(w, isa.REPEAT, "n") * field_array(w, isa.REPEAT, "d")),
                    (_IFETCH, lambda w: field_array(w, _IFETCH, "n"))):
        mask = ir.op == row.opcode
        if mask.any():
            dur[mask] = fn(ir.word[mask])
    return dur


class _Dec:
    """What the scheduler needs to know about one instruction word."""

    __slots__ = ("row", "kind", "inputs", "groups", "outputs", "delay", "pos", "port", "bank", "plane", "n", "d",
                 "uinputs", "okeys")

    def __init__(self, word: int, queue: int, geo: chip.Geometry) -> None:
        row, f = isa.unpack(word)
        self.row = row
        self.kind = (_K_NOP if row is isa.NOP else _K_REPEAT if row is isa.REPEAT else
                     _K_HALT if row is _HALT else _MXM_KINDS.get(row.mnemonic, _K_PLAIN))
        self.inputs = tuple(d << 5 | i for d, i in chip.stream_inputs(row, f))
        groups = []
        for name in chip.STREAM_INPUTS.get(row.mnemonic, ()):
            code = f[name]
            if name == "b" and code & isa.SRC_IMMEDIATE:
                continue
            groups.append(tuple(code + k for k in range(chip.group_size(row, name, f))))
        self.groups = tuple(groups)
        self.outputs = tuple(d << 5 | i for d, i in chip.stream_outputs(row, f))
        self.delay = chip.delay(geo.config, row)
        self.pos = geo.queue_position(queue)
        self.port = _PORTS.get(row.mnemonic, _P_NONE)
        self.bank = isa.addr_parts(f["a"])[2] if self.port else 0
        self.plane = f["p"] if row.unit == "mxm" else -1
        self.n = f.get("n", 0)
        self.d = f.get("d", 0)
        # the distinct input streams, in order; per output stream: (stream, slot
        # lane, diagonal - cycle), set by _Scheduler (see its occupancy tables)
        self.uinputs = tuple(dict.fromkeys(self.inputs))
        self.okeys = ()


def _s(sid: int) -> str:
    return isa.stream_name(sid)


def _cycles(k: int) -> str:
    return f"{k} cycle{'s' * (k != 1)}"


_ZERO = (0,)  # issue offsets of a row without a repeat
_LOW = -(1 << 62)  # below every cycle and diagonal
_M32 = (1 << 32) - 1


def _push(lane: dict, k: int, x: int) -> None:
    """Add *x* to the entries of *lane* at *k* (an int, or a tuple of two or more)."""
    v = lane.get(k)
    lane[k] = x if v is None else (v + (x,) if type(v) is tuple else (v, x))


class _Scheduler:
    # Occupancy tables are lists of dicts, one dict per lane, keyed by cycle: a
    # stream slot (stream, pos, cycle) is slots[pos << 6 | stream][cycle]; a path
    # (stream, diagonal) is diagw[stream][diagonal] and live[stream][diagonal]
    # (diagonal: cycle + pos for a westward stream, cycle - pos for an eastward
    # one); a port (queue, cycle) is rport[queue][cycle], wport[queue][cycle].
    # Consecutive cycles of one lane are consecutive keys of one dict: cheap to
    # look up and to fill in bulk (lpuasm.schedule_runs).  Stream ids are below
    # 64 (direction << 5 | index).

    def __init__(self, ir: IR, diags: Diagnostics) -> None:
        self.ir = ir
        self.diags = diags
        cfg = ir.config
        self.cfg = cfg
        self.geo = chip.Geometry(cfg)
        self.vxm = self.geo.vxm
        n = len(ir)
        self.n = n
        self.dur = durations(ir)
        self.d_load = cfg.latency("mxm.load").delay
        self.d_install = cfg.latency("mxm.install").delay
        self.d_act = cfg.latency("mxm.activation").delay
        self.queue = ir.queue.tolist()
        self.pin_kinds = ir.pin_kind.tolist()
        self.cycles = [0] * n
        self.effect = [0] * n
        nq = len(cfg.queues)
        self.free = [0] * nq
        # (cycle, port, row) of a queue's last MEM read or write, while a MEM
        # instruction of the other kind may still co-issue in that cycle
        self.pair_open: list[tuple[int, int, int] | None] = [None] * nq
        self.last_in_q = [-1] * nq
        positions = [p for p in (self.geo.queue_position(q) for q in range(nq)) if p is not None]
        self.qb = max(1, (nq - 1).bit_length())
        self.sb = 6 + max(1, max(positions, default=0).bit_length())
        # the decoded word of every row: words are decoded once per distinct word
        # (SRAM word offsets masked out), with the queue of its first row
        word = ir.word
        opc = word & np.uint64(0xFF)
        masked = word.copy()
        for op, m in _OFFSET_MASK.items():
            sel = opc == op
            if sel.any():
                masked[sel] &= np.uint64(m)
        uniq, first, inv = np.unique(masked, return_index=True, return_inverse=True)
        queue = self.queue
        table = [_Dec(w, queue[f], self.geo) for w, f in zip(uniq.tolist(), first.tolist())]
        for dec in table:
            # per output stream: (stream, slot lane, diagonal - cycle)
            if dec.outputs:
                pos = dec.pos
                dec.okeys = tuple((sid, pos << 6 | sid, pos if sid & 32 else -pos) for sid in dec.outputs)
        self.table = table
        self.dec_index = inv.reshape(-1)
        tab = np.empty(len(table), dtype=object)
        for k, dec in enumerate(table):
            tab[k] = dec
        self.decs: list[_Dec] = tab[self.dec_index].tolist()
        # the repeat row following each repeated row (its base): base -> repeat row
        self.rep_of: dict[int, int] = {}
        rep = np.nonzero(ir.op == isa.REPEAT.opcode)[0]
        if len(rep):
            order = np.argsort(ir.queue, kind="stable")
            where = np.empty(n, dtype=np.int64)
            where[order] = np.arange(n)
            bases = order[where[rep] - 1]
            self.rep_of = dict(zip(bases.tolist(), rep.tolist()))
        # issue offsets of each repeated row and its repetitions
        self.offs: dict[int, tuple[int, ...]] = {}
        for b, r in self.rep_of.items():
            rd = self.decs[r]
            self.offs[b] = tuple(k * rd.d for k in range(rd.n + 1))
        self.last_writer: dict[int, int] = {}
        # producer -> its first unpinned consumer (more_users: any later ones)
        self.consumed: dict[int, int] = {}
        self.more_users: dict[int, list[int]] = {}
        self.frozen: set[int] = set()
        # for delaying chains: the producers (stream -> row) and in-use paths
        # (stream, diagonal, lo, hi, producer) of each placed unpinned consumer, and the
        # producers read by pinned rows
        self.inputs_of: list[tuple[dict, list] | None] = [None] * n
        self.pinned_use: set[int] = set()
        # occupancy
        # (stream, pos, cycle) -> writing row; a lane for every (pos, stream) some row writes
        self.slots: list[dict[int, int] | None] = [None] * (1 << self.sb)
        for dec in table:
            for _, sk, _ in dec.okeys:
                if self.slots[sk] is None:
                    self.slots[sk] = {}
        # (stream, diagonal) -> the rows writing it there (a row, or a tuple of
        # two or more in write order; a writer's position is its decs[].pos)
        self.diagw: list[dict[int, int | tuple]] = [{} for _ in range(64)]
        # (stream, diagonal) -> the values in use on it: producer << 32 | consumer
        # (or a tuple of two or more), in use from the consumer's position to the
        # producer's (both excluded on the producer's side: see _span)
        self.live: list[dict[int, int | tuple]] = [{} for _ in range(64)]
        self.rport: list[dict[int, int]] = [{} for _ in range(nq)]  # (queue, cycle) -> row (its bank: decs[row].bank)
        self.wport: list[dict[int, int]] = [{} for _ in range(nq)]
        # per lane of each table: no key above (an upper bound, kept at every insertion)
        self.slots_top = [_LOW] * (1 << self.sb)
        self.diagw_top = [_LOW] * 64
        self.live_top = [_LOW] * 64
        self.rport_top = [_LOW] * nq
        self.wport_top = [_LOW] * nq
        # MXM planes
        planes = cfg.mxm_planes
        self.products: list[list[tuple[int, int]]] = [[] for _ in range(planes)]  # (ready cycle, abc row)
        self.accs = [0] * planes
        self.last_lw = [None] * planes
        self.last_iw: list[tuple[int, int] | None] = [None] * planes
        # halt bookkeeping
        self.last_issue = -1
        self.max_effect = -1
        self.max_effect_row = -1
        # the pass: cycle and row of the last non-nop row (for @+ pins), the first halt
        self.prev, self.prev_row, self.halt_row = 0, -1, None
        self.pins = ir.pin.tolist()
        self.durs = self.dur.tolist()

    # ---- helpers -------------------------------------------------------------------
    def dec(self, i: int) -> _Dec:
        return self.decs[i]

    def where(self, j: int, i: int) -> str:
        """Where row *j* is, as seen from an error on row *i*."""
        ir = self.ir
        line = int(ir.loc_line[j])
        if ir.loc_file[j] == ir.loc_file[i]:
            return f"line {line}"
        return f"{ir.files[int(ir.loc_file[j])]}:{line}"

    def note(self, j: int, text: str) -> Diagnostic:
        return Diagnostic("note", text, self.ir.span(j))

    def place(self, pos: int) -> str:
        return "the VXM" if pos == self.vxm else self.geo.position_name(pos)

    def unit_place(self, i: int) -> str:
        """Where row *i*'s unit is, in words."""
        d = self.decs[i]
        if d.row.unit in ("mxm", "sxm", "c2c"):
            return self.cfg.queues[self.queue[i]]
        return self.place(d.pos)

    def error(self, i: int, message: str, hint: str | None = None, notes=None) -> None:
        self.diags.error(message, self.ir.span(i), hint, (notes or []) + self.ir.chain_notes(i))

    def reps(self, i: int) -> tuple[int, ...]:
        """Issue offsets of row *i* and of its repetitions."""
        return self.offs.get(i, _ZERO)

    @staticmethod
    def diag(sid: int, pos: int, cycle: int) -> int:
        return cycle + pos if sid & 32 else cycle - pos

    # ---- occupancy -------------------------------------------------------------------
    def conflict(self, i: int, d: _Dec, c: int, offsets) -> tuple[int, str, int] | None:
        """The first taken stream slot or MEM port of row *i* issued at *c*
        (with repetitions at the *offsets*): (repetition, message, other row)."""
        pos = d.pos
        delay = d.delay
        port = d.port
        slots, live = self.slots, self.live
        for k, off in enumerate(offsets):
            t = c + off
            a = t + delay
            for sid, sk, dpos in d.okeys:
                j = slots[sk].get(a)
                if j is not None and j != i:
                    return k, (f"stream {_s(sid)} at {self.place(pos)} already carries a value written at cycle {a} "
                               f"by the instruction at {self.where(j, i)}"), j
                ranges = live[sid].get(a + dpos)
                if ranges is not None:
                    for e in (ranges if type(ranges) is tuple else (ranges,)):
                        p, cons = e >> 32, e & _M32
                        if p != i and self.spans(sid, p, cons, pos):
                            return k, (f"stream {_s(sid)} at {self.place(pos)} is in use at cycle {a}: it carries the "
                                       f"value from {self.where(p, i)} to {self.where(cons, i)}"), cons
            if port:
                q = self.queue[i]
                if port == _P_READ:
                    mine, theirs, at, verb, their_verb, noun = self.rport[q], self.wport[q], t, "reads", "writes", "read"
                else:
                    mine, theirs, at, verb, their_verb, noun = self.wport[q], self.rport[q], t + delay, "writes", "reads", "write"
                other = mine.get(at)
                if other is not None and other != i:
                    return k, (f"bank-port conflict on slice {self.place(pos)} at cycle {at}: the instruction at "
                               f"{self.where(other, i)} {verb} this slice then too (one {noun} per slice per cycle)"), other
                other = theirs.get(at)
                if other is not None and other != i and self.decs[other].bank == d.bank:
                    return k, (f"bank-port conflict on slice {self.place(pos)} at cycle {at}: this instruction {verb} bank "
                               f"{d.bank} while the instruction at {self.where(other, i)} {their_verb} it"), other
        return None

    def report_conflicts(self, i: int, d: _Dec, c: int, offsets) -> None:
        """Report the first conflict of the row and the first of its repetitions."""
        bad = self.conflict(i, d, c, offsets)
        if bad is None:
            return
        k, msg, j = bad
        where = i if k == 0 else self.rep_of[i]
        self.error(where, msg, notes=[self.note(j, "the other instruction is here")])
        if k == 0 and len(offsets) > 1:
            bad = self.conflict(i, d, c, offsets[1:])
            if bad is not None:
                k, msg, j = bad
                self.error(self.rep_of[i], msg, notes=[self.note(j, "the other instruction is here")])

    def reserve(self, i: int, d: _Dec, c: int, offsets) -> None:
        pos = d.pos
        delay = d.delay
        port = d.port
        slots, diagw = self.slots, self.diagw
        slots_top, diagw_top = self.slots_top, self.diagw_top
        for off in offsets:
            t = c + off
            a = t + delay
            for sid, sk, dpos in d.okeys:
                lane = slots[sk]
                if a not in lane:
                    lane[a] = i
                    if a > slots_top[sk]:
                        slots_top[sk] = a
                _push(diagw[sid], a + dpos, i)
                if a + dpos > diagw_top[sid]:
                    diagw_top[sid] = a + dpos
            if port == _P_READ:
                q = self.queue[i]
                lane = self.rport[q]
                if t not in lane:
                    lane[t] = i
                    if t > self.rport_top[q]:
                        self.rport_top[q] = t
            elif port == _P_WRITE:
                q = self.queue[i]
                lane = self.wport[q]
                if a not in lane:
                    lane[a] = i
                    if a > self.wport_top[q]:
                        self.wport_top[q] = a

    def unreserve(self, i: int, d: _Dec, c: int, offsets) -> None:
        """Undo :meth:`reserve`."""
        q = self.queue[i]
        for off in offsets:
            t = c + off
            a = t + d.delay
            for sid, sk, dpos in d.okeys:
                lane = self.slots[sk]
                if lane.get(a) == i:
                    del lane[a]
                lane = self.diagw[sid]
                v = lane.get(a + dpos)
                if v is not None:
                    rest = tuple(w for w in (v if type(v) is tuple else (v,)) if w != i)
                    if len(rest) > 1:
                        lane[a + dpos] = rest
                    elif rest:
                        lane[a + dpos] = rest[0]
                    else:
                        del lane[a + dpos]
            if d.port == _P_READ:
                lane = self.rport[q]
                if lane.get(t) == i:
                    del lane[t]
            elif d.port == _P_WRITE:
                lane = self.wport[q]
                if lane.get(a) == i:
                    del lane[a]

    def first_free(self, i: int, d: _Dec, c: int, offsets) -> int:
        if not d.outputs and not d.port:
            return c
        conflict = self.conflict
        while conflict(i, d, c, offsets) is not None:
            c += 1
        return c

    def earliest(self, q: int, d: _Dec, i: int) -> int:
        """First cycle queue *q* may issue row *i*: a MEM slice issues one
        read-type and one write-type instruction per cycle, else one
        instruction.  A read never joins the write before it when that write
        stores the word it reads (or either side has data-dependent addresses):
        it must see the new value."""
        po = self.pair_open[q]
        if po is not None and d.port != _P_NONE and d.port != po[1]:
            cycle, port, row = po
            if port == _P_WRITE and self.hazard(row, i):
                return self.free[q]
            return cycle
        return self.free[q]

    def hazard(self, w: int, r: int) -> bool:
        """Does read-type row *r* read what write-type row *w* stores?"""
        ow, orr = int(self.ir.op[w]), int(self.ir.op[r])
        if ow != _OP_WRITE or orr != _OP_READ:
            return True  # gather/scatter: any word of the bank
        return (int(self.ir.word[w]) >> _ADDR_LO_WRITE) & 0xFFFFF == (int(self.ir.word[r]) >> _ADDR_LO_READ) & 0xFFFFF

    # ---- producers -------------------------------------------------------------------
    def movable(self, p: int) -> bool:
        """May producer *p* be issued later than placed (see the module docstring)?"""
        d = self.decs[p]
        last = self.last_in_q[self.queue[p]]
        return (self.pin_kinds[p] == PIN_NONE and p not in self.consumed and p not in self.frozen
                and not d.inputs and d.kind in (_K_PLAIN, _K_ACC)
                and (last == p or last == self.rep_of.get(p)))

    def move(self, p: int, c: int) -> bool:
        """Issue producer *p* (and its repetitions) at cycle *c* instead, if its
        slots and ports are free then."""
        d = self.decs[p]
        old = self.cycles[p]
        offsets = self.offs.get(p, _ZERO)
        self.unreserve(p, d, old, offsets)
        if self.conflict(p, d, c, offsets) is not None:
            self.reserve(p, d, old, offsets)
            return False
        self.reserve(p, d, c, offsets)
        self.cycles[p] = c
        q = self.queue[p]
        self.free[q] = c + 1
        self.pair_open[q] = None
        self.note_issue(p, c, c, c + d.delay)
        r = self.rep_of.get(p)
        if r is not None and self.last_in_q[q] == r:  # the repeat is placed already: it moves along
            self.cycles[r] += c - old
            self.free[q] = self.cycles[r] + int(self.dur[r])
            self.note_issue(r, self.cycles[r], c + offsets[-1], c + offsets[-1] + d.delay)
        return True

    def note_issue(self, i: int, c: int, last: int, effect: int) -> None:
        self.effect[i] = effect
        if last > self.last_issue:
            self.last_issue = last
        if effect > self.max_effect:
            self.max_effect = effect
            self.max_effect_row = i

    # ---- the pass ----------------------------------------------------------------------
    def run(self) -> np.ndarray:
        """Place every row; the issue cycles (int64)."""
        from .schedule_runs import place_all
        place_all(self)
        cycles = np.asarray(self.cycles, dtype=np.int64)
        h = self.halt_row
        # last_issue and max_effect are maxima over every issue and effect noted
        # (a moved row's old ones stay in them; unmove_cone restores them with the
        # rows; the fast path merges each template's): upper bounds of every row's
        # final ones, so at or before the halt's cycle no row can be reported
        if h is not None and (self.last_issue > cycles[h] or self.max_effect > cycles[h]):
            self.after_halt(h, cycles)
        return cycles

    def place_rows(self, i0: int, i1: int, trace: list | None = None) -> None:
        """Place rows *i0* .. *i1* - 1 (every earlier row placed).  With *trace*
        (a list), the bounds that 'abc' and 'acc' rows compare against are
        appended to it (see lpuasm.schedule_runs)."""
        ir = self.ir
        kinds, pins = self.pin_kinds, self.pins
        dur = self.durs
        names = self.cfg.queues
        cycles = self.cycles
        effect = self.effect
        free = self.free
        pair_open = self.pair_open
        last_in_q = self.last_in_q
        last_writer = self.last_writer
        lw_get = last_writer.get
        queue = self.queue
        decs = self.decs
        offs = self.offs
        slots, diagw, live, rport, wport = self.slots, self.diagw, self.live, self.rport, self.wport
        slots_top, diagw_top, live_top = self.slots_top, self.diagw_top, self.live_top
        rport_top, wport_top = self.rport_top, self.wport_top
        consumed, more_users, inputs_of = self.consumed, self.more_users, self.inputs_of
        consumed_setdefault = consumed.setdefault
        last_lw, d_load = self.last_lw, self.d_load
        last_iw, d_install = self.last_iw, self.d_install
        accs, products = self.accs, self.products
        hazard, conflict, reserve, mxm_after = self.hazard, self.conflict, self.reserve, self.mxm_after
        busy1 = self.busy1
        prev, prev_row, halt_row = self.prev, self.prev_row, self.halt_row
        for i in range(i0, i1):
            q = queue[i]
            d = decs[i]
            kind = d.kind
            if kind == _K_REPEAT:
                base = last_in_q[q]
                c = free[q]
                cycles[i] = c
                free[q] = c + dur[i]
                pair_open[q] = None
                last_in_q[q] = i
                last = cycles[base] + d.n * d.d
                self.note_issue(i, c, max(last, c + dur[i] - 1), last + decs[base].delay)
                continue
            if kind == _K_HALT:
                c = self.halt(i, kinds[i], pins[i], prev, prev_row, halt_row)
                if halt_row is None:
                    halt_row = i
            else:
                pk = kinds[i]
                offsets = offs.get(i, _ZERO) if offs else _ZERO
                port = d.port
                # earliest(q, d, i), inlined
                po = pair_open[q]
                if po is not None and port != _P_NONE and port != po[1]:
                    early = free[q] if po[1] == _P_WRITE and hazard(po[2], i) else po[0]
                else:
                    early = free[q]
                if pk != PIN_NONE:
                    c = pins[i] if pk == PIN_ABS else prev + pins[i]
                    if pk == PIN_REL and prev_row >= 0:
                        self.frozen.add(prev_row)
                    for sid in d.inputs:
                        p = lw_get(sid)
                        if p is not None:
                            self.pinned_use.add(p)
                    if c < early:
                        what = f"@{pins[i]}" if pk == PIN_ABS else f"@+{pins[i]} (cycle {c})"
                        self.error(i, f"cannot issue at {what}: queue {names[q]} is busy until cycle {free[q] - 1}",
                                   f"the earliest cycle is {free[q]}; remove the pin or raise it")
                        c = free[q]
                    elif d.okeys or port:
                        if offsets is _ZERO:
                            if busy1(i, d, c, q):
                                self.report_conflicts(i, d, c, offsets)
                        else:
                            self.report_conflicts(i, d, c, offsets)
                elif d.inputs:
                    # consumer(i, d, offsets), its common case inlined: every
                    # input has a producer whose value flows this way
                    x = d.pos
                    arrival: dict[int, int] = {}
                    producer: dict[int, int] = {}
                    pl = []     # the path of each input that travels: (stream, diagonal, lo, hi, producer)
                    for sid in d.uinputs:
                        p = lw_get(sid)
                        if p is None:
                            break
                        pd = decs[p]
                        pp = pd.pos
                        a = cycles[p] + pd.delay
                        if sid & 32:
                            if x > pp:
                                break
                            arrival[sid] = a + pp - x
                            if x != pp:
                                pl.append((sid, a + pp, x, pp - 1, p))
                        else:
                            if x < pp:
                                break
                            arrival[sid] = a + x - pp
                            if x != pp:
                                pl.append((sid, a - pp, pp + 1, x, p))
                        producer[sid] = p
                    else:
                        ready = None
                        if kind == _K_ABC and last_iw[d.plane] is not None:
                            ready = last_iw[d.plane][0] + d_install
                        latest = max(arrival.values())
                        base = latest
                        if early > base:
                            base = early
                        if ready is not None:
                            if trace is not None:
                                trace.append((i, ready, base))
                            if ready > base:
                                base = ready
                        # fast path: every input passes at *base* and reaches this
                        # row unchanged, and the row's slots and ports are free then
                        fast = True
                        for a in arrival.values():
                            if a != base:
                                fast = False
                                break
                        if fast:
                            for sid, dg, lo, hi, p in pl:
                                ws = diagw[sid].get(dg)
                                if ws is not None:
                                    if type(ws) is int:
                                        if ws != p and lo <= decs[ws].pos <= hi:
                                            fast = False
                                    else:
                                        for w in ws:
                                            if w != p and lo <= decs[w].pos <= hi:
                                                fast = False
                                                break
                        if fast and (d.okeys or port):
                            if offsets is _ZERO:
                                fast = not busy1(i, d, base, q)
                            else:
                                fast = conflict(i, d, base, offsets) is None
                        if fast:
                            for p in producer.values():
                                if consumed_setdefault(p, i) != i:
                                    more_users.setdefault(p, []).append(i)
                            inputs_of[i] = (producer, pl)
                            for sid, dg, lo, hi, p in pl:
                                lane = live[sid]
                                v = lane.get(dg)
                                e = p << 32 | i
                                lane[dg] = e if v is None else (v + (e,) if type(v) is tuple else (v, e))
                                if dg > live_top[sid]:
                                    live_top[sid] = dg
                            c = base
                        else:
                            c = self.search(i, d, offsets, arrival, producer, latest, early, ready, base)
                    if len(producer) < len(d.uinputs):
                        c = self.consumer(i, d, offsets)  # no producer, or one whose value never passes: errors
                else:
                    # plain(i, d, offsets), inlined: the first free cycle
                    c = early
                    if kind == _K_IW:
                        lw = last_lw[d.plane]
                        if lw is not None and lw + d_load > c:
                            c = lw + d_load
                    elif kind == _K_ACC:
                        k = accs[d.plane]
                        prods = products[d.plane]
                        if k < len(prods):
                            if trace is not None:
                                trace.append((i, k, prods[k][0], c))
                            if prods[k][0] > c:
                                c = prods[k][0]
                        else:
                            self.error(i, f"'acc' on mxm{d.plane} takes product {k + 1} of the plane, but only "
                                          f"{len(prods)} come from earlier 'abc' instructions",
                                       f"issue an 'abc' on mxm{d.plane} first, or pin this instruction")
                    if d.okeys or port:
                        if offsets is _ZERO:
                            while busy1(i, d, c, q):
                                c += 1
                        else:
                            while conflict(i, d, c, offsets) is not None:
                                c += 1
                # reserve(i, d, c, offsets), inlined for a row without repetitions
                if offsets is _ZERO:
                    a = c + d.delay
                    if d.okeys:
                        pos = d.pos
                        for sid, sk, dpos in d.okeys:
                            lane = slots[sk]
                            if a not in lane:
                                lane[a] = i
                                if a > slots_top[sk]:
                                    slots_top[sk] = a
                            lane = diagw[sid]
                            v = lane.get(a + dpos)
                            lane[a + dpos] = i if v is None else (v + (i,) if type(v) is tuple else (v, i))
                            if a + dpos > diagw_top[sid]:
                                diagw_top[sid] = a + dpos
                    if port == _P_READ:
                        lane = rport[q]
                        if c not in lane:
                            lane[c] = i
                            if c > rport_top[q]:
                                rport_top[q] = c
                    elif port == _P_WRITE:
                        lane = wport[q]
                        if a not in lane:
                            lane[a] = i
                            if a > wport_top[q]:
                                wport_top[q] = a
                else:
                    reserve(i, d, c, offsets)
                if kind != _K_PLAIN:
                    mxm_after(i, d, c, offsets)
                for sid in d.outputs:
                    last_writer[sid] = i
            cycles[i] = c
            di = dur[i]
            fq = free[q]
            end = c + di
            if end > fq:
                free[q] = end
            # a MEM read and write co-issued (c < fq): no third joins them
            pair_open[q] = None if c < fq or d.port == _P_NONE or di != 1 else (c, d.port, i)
            last_in_q[q] = i
            if kind != _K_NOP:
                prev, prev_row = c, i
            # note_issue(i, c, c + di - 1, c + d.delay), inlined
            e = c + d.delay
            effect[i] = e
            if end - 1 > self.last_issue:
                self.last_issue = end - 1
            if e > self.max_effect:
                self.max_effect = e
                self.max_effect_row = i
        self.prev, self.prev_row, self.halt_row = prev, prev_row, halt_row

    def busy1(self, i: int, d: _Dec, t: int, q: int) -> bool:
        """Is a stream slot or MEM port of row *i* (no repetitions) taken when it
        issues at *t*?  (:meth:`conflict` is not None, without the message.)"""
        a = t + d.delay
        if d.okeys:
            slots, live = self.slots, self.live
            for sid, sk, dpos in d.okeys:
                j = slots[sk].get(a)
                if j is not None and j != i:
                    return True
                ranges = live[sid].get(a + dpos)
                if ranges is not None:
                    for e in (ranges if type(ranges) is tuple else (ranges,)):
                        if e >> 32 != i and self.spans(sid, e >> 32, e & _M32, d.pos):
                            return True
        port = d.port
        if port:
            if port == _P_READ:
                other = self.rport[q].get(t)
                if other is not None and other != i:
                    return True
                other = self.wport[q].get(t)
            else:
                other = self.wport[q].get(a)
                if other is not None and other != i:
                    return True
                other = self.rport[q].get(a)
            if other is not None and other != i and self.decs[other].bank == d.bank:
                return True
        return False

    def halt(self, i: int, pk: int, pin: int, prev: int, prev_row: int, halt_row: int | None) -> int:
        q = self.queue[i]
        if halt_row is not None:
            self.diags.error("a program has one 'halt'", self.ir.span(i),
                             notes=[Diagnostic("note", "first 'halt' here", self.ir.span(halt_row)),
                                    *self.ir.chain_notes(i)])
        earliest = max(self.free[q], self.last_issue + 1, self.max_effect)
        if pk == PIN_NONE:
            return earliest
        c = pin if pk == PIN_ABS else prev + pin
        if pk == PIN_REL and prev_row >= 0:
            self.frozen.add(prev_row)
        if c < earliest:
            what = f"@{pin}" if pk == PIN_ABS else f"@+{pin} (cycle {c})"
            if self.max_effect > max(self.last_issue + 1, self.free[q]):
                why = f"the instruction at {self.where(self.max_effect_row, i)} takes effect at cycle {self.max_effect}"
            elif self.last_issue + 1 > self.free[q]:
                why = f"instructions before it issue until cycle {self.last_issue}"
            else:
                why = f"queue {self.cfg.queues[q]} is busy until cycle {self.free[q] - 1}"
            self.error(i, f"cannot issue at {what}: {why}", f"the earliest cycle is {earliest}; remove the pin or raise it")
            c = earliest
        return c

    def after_halt(self, h: int, cycles: np.ndarray) -> None:
        """Nothing issues or takes effect after 'halt' (*cycles*: the issue
        cycles as an array)."""
        hc = int(cycles[h])
        last = cycles + np.where(self.ir.op == isa.REPEAT.opcode, self.dur - 1, 0)
        effect = np.asarray(self.effect, dtype=np.int64)
        bad = (last > hc) | (effect > hc)
        bad[h] = False
        for i in np.nonzero(bad)[0].tolist():
            if last[i] > hc:
                msg = f"this instruction issues at cycle {last[i]}, after 'halt' at cycle {hc}"
            else:
                msg = f"this instruction takes effect at cycle {effect[i]}, after 'halt' at cycle {hc}"
            self.error(i, msg, notes=[Diagnostic("note", "'halt' is here", self.ir.span(h))])

    def plain(self, i: int, d: _Dec, offsets) -> int:
        """An unpinned row without stream inputs: first free cycle."""
        q = self.queue[i]
        c = self.earliest(q, d, i)
        if d.kind == _K_IW:
            lw = self.last_lw[d.plane]
            if lw is not None:
                c = max(c, lw + self.d_load)
        elif d.kind == _K_ACC:
            k = self.accs[d.plane]
            prods = self.products[d.plane]
            if k < len(prods):
                c = max(c, prods[k][0])
            else:
                self.error(i, f"'acc' on mxm{d.plane} takes product {k + 1} of the plane, but only {len(prods)} "
                              f"come from earlier 'abc' instructions",
                           f"issue an 'abc' on mxm{d.plane} first, or pin this instruction")
        if not d.outputs and not d.port:
            return c
        conflict = self.conflict
        while conflict(i, d, c, offsets) is not None:
            c += 1
        return c

    def mxm_after(self, i: int, d: _Dec, c: int, offsets) -> None:
        kind = d.kind
        if kind == _K_PLAIN:
            return
        p = d.plane
        if kind == _K_LW:
            self.last_lw[p] = c + offsets[-1]
        elif kind == _K_IW:
            self.last_iw[p] = (c + offsets[-1], i)
        elif kind == _K_ABC:
            self.products[p].extend((c + off + self.d_act, i) for off in offsets)
        elif kind == _K_ACC:
            self.accs[p] += len(offsets)

    def consumer(self, i: int, d: _Dec, offsets) -> int:
        """An unpinned row with stream inputs: it issues when they pass it."""
        q = self.queue[i]
        x = d.pos
        decs, cycles, last_writer = self.decs, self.cycles, self.last_writer
        arrival: dict[int, int] = {}    # stream -> cycle it passes x
        producer: dict[int, int] = {}   # stream -> row
        for sid in d.inputs:
            if sid in arrival:
                continue
            p = last_writer.get(sid)
            if p is None:
                self.error(i, f"no earlier instruction writes {_s(sid)}; write it first or pin this instruction")
                return self.first_free(i, d, self.free[q], offsets)
            pd = decs[p]
            pp = pd.pos
            west = sid & 32
            if (x > pp) if west else (x < pp):
                other = f"s{sid & 31}{'e' if west else 'w'}"
                self.error(i, f"the value on {_s(sid)} flows {'west' if west else 'east'} from {self.unit_place(p)} "
                              f"and never passes {self.unit_place(i)}",
                           f"only {'an eastward' if west else 'a westward'} stream ({other}, ...) goes from there to here",
                           [self.note(p, f"{_s(sid)} is written here")])
                return self.first_free(i, d, self.free[q], offsets)
            arrival[sid] = cycles[p] + pd.delay + (x - pp if x > pp else pp - x)
            producer[sid] = p
        # earliest(q, d, i), inlined
        po = self.pair_open[q]
        if po is not None and d.port != _P_NONE and d.port != po[1]:
            earliest = self.free[q] if po[1] == _P_WRITE and self.hazard(po[2], i) else po[0]
        else:
            earliest = self.free[q]
        ready = None
        if d.kind == _K_ABC and self.last_iw[d.plane] is not None:
            ready = self.last_iw[d.plane][0] + self.d_install
        latest = max(arrival.values())
        base = latest
        if earliest > base:
            base = earliest
        if ready is not None and ready > base:
            base = ready
        # Fast path: every input passes at *base* (no producer to delay).  This
        # is the first step of the search below, without its no-op shift.
        for a in arrival.values():
            if a != base:
                break
        else:
            paths = self.paths(d, base, producer)
            if paths is not None and self.conflict(i, d, base, offsets) is None:
                consumed, live = self.consumed, self.live
                for p in producer.values():
                    if consumed.setdefault(p, i) != i:
                        self.more_users.setdefault(p, []).append(i)
                self.inputs_of[i] = (producer, paths)
                for sid, dg, lo, hi, p in paths:
                    self._addlive(sid, dg, p, i)
                return base
        return self.search(i, d, offsets, arrival, producer, latest, earliest, ready, base)

    def search(self, i: int, d: _Dec, offsets, arrival, producer, latest, earliest, ready, base) -> int:
        """:meth:`consumer` past its fast path."""
        # Issue at the first cycle from *base* on where the inputs line up (early
        # producers delayed), none is overwritten on its way, and the row's own
        # slots and ports are free.  Past *base* every producer must move.
        target = base
        for _ in range(_SEARCH):
            early = {producer[s]: a for s, a in arrival.items() if a < target}
            if any(not self.movable(p) for p in early):
                break
            moved = self.shift(early, target)
            if moved is not None:
                arr = {s: (target if producer[s] in early else a) for s, a in arrival.items()}
                if self.clobber(d, target, arr, producer) is None and self.conflict(i, d, target, offsets) is None:
                    self.inputs_of[i] = (producer, self.check_paths(i, d, target, arr, producer))
                    return target
                self.unshift(moved, target)
            target += 1
        # no such cycle: delay whole chains, else report what is wrong at *base*
        c = self.delay_chains(i, d, offsets, arrival, producer, base)
        if c is not None:
            return c
        early = {producer[s]: a for s, a in arrival.items() if a < base}
        stuck = {p: a for p, a in early.items() if not self.movable(p)}
        if not stuck and self.shift(early, base) is None:
            stuck = early
        if stuck:
            self.early_error(i, d, arrival, producer, stuck, latest, earliest, ready)
        else:
            arrival = {s: (base if producer[s] in early else a) for s, a in arrival.items()}
        self.check_paths(i, d, base, arrival, producer)
        self.report_conflicts(i, d, base, offsets)
        return base

    def paths(self, d: _Dec, c: int, producer) -> list | None:
        """With every input of a row at *d*'s position arriving at *c*: the
        path of each input that travels, (stream, diagonal, lo, hi, producer), or None if
        another write overwrites one on its way (as :meth:`clobber`)."""
        x = d.pos
        decs, cycles, diagw = self.decs, self.cycles, self.diagw
        out = []
        for sid, p in producer.items():
            pd = decs[p]
            pp = pd.pos
            if x == pp:
                continue
            lo, hi = (x, pp - 1) if sid & 32 else (pp + 1, x)
            a = cycles[p] + pd.delay
            dg = a + pp if sid & 32 else a - pp
            if self.overwriter(sid, dg, lo, hi, p) is not None:
                return None
            out.append((sid, dg, lo, hi, p))
        return out

    def shift(self, early: dict[int, int], target: int) -> tuple | None:
        """Delay each producer of *early* (row -> arrival) so that it arrives at
        *target*.  Returns what :meth:`unshift` needs to undo it, or None (and
        nothing moved) if one of them cannot move there."""
        saved = self.last_issue, self.max_effect, self.max_effect_row
        moved: list[tuple[int, int]] = []
        for p, a in early.items():
            if not self.move(p, self.cycles[p] + target - a):
                self.unshift((moved, saved), target)
                return None
            moved.append((p, a))
        return moved, saved

    def unshift(self, shifted: tuple, target: int) -> None:
        moved, saved = shifted
        for p, a in moved:
            self.move(p, self.cycles[p] - (target - a))
        self.last_issue, self.max_effect, self.max_effect_row = saved

    # ---- delaying chains ---------------------------------------------------------------
    def delay_chains(self, i: int, d: _Dec, offsets, arrival, producer, base: int) -> int | None:
        """The search of :meth:`consumer` again, where a producer with stream
        inputs is delayed together with its upstream cone (:meth:`cone`).  Only
        called once that search has failed: targets where no producer to delay
        has stream inputs were tried by it and are skipped.  Returns the cycle
        row *i* issues at (everything moved, its paths in use), or None with
        nothing changed."""
        decs = self.decs
        cones: dict[int, list[int] | None] = {}
        inputs = set(producer.values())
        target = base
        for _ in range(_SEARCH):
            early = {producer[s]: a for s, a in arrival.items() if a < target}
            if any(decs[p].inputs for p in early):
                groups = []
                rows: set[int] = set()
                for p, a in early.items():
                    if p not in cones:
                        cones[p] = self.cone(p, inputs)
                    cone = cones[p]
                    if cone is None or not rows.isdisjoint(cone):
                        return None
                    rows.update(cone)
                    groups.append((cone, target - a))
                done = []
                for members, delta in groups:
                    u = self.move_cone(members, delta)
                    if u is None:
                        break
                    done.append(u)
                else:
                    arr = {s: (target if producer[s] in early else a) for s, a in arrival.items()}
                    if self.clobber(d, target, arr, producer) is None and self.conflict(i, d, target, offsets) is None:
                        self.inputs_of[i] = (producer, self.check_paths(i, d, target, arr, producer))
                        return target
                for u in reversed(done):
                    self.unmove_cone(u)
            target += 1
        return None

    def cone(self, p: int, inputs) -> list[int] | None:
        """Producer *p* and every row its value derives from (its producers,
        theirs, ..., back to rows without stream inputs), in source order, if
        they may all be delayed together: each is unpinned, not the anchor of
        an ``@+`` pin, still the last row of its queue (its ``repeat`` may
        follow), and read by no row outside the cone (nor, but for *p*, by the
        row being placed, whose producers are *inputs*).  Else None."""
        decs, queue, last_in_q, rep_of = self.decs, self.queue, self.last_in_q, self.rep_of
        members = [p]
        seen = {p}
        k = 0
        while k < len(members):
            r = members[k]
            k += 1
            dr = decs[r]
            last = last_in_q[queue[r]]
            if (self.pin_kinds[r] != PIN_NONE or r in self.frozen or r in self.pinned_use
                    or not (last == r or last == rep_of.get(r)) or (r != p and r in inputs)):
                return None
            if dr.inputs:
                placed = self.inputs_of[r]
                if dr.kind != _K_PLAIN or placed is None:
                    return None
                for q in placed[0].values():
                    if q not in seen:
                        seen.add(q)
                        members.append(q)
            elif dr.kind not in (_K_PLAIN, _K_ACC):
                return None
        for r in members:
            u = self.consumed.get(r)
            if u is not None and (u not in seen or any(v not in seen for v in self.more_users.get(r, ()))):
                return None
        members.sort()
        return members

    def move_cone(self, members: list[int], delta: int) -> tuple | None:
        """Issue the rows of a cone (and their repetitions) *delta* cycles later,
        with the paths between them, if their slots, ports and paths are free
        then.  Returns what :meth:`unmove_cone` needs, or None (nothing moved)."""
        decs, cycles, live, diagw, inputs_of = self.decs, self.cycles, self.live, self.diagw, self.inputs_of
        old_paths = {c: inputs_of[c] for c in members if inputs_of[c] is not None}
        for c, (_, paths) in old_paths.items():
            for sid, dg, lo, hi, p in paths:
                self._unlive(sid, dg, p, c)
        for r in members:
            self.unreserve(r, decs[r], cycles[r], self.offs.get(r, _ZERO))
        placed = []
        ok = True
        for r in members:
            offsets = self.offs.get(r, _ZERO)
            if self.conflict(r, decs[r], cycles[r] + delta, offsets) is not None:
                ok = False
                break
            self.reserve(r, decs[r], cycles[r] + delta, offsets)
            placed.append(r)
        new_paths = {}
        if ok:
            for c, (prods, paths) in old_paths.items():
                moved = [(sid, dg + delta, lo, hi, p) for sid, dg, lo, hi, p in paths]
                for sid, dg, lo, hi, p in moved:
                    if self.overwriter(sid, dg, lo, hi, p) is not None:
                        ok = False
                new_paths[c] = (prods, moved)
        if not ok:
            for r in placed:
                self.unreserve(r, decs[r], cycles[r] + delta, self.offs.get(r, _ZERO))
            for r in members:
                self.reserve(r, decs[r], cycles[r], self.offs.get(r, _ZERO))
            for c, (_, paths) in old_paths.items():
                for sid, dg, lo, hi, p in paths:
                    self._addlive(sid, dg, p, c)
            return None
        saved = (self.last_issue, self.max_effect, self.max_effect_row,
                 [(q, self.free[q], self.pair_open[q]) for q in {self.queue[r] for r in members}],
                 [(r, cycles[r], self.effect[r]) for m in members for r in (m, self.rep_of.get(m)) if r is not None])
        for c, (prods, paths) in new_paths.items():
            inputs_of[c] = (prods, paths)
            for sid, dg, lo, hi, p in paths:
                self._addlive(sid, dg, p, c)
        for r in members:
            c = cycles[r] + delta
            cycles[r] = c
            q = self.queue[r]
            self.free[q] = c + 1
            self.pair_open[q] = None
            d = decs[r]
            self.note_issue(r, c, c, c + d.delay)
            rr = self.rep_of.get(r)
            if rr is not None and self.last_in_q[q] == rr:  # the repeat is placed already: it moves along
                offsets = self.offs[r]
                cycles[rr] += delta
                self.free[q] = cycles[rr] + int(self.dur[rr])
                self.note_issue(rr, cycles[rr], c + offsets[-1], c + offsets[-1] + d.delay)
        return members, delta, old_paths, new_paths, saved

    def unmove_cone(self, moved: tuple) -> None:
        """Undo :meth:`move_cone`."""
        members, delta, old_paths, new_paths, saved = moved
        decs, cycles, live = self.decs, self.cycles, self.live
        for c, (_, paths) in new_paths.items():
            for sid, dg, lo, hi, p in paths:
                self._unlive(sid, dg, p, c)
        for r in members:
            self.unreserve(r, decs[r], cycles[r], self.offs.get(r, _ZERO))
        self.last_issue, self.max_effect, self.max_effect_row, queues, rows = saved
        for q, free, po in queues:
            self.free[q] = free
            self.pair_open[q] = po
        for r, c, e in rows:
            cycles[r] = c
            self.effect[r] = e
        for r in members:
            self.reserve(r, decs[r], cycles[r], self.offs.get(r, _ZERO))
        for c, entry in old_paths.items():
            self.inputs_of[c] = entry
            for sid, dg, lo, hi, p in entry[1]:
                self._addlive(sid, dg, p, c)

    def _addlive(self, sid: int, dg: int, p: int, c: int) -> None:
        """The value of producer *p* is in use on (stream, diagonal) until consumer *c*."""
        _push(self.live[sid], dg, p << 32 | c)
        if dg > self.live_top[sid]:
            self.live_top[sid] = dg

    def _unlive(self, sid: int, dg: int, p: int, c: int) -> None:
        """Undo :meth:`_addlive` (the first such entry)."""
        lane = self.live[sid]
        v = lane.get(dg)
        e = p << 32 | c
        if v is None:
            return
        if type(v) is int:
            if v == e:
                del lane[dg]
            return
        if e in v:
            rest = list(v)
            rest.remove(e)
            lane[dg] = tuple(rest) if len(rest) > 1 else rest[0]

    def spans(self, sid: int, p: int, c: int, pos: int) -> bool:
        """Is *pos* on the path of the value of producer *p* on stream *sid* to
        consumer *c* (from the consumer's position up to, not including, the
        producer's)?"""
        x, pp = self.decs[c].pos, self.decs[p].pos
        return x <= pos <= pp - 1 if sid & 32 else pp + 1 <= pos <= x

    def overwriter(self, sid: int, dg: int, lo: int, hi: int, p: int) -> tuple[int, int] | None:
        """The first row other than *p* writing *sid* on diagonal *dg* at a
        position in lo .. hi: (row, position), or None."""
        ws = self.diagw[sid].get(dg)
        if ws is None:
            return None
        decs = self.decs
        for w in (ws if type(ws) is tuple else (ws,)):
            if w != p:
                y = decs[w].pos
                if lo <= y <= hi:
                    return w, y
        return None

    def early_error(self, i, d, arrival, producer, stuck, latest, earliest, ready) -> None:
        """Report why row *i* cannot issue when its inputs pass (the *stuck*
        producers, with their arrivals, could not be delayed)."""
        q = self.queue[i]
        if any(a < latest for a in stuck.values()):
            entries: list[tuple[str, int]] = []
            for group in d.groups:
                arrs = [arrival[s] for s in group]
                if len(set(arrs)) == 1:
                    entries.append((_s(group[0]), arrs[0]))
                else:
                    entries += [(_s(s), a) for s, a in zip(group, arrs)]
            seen = set()
            entries = [e for e in entries if not (e in seen or seen.add(e))]
            first_early = next(s for s in d.inputs if producer[s] in stuck and arrival[s] < latest)
            first_late = next(s for s in d.inputs if arrival[s] == latest)
            pe, pl = producer[first_early], producer[first_late]
            k = latest - arrival[first_early]
            self.error(i, "inputs arrive at different cycles: " + ", ".join(f"{s} at cycle {a}" for s, a in entries),
                       f"delay the producer of {_s(first_early)} ({self.where(pe, i)}) by {_cycles(k)} "
                       f"(pin it at @{self.cycles[pe] + k}), or issue the producer of {_s(first_late)} "
                       f"({self.where(pl, i)}) {_cycles(k)} earlier",
                       [self.note(pe, f"{_s(first_early)} is written here"), self.note(pl, f"{_s(first_late)} is written here")])
            return
        sid = next(s for s in d.inputs if producer[s] in stuck)
        p = producer[sid]
        k = max(earliest, ready if ready is not None else earliest) - latest
        hint = f"delay the producer of {_s(sid)} ({self.where(p, i)}) by {_cycles(k)} (pin it at @{self.cycles[p] + k})"
        if ready is None or latest >= ready or earliest > ready:
            self.error(i, f"the value on {_s(sid)} passes {self.unit_place(i)} at cycle {latest}, but queue "
                          f"{self.cfg.queues[q]} is busy until cycle {earliest - 1}",
                       hint + ("" if d.row.unit != "vxm" else ", or use another ALU"),
                       [self.note(p, f"{_s(sid)} is written here")])
        else:
            cyc, iw = self.last_iw[d.plane]
            self.error(i, f"the value on {_s(sid)} passes {self.unit_place(i)} at cycle {latest}, before the weights "
                          f"installed by the 'iw' at {self.where(iw, i)} are ready at cycle {ready}",
                       hint, [self.note(iw, "the 'iw' is here")])

    def clobber(self, d: _Dec, c: int, arrival, producer) -> tuple | None:
        """The first input of a row at *d*'s position, issued at *c*, that another
        write overwrites on its way: (stream, producer, writer, position)."""
        x = d.pos
        for sid, p in producer.items():
            pd = self.decs[p]
            if arrival[sid] != c or x == pd.pos:
                continue
            lo, hi = (x, pd.pos - 1) if sid & 32 else (pd.pos + 1, x)
            dg = self.diag(sid, pd.pos, self.cycles[p] + pd.delay)
            hit = self.overwriter(sid, dg, lo, hi, p)
            if hit is not None:
                return sid, p, hit[0], hit[1]
        return None

    def check_paths(self, i: int, d: _Dec, c: int, arrival, producer) -> list:
        """Each input must reach row *i* unchanged; then it is in use along its path.
        Returns the paths put in use, (stream, diagonal, lo, hi, producer)."""
        x = d.pos
        added = []
        for sid, p in producer.items():
            pd = self.decs[p]
            if self.consumed.setdefault(p, i) != i:
                self.more_users.setdefault(p, []).append(i)
            if arrival[sid] != c or x == pd.pos:
                continue
            lo, hi = (x, pd.pos - 1) if sid & 32 else (pd.pos + 1, x)
            dg = self.diag(sid, pd.pos, self.cycles[p] + pd.delay)
            hit = self.overwriter(sid, dg, lo, hi, p)
            if hit is not None:
                w, y = hit
                t = dg - y if sid & 32 else dg + y
                self.error(i, f"the value on {_s(sid)} from {self.where(p, i)} is overwritten at {self.place(y)} at "
                              f"cycle {t} by the instruction at {self.where(w, i)} before it passes "
                              f"{self.unit_place(i)}",
                           "use another stream for one of the two values, or pin one of them to another cycle",
                           [self.note(w, "the overwriting instruction is here")])
            else:
                self._addlive(sid, dg, p, i)
                added.append((sid, dg, lo, hi, p))
        return added


def schedule(ir: IR, diags: Diagnostics) -> np.ndarray:
    """Issue cycle of every row (int64).  Errors go to *diags*."""
    if not len(ir):
        return np.zeros(0, dtype=np.int64)
    # The pass allocates millions of small tuples and no reference cycles: the
    # cyclic garbage collector would only rescan them (it costs more than the pass).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Scheduler(ir, diags).run()
    finally:
        if enabled:
            gc.enable()


def issue_end(ir: IR, cycles: np.ndarray) -> int:
    """The cycle after the last issue of any instruction (repetitions included,
    idle ``nop`` time not)."""
    if not len(ir):
        return 0
    dur = durations(ir)
    last = cycles + np.where(ir.op == isa.REPEAT.opcode, dur, 1)
    last = last[ir.op != isa.NOP.opcode]
    return int(last.max()) if len(last) else 0
