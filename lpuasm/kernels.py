"""Kernel generators: large, statically scheduled LPU programs built directly
as columnar IR.

No assembly text and no per-instruction Python objects: every generator builds
numpy arrays of field values, packs them into instruction words with
:func:`pack_words` (the vectorised twin of :func:`lpuasm.isa.pack`), and pins
every instruction to an absolute issue cycle (``ir.PIN_ABS``) worked out from
the timing model (docs/timing-model.md), so that the program runs with no
schedule violation.  The inputs are laid out in SRAM as data symbols, and each
generator also returns the numpy reference result of what the chip computes.

Kernels
-------
``stream_kernel(config, rows, slices, dtype)``
    A MEM/VXM streaming program: input groups of ``b`` = bytes(dtype) west MEM
    slices hold ``rows`` vectors each; every vector is read (one slice per byte
    plane), goes through a short VXM chain (default ``vmul imm``, ``vadd imm``,
    ``vrelu``) and is written to the same rows of the mirrored east slices.
    ``L`` chains run side by side on distinct ALUs, so each ALU queue issues one
    instruction every cycle and ``L`` vectors enter the VXM per cycle.

``gemm(config, M, K, N, dtype)``
    ``C = A @ B`` on the MXM planes, weight-stationary, tiled by K-tiles of
    ``chip.mxm_k`` rows, N-tiles of ``LANES`` columns and M-chunks of at most
    ``mxm_acc_rows`` rows (the accumulator rows).  Work units (M-chunk, N-tile)
    are split over the planes of both edges; every plane owns a disjoint set of
    MEM slices of its hemisphere with private copies of the tiles it needs.

Use::

    k = gemm(TINY, 40, 50, 70, "f16")
    image = assemble_ir(k.ir)
    result = interp.run(load_program(image, TINY))
    assert all(np.array_equal(result.tensor(n), v) for n, v in k.expected.items())
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import chip, isa
from .config import ChipConfig
from .diagnostics import Diagnostic, Diagnostics, LpuError
from .image import DataSymbol, Image
from .ir import IR, IRBuilder, PIN_ABS
from .layout import NUMPY_DTYPES, tensor_to_words

# ---- vectorised pack ---------------------------------------------------------------------


def pack_words(row: isa.Instr, /, **values) -> np.ndarray:
    """Encode many instructions of one table row at once.

    Each field value is a scalar or an array (all broadcast together);
    ``dt``/``dt2`` may be dtype names.  Omitted optional operands take
    their default.  Same words as :func:`isa.pack`, element by element, and the
    same range checks (ValueError)."""
    defaults = {op.name: op.default for op in row.operands if op.optional}
    defaults[isa.PAIR] = 0
    arrays = {}
    for f in row.fields:
        if f.name == "op":
            continue
        v = values.get(f.name, defaults.get(f.name))
        if v is None:
            raise ValueError(f"{row.mnemonic}: no value for field {f.name}")
        if isinstance(v, str):
            v = isa.DTYPES[v]
        arrays[f.name] = np.asarray(v, dtype=np.int64)
    unknown = set(values) - {f.name for f in row.fields}
    if unknown:
        raise ValueError(f"{row.mnemonic}: no field(s) {', '.join(sorted(unknown))}")
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    word = np.full(shape, row.opcode, dtype=np.uint64)
    for f in row.fields:
        if f.name == "op":
            continue
        v = arrays[f.name]
        if f.signed:
            lo, hi = -(1 << (f.width - 1)), (1 << (f.width - 1)) - 1
        else:
            lo, hi = 0, f.mask
        if v.size and (v.min() < lo or v.max() > hi):
            bad = int(v[(v < lo) | (v > hi)].flat[0])
            kind = "signed" if f.signed else "unsigned"
            raise ValueError(f"{row.mnemonic}: {f.name}={bad} does not fit an {kind} {f.width}-bit field")
        word |= (v.astype(np.uint64) & np.uint64(f.mask)) << np.uint64(f.lo)
    return word


def imm_code(value: float | int, dtype: str) -> int:
    """The ``src`` field of an immediate operand (int32 or fp32 bits)."""
    bits = isa.f32_bits(float(value)) if dtype in isa.FLOAT_DTYPES else int(value) & 0xFFFFFFFF
    return isa.SRC_IMMEDIATE | bits


# ---- the result of a generator ----------------------------------------------------------------


@dataclass
class Kernel:
    """A generated program: its IR, the expected final tensors of its output
    symbols (bit for bit), the inputs it was built from, and facts about it.
    Unpacks as ``ir, expected = kernel``."""

    name: str
    ir: IR
    expected: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    blocks: dict[str, tuple[str, slice, slice]] = field(default_factory=dict)  # symbol -> (output, rows, cols)
    info: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.ir, self.expected))

    def output(self, result, name: str) -> np.ndarray:
        """Stitch output *name* together from its block symbols in a run result."""
        parts = [(sym, r, c) for sym, (out, r, c) in self.blocks.items() if out == name]
        if not parts:
            raise LpuError(f"kernel {self.name} has no output '{name}'")
        first = result.tensor(parts[0][0])
        rows = max(r.stop for _, r, _ in parts)
        cols = max(c.stop for _, _, c in parts)
        out = np.zeros((rows, cols), dtype=first.dtype)
        for sym, r, c in parts:
            out[r, c] = result.tensor(sym)
        return out

    def mismatches(self, result) -> list[str]:
        """Names of the expected symbols whose final bits differ in *result*."""
        bad = []
        for name, want in self.expected.items():
            got = result.tensor(name)
            if got.shape != want.shape or got.tobytes() != np.ascontiguousarray(want).tobytes():
                bad.append(name)
        return bad


def assemble_ir(ir: IR, check: bool = True) -> Image:
    """Schedule and encode a generated IR; raises LpuError on any diagnostic.

    With *check* (the default) the IR goes through :func:`lpuasm.schedule.schedule`,
    which validates every pin (queue, stream slots, MEM ports).  ``check=False``
    is a fast path for IR whose rows are all pinned to absolute cycles: the pins
    are the schedule, and only "one instruction per queue per cycle" is checked
    (vectorised); the simulator still finds any other violation."""
    from .encode import encode
    from .schedule import schedule

    if not check and len(ir) and bool((ir.pin_kind == PIN_ABS).all()):
        if (ir.op == isa.NOP.opcode).any() or (ir.op == isa.REPEAT.opcode).any() or \
                (ir.op == isa.TABLE["ifetch"].opcode).any():
            return assemble_ir(ir, check=True)
        order = np.lexsort((ir.pin, ir.queue))
        q, c = ir.queue[order], ir.pin[order]
        clash = np.nonzero((q[1:] == q[:-1]) & (c[1:] <= c[:-1]))[0]
        if len(clash):
            i = int(order[clash[0] + 1])
            raise LpuError(Diagnostic("error", f"cannot issue at @{int(ir.pin[i])}: queue "
                                      f"{ir.config.queues[int(ir.queue[i])]} is busy", ir.span(i)))
        if (np.diff(order)[q[1:] == q[:-1]] < 0).any():
            raise LpuError("assemble_ir: rows of a queue must be in issue order")
        return encode(ir, ir.pin.astype(np.int64))
    diags = Diagnostics()
    cycles = schedule(ir, diags)
    diags.check()
    return encode(ir, cycles)


def build(kernel: str, config: ChipConfig, **params) -> Kernel:
    """Build a kernel by name (``stream`` or ``gemm``)."""
    try:
        fn = KERNELS[kernel]
    except KeyError:
        raise LpuError(f"unknown kernel '{kernel}'; choose one of {', '.join(KERNELS)}") from None
    return fn(config, **params)


# ---- building blocks ----------------------------------------------------------------------------
class _Emitter:
    """Collects instructions as arrays (word, queue, issue cycle, line) and
    turns them into an IR sorted by issue cycle."""

    def __init__(self, config: ChipConfig, source: str) -> None:
        self.config = config
        self.source = source
        self.parts: list[tuple[np.ndarray, ...]] = []
        names = config.queues
        self.qid = {name: i for i, name in enumerate(names)}

    def mem_queue(self, east: bool, slices) -> np.ndarray:
        base = self.qid["e0" if east else "w0"]
        return base + np.asarray(slices, dtype=np.int64)

    def add(self, words, queue, cycle, line=0) -> None:
        words = np.asarray(words, dtype=np.uint64)
        shape = np.broadcast_shapes(words.shape, np.shape(queue), np.shape(cycle), np.shape(line))
        self.parts.append(tuple(np.broadcast_to(np.asarray(x), shape).ravel()
                                for x in (words, queue, cycle, line)))

    def finish(self, data: list[DataSymbol]) -> IR:
        if self.parts:
            words, queue, cycle, line = (np.concatenate(c) for c in zip(*self.parts))
        else:
            words = queue = cycle = line = np.zeros(0, np.int64)
        cycle = cycle.astype(np.int64)
        if len(cycle) and cycle.min() < 0:
            raise LpuError(f"{self.source}: internal error: an instruction at cycle {int(cycle.min())}")
        order = np.lexsort((queue, cycle))
        b = IRBuilder(self.config)
        fid = b.file_id(self.source)
        n = len(order)
        b.extend({
            "word": words[order].astype(np.uint64),
            "queue": queue[order],
            "pin_kind": np.full(n, PIN_ABS, np.uint8),
            "pin": cycle[order],
            "loc_file": np.full(n, fid, np.uint16),
            "loc_line": line[order],
            "loc_col": np.ones(n, np.uint16),
            "loc_width": np.ones(n, np.uint16),
        })
        return b.finish(data=sorted(data, key=lambda d: d.addr))


def _symbol(name: str, east: bool, slice_: int, bank: int, offset: int, dtype: str, values: np.ndarray | None,
            lanes: int, rows: int | None = None, cols: int | None = None) -> DataSymbol:
    if values is not None:
        rows, cols = values.shape
        init = tensor_to_words(values, dtype, lanes)
    else:
        init = None
    return DataSymbol(name, isa.addr_code(east, slice_, bank, offset), dtype, rows, cols, init)


def _delay(config: ChipConfig, mnemonic: str) -> int:
    return chip.delay(config, isa.TABLE[mnemonic])


# ---- stream kernel ------------------------------------------------------------------------------
DEFAULT_CHAIN = {
    "i8": (("vmul", 3), ("vadd", -5), ("vrelu", None)),
    "i16": (("vmul", 3), ("vadd", -5), ("vrelu", None)),
    "i32": (("vmul", 3), ("vadd", -5), ("vrelu", None)),
    "f16": (("vmul", 0.5), ("vadd", -0.25), ("vrelu", None)),
    "f32": (("vmul", 0.5), ("vadd", -0.25), ("vrelu", None)),
}


def chain_reference(x: np.ndarray, chain, dtype: str) -> np.ndarray:
    """The VXM chain on a numpy array, as the chip computes it (ints wrap, f16
    computes in f32 and rounds once per op): also the benchmark's baseline."""
    np_dt = NUMPY_DTYPES[dtype]
    y = x
    with np.errstate(all="ignore"):
        for mnemonic, imm in chain:
            work = y.astype(np.float32) if dtype == "f16" else y
            if imm is not None:  # stored as int32 or f32, converted to the op's dtype
                if dtype in isa.FLOAT_DTYPES:
                    c = np_dt(np.float32(imm))
                else:
                    c = np.array([int(imm) & 0xFFFFFFFF], np.uint32).view(np.int32).astype(np_dt)[0]
                c = work.dtype.type(c)
            if mnemonic == "vmul":
                r = work * c
            elif mnemonic == "vadd":
                r = work + c
            elif mnemonic == "vsub":
                r = work - c
            elif mnemonic == "vmax":
                r = np.maximum(work, c)
            elif mnemonic == "vmin":
                r = np.minimum(work, c)
            elif mnemonic == "vrelu":
                r = np.maximum(work, work.dtype.type(0))
            elif mnemonic == "vneg":
                r = np.negative(work)
            elif mnemonic == "vabs":
                r = np.abs(work)
            elif mnemonic == "vmov":
                r = work.copy()
            elif mnemonic == "vexp":
                r = np.exp(work)
            elif mnemonic == "vtanh":
                r = np.tanh(work)
            elif mnemonic == "vrsqrt":
                r = np.float32(1) / np.sqrt(work)
            elif mnemonic == "vrcp":
                r = np.float32(1) / work
            else:
                raise LpuError(f"chain_reference: unsupported op '{mnemonic}'")
            y = r.astype(np_dt, copy=False)
    return y


