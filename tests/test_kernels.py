"""Kernel generators (lpuasm.kernels): vectorised packing, and generated
programs that assemble, run without a schedule violation and match numpy bit
for bit."""

import numpy as np
import pytest

from lpuasm import interp, isa, kernels
from lpuasm.config import TINY, TSP_V1
from lpuasm.diagnostics import LpuError
from lpuasm.ir import PIN_ABS, IRBuilder
from lpuasm.program import load_program
from lpuasm.syntax import Span


# ---- pack_words ---------------------------------------------------------------------------
def _random_fields(row: isa.Instr, rng: np.random.Generator, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        values = {}
        for f in row.fields:
            if f.name == "op":
                continue
            if f.name in ("dt", "dt2"):
                allowed = row.dtypes[0 if f.name == "dt" else 1]
                values[f.name] = isa.DTYPES[allowed[rng.integers(len(allowed))]]
            elif f.signed:
                values[f.name] = int(rng.integers(-(1 << (f.width - 1)), 1 << (f.width - 1)))
            else:
                values[f.name] = int(rng.integers(0, 1 << f.width, dtype=np.uint64))
        out.append(values)
    return out


@pytest.mark.parametrize("mnemonic", sorted(isa.TABLE))
def test_pack_words_matches_isa_pack(mnemonic):
    row = isa.TABLE[mnemonic]
    rng = np.random.default_rng(sum(map(ord, mnemonic)))
    rows = _random_fields(row, rng, 50)
    # extremes of every field too
    rows.append({f.name: (-(1 << (f.width - 1)) if f.signed else 0) for f in row.fields if f.name != "op"})
    rows.append({f.name: ((1 << (f.width - 1)) - 1 if f.signed else f.mask) for f in row.fields if f.name != "op"})
    for r in rows[-2:]:
        for key, allowed in zip(("dt", "dt2"), row.dtypes):
            r[key] = isa.DTYPES[allowed[0]]
    columns = {name: np.array([r[name] for r in rows], dtype=np.int64) for name in rows[0]}
    got = kernels.pack_words(row, **columns)
    want = np.array([isa.pack(row, r) for r in rows], dtype=np.uint64)
    assert got.dtype == np.uint64
    assert got.shape == (want.shape if columns else ())  # halt has no fields: one word
    assert np.array_equal(np.broadcast_to(got, want.shape), want)


def test_pack_words_broadcasts_defaults_and_dtype_names():
    row = isa.TABLE["vadd"]
    words = kernels.pack_words(row, dt="f32", a=np.arange(4), b=kernels.imm_code(1.5, "f32"), d=7)
    assert words.shape == (4,)
    for i, w in enumerate(words.tolist()):
        assert w == isa.pack(row, {"dt": isa.DTYPES["f32"], "a": i, "b": isa.SRC_IMMEDIATE | isa.f32_bits(1.5),
                                   "d": 7})  # alu defaults to 0
    assert kernels.pack_words(isa.TABLE["iw"], p=2).shape == ()


def test_pack_words_rejects_bad_values():
    with pytest.raises(ValueError, match="does not fit"):
        kernels.pack_words(isa.TABLE["read"], a=np.array([0, 1 << 20]), d=0)
    with pytest.raises(ValueError, match="does not fit"):
        kernels.pack_words(isa.TABLE["shift"], s=0, n=-1025, d=0, x=0)
    with pytest.raises(ValueError, match="no value"):
        kernels.pack_words(isa.TABLE["read"], d=0)
    with pytest.raises(ValueError, match="no field"):
        kernels.pack_words(isa.TABLE["iw"], p=0, q=1)


# ---- running generated programs ----------------------------------------------------------------
def _run(kernel, config):
    assert (kernel.ir.pin_kind == PIN_ABS).all()
    image = kernels.assemble_ir(kernel.ir)
    assert image.equals(kernels.assemble_ir(kernel.ir, check=False))
    program = load_program(image, config)
    result = interp.run(program)  # raises SimError on any schedule violation
    timing = interp.run(program, timing_only=True)
    assert result.stats.cycles == timing.stats.cycles
    assert result.stats.instructions == len(kernel.ir)
    assert kernel.mismatches(result) == []
    return result


def _queue_cycles_unique(ir):
    key = ir.queue.astype(np.int64) * (int(ir.pin.max()) + 1) + ir.pin
    return len(np.unique(key)) == len(key)


@pytest.mark.parametrize("dtype,rows", [("i8", 40), ("f32", 300), ("f16", 25), ("i32", 7)])
def test_stream_kernel_tiny(dtype, rows):
    k = kernels.stream_kernel(TINY, rows, dtype=dtype)
    assert _queue_cycles_unique(k.ir)
    ir, expected = k
    assert set(expected) == {d.name for d in ir.data if d.name.startswith("y")}
    _run(k, TINY)
    # the reference is the chain applied to the inputs
    for name, y in expected.items():
        x = k.inputs["x" + name[1:]]
        assert np.array_equal(y.view(np.uint8), kernels.chain_reference(x, k.info["chain"], dtype).view(np.uint8))


def test_stream_kernel_keeps_every_alu_busy():
    k = kernels.stream_kernel(TINY, 64, dtype="i8")
    L, chain = k.info["lanes"], k.info["chain"]
    assert L * len(chain) == (TINY.vxm_alus_per_lane // len(chain)) * len(chain)
    alu0 = TINY.queue_id("alu0")
    vxm = k.ir.queue >= alu0
    vxm &= k.ir.queue < alu0 + TINY.vxm_alus_per_lane
    for q in np.unique(k.ir.queue[vxm]):
        c = np.sort(k.ir.pin[k.ir.queue == q])
        assert (np.diff(c) == 1).all()  # one instruction every cycle, no gap


def test_stream_kernel_tsp_v1_custom_chain():
    chain = (("vsub", 1.0), ("vmax", -0.5), ("vabs", None), ("vmul", 3.0))
    k = kernels.stream_kernel(TSP_V1, 12, slices=16, dtype="f32", chain=chain, seed=3)
    assert k.info["lanes"] == 2  # 32 streams / (4 bytes x 3 intermediates)
    _run(k, TSP_V1)


def test_stream_kernel_rows_span_both_banks():
    k = kernels.stream_kernel(TINY, TINY.words_per_bank + 10, slices=4, dtype="i8")
    assert {"x0_0", "x0_1", "y3_1"} <= set(k.inputs) | set(k.expected)
    _run(k, TINY)


def _gemm_independent(a, b, dtype, kt):
    """The model's arithmetic, written out tile by tile."""
    if dtype == "i8":
        return (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k0 in range(0, a.shape[1], kt):
        p = np.zeros_like(acc, dtype=np.float64)
        for k in range(k0, min(k0 + kt, a.shape[1])):
            p += np.outer(a[:, k].astype(np.float64), b[k].astype(np.float64))
        acc = acc + p.astype(np.float32)
    return acc


@pytest.mark.parametrize("dtype,M,K,N", [("i8", 40, 50, 70), ("f16", 40, 50, 70), ("f16", 67, 37, 33),
                                         ("i8", 5, 3, 2), ("f16", 1, 1, 1)])
def test_gemm_tiny(dtype, M, K, N):
    k = kernels.gemm(TINY, M, K, N, dtype)
    assert _queue_cycles_unique(k.ir)
    result = _run(k, TINY)
    c = k.output(result, "C")
    kt = k.info["k_tile"]
    want = _gemm_independent(k.inputs["A"], k.inputs["B"], dtype, kt)
    assert c.dtype == want.dtype and c.shape == (M, N)
    assert c.tobytes() == want.tobytes()
    nm, nk, nn = k.info["tiles"]
    assert result.stats.macs == M * nk * nn * kt * TINY.lanes  # one abc per row, K-tile and N-tile
    ups = sum(k.info["planes"].values())
    assert ups == k.info["tiles"][0] * k.info["tiles"][2]


def test_gemm_f16_rounding_is_f32_per_tile():
    # values whose tile sums need more than f32's 24 bits: the per-tile rounding shows
    rng = np.random.default_rng(7)
    a = (rng.integers(-1023, 1024, (20, 48)) / 64).astype(np.float16)
    b = (rng.integers(-1023, 1024, (48, 20)) / 64).astype(np.float16)
    a[:, 0], b[0, :] = 1024, 1024  # 2**20 plus small terms
    k = kernels.gemm(TINY, 20, 48, 20, "f16", a=a, b=b)
    result = _run(k, TINY)
    c = k.output(result, "C")
    exact = a.astype(np.float64) @ b.astype(np.float64)
    assert c.tobytes() == _gemm_independent(a, b, "f16", 16).tobytes()
    assert not np.array_equal(c, exact.astype(np.float32))  # tiles round, the exact product does not


@pytest.mark.parametrize("planes", [[0], [3], [1, 2]])
def test_gemm_plane_subsets(planes):
    k = kernels.gemm(TINY, 40, 40, 40, "i8", planes=planes)
    assert set(k.info["planes"]) == set(planes)
    mxm0 = TINY.queue_id("mxm0")
    used = set((np.unique(k.ir.queue[(k.ir.queue >= mxm0) & (k.ir.queue < mxm0 + 4)]) - mxm0).tolist())
    assert used == {p for p in planes if k.info["planes"][p]}
    _run(k, TINY)


def test_gemm_tsp_v1_small():
    k = kernels.gemm(TSP_V1, 70, 500, 400, "i8")
    _run(k, TSP_V1)


def test_gemm_matches_reference_interpreter():
    refinterp = pytest.importorskip("lpuasm.refinterp")
    k = kernels.gemm(TINY, 35, 20, 40, "f16")
    program = load_program(kernels.assemble_ir(k.ir), TINY)
    fast = interp.run(program)
    ref = refinterp.run_reference(program)
    assert fast.stats.cycles == ref.stats.cycles
    assert k.mismatches(ref) == []


# ---- errors -------------------------------------------------------------------------------------
def test_kernel_errors():
    with pytest.raises(LpuError, match="dtype must be i8 or f16"):
        kernels.gemm(TINY, 4, 4, 4, "f32")
    with pytest.raises(LpuError, match="do not fit"):
        kernels.gemm(TINY, 2000, 600, 40, "f16")
    with pytest.raises(LpuError, match="rows must be between"):
        kernels.stream_kernel(TINY, 10 ** 6)
    with pytest.raises(LpuError, match="multiple of 4"):
        kernels.stream_kernel(TINY, 4, slices=3, dtype="f32")
    with pytest.raises(LpuError, match="unknown kernel"):
        kernels.build("conv", TINY)
    assert kernels.build("stream", TINY, rows=2).name == "stream-i8"


def test_assemble_ir_reports_a_busy_queue():
    b = IRBuilder(TINY)
    row = isa.TABLE["iw"]
    span = Span("<test>", 1, 1, 2)
    for _ in range(2):
        b.add(row, isa.pack(row, {"p": 0}), TINY.queue_id("mxm0"), PIN_ABS, 5, span)
    ir = b.finish()
    for check in (True, False):
        with pytest.raises(LpuError, match="busy"):
            kernels.assemble_ir(ir, check=check)


def test_kernels_follow_the_config_latencies():
    """The schedules come from the config's delays, not from constants."""
    from lpuasm.config import from_dict

    cfg = from_dict({"base": "tiny", "name": "slow", "latencies": {
        "mem.read": 5, "vxm.alu": 3, "vxm.transcendental": 9, "mxm.load": 7, "mxm.install": 2,
        "mxm.activation": 8, "mxm.accumulate": 3}})
    _run(kernels.stream_kernel(cfg, 30, dtype="f32", chain=(("vmul", 2.0), ("vexp", None))), cfg)
    _run(kernels.gemm(cfg, 40, 50, 40, "f16"), cfg)
    _run(kernels.gemm(cfg, 33, 40, 20, "i8"), cfg)
