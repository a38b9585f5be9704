"""The reference interpreter: slow, plainly written, the oracle for the fast one.

It implements docs/timing-model.md by stepping the chip one cycle at a time and
keeping every stream register explicitly: for each direction, stream and
position there is a slot that holds a vector (``LANES`` bytes) or nothing, and
every cycle the eastward slots move one position east and the westward ones one
position west, values falling off the row's ends.  Nothing here is shared with
the event-driven fast interpreter (``lpuasm/interp.py``) except the chip
geometry (``lpuasm/chip.py``), the decoded program (``lpuasm/program.py``) and
the result types (``lpuasm/sim.py``).

One cycle ``c`` runs in this order:

1. **stream writes** scheduled for cycle c are put in their slots at their
   producer's position (a value written at position p at cycle a is seen at p
   at cycle a, at p+1 (east) at a+1, ...); two writes into one slot at one
   cycle are a violation (the later-issued producer is blamed);
2. **MXM state changes** of cycle c: rows loaded by ``lw`` join their plane's
   weight buffer, then ``iw`` installs take the buffer.  They happen before the
   instructions of cycle c act, like stream values: an ``abc`` issued at the
   install cycle sees the new weights, an ``acc`` at the cycle its product is
   ready finds it, and an ``iw`` whose install lands on the cycle a row is
   appended takes that row (the spec's "ready by t" and examples/gemm_int8.lasm,
   whose ``abc`` issues exactly at the install cycle);
3. **instructions issued at cycle c**, in issue order (queue id within a
   cycle): each samples its input streams at its own position (an empty slot is
   a violation), reads SRAM (reads see only writes committed at earlier
   cycles), computes its result from those samples and schedules its effects:
   stream writes at ``c + delay``, SRAM writes at their commit cycle, MXM
   changes at theirs;
4. **SRAM writes** committing at cycle c (``write`` at t+1, ``scatter`` at
   t+3), after the reads of step 3: a read at r sees a write at w only if w < r;
5. at a ``halt`` cycle, every effect of every instruction must have happened:
   one still pending (or an instruction issued later) is a violation; the run
   ends there;
6. the streams shift by one position.

Bank ports are counted per slice and cycle: reads at step 3 (``read``,
``gather``), writes at step 4 (``write``, ``scatter``); of two instructions in
conflict, the later-issued one is blamed (as for two producers on one slot).
Violations are thus found in cycle order: the error reported is the first
one the chip would run into, not the first in the program text.

Resolved ambiguities of the spec (the fast interpreter should agree):

* a MEM instruction works on the slice its address names (in a valid image this
  is its queue's slice);
* ``iw`` of an empty weight buffer installs all-zero weights of no dtype, which
  any ``abc`` dtype accepts ("rows not loaded are zero");  an ``lw`` whose dtype
  differs from the rows already in the buffer is a dtype mismatch;
* ``abc`` multiplies by the weights installed when it issues; its product
  carries the dtype of those weights (or the ``abc``'s dtype for dtype-less
  zero weights), and ``acc`` checks its own dtype against that product;
* accumulator rows hold 4 raw bytes per lane, zero at start, read as int32 or
  float32 by each ``acc``;  an ``acc`` row beyond ``mxm_acc_rows`` is a violation;
* ``permute`` maps are read as unsigned 16-bit lanes; one outside the lanes is a
  violation (the largest is reported), but a map that repeats a lane is not
  checked for being a bijection (``d[i] = s[map[i]]`` is computed as written);
  a ``distribute`` map value other than 0..15 or 255 is a violation;
* a ``scatter`` marks every word it touches as written (for the uninitialised
  read check), and its offsets are checked when it issues;  a ``gather`` or
  ``scatter`` offset is ``a + map[i]`` with map read as unsigned bytes (the
  largest offending offset is reported);
* NaN/Inf are counted on float results of VXM instructions and on the rows that
  ``acc`` emits (not on ``abc``'s intermediate products);  with ``strict_fp``
  the instruction that produced the value is blamed, at its issue;
* an instruction's "effect" is at ``issue + delay`` for every instruction
  (ICU instructions: their issue); the end of a program without ``halt`` is the
  latest of them;
* a SimError carries the issue cycle of the instruction blamed; the cycle of
  the violation itself (a slot, a port, a commit) is in its cause;
* a C2C instruction stops the run when it issues, after a ``send`` has sampled
  its input (so a missing input is reported first);
* checks within one instruction go: unit state (MXM weights, FIFO), then its
  stream inputs, then SRAM (offsets, ports, uninitialised words).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import chip, isa
from .config import ChipConfig
from .program import Program
from .sim import UNIT_KINDS, RunResult, SimError, Stats, initial_sram
from .syntax import Span

NP_DTYPES = {"i8": np.dtype("<i1"), "i16": np.dtype("<i2"), "i32": np.dtype("<i4"),
             "f16": np.dtype("<f2"), "f32": np.dtype("<f4")}

C2C_CAUSE = "C2C is not simulated yet (multi-chip runs come later); use --timing-only"


@dataclass
class _Decoded:
    """One issued instruction, decoded once."""

    index: int          # row of the Program
    cycle: int
    queue: int
    row: isa.Instr
    fields: dict
    position: int | None  # where it acts on the row (None for the ICU queue)
    effect: int          # cycle of its last effect (issue + delay)


@dataclass
class _Plane:
    """State of one MXM plane."""

    buffer: list = field(default_factory=list)   # rows of W loaded by lw (numpy vectors)
    buffer_dtype: str | None = None
    weights: np.ndarray | None = None              # K x LANES once installed
    weights_dtype: str | None = None               # None for all-zero weights of no dtype
    installed: bool = False
    products: list = field(default_factory=list)   # FIFO of (ready cycle, dtype of weights, vector)
    acc: np.ndarray | None = None                  # (rows, LANES, 4) uint8 raw accumulator bits


class ReferenceInterpreter:
    """One run of a program; use :func:`run_reference`."""

    def __init__(self, program: Program, allow_uninit: bool = False, strict_fp: bool = False):
        self.program = program
        self.config: ChipConfig = program.config
        self.geo = chip.Geometry(self.config)
        self.allow_uninit = allow_uninit
        self.strict_fp = strict_fp
        cfg = self.config
        self.lanes = cfg.lanes
        self.nstreams = cfg.streams_per_direction
        self.npos = self.geo.positions
        # stream slots: value[direction, stream, position] and whether it holds one
        self.value = np.zeros((2, self.nstreams, self.npos, self.lanes), dtype=np.uint8)
        self.full = np.zeros((2, self.nstreams, self.npos), dtype=bool)
        self.last_passed = np.full((2, self.nstreams, self.npos), -1, dtype=np.int64)
        self.sram, self.valid = initial_sram(program.image, cfg)
        self.planes = [_Plane(acc=np.zeros((cfg.mxm_acc_rows, self.lanes, 4), dtype=np.uint8))
                       for _ in range(cfg.mxm_planes)]
        # effects pending, by cycle
        self.stream_writes: dict[int, list] = {}   # c -> [(instr, direction, stream, position, vector)]
        self.sram_writes: dict[int, list] = {}     # c -> [(instr, hemi, slice, bank, words, lanes mask, vector(s))]
        self.mxm_loads: dict[int, list] = {}       # c -> [(instr, plane, dtype, row vector)]
        self.mxm_installs: dict[int, list] = {}    # c -> [(instr, plane)]
        self.ports: dict = {}                      # (cycle, hemi, slice) -> {"read": [(instr, bank)], "write": [...]}
        self.stats = Stats(queues_per_unit=self._queues_per_unit())
        self.cycle = 0
        self.instrs = [self._decode(i) for i in range(len(program))]

    # ---- setup ----------------------------------------------------------------------
    def _queues_per_unit(self) -> dict[str, int]:
        counts = {u: 0 for u in UNIT_KINDS}
        for q in range(len(self.config.queues)):
            counts[self.config.unit_of_queue(q)] += 1
        return counts

    def _decode(self, i: int) -> _Decoded:
        p = self.program
        row, fields = isa.unpack(int(p.word[i]))
        q = int(p.queue[i])
        t = int(p.cycle[i])
        if row.unit == "mem":
            east, slice_, _bank, _off = isa.addr_parts(fields["a"])
            position = self.geo.mem(east, slice_) if slice_ < self.config.mem_slices_per_hemisphere else None
        else:
            position = self.geo.queue_position(q)
        d = _Decoded(i, t, q, row, fields, position, t + chip.delay(self.config, row))
        return d

    # ---- errors -----------------------------------------------------------------------
    def error(self, ins: _Decoded, cause: str, hint: str | None = None) -> SimError:
        p = self.program
        i = ins.index
        sm = p.image.srcmap
        r = int(p.srcrow[i])
        span = None
        if 0 <= r < len(sm.line):
            col = int(sm.col[r])
            span = Span(sm.files[int(sm.file[r])], int(sm.line[r]), col, col + 1)
        err = SimError(cause, cycle=ins.cycle, queue=self.config.queues[ins.queue],
                       unit=self.config.unit_of_queue(ins.queue), text=p.text(i), source=p.source(i), span=span)
        if hint:
            err.diagnostics[0].hint = hint
        self.stats.cycles = self.cycle
        err.stats = self.stats.to_json(self.config)
        return err

    # ---- streams -------------------------------------------------------------------------
    def _check_stream(self, ins: _Decoded, direction: int, index: int) -> None:
        if index >= self.nstreams:
            name = isa.stream_name(index | direction << 5)
            raise self.error(ins, f"stream {name} does not exist ({self.nstreams} streams per direction)")

    def sample(self, ins: _Decoded, code: int, nbytes: int) -> list[np.ndarray]:
        """The byte planes of the group starting at stream *code*, at the
        instruction's position, now."""
        direction, first = code >> 5 & 1, code & 31
        planes = []
        for k in range(nbytes):
            s = first + k
            self._check_stream(ins, direction, s)
            pos = ins.position
            if not self.full[direction, s, pos]:
                last = int(self.last_passed[direction, s, pos])
                tail = f"; it last passed at cycle {last}" if last >= 0 else "; nothing has passed there yet"
                raise self.error(ins, f"no value passes {self.geo.position_name(pos)} on stream "
                                      f"{isa.stream_name(s | direction << 5)} at cycle {self.cycle}{tail}")
            planes.append(self.value[direction, s, pos].copy())
        return planes

    def sample_typed(self, ins: _Decoded, code: int, dtype: str) -> np.ndarray:
        return _join(self.sample(ins, code, NP_DTYPES[dtype].itemsize), dtype)

    def emit(self, ins: _Decoded, code: int, planes: list[np.ndarray], at: int) -> None:
        """Schedule byte planes onto the group starting at stream *code* at cycle *at*."""
        direction, first = code >> 5 & 1, code & 31
        for k, plane in enumerate(planes):
            self._check_stream(ins, direction, first + k)
            self.stream_writes.setdefault(at, []).append((ins, direction, first + k, ins.position, plane))

    def emit_typed(self, ins: _Decoded, code: int, values: np.ndarray, dtype: str, at: int) -> None:
        self.emit(ins, code, _split(values, dtype), at)

    def apply_stream_writes(self, c: int) -> None:
        written = set()
        for ins, direction, s, pos, plane in self.stream_writes.pop(c, []):
            key = (direction, s, pos)
            if key in written:
                raise self.error(ins, f"two producers write stream {isa.stream_name(s | direction << 5)} at "
                                      f"{self.geo.position_name(pos)} at cycle {c}")
            written.add(key)
            self.value[direction, s, pos] = plane
            self.full[direction, s, pos] = True

    def shift_streams(self) -> None:
        east, west = chip.EAST, chip.WEST
        self.value[east, :, 1:] = self.value[east, :, :-1].copy()
        self.full[east, :, 1:] = self.full[east, :, :-1].copy()
        self.full[east, :, 0] = False
        self.value[west, :, :-1] = self.value[west, :, 1:].copy()
        self.full[west, :, :-1] = self.full[west, :, 1:].copy()
        self.full[west, :, -1] = False

    # ---- SRAM ---------------------------------------------------------------------------------
    def _addr(self, ins: _Decoded, code: int) -> tuple[int, int, int, int]:
        east, slice_, bank, offset = isa.addr_parts(code)
        cfg = self.config
        if slice_ >= cfg.mem_slices_per_hemisphere or bank >= cfg.banks_per_slice or offset >= cfg.words_per_bank:
            raise self.error(ins, f"address {isa.addr_name(code)} does not exist on this chip")
        return int(east), slice_, bank, offset

    def use_port(self, ins: _Decoded, kind: str, hemi: int, slice_: int, bank: int, c: int) -> None:
        use = self.ports.setdefault((c, hemi, slice_), {"read": [], "write": []})
        name = f"{'E' if hemi else 'W'}{slice_}"
        # the later-issued of the two instructions is blamed
        if use[kind]:
            first = use[kind][0][0]
            raise self.error(max(ins, first, key=lambda x: x.index),
                             f"bank-port conflict on slice {name}: two {kind}s at cycle {c}")
        other = "write" if kind == "read" else "read"
        for first, b in use[other]:
            if b == bank:
                raise self.error(max(ins, first, key=lambda x: x.index),
                                 f"bank-port conflict on slice {name}: a read and a write on bank {bank} at cycle {c}")
        use[kind].append((ins, bank))

    def read_word(self, ins: _Decoded, hemi: int, slice_: int, bank: int, offset: int) -> np.ndarray:
        if not self.valid[hemi, slice_, bank, offset] and not self.allow_uninit:
            word = isa.addr_name(isa.addr_code(bool(hemi), slice_, bank, offset))
            raise self.error(ins, f"uninitialised SRAM read of {word}",
                             hint="nothing was written there and it holds no initial data; "
                                  "--allow-uninit reads such words as zeros")
        return self.sram[hemi, slice_, bank, offset].copy()

    def commit_sram_writes(self, c: int) -> None:
        for ins, hemi, slice_, bank, words, data in self.sram_writes.pop(c, []):
            self.use_port(ins, "write", hemi, slice_, bank, c)
            for lane in range(self.lanes):
                self.sram[hemi, slice_, bank, words[lane], lane] = data[lane]
                self.valid[hemi, slice_, bank, words[lane]] = True
            self.stats.sram_bytes_written += self.lanes

    # ---- MXM ------------------------------------------------------------------------------------
    def apply_mxm_changes(self, c: int) -> None:
        for ins, p, dtype, rowvec in self.mxm_loads.pop(c, []):
            plane = self.planes[p]
            k = chip.mxm_k(self.config, dtype)
            if plane.buffer and plane.buffer_dtype != dtype:
                raise self.error(ins, f"dtype mismatch: the weight buffer of mxm{p} holds {plane.buffer_dtype} rows, "
                                      f"lw.{dtype} adds {dtype}")
            if len(plane.buffer) >= k:
                raise self.error(ins, f"weight buffer of mxm{p} holds {len(plane.buffer)} rows already (K = {k})")
            plane.buffer.append(rowvec)
            plane.buffer_dtype = dtype
        for ins, p in self.mxm_installs.pop(c, []):
            plane = self.planes[p]
            dtype = plane.buffer_dtype
            if dtype is None:
                # nothing loaded: all-zero weights that fit any activation dtype
                plane.weights, plane.weights_dtype = None, None
            else:
                k = chip.mxm_k(self.config, dtype)
                w = np.zeros((k, self.lanes), dtype=NP_DTYPES[dtype])
                for r, rowvec in enumerate(plane.buffer):
                    w[r] = rowvec
                plane.weights, plane.weights_dtype = w, dtype
            plane.installed = True
            plane.buffer, plane.buffer_dtype = [], None

    # ---- results ------------------------------------------------------------------------------
    def check_result(self, ins: _Decoded, values: np.ndarray, dtype: str) -> None:
        if dtype not in isa.FLOAT_DTYPES:
            return
        bad = int(np.count_nonzero(~np.isfinite(values.astype(np.float64))))
        self.stats.nan_inf += bad
        if bad and self.strict_fp:
            raise self.error(ins, "non-finite result (strict fp)")

    # ---- the cycle loop ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        start = time.perf_counter()
        instrs = self.instrs
        halt = next((ins for ins in instrs if ins.row.mnemonic == "halt"), None)
        if halt is not None:
            end = halt.cycle
        else:
            end = max((ins.effect for ins in instrs), default=-1)
        by_cycle: dict[int, list[_Decoded]] = {}
        for ins in instrs:
            by_cycle.setdefault(ins.cycle, []).append(ins)
        for c in range(end + 1):
            self.cycle = c
            # 1. stream writes land at their producers' positions
            self.apply_stream_writes(c)
            self.last_passed[self.full] = c
            # 2. MXM state changes of this cycle
            self.apply_mxm_changes(c)
            # 3. instructions issued now
            for ins in by_cycle.get(c, []):
                self.issue(ins)
            # 4. SRAM writes commit
            self.commit_sram_writes(c)
            # 5. halt: nothing may still be pending
            if halt is not None and c == halt.cycle:
                late = next((ins for ins in instrs if ins.effect > c), None)
                if late is not None:
                    raise self.error(late, f"effect at cycle {late.effect} after halt at cycle {c}")
            # 6. streams move on
            self.shift_streams()
        self.stats.cycles = end + 1 + self.config.superlanes - 1 if end >= 0 else 0
        self.stats.wall_seconds = time.perf_counter() - start
        return RunResult(self.config, self.program.image, self.stats, self.sram)

    def issue(self, ins: _Decoded) -> None:
        self.stats.instructions += 1
        self.stats.per_unit[self.config.unit_of_queue(ins.queue)] += 1
        row = ins.row
        handler = getattr(self, "_op_" + row.unit)
        handler(ins, row.mnemonic, ins.fields)

    # ---- ICU and C2C ------------------------------------------------------------------------------
    def _op_icu(self, ins, mnemonic, f) -> None:
        # sync, notify, config, ifetch and halt have no effect on data
        pass

    def _op_c2c(self, ins, mnemonic, f) -> None:
        if mnemonic == "send":  # its input must still pass; then the run stops
            self.sample(ins, f["s"], 1)
        raise self.error(ins, C2C_CAUSE)

    # ---- MEM ---------------------------------------------------------------------------------------
    def _op_mem(self, ins, mnemonic, f) -> None:
        c = self.cycle
        hemi, slice_, bank, offset = self._addr(ins, f["a"])
        delay = ins.effect - ins.cycle
        if mnemonic == "read":
            self.use_port(ins, "read", hemi, slice_, bank, c)
            word = self.read_word(ins, hemi, slice_, bank, offset)
            self.stats.sram_bytes_read += self.lanes
            self.emit(ins, f["d"], [word], c + delay)
        elif mnemonic == "write":
            (data,) = self.sample(ins, f["s"], 1)
            words = np.full(self.lanes, offset)
            self.sram_writes.setdefault(c + delay, []).append((ins, hemi, slice_, bank, words, data))
        elif mnemonic == "gather":
            (mapv,) = self.sample(ins, f["map"], 1)
            words = self._offsets(ins, "gather", offset, mapv)
            self.use_port(ins, "read", hemi, slice_, bank, c)
            out = np.zeros(self.lanes, dtype=np.uint8)
            for lane in range(self.lanes):
                out[lane] = self.read_word(ins, hemi, slice_, bank, int(words[lane]))[lane]
            self.stats.sram_bytes_read += self.lanes
            self.emit(ins, f["d"], [out], c + delay)
        elif mnemonic == "scatter":
            (data,) = self.sample(ins, f["s"], 1)
            (mapv,) = self.sample(ins, f["map"], 1)
            words = self._offsets(ins, "scatter", offset, mapv)
            self.sram_writes.setdefault(c + delay, []).append((ins, hemi, slice_, bank, words, data))
        else:  # pragma: no cover - the table has no other MEM rows
            raise AssertionError(mnemonic)

    def _offsets(self, ins, what: str, offset: int, mapv: np.ndarray) -> np.ndarray:
        words = offset + mapv.astype(np.int64)
        for lane in range(self.lanes):
            if words[lane] >= self.config.words_per_bank:
                raise self.error(ins, f"{what} offset {int(words.max())} leaves the bank")
        return words

    # ---- VXM ------------------------------------------------------------------------------------------
    def _op_vxm(self, ins, mnemonic, f) -> None:
        dt = isa.DTYPE_NAMES[f["dt"]]
        at = ins.effect
        if mnemonic == "vcvt":
            dt2 = isa.DTYPE_NAMES[f["dt2"]]
            out = _convert(self.sample_typed(ins, f["a"], dt), dt, dt2)
            self.check_result(ins, out, dt2)
            self.emit_typed(ins, f["d"], out, dt2, at)
            return
        if mnemonic == "vsel":
            m = self.sample_typed(ins, f["m"], dt)
            a = self.sample_typed(ins, f["a"], dt)
            b = self.sample_typed(ins, f["b"], dt)
            out = np.where(m != 0, a, b).astype(NP_DTYPES[dt])
        elif "b" in f:
            a = self.sample_typed(ins, f["a"], dt)
            if f["b"] & isa.SRC_IMMEDIATE:
                b = _immediate(f["b"], dt, self.lanes)
            else:
                b = self.sample_typed(ins, f["b"], dt)
            out = _binary(mnemonic, a, b, dt)
        else:
            a = self.sample_typed(ins, f["a"], dt)
            out = _unary(mnemonic, a, dt)
        self.check_result(ins, out, dt)
        self.emit_typed(ins, f["d"], out, dt, at)

    # ---- SXM --------------------------------------------------------------------------------------------
    def _op_sxm(self, ins, mnemonic, f) -> None:
        lanes = self.lanes
        at = ins.effect
        if mnemonic == "transpose":
            src = self.sample(ins, f["s"], 16)
            out = [np.zeros(lanes, dtype=np.uint8) for _ in range(16)]
            for j in range(lanes // 16):
                for k in range(16):
                    for i in range(16):
                        out[k][16 * j + i] = src[i][16 * j + k]
            self.emit(ins, f["d"], out, at)
            return
        (s,) = self.sample(ins, f["s"], 1)
        out = np.zeros(lanes, dtype=np.uint8)
        if mnemonic in ("shift", "rotate"):
            n = f["n"]
            for i in range(lanes):
                if mnemonic == "rotate":
                    out[i] = s[(i - n) % lanes]
                elif 0 <= i - n < lanes:
                    out[i] = s[i - n]
        elif mnemonic == "permute":
            lo, hi = self.sample(ins, f["map"], 2)
            index = [int(lo[i]) | int(hi[i]) << 8 for i in range(lanes)]
            if max(index) >= lanes:
                raise self.error(ins, f"permute map names lane {max(index)}, past the last lane {lanes - 1}")
            for i in range(lanes):
                out[i] = s[index[i]]
        elif mnemonic == "distribute":
            (mapv,) = self.sample(ins, f["map"], 1)
            for i in range(lanes):
                m = int(mapv[i])
                if m == 255:
                    out[i] = 0
                elif m < 16:
                    out[i] = s[i - i % 16 + m]
                else:
                    raise self.error(ins, f"distribute map value {m} is neither a lane of the superlane (0..15) "
                                          f"nor 255")
        else:  # pragma: no cover
            raise AssertionError(mnemonic)
        self.emit(ins, f["d"], [out], at)

    # ---- MXM --------------------------------------------------------------------------------------------
    def _op_mxm(self, ins, mnemonic, f) -> None:
        c = self.cycle
        p = f["p"]
        if p >= self.config.mxm_planes:
            raise self.error(ins, f"mxm{p} does not exist ({self.config.mxm_planes} planes)")
        plane = self.planes[p]
        if mnemonic == "lw":
            dt = isa.DTYPE_NAMES[f["dt"]]
            rowvec = self.sample_typed(ins, f["s"], dt)
            self.mxm_loads.setdefault(ins.effect, []).append((ins, p, dt, rowvec))
        elif mnemonic == "iw":
            self.mxm_installs.setdefault(ins.effect, []).append((ins, p))
        elif mnemonic == "abc":
            dt = isa.DTYPE_NAMES[f["dt"]]
            if not plane.installed:
                raise self.error(ins, f"no weights installed on mxm{p}")
            if plane.weights_dtype is not None and plane.weights_dtype != dt:
                raise self.error(ins, f"dtype mismatch: mxm{p} holds {plane.weights_dtype} weights, "
                                      f"abc.{dt} streams {dt}")
            x = self.sample_typed(ins, f["s"], dt)
            k = chip.mxm_k(self.config, dt)
            w = plane.weights if plane.weights is not None else np.zeros((k, self.lanes), NP_DTYPES[dt])
            if dt == "i8":
                product = (x[:k].astype(np.int64) @ w.astype(np.int64)).astype(np.int32)
            else:
                product = (x[:k].astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
            self.stats.macs += k * self.lanes
            plane.products.append((ins.effect, dt, product))
        elif mnemonic == "acc":
            dt = isa.DTYPE_NAMES[f["dt"]]
            if not plane.products or plane.products[0][0] > c:
                raise self.error(ins, f"no product ready on mxm{p}")
            _ready, wdt, product = plane.products.pop(0)
            want = "i32" if wdt == "i8" else "f32"
            if dt != want:
                raise self.error(ins, f"acc.{dt} on mxm{p} whose weights are {wdt} (use acc.{want})")
            r = f["row"]
            if r >= self.config.mxm_acc_rows:
                raise self.error(ins, f"accumulator row {r} does not exist (mxm{p} has {self.config.mxm_acc_rows})")
            npdt = NP_DTYPES[dt]
            if f["mode"] == 0:
                new = product.astype(npdt)
            else:
                old = plane.acc[r].copy().view(npdt).reshape(self.lanes)
                with np.errstate(all="ignore"):
                    new = (old + product).astype(npdt)  # int32 wraps, float32 adds
            plane.acc[r] = new.astype(npdt).view(np.uint8).reshape(self.lanes, 4)
            self.check_result(ins, new, dt)
            self.emit_typed(ins, f["d"], new, dt, ins.effect)
        else:  # pragma: no cover
            raise AssertionError(mnemonic)


# ---- numerics ---------------------------------------------------------------------------------
def _join(planes: list[np.ndarray], dtype: str) -> np.ndarray:
    """Little-endian values from byte planes (plane k = byte k of every lane)."""
    raw = np.ascontiguousarray(np.stack(planes, axis=1))  # (lanes, bytes)
    return raw.view(NP_DTYPES[dtype]).reshape(len(planes[0])).copy()


def _split(values: np.ndarray, dtype: str) -> list[np.ndarray]:
    raw = np.ascontiguousarray(values.astype(NP_DTYPES[dtype])).view(np.uint8).reshape(len(values), -1)
    return [raw[:, k].copy() for k in range(raw.shape[1])]


def _immediate(code: int, dtype: str, lanes: int) -> np.ndarray:
    """The immediate of a ``src`` field as a vector of the op's dtype."""
    bits = code & 0xFFFFFFFF
    if dtype in isa.FLOAT_DTYPES:
        f32 = np.array([bits], dtype=np.uint32).view(np.float32)
        value = f32.astype(NP_DTYPES[dtype])
    else:
        signed = bits - (1 << 32) if bits >> 31 else bits
        value = np.array([signed], dtype=np.int64).astype(NP_DTYPES[dtype])  # wraps into the dtype
    return np.full(lanes, value[0], dtype=NP_DTYPES[dtype])


def _binary(mnemonic: str, a: np.ndarray, b: np.ndarray, dt: str) -> np.ndarray:
    npdt = NP_DTYPES[dt]
    if dt in isa.FLOAT_DTYPES:  # f16 computes in f32 and rounds once
        a, b = a.astype(np.float32), b.astype(np.float32)
    with np.errstate(all="ignore"):
        if mnemonic == "vadd":
            r = a + b
        elif mnemonic == "vsub":
            r = a - b
        elif mnemonic == "vmul":
            r = a * b
        elif mnemonic == "vmax":
            r = np.maximum(a, b)
        elif mnemonic == "vmin":
            r = np.minimum(a, b)
        elif mnemonic == "veq":
            r = a == b
        elif mnemonic == "vne":
            r = a != b
        elif mnemonic == "vlt":
            r = a < b
        elif mnemonic == "vle":
            r = a <= b
        else:  # pragma: no cover
            raise AssertionError(mnemonic)
        return r.astype(npdt)


def _unary(mnemonic: str, a: np.ndarray, dt: str) -> np.ndarray:
    npdt = NP_DTYPES[dt]
    if dt in isa.FLOAT_DTYPES:
        a = a.astype(np.float32)
    one = np.float32(1)
    with np.errstate(all="ignore"):
        if mnemonic == "vmov":
            r = a.copy()
        elif mnemonic == "vneg":
            r = np.negative(a)
        elif mnemonic == "vabs":
            r = np.abs(a)
        elif mnemonic == "vrelu":
            r = np.maximum(a, np.zeros_like(a))
        elif mnemonic == "vexp":
            r = np.exp(a)
        elif mnemonic == "vrsqrt":
            r = one / np.sqrt(a)
        elif mnemonic == "vtanh":
            r = np.tanh(a)
        elif mnemonic == "vrcp":
            r = one / a
        else:  # pragma: no cover
            raise AssertionError(mnemonic)
        return r.astype(npdt)


def _convert(a: np.ndarray, src: str, dst: str) -> np.ndarray:
    """vcvt: float to int rounds half to even and saturates (NaN -> 0); int to
    int saturates; to float rounds to nearest even (overflow gives inf)."""
    out = NP_DTYPES[dst]
    with np.errstate(all="ignore"):
        if dst in isa.FLOAT_DTYPES:
            return a.astype(out)
        info = np.iinfo(out)
        if src in isa.FLOAT_DTYPES:
            x = np.rint(a.astype(np.float64))
            x = np.where(np.isnan(x), 0.0, x)
            return np.clip(x, info.min, info.max).astype(out)
        return np.clip(a.astype(np.int64), info.min, info.max).astype(out)


def run_reference(program: Program, *, allow_uninit: bool = False, strict_fp: bool = False) -> RunResult:
    """Run *program* cycle by cycle (docs/timing-model.md); raises SimError at the
    first schedule violation."""
    return ReferenceInterpreter(program, allow_uninit, strict_fp).run()