def _random(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    if dtype in isa.INT_DTYPES:
        info = np.iinfo(NUMPY_DTYPES[dtype])
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(NUMPY_DTYPES[dtype])
    return rng.standard_normal(shape).astype(NUMPY_DTYPES[dtype])


def stream_kernel(config: ChipConfig, rows: int, slices: int | None = None, dtype: str = "i8",
                  chain=None, seed: int = 0) -> Kernel:
    """Read ``rows`` vectors from each of ``slices // b`` groups of west MEM
    slices, run each through the VXM chain, write it to the mirrored east slices.

    Schedule: vector i (row ``i // G`` of group ``i % G``, G groups) enters the
    VXM at cycle ``v = base + i // L`` on chain lane ``l = i % L``.  Byte k of a
    group-g vector is read by west slice ``j = g*b + k`` (position n+1-j, j+1
    positions west of the VXM) at ``v - d(mem.read) - (j+1)`` onto eastward
    stream ``l*b + k``, so that all b bytes pass the VXM at v.  Op m of the chain
    runs on ALU ``l*len(chain) + m`` at ``v + sum of the earlier ops' delays``,
    reading the previous op's result the cycle it appears; intermediates go on
    westward stream groups (one per op and lane, so no stream slot is reused
    while needed), the last op's result on eastward group ``(L + l)*b`` to
    east slice j (position n+3+j), which samples it ``j+1`` cycles after it
    leaves the VXM.  The L vectors of a cycle come from L different groups, so a
    slice reads and writes at most once per cycle; reads are on west slices and
    writes on east slices, so no bank-port conflict is possible."""
    if dtype not in isa.ALL_DTYPES:
        raise LpuError(f"stream_kernel: unknown dtype '{dtype}'")
    chain = tuple(chain or DEFAULT_CHAIN[dtype])
    nops = len(chain)
    if not nops:
        raise LpuError("stream_kernel: the VXM chain is empty")
    b = isa.DTYPE_BYTES[dtype]
    n = config.mem_slices_per_hemisphere
    lanes = config.lanes
    if slices is None:
        slices = n - n % b
    if not (b <= slices <= n and slices % b == 0):
        raise LpuError(f"stream_kernel: slices must be a multiple of {b} between {b} and {n}, got {slices}")
    groups = slices // b
    streams = config.streams_per_direction
    L = min(config.vxm_alus_per_lane // nops, streams // (2 * b), groups,
            streams // ((nops - 1) * b) if nops > 1 else groups)
    if L < 1:
        raise LpuError(f"stream_kernel: a chain of {nops} {dtype} ops does not fit the VXM of {config.name}")
    wpb, banks = config.words_per_bank, config.banks_per_slice
    if not 1 <= rows <= wpb * banks:
        raise LpuError(f"stream_kernel: rows must be between 1 and {wpb * banks} (the words of a slice)")
    rows_chunks = [(c, c * wpb, min(rows, (c + 1) * wpb)) for c in range(-(-rows // wpb))]
    ops = []
    for mnemonic, imm in chain:
        row = isa.lookup(mnemonic)
        if row is None or row.unit != "vxm" or row.nsuffixes != 1:
            raise LpuError(f"stream_kernel: '{mnemonic}' is not a one-dtype VXM op")
        binary = any(o.name == "b" for o in row.operands)
        if binary != (imm is not None):
            raise LpuError(f"stream_kernel: '{mnemonic}' " + ("needs an immediate" if binary else "takes no immediate"))
        ops.append((row, imm, chip.delay(config, row)))

    rng = np.random.default_rng(seed)
    em = _Emitter(config, f"<kernel stream {dtype}>")
    data, expected, inputs = [], {}, {}
    x_all = np.empty((groups, rows, lanes), dtype=NUMPY_DTYPES[dtype])
    for g in range(groups):
        x = _random(rng, (rows, lanes), dtype)
        x_all[g] = x
        y = chain_reference(x, chain, dtype)
        for c, r0, r1 in rows_chunks:
            suffix = f"_{c}" if len(rows_chunks) > 1 else ""
            data.append(_symbol(f"x{g}{suffix}", False, g * b, c, 0, dtype, x[r0:r1], lanes))
            data.append(_symbol(f"y{g}{suffix}", True, g * b, c, 0, dtype, None, lanes, r1 - r0, lanes))
            inputs[f"x{g}{suffix}"] = x[r0:r1]
            expected[f"y{g}{suffix}"] = y[r0:r1]

    d_read = _delay(config, "read")
    base = d_read + slices
    nvec = rows * groups
    i = np.arange(nvec, dtype=np.int64)
    g = i % groups
    r = i // groups
    v = base + i // L
    lane = i % L
    bank = r // wpb
    offset = r % wpb
    line = r + 1
    read, write = isa.TABLE["read"], isa.TABLE["write"]
    for k in range(b):
        j = g * b + k
        em.add(pack_words(read, a=isa.addr_code(False, 0, 0, 0) + (j << 13) + (bank << 12) + offset,
                          d=lane * b + k), em.mem_queue(False, j), v - d_read - (j + 1), line)
    t = v.copy()
    west = 1 << 5
    for m, (row, imm, delay) in enumerate(ops):
        src = lane * b if m == 0 else west | (((m - 1) * L + lane) * b)
        dst = (L + lane) * b if m == nops - 1 else west | ((m * L + lane) * b)
        fields = {"dt": dtype, "a": src, "d": dst, "alu": lane * nops + m}
        if imm is not None:
            fields["b"] = imm_code(imm, dtype)
        em.add(pack_words(row, **fields), em.qid["alu0"] + lane * nops + m, t, line)
        t = t + delay
    for k in range(b):
        j = g * b + k
        em.add(pack_words(write, s=(L + lane) * b + k, a=isa.addr_code(True, 0, 0, 0) + (j << 13) + (bank << 12) + offset),
               em.mem_queue(True, j), t + (j + 1), line)
    ir = em.finish(data)
    info = {"vectors": nvec, "lanes": L, "groups": groups, "chain": chain, "dtype": dtype,
            "instructions": len(ir), "x": x_all}
    return Kernel(f"stream-{dtype}", ir, expected, inputs, info=info)


# ---- GEMM ---------------------------------------------------------------------------------------------
class _Allocator:
    """SRAM of the slices one MXM plane owns: output regions (groups of 4
    slices, bank 1, taken from the far end) and input regions (groups of
    ``width`` slices: bank 0 of every slice, bank 1 of slices with no output).
    Inputs are only read and outputs only written, and no slice has an input
    and an output in the same bank, so a read and a write in one cycle always
    use different banks."""

    def __init__(self, config: ChipConfig, east: bool, slices: list[int], width: int, out_words: list[int]):
        self.config, self.east, self.wpb = config, east, config.words_per_bank
        if config.banks_per_slice < 2:
            raise LpuError(f"gemm: needs 2 banks per slice ({config.name} has 1)")
        self.out: list[list[int]] = []  # [first slice, used words]
        quads = [slices[len(slices) - 4 * (q + 1)] for q in range(len(slices) // 4)]
        used_out: set[int] = set()
        for words in out_words:
            if words > self.wpb:
                raise LpuError("gemm: an output block does not fit a bank")
            slot = next((o for o in self.out if o[1] + words <= self.wpb), None)
            if slot is None:
                if len(self.out) == len(quads):
                    raise LpuError(f"gemm: the outputs do not fit the {len(slices)} slices of a plane; "
                                   f"use a smaller problem or a bigger chip")
                slot = [quads[len(self.out)], 0]
                self.out.append(slot)
                used_out.update(range(slot[0], slot[0] + 4))
            slot[1] += words
        for o in self.out:
            o[1] = 0
        self.inputs = [[s, bank, 0] for bank in (0, 1)
                       for s in slices[:len(slices) - len(slices) % width:width]
                       if bank == 0 or not used_out & set(range(s, s + width))]

    def output(self, words: int) -> tuple[int, int, int]:
        """(first slice, bank, offset) of an output block."""
        slot = next(o for o in self.out if o[1] + words <= self.wpb)
        off = slot[1]
        slot[1] += words
        return slot[0], 1, off

    def input(self, words: int) -> tuple[int, int, int]:
        for reg in self.inputs:
            if reg[2] + words <= self.wpb:
                off = reg[2]
                reg[2] += words
                return reg[0], reg[1], off
        raise LpuError("gemm: the input tiles do not fit the SRAM slices of a plane; "
                       "use a smaller problem or a bigger chip")


def gemm_reference(a: np.ndarray, b: np.ndarray, dtype: str, k_tile: int) -> np.ndarray:
    """What the MXM computes: i8 -> exact int32 (wrapping); f16 -> each
    K-tile's product summed in float64 and rounded to f32, the tiles
    accumulated in f32 in order."""
    K = a.shape[1]
    if dtype == "i8":
        out = a.astype(np.int64) @ b.astype(np.int64)
        return out.astype(np.int32)
    acc = None
    for k0 in range(0, K, k_tile):
        p = (a[:, k0:k0 + k_tile].astype(np.float64) @ b[k0:k0 + k_tile].astype(np.float64)).astype(np.float32)
        acc = p if acc is None else acc + p
    return acc


def gemm_inputs(M: int, K: int, N: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random A (M, K) and B (K, N).  f16 values are multiples of 1/64 below 16
    in magnitude, so every K-tile's float64 sum is exact (the reference and the
    chip then agree bit for bit, whatever order BLAS sums in) while the f32
    roundings of the model still happen."""
    rng = np.random.default_rng(seed)
    if dtype == "i8":
        return (rng.integers(-128, 128, (M, K)).astype(np.int8), rng.integers(-128, 128, (K, N)).astype(np.int8))
    return ((rng.integers(-1023, 1024, (M, K)) / 64).astype(np.float16),
            (rng.integers(-1023, 1024, (K, N)) / 64).astype(np.float16))


def gemm(config: ChipConfig, M: int, K: int, N: int, dtype: str = "f16", planes=None, seed: int = 0,
         a: np.ndarray | None = None, b: np.ndarray | None = None) -> Kernel:
    """``C = A @ B`` (A: M x K, B: K x N of *dtype* i8 or f16; C i32 or f32) on the MXM.

    Tiling: K-tiles of Kt = ``chip.mxm_k`` rows, N-tiles of LANES columns,
    M-chunks of at most ``mxm_acc_rows`` rows.  Work units (M-chunk, N-tile),
    in M-major order, are cut into contiguous runs of about equal cycles, one
    per plane (``planes``: which, default all; west planes 0..P/2-1 read west
    slices, the others east slices).  The planes of a hemisphere split its
    slices; each plane holds its own copy of the A tiles (rows of the chunk,
    the K-tile's columns in lanes 0..Kt-1, zero above) and B tiles (Kt rows x
    LANES columns, zero-padded) it uses, and its C blocks (f32/i32: 4 slices).

    Per plane the queue runs, for its tiles T0, T1, ... (unit, K-tile):
    ``lw x K_0, iw, abc x R_0, lw x K_1, iw, acc x R_0, abc x R_1, lw x K_2, iw,
    acc x R_1, ...``: ``lw`` rows of the next tile are streamed while the
    products of the current one wait in the FIFO.  Each block starts at the
    first cycle after the previous block where (timing model) the next lw's
    append follows the last install, the install follows the buffer's last
    append, ``abc`` follows the install's effect (install cycle < abc cycle)
    and ``acc`` follows its product (ready < acc cycle); ``acc`` uses mode 0 on
    a unit's first K-tile and mode 1 after, accumulator row = row within the
    M-chunk.  The MEM read of byte k of every ``lw``/``abc`` operand is issued
    at ``c - d(mem.read) - dist(slice)`` (dist = n+1-slice positions to either
    edge), so both bytes of an f16 group reach the plane at the cycle c that
    samples them; on a unit's last K-tile, the 4 byte planes of each ``acc``
    result are written by 4 slices, each when the value passes it (C blocks
    sit in bank 1 of slices whose bank 1 holds no input, so a read and a write
    of one cycle use different banks).  A MEM queue issues one instruction per
    cycle, and a plane's slices may hold both inputs and C, so after those
    accumulates the next ``abc`` waits until the last C write has issued before
    its reads start (``d(acc) + d(read) + 2*dist + 2`` cycles, once per unit).
    Every slice belongs to one plane, and all its reads issue at (consumer
    cycle) - d(mem.read) - dist: distinct consumer cycles, distinct reads.  Streams:
    plane l of a hemisphere reads group 2l flowing towards its edge and emits
    results on group 8+4l flowing away; each group carries one value per cycle,
    one producer per (stream, diagonal)."""
    if dtype not in ("i8", "f16"):
        raise LpuError(f"gemm: dtype must be i8 or f16, got '{dtype}'")
    if min(M, K, N) < 1:
        raise LpuError("gemm: M, K and N must be positive")
    if config.streams_per_direction < 16:
        raise LpuError(f"gemm: needs 16 streams per direction ({config.name} has {config.streams_per_direction})")
    lanes, n, P = config.lanes, config.mem_slices_per_hemisphere, config.mxm_planes
    planes = sorted(set(range(P) if planes is None else planes))
    if not planes or not all(0 <= p < P for p in planes):
        raise LpuError(f"gemm: planes must be among 0..{P - 1}")
    out_dt = "i32" if dtype == "i8" else "f32"
    bin_ = isa.DTYPE_BYTES[dtype]
    Kt = chip.mxm_k(config, dtype)
    R = config.mxm_acc_rows
    nk, nn, nm = -(-K // Kt), -(-N // lanes), -(-M // R)
    if a is None or b is None:
        a, b = gemm_inputs(M, K, N, dtype, seed)
    a = np.asarray(a).astype(NUMPY_DTYPES[dtype])
    b = np.asarray(b).astype(NUMPY_DTYPES[dtype])
    if a.shape != (M, K) or b.shape != (K, N):
        raise LpuError(f"gemm: A must be {M}x{K} and B {K}x{N}")
    c_ref = gemm_reference(a, b, dtype, Kt)

    # (a write samples its value when it passes; its commit delay never matters here)
    d_read, d_load, d_inst = _delay(config, "read"), _delay(config, "lw"), _delay(config, "iw")
    d_act, d_acc = _delay(config, "abc"), _delay(config, "acc")

    # ---- work split ---------------------------------------------------------------------------
    units = [(mc, nt) for mc in range(nm) for nt in range(nn)]
    rows_of = [min(R, M - mc * R) for mc in range(nm)]
    krows = [min(Kt, K - kt * Kt) for kt in range(nk)]
    cost = np.array([sum(k + 1 + 2 * rows_of[mc] for k in krows) for mc, _ in units], dtype=np.float64)
    cum = np.cumsum(cost)
    owner = np.minimum((len(planes) * (cum - cost / 2) / cum[-1]).astype(np.int64), len(planes) - 1)
    work = {p: [u for u, o in zip(units, owner) if planes[o] == p] for p in planes}
    half = P // 2
    side_planes = {east: [p for p in planes if (p >= half) == east and work[p]] for east in (False, True)}

    em = _Emitter(config, f"<kernel gemm {dtype}>")
    data: list[DataSymbol] = []
    expected: dict[str, np.ndarray] = {}
    blocks: dict[str, tuple[str, slice, slice]] = {}
    read, write = isa.TABLE["read"], isa.TABLE["write"]
    lw, iw, abc, acc = (isa.TABLE[m] for m in ("lw", "iw", "abc", "acc"))
    base = d_read + n + 1  # the earliest read, of slice 0, issues at cycle 0
    line = 0
    for east in (False, True):
        users = side_planes[east]
        for local, p in enumerate(users):
            my = work[p]
            lo_s, hi_s = local * n // len(users), (local + 1) * n // len(users)
            alloc = _Allocator(config, east, list(range(lo_s, hi_s)), bin_, [rows_of[mc] for mc, _ in my])
            in_code = isa.stream_code(2 * local, west=not east)
            out_code = isa.stream_code(8 + 4 * local, west=east)
            qp = em.qid[f"mxm{p}"]

            # input tiles of this plane
            a_at, b_at = {}, {}
            for mc in sorted({mc for mc, _ in my}):
                for kt in range(nk):
                    tile = a[mc * R:mc * R + rows_of[mc], kt * Kt:kt * Kt + krows[kt]]
                    s, bank, off = alloc.input(tile.shape[0])
                    name = f"a{p}_m{mc}_k{kt}"
                    data.append(_symbol(name, east, s, bank, off, dtype, tile, lanes))
                    a_at[mc, kt] = (s, bank, off)
            for nt in sorted({nt for _, nt in my}):
                for kt in range(nk):
                    tile = b[kt * Kt:kt * Kt + krows[kt], nt * lanes:(nt + 1) * lanes]
                    s, bank, off = alloc.input(tile.shape[0])
                    name = f"b{p}_k{kt}_n{nt}"
                    data.append(_symbol(name, east, s, bank, off, dtype, tile, lanes))
                    b_at[kt, nt] = (s, bank, off)
            c_at = {}
            for mc, nt in my:
                r0, c0 = mc * R, nt * lanes
                blk = c_ref[r0:r0 + rows_of[mc], c0:c0 + lanes]
                s, bank, off = alloc.output(blk.shape[0])
                name = f"c_m{mc}_n{nt}"
                data.append(_symbol(name, east, s, bank, off, out_dt, None, lanes, *blk.shape))
                expected[name] = blk
                blocks[name] = ("C", slice(r0, r0 + blk.shape[0]), slice(c0, c0 + blk.shape[1]))
                c_at[mc, nt] = (s, bank, off)

            def reads(cycles, where, idx, line):
                """MEM reads putting word ``off + idx`` of each byte plane on the
                plane's input group so that it reaches the plane at *cycles*."""
                s, bank, off = where
                for k in range(bin_):
                    j = s + k
                    dist = n + 1 - j
                    em.add(pack_words(read, a=isa.addr_code(east, j, bank, 0) + off + idx, d=in_code + k),
                           em.mem_queue(east, j), cycles - d_read - dist, line)

            # the plane's queue, block by block
            tiles = [(mc, nt, kt) for mc, nt in my for kt in range(nk)]
            t = base
            prev = None  # (iw cycle, abc start, rows, tile) of the previous tile
            for tile in tiles + [None]:
                line += 1
                if tile is not None:
                    mc, nt, kt = tile
                    K_i, R_i = krows[kt], rows_of[mc]
                    start = t if prev is None else max(t, prev[0] + d_inst - d_load + 1)
                    lw_c = start + np.arange(K_i)
                    em.add(pack_words(lw, dt=dtype, s=in_code, p=p), qp, lw_c, line)
                    reads(lw_c, b_at[kt, nt], np.arange(K_i), line)
                    t = start + K_i
                    iw_c = max(t, t + d_load - d_inst)  # after the last append
                    em.add(pack_words(iw, p=p), qp, iw_c, line)
                    t = iw_c + 1
                if prev is not None:  # the previous tile's results
                    _, abc0, pr, (pmc, pnt, pkt) = prev
                    start = max(t, abc0 + d_act + 1)
                    rows_ = np.arange(pr)
                    acc_c = start + rows_
                    em.add(pack_words(acc, dt=out_dt, p=p, d=out_code, row=rows_, mode=int(pkt > 0)), qp, acc_c, line)
                    if pkt == nk - 1:
                        s, bank, off = c_at[pmc, pnt]
                        for k in range(4):
                            j = s + k
                            em.add(pack_words(write, s=(out_code & 31) + k + (out_code & 32),
                                              a=isa.addr_code(east, j, bank, 0) + off + rows_),
                                   em.mem_queue(east, j), acc_c + d_acc + (n + 1 - j), line)
                        # a MEM queue issues one instruction per cycle: the next
                        # reads of these slices wait until their writes are done
                        gap = d_acc + d_read + 2 * (n + 1 - s) + 2
                        t = max(start + pr, int(acc_c[-1]) + gap)
                    else:
                        t = start + pr
                if tile is not None:
                    start = max(t, iw_c + d_inst + 1)
                    abc_c = start + np.arange(R_i)
                    em.add(pack_words(abc, dt=dtype, s=in_code, p=p), qp, abc_c, line)
                    reads(abc_c, a_at[mc, kt], np.arange(R_i), line)
                    t = start + R_i
                    prev = (iw_c, start, R_i, (mc, nt, kt))
    ir = em.finish(data)
    info = {"M": M, "K": K, "N": N, "dtype": dtype, "k_tile": Kt, "tiles": (nm, nk, nn),
            "macs": M * K * N, "planes": {p: len(work[p]) for p in planes}, "instructions": len(ir)}
    return Kernel(f"gemm-{dtype}", ir, expected, {"A": a, "B": b}, blocks, info)


KERNELS = {"stream": stream_kernel, "gemm": gemm}
