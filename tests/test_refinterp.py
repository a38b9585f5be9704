"""The reference interpreter (lpuasm/refinterp.py) against numpy, on the tiny chip.

Every program pins every instruction, so the schedule is exactly the one the
test computes from the timing model (docs/timing-model.md).  On tiny (8 slices
per hemisphere): MXM(W) at position 0, SXM(W) at 1, W<k> at 9 - k, the VXM at 10,
E<k> at 11 + k, SXM(E) at 19, MXM(E) at 20.  A read issued at t puts its value
at its slice's position at t + 2; from there it moves one position per cycle.
"""

import textwrap

import numpy as np
import pytest

from lpuasm import chip, isa
from lpuasm.assembler import assemble
from lpuasm.config import TINY
from lpuasm.diagnostics import Diagnostics
from lpuasm.encode import encode
from lpuasm.ir import PIN_ABS
from lpuasm.program import load_program
from lpuasm.analysis import analyse
from lpuasm.interp import run as run_fast
from lpuasm.levels import supported as levels_supported
from lpuasm.refinterp import run_reference
from lpuasm.schedule import schedule
from lpuasm.sim import SimError

GEO = chip.Geometry(TINY)
READ = 2  # mem.read delay
rng = np.random.default_rng(1234)


def pos(name: str) -> int:
    """Position of a unit on tiny: 'W3', 'E0', 'VXM', 'SXMW', 'SXME', 'MXMW', 'MXME'."""
    fixed = {"VXM": GEO.vxm, "SXMW": GEO.sxm(False), "SXME": GEO.sxm(True), "MXMW": 0, "MXME": GEO.positions - 1}
    if name in fixed:
        return fixed[name]
    return GEO.mem(name[0] == "E", int(name[1:]))


def program(src: str, checked: bool = True):
    """Assemble *src* for tiny.  Unchecked, the scheduler's own diagnostics
    (it rejects some violations already) are dropped, so that the image keeps
    the violation for the interpreter to find."""
    text = ".chip tiny\n" + textwrap.dedent(src)
    if checked:
        asm = assemble(text, "k.lasm")
        return load_program(asm.image, asm.config)
    asm = assemble(text, "k.lasm", stop_after="lower")
    cycles = schedule(asm.ir, Diagnostics(asm.sources))
    pinned = asm.ir.pin_kind == PIN_ABS  # the scheduler may have moved a pin it rejected: put it back
    cycles[pinned] = asm.ir.pin[pinned]
    return load_program(encode(asm.ir, cycles), asm.config)


ENGINES = ("levels", "cycles")


def run(src: str, **kw):
    """Run on the reference interpreter, and check that both engines of the
    fast interpreter give the same bits, cycles and statistics."""
    prog = program(src)
    ref = run_reference(prog, **kw)
    for engine in ENGINES:
        if engine == "levels" and not levels_supported(analyse(prog)):
            continue
        fast = run_fast(prog, engine_name=engine, **kw)
        assert fast.stats.cycles == ref.stats.cycles, engine
        np.testing.assert_array_equal(fast.sram, ref.sram, err_msg=engine)
        for key in ("instructions", "per_unit", "sram_bytes_read", "sram_bytes_written", "macs", "nan_inf"):
            assert getattr(fast.stats, key) == getattr(ref.stats, key), (engine, key)
    return ref


def fails(src: str, **kw) -> SimError:
    """The reference's violation; the fast interpreter must report the same
    cause at the same cycle."""
    prog = program(src, checked=False)
    with pytest.raises(SimError) as info:
        run_reference(prog, **kw)
    for engine in ENGINES:
        if engine == "levels" and not levels_supported(analyse(prog, check=False)):
            continue
        with pytest.raises(SimError) as fast:
            run_fast(prog, engine_name=engine, **kw)
        assert (fast.value.cause, fast.value.cycle) == (info.value.cause, info.value.cycle), engine
    return info.value


def lit(values) -> str:
    """A .data list for a numpy array (1-D: one row, 2-D: rows)."""
    def num(v):
        v = float(v) if isinstance(v, (float, np.floating)) else int(v)
        return repr(v)
    a = np.asarray(values)
    if a.ndim == 1:
        return "[" + ", ".join(num(v) for v in a.tolist()) + "]"
    return "[" + ", ".join(lit(r) for r in a) + "]"


def read_group(sym: str, slice_name: str, nbytes: int, stream: int, direction: str, target: int, t_arrive: int,
               rows: int = 1) -> str:
    """Reads of byte planes 0..nbytes-1 of *sym* (plane j in the j-th slice after
    *slice_name*) onto streams stream+j, timed to pass *target* at *t_arrive*."""
    lines = []
    for j in range(nbytes):
        sl = f"{slice_name[0]}{int(slice_name[1:]) + j}"
        t = t_arrive - READ - abs(target - pos(sl))
        lines.append(f"read {sym}.p{j}[0], s{stream + j}{direction} @{t}")
        if rows > 1:
            lines.append(f"repeat {sl.lower()}, {rows - 1}, 1, 1")
    return "\n".join(lines) + "\n"


def write_group(sym: str, slice_name: str, nbytes: int, stream: int, direction: str, source: int, t_out: int,
                rows: int = 1) -> str:
    """Writes catching streams stream+j (which leave *source* at *t_out*) into
    byte plane j of *sym*."""
    lines = []
    for j in range(nbytes):
        sl = f"{slice_name[0]}{int(slice_name[1:]) + j}"
        t = t_out + abs(pos(sl) - source)
        lines.append(f"write s{stream + j}{direction}, {sym}.p{j}[0] @{t}")
        if rows > 1:
            lines.append(f"repeat {sl.lower()}, {rows - 1}, 1, 1")
    return "\n".join(lines) + "\n"


def rand_i8(*shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


# ---- data paths and numerics -----------------------------------------------------------------
def test_vector_add_i8_wraps():
    a, b = rand_i8(32), rand_i8(32)
    res = run(f"""
        .data a, W3.b0[0], i8, {lit(a)}
        .data b, W1.b0[0], i8, {lit(b)}
        .space y, E2.b1[0], i8, 1
            read a, s0e @0              ; passes the VXM at 0 + 2 + 4
            read b, s1e @2              ; 2 + 2 + 2
            vadd.i8 s0e, s1e, s2e @6
            write s2e, y @11            ; at the VXM at 8, at E2 three cycles later
            halt
    """)
    np.testing.assert_array_equal(res.tensor("y")[0], a + b)


def test_vector_add_i16_groups_from_byte_planes():
    a = rng.integers(-32768, 32768, 32).astype(np.int16)
    b = rng.integers(-32768, 32768, 32).astype(np.int16)
    t = 8
    res = run(f"""
        .data a, W4.b0[0], i16, {lit(a)}
        .data b, W1.b0[0], i16, {lit(b)}
        .space y, E2.b1[0], i16, 1
        {read_group("a", "W4", 2, 0, "e", pos("VXM"), t)}
        {read_group("b", "W1", 2, 2, "e", pos("VXM"), t)}
            vsub.i16 s0e, s2e, s4e @{t}
        {write_group("y", "E2", 2, 4, "e", pos("VXM"), t + 2)}
    """)
    np.testing.assert_array_equal(res.tensor("y")[0], a - b)


def test_f32_chain_with_immediates():
    x = rng.uniform(-3, 3, size=(3, 32)).astype(np.float32)
    t = 8
    res = run(f"""
        .data x, W2.b0[0], f32, {lit(x)}
        .space y, E0.b1[0], f32, 3
        {read_group("x", "W2", 4, 0, "e", pos("VXM"), t, rows=3)}
            vmul.f32 s0e, 0.5, s4e, alu0 @{t}
            repeat alu0, 2, 1
            vadd.f32 s4e, -1.25, s8e, alu1 @{t + 2}   ; chained: reads s4e the cycle it appears
            repeat alu1, 2, 1
            vexp.f32 s8e, s12e, alu2 @{t + 4}
            repeat alu2, 2, 1
            vmax.f32 s12e, 2.0, s0e, alu3 @{t + 10}    ; transcendental delay 6
            repeat alu3, 2, 1
        {write_group("y", "E0", 4, 0, "e", pos("VXM"), t + 12, rows=3)}
    """)
    want = np.maximum(np.exp(x * np.float32(0.5) + np.float32(-1.25)), np.float32(2.0))
    np.testing.assert_array_equal(res.tensor("y"), want)


def test_f16_ops_compute_in_f32_and_round_once():
    x = rng.uniform(-4, 4, size=(1, 32)).astype(np.float16)
    t = 10
    res = run(f"""
        .data x, W6.b0[0], f16, {lit(x)}
        .space y, E4.b1[0], f16, 1
        {read_group("x", "W6", 2, 0, "e", pos("VXM"), t)}
            vmul.f16 s0e, 0.1, s2e, alu0 @{t}
            vtanh.f16 s2e, s4e, alu1 @{t + 2}
            vsub.f16 s4e, 0.3, s6e, alu2 @{t + 8}
        {write_group("y", "E4", 2, 6, "e", pos("VXM"), t + 10)}
    """)
    f32 = np.float32
    step1 = (x.astype(f32) * f32(np.float16(0.1))).astype(np.float16)
    step2 = np.tanh(step1.astype(f32)).astype(np.float16)
    want = (step2.astype(f32) - f32(np.float16(0.3))).astype(np.float16)
    np.testing.assert_array_equal(res.tensor("y"), want)


def test_compare_select_and_unary_ints():
    a, b = rand_i8(32), rand_i8(32)
    a[:4] = b[:4]
    a[4] = -128
    res = run(f"""
        .data a, W3.b0[0], i8, {lit(a)}
        .data b, W1.b0[0], i8, {lit(b)}
        .space lt, E0.b1[0], i8, 1
        .space sel, E1.b1[0], i8, 1
        .space ab, E2.b1[0], i8, 1
            read a, s0e @0                  ; at the VXM at 6
            read a, s0e @2                  ; and again at 8
            read b, s1e @2
            read b, s1e @4
            vlt.i8 s0e, s1e, s2e, alu0 @6
            vabs.i8 s0e, s3e, alu1 @6
            vsel.i8 s2e, s0e, s1e, s4e, alu2 @8   ; a < b ? a : b
            write s2e, lt @9
            write s3e, ab @11
            write s4e, sel @12
    """)
    np.testing.assert_array_equal(res.tensor("lt")[0], (a < b).astype(np.int8))
    np.testing.assert_array_equal(res.tensor("sel")[0], np.minimum(a, b))
    np.testing.assert_array_equal(res.tensor("ab")[0], np.abs(a))  # abs(-128) wraps to -128


def test_vcvt_float_to_int_rounds_half_even_saturates_and_zeroes_nan():
    vals = [2.5, 3.5, -2.5, 0.5, 1.5, -0.5, 127.4, 127.5, 128.0, 1e6, -129.0, -1e6, float("nan"), float("inf"),
            float("-inf"), 200.7, -128.5, -127.5, 65504.0, 65520.0, 1e10, -3e9]
    x = np.zeros(32, np.float32)
    x[:len(vals)] = vals
    t = 8
    res = run(f"""
        .data x, W2.b0[0], f32, {lit(x)}
        .space y8, E1.b1[0], i8, 1
        .space y32, E3.b1[0], i32, 1
        .space yh, W0.b1[0], f16, 1
        {read_group("x", "W2", 4, 0, "e", pos("VXM"), t)}
            vcvt.f32.i8 s0e, s4e, alu0 @{t}
            vcvt.f32.i32 s0e, s8e, alu1 @{t}
            vcvt.f32.f16 s0e, s0w, alu2 @{t}
            write s4e, y8 @{t + 2 + 2}
        {write_group("y32", "E3", 4, 8, "e", pos("VXM"), t + 2)}
        {write_group("yh", "W0", 2, 0, "w", pos("VXM"), t + 2)}
    """)
    y8 = res.tensor("y8")[0][:len(vals)].tolist()
    assert y8 == [2, 4, -2, 0, 2, 0, 127, 127, 127, 127, -128, -128, 0, 127, -128, 127, -128, -128, 127, 127,
                  127, -128]
    y32 = res.tensor("y32")[0][:len(vals)].tolist()
    assert y32 == [2, 4, -2, 0, 2, 0, 127, 128, 128, 1000000, -129, -1000000, 0, 2**31 - 1, -2**31, 201, -128,
                   -128, 65504, 65520, 2**31 - 1, -2**31]
    yh = res.tensor("yh")[0]
    assert yh[18] == 65504 and np.isinf(yh[19]) and np.isnan(yh[12]) and yh[0] == 2.5
    # non-finite results of the f16 conversion: nan, inf, -inf, 65520 -> inf, 1e6, -1e6, 1e10, -3e9
    assert res.stats.nan_inf == 8


def test_vcvt_int_to_int_saturates_and_int_to_float_rounds_even():
    vals = [0, 1, -1, 127, 128, -128, -129, 300, -300, 32767, 32768, -32769, 2049, 2051, 65519, 65520, 70000,
            2**31 - 1, -2**31, 16777217]
    x = np.zeros(32, np.int32)
    x[:len(vals)] = vals
    t = 8
    res = run(f"""
        .data x, W2.b0[0], i32, {lit(x)}
        .space y8, E0.b1[0], i8, 1
        .space y16, E1.b1[0], i16, 1
        .space yh, W0.b1[0], f16, 1
        .space yf, E4.b1[0], f32, 1
        {read_group("x", "W2", 4, 0, "e", pos("VXM"), t)}
            vcvt.i32.i8 s0e, s4e, alu0 @{t}
            vcvt.i32.i16 s0e, s6e, alu1 @{t}
            vcvt.i32.f16 s0e, s0w, alu2 @{t}
            vcvt.i32.f32 s0e, s8e, alu3 @{t}
            write s4e, y8 @{t + 2 + 1}
        {write_group("y16", "E1", 2, 6, "e", pos("VXM"), t + 2)}
        {write_group("yh", "W0", 2, 0, "w", pos("VXM"), t + 2)}
        {write_group("yf", "E4", 4, 8, "e", pos("VXM"), t + 2)}
    """)
    n = len(vals)
    assert res.tensor("y8")[0][:n].tolist() == [0, 1, -1, 127, 127, -128, -128, 127, -128, 127, 127, -128, 127,
                                                127, 127, 127, 127, 127, -128, 127]
    assert res.tensor("y16")[0][:n].tolist() == [0, 1, -1, 127, 128, -128, -129, 300, -300, 32767, 32767, -32768,
                                                 2049, 2051, 32767, 32767, 32767, 32767, -32768, 32767]
    yh = res.tensor("yh")[0][:n]
    assert yh[12] == 2048 and yh[13] == 2052 and yh[14] == 65504  # ties to even; 65519 rounds down
    assert np.isinf(yh[15]) and np.isinf(yh[16]) and np.isinf(yh[17]) and np.isinf(yh[18]) and yh[18] < 0
    assert res.tensor("yf")[0][19] == np.float32(16777216)  # 2**24 + 1 ties to even
    assert res.stats.nan_inf == 5


def test_stream_value_overwritten_downstream():
    a, b = rand_i8(32), rand_i8(32)
    res = run(f"""
        .data a, W3.b0[0], i8, {lit(a)}
        .data b, W1.b0[0], i8, {lit(b)}
        .space y, E0.b1[0], i8, 1
            read a, s0e @0              ; at W1 (position 8) at cycle 4 ...
            read b, s0e @2              ; ... where b is written on the same stream: b wins from there on
            write s0e, y @7             ; E0 (11) at 2 + 2 + 3
    """)
    np.testing.assert_array_equal(res.tensor("y")[0], b)


def test_sram_write_is_seen_by_reads_of_later_cycles():
    a = rand_i8(32)
    res = run(f"""
        .data a, W0.b0[0], i8, {lit(a)}
        .space tmp, E0.b0[0], i8, 1
        .space y, E1.b1[0], i8, 1
            read a, s0e @0              ; at E0 (11) at cycle 4
            write s0e, tmp @4           ; commits at 5
            read tmp, s1e @6            ; 6 > 5: sees it; at E1 at 9
            write s1e, y @9
    """)
    np.testing.assert_array_equal(res.tensor("y")[0], a)
    np.testing.assert_array_equal(res.tensor("tmp")[0], a)


def test_shift_and_rotate():
    x, z = rand_i8(32), rand_i8(32)
    res = run(f"""
        .data x, W0.b0[0], i8, {lit(x)}
        .data z, E0.b0[0], i8, {lit(z)}
        .space ys, W0.b1[0], i8, 1
        .space yr, E0.b1[0], i8, 1
            read x, s0w @0                  ; SXM(W) (1) at 2 + 8
            shift s0w, 3, s0e, sxmw @10
            write s0e, ys @21               ; out at 13, back at W0 (9) 8 cycles later
            read z, s1e @0                  ; SXM(E) (19) at 2 + 8
            rotate s1e, -5, s2w, sxme @10
            write s2w, yr @21
    """)
    want_shift = np.zeros(32, np.int8)
    want_shift[3:] = x[:-3]
    np.testing.assert_array_equal(res.tensor("ys")[0], want_shift)
    np.testing.assert_array_equal(res.tensor("yr")[0], np.roll(z, -5))


def test_permute_and_distribute():
    x = rand_i8(32)
    perm = rng.permutation(32).astype(np.int16)
    dmap = rng.integers(0, 16, 32)
    dmap[::5] = 255
    res = run(f"""
        .data x, E0.b0[0], i8, {lit(x)}
        .data m, E1.b0[0], i16, {lit(perm)}
        .data dm, E3.b0[0], i8, {lit(dmap.astype(np.int8))}
        .space yp, E0.b1[0], i8, 1
        .space yd, E0.b1[1], i8, 1
        {read_group("x", "E0", 1, 0, "e", pos("SXME"), 10)}
        {read_group("m", "E1", 2, 2, "e", pos("SXME"), 10)}
            permute s0e, s2e, s4w, sxme @10
            read x, s0e @2
            read dm, s6e @5
            distribute s0e, s6e, s5w, sxme @12
            write s4w, yp @{10 + 5 + 8}
            write s5w, yd @{12 + 5 + 8}
    """)
    np.testing.assert_array_equal(res.tensor("yp")[0], x[perm])
    base = np.arange(32) // 16 * 16
    want = np.where(dmap == 255, 0, x[base + np.minimum(dmap, 15)])
    np.testing.assert_array_equal(res.tensor("yd")[0], want)


def test_transpose_16x16_per_superlane():
    slices = [f"W{k}" for k in range(8)] + [f"E{k}" for k in range(8)]
    block = rand_i8(16, 32)
    t = 19
    src = ""
    for i, sl in enumerate(slices):
        src += f".data r{i}, {sl}.b0[0], i8, {lit(block[i])}\n.space o{i}, {sl}.b1[0], i8, 1\n"
    for i, sl in enumerate(slices):  # row i on s<i>w, all at SXM(W) at cycle t
        src += f"read r{i}, s{i}w @{t - READ - (pos(sl) - pos('SXMW'))}\n"
    src += f"transpose s0w, s0e, sxmw @{t}\n"
    for k, sl in enumerate(slices):  # out stream k leaves SXM(W) at t + 16, caught by slice k
        src += f"write s{k}e, o{k} @{t + 16 + pos(sl) - pos('SXMW')}\n"
    res = run(src)
    out = np.stack([res.tensor(f"o{k}")[0] for k in range(16)])
    for j in range(2):
        np.testing.assert_array_equal(out[:, 16 * j:16 * j + 16], block[:, 16 * j:16 * j + 16].T)


def test_gather_and_scatter():
    tbl = rand_i8(4, 32)
    gmap = rng.integers(0, 4, 32).astype(np.int8)
    data = rand_i8(32)
    smap = rng.integers(0, 4, 32).astype(np.int8)
    res = run(f"""
        .data tbl, W0.b0[0], i8, {lit(tbl)}
        .data gm, W1.b0[0], i8, {lit(gmap)}
        .data sm, W1.b0[1], i8, {lit(smap)}
        .data d, W2.b0[0], i8, {lit(data)}
        .space g, E0.b1[0], i8, 1
        .space sc, E1.b1[0], i8, 4
            read gm, s0e @2                 ; at W0 (9) at 5
            gather tbl, s0e, s1e @5         ; result at W0 at 9, at E0 at 11
            write s1e, g @11
            read d, s2e @3                  ; at E1 (12) at 10
            read sm, s3e @4
            scatter s2e, s3e, sc @10        ; lands at 13
    """)
    np.testing.assert_array_equal(res.tensor("g")[0], tbl[gmap, np.arange(32)])
    want = np.zeros((4, 32), np.int8)
    want[smap, np.arange(32)] = data
    np.testing.assert_array_equal(res.tensor("sc"), want)
    assert res.stats.sram_bytes_read == 4 * 32 and res.stats.sram_bytes_written == 2 * 32


def test_gemm_int8_with_accumulate_modes():
    w = rand_i8(32, 32)
    x = rand_i8(3, 32)
    res = run(f"""
        .data w, W1.b0[0], i8, {lit(w)}
        .data x, W2.b0[0], i8, {lit(x)}
        .space y, W3.b1[0], i32, 3
            read w, s0w @0                  ; W1 (8) to mxm0 (0): at 10
            repeat w1, 31, 1, 1
            lw.i8 s0w, mxm0 @10
            repeat mxm0, 31, 1
            iw mxm0 @42                     ; installed at 46
            read x, s1w @37
            repeat w2, 2, 1, 1
            abc.i8 s1w, mxm0 @46            ; the install cycle: sees the new weights
            repeat mxm0, 2, 1
            acc.i32 mxm0, s0e, 0, 0 @50     ; row 0 := x0 @ w
            acc.i32 mxm0, s0e, 0, 1 @51     ; row 0 += x1 @ w
            acc.i32 mxm0, s0e, 1, 0 @52     ; row 1 := x2 @ w
        {write_group("y", "W3", 4, 0, "e", pos("MXMW"), 56, rows=3)}
            halt
    """)
    p = x.astype(np.int64) @ w.astype(np.int64)
    want = np.stack([p[0], p[0] + p[1], p[2]]).astype(np.int32)
    np.testing.assert_array_equal(res.tensor("y"), want)
    s = res.stats
    assert s.macs == 3 * 32 * 32
    assert s.instructions == 32 + 32 + 1 + 3 + 3 + 3 + 12 + 1
    assert s.per_unit["mxm"] == 32 + 1 + 3 + 3


def test_gemm_fp16_products_in_f64_rounded_to_f32():
    w = rng.uniform(-2, 2, size=(16, 32)).astype(np.float16)
    x = rng.uniform(-2, 2, size=(2, 32)).astype(np.float16)
    res = run(f"""
        .data w, W1.b0[0], f16, {lit(w)}
        .data x, W3.b0[0], f16, {lit(x)}
        .space y, E0.b1[0], f32, 2
        {read_group("w", "W1", 2, 0, "w", pos("MXMW"), 10, rows=16)}
            lw.f16 s0w, mxm0 @10
            repeat mxm0, 15, 1
            iw mxm0 @26                     ; installed at 30
        {read_group("x", "W3", 2, 2, "w", pos("MXMW"), 30, rows=2)}
            abc.f16 s2w, mxm0 @30
            repeat mxm0, 1, 1
            acc.f32 mxm0, s0e, 0, 0 @34
            repeat mxm0, 1, 1
        {write_group("y", "E0", 4, 0, "e", pos("MXMW"), 40, rows=2)}
    """)
    want = (x[:, :16].astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(res.tensor("y"), want)
    assert res.stats.macs == 2 * 16 * 32


def test_examples_give_their_documented_results():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "examples"
    asm = assemble((root / "gemm_int8.lasm").read_text(), str(root / "gemm_int8.lasm"))
    res = run_reference(load_program(asm.image, asm.config))
    assert res.tensor("y")[:, :4].tolist() == [[4, 6, 1, 0], [28, 140, 0, -4]]
    asm = assemble((root / "scale_relu.lasm").read_text(), str(root / "scale_relu.lasm"))
    res = run_reference(load_program(asm.image, asm.config))
    assert res.tensor("y")[:, :8].tolist() == [[0, 0, 0, 0, 1, 2, 24, 31], [0, 0, 2, 2, 4, 0, 0, 1],
                                               [125, 126, 127, 127, 127, 0, 0, 0]]


# ---- counting ----------------------------------------------------------------------------------
VECTOR_ADD = """
    .data a, W3.b0[0], i8, [1, 2, 3]
    .data b, W1.b0[0], i8, [10, 20, 30]
    .space y, E2.b1[0], i8, 1
        read a, s0e @0
        read b, s1e @2
        vadd.i8 s0e, s1e, s2e @6
        write s2e, y @11
"""


def test_stats_of_vector_add():
    res = run(VECTOR_ADD + "    halt\n")
    s = res.stats
    assert res.tensor("y")[0][:4].tolist() == [11, 22, 33, 0]
    assert s.cycles == 12 + 1 + TINY.superlanes - 1      # halt issues at 12
    assert s.instructions == 5
    assert s.per_unit == {"icu": 1, "mem": 3, "vxm": 1, "mxm": 0, "sxm": 0, "c2c": 0}
    assert s.queues_per_unit == {"icu": 1, "mem": 16, "vxm": 4, "mxm": 4, "sxm": 2, "c2c": 2}
    assert (s.sram_bytes_read, s.sram_bytes_written, s.macs, s.nan_inf) == (64, 32, 0, 0)
    assert s.utilisation("mem") == 3 / (14 * 16)
    # without halt the program ends after its last effect: the write commits at 12
    assert run(VECTOR_ADD).stats.cycles == 14


def test_empty_program_takes_no_cycles():
    res = run("")
    assert res.stats.cycles == 0 and res.stats.instructions == 0


# ---- violations ----------------------------------------------------------------------------------
def test_no_value_passes_nothing_yet_full_message():
    err = fails("""
        vadd.i8 s0e, s1e, s2e @5
    """)
    assert err.cause == "no value passes VXM on stream s0e at cycle 5; nothing has passed there yet"
    assert (err.cycle, err.queue, err.unit, err.source) == (5, "alu0", "vxm", "k.lasm:3:1")
    msg = err.diagnostics[0].message
    assert msg.startswith("cycle 5, queue alu0 (vxm): vadd.i8") and msg.endswith(": " + err.cause)
    span = err.diagnostics[0].span
    assert (span.file, span.line, span.col) == ("k.lasm", 3, 1)


def test_no_value_passes_reports_the_last_pass():
    err = fails("""
        .data a, W3.b0[0], i8, [1]
            read a, s0e @0                  ; passes the VXM at 6
            vadd.i8 s0e, 1, s1e @8
    """)
    assert err.cause == "no value passes VXM on stream s0e at cycle 8; it last passed at cycle 6"


def test_each_byte_of_a_group_is_checked():
    err = fails("""
        .data a, W3.b0[0], i8, [1]
            read a, s0e @0
            vadd.i16 s0e, 1, s2e @6
    """)
    assert err.cause == "no value passes VXM on stream s1e at cycle 6; nothing has passed there yet"


def test_two_producers_on_one_slot():
    err = fails("""
        .data b, W1.b0[0], i8, [1]
            read b, s1e @2
            vadd.i8 s1e, 1, s0e, alu0 @6
            vadd.i8 s1e, 2, s0e, alu1 @6
    """)
    assert err.cause == "two producers write stream s0e at VXM at cycle 8"
    assert (err.cycle, err.queue) == (6, "alu1")


def test_bank_port_read_and_write_on_one_bank():
    err = fails("""
        .data a, W0.b0[0], i8, [1]
        .data tmp, E0.b0[0], i8, [2]
            read a, s0e @0
            write s0e, tmp @4           ; commits at 5
            read tmp, s1e @5
    """)
    assert err.cause == "bank-port conflict on slice E0: a read and a write on bank 0 at cycle 5"
    assert err.cycle == 5 and err.text.startswith("read")  # the later-issued of the two


def test_bank_port_two_writes():
    err = fails("""
        .data a, W0.b0[0], i8, [1]
        .data d, E0.b0[0], i8, [1, 2, 3]
            read d, s1e @0              ; at E0 at 2: data and map of the scatter
            scatter s1e, s1e, E0.b1[0] @2   ; lands at 5
            read a, s0e @0              ; at E0 at 4
            write s0e, E0.b1[8] @4      ; commits at 5 too
    """)
    assert err.cause == "bank-port conflict on slice E0: two writes at cycle 5"
    assert err.cycle == 4 and err.text.startswith("write")  # issued after the scatter


def test_bank_port_two_reads():
    # one queue issues one instruction per cycle, so only a hand-made image can
    # read a slice twice in a cycle: make w4's read address W3
    asm = assemble(".chip tiny\n.data a, W3.b0[0], i8, [1]\n.data b, W4.b0[0], i8, [2]\n"
                   "read a, s0e @0\nread b, s1e @0\n", "k.lasm")
    q = TINY.queue_id("w4")
    row, fields = isa.unpack(int(asm.image.text[q][0]))
    fields["a"] = isa.addr_code(False, 3, 0, 0)
    asm.image.text[q] = np.array([isa.pack(row, fields)], dtype=np.uint64)
    with pytest.raises(SimError) as info:
        run_reference(load_program(asm.image, asm.config))
    assert info.value.cause == "bank-port conflict on slice W3: two reads at cycle 0"


def test_uninitialised_read_unless_allowed():
    src = """
        .space s, W0.b0[0], i8, 1
        .space y, E0.b1[0], i8, 1
            read s[0], s0e @0
            write s0e, y @4
    """
    err = fails(src)
    assert err.cause == "uninitialised SRAM read of W0.b0[0]"
    assert "--allow-uninit" in err.diagnostics[0].hint
    assert run(src, allow_uninit=True).tensor("y").tolist() == [[0] * 32]


def test_weight_buffer_overflow():
    err = fails("""
        .data w, W1.b0[0], i8, [1]
            read w, s0w @0
            repeat w1, 32, 1
            lw.i8 s0w, mxm0 @10
            repeat mxm0, 32, 1
    """)
    assert err.cause == "weight buffer of mxm0 holds 32 rows already (K = 32)"
    assert err.cycle == 42 and err.source.endswith("(repetition 32)")


def test_abc_without_weights():
    err = fails("""
        .data x, W1.b0[0], i8, [1]
            read x, s0w @0
            abc.i8 s0w, mxm0 @10
    """)
    assert err.cause == "no weights installed on mxm0"


MXM_I8 = """
    .data w, W1.b0[0], i8, [1]
    .data v, W2.b0[0], i8, [1]
        read w, s0w @0
        lw.i8 s0w, mxm0 @10
        iw mxm0 @11                     ; installed at 15
"""


def test_abc_dtype_mismatch():
    err = fails(MXM_I8 + """
        read w, s2w @5
        read v, s3w @6
        abc.f16 s2w, mxm0 @15
    """)
    assert err.cause == "dtype mismatch: mxm0 holds i8 weights, abc.f16 streams f16"


def test_acc_without_ready_product():
    err = fails("""
        acc.i32 mxm0, s0e, 0 @5
    """)
    assert err.cause == "no product ready on mxm0"
    err = fails(MXM_I8 + """
        read w, s2w @5
        abc.i8 s2w, mxm0 @15            ; ready at 19
        acc.i32 mxm0, s0e, 0 @18
    """)
    assert err.cause == "no product ready on mxm0"


def test_acc_dtype_must_match_the_weights():
    err = fails(MXM_I8 + """
        read w, s2w @5
        abc.i8 s2w, mxm0 @15
        acc.f32 mxm0, s0e, 0 @19
    """)
    assert err.cause == "acc.f32 on mxm0 whose weights are i8 (use acc.i32)"


def test_gather_offset_leaves_the_bank():
    err = fails("""
        .data t, W0.b0[200], i8, [1]
        .data m, W1.b0[0], i8, [0, 100]
            read m, s0e @2
            gather t, s0e, s1e @5
    """)
    assert err.cause == "gather offset 300 leaves the bank"


def test_effect_after_halt():
    err = fails("""
        .data a, W3.b0[0], i8, [1]
            read a, s0e @0
            halt @1
    """)
    assert err.cause == "effect at cycle 2 after halt at cycle 1"
    assert err.queue == "w3"


def test_strict_fp_and_nan_inf_count():
    src = """
        .data x, W2.b0[0], f32, [100.0, nan]
        .space y, E0.b1[0], f32, 1
    """ + read_group("x", "W2", 4, 0, "e", pos("VXM"), 8) + """
        vexp.f32 s0e, s4e @8
    """ + write_group("y", "E0", 4, 4, "e", pos("VXM"), 14)
    res = run(src)
    y = res.tensor("y")[0]
    assert np.isinf(y[0]) and np.isnan(y[1]) and (y[2:] == 1).all()
    assert res.stats.nan_inf == 2
    err = fails(src, strict_fp=True)
    assert err.cause == "non-finite result (strict fp)" and err.cycle == 8


def test_c2c_stops_a_numeric_run():
    err = fails("""
        .data a, W0.b0[0], i8, [1]
            read a, s0w @0                  ; W0 (9) to MXM(W) (0), where c2c0 sits: 2 + 9
            send s0w, c2c0 @11
    """)
    assert err.cause == "C2C is not simulated yet (multi-chip runs come later); use --timing-only"
    assert (err.cycle, err.queue, err.unit) == (11, "c2c0", "c2c")


def test_distribute_map_values_are_checked():
    err = fails("""
        .data x, E0.b0[0], i8, [1]
        .data dm, E3.b0[0], i8, [3, 40]
            read x, s0e @0
            read dm, s6e @3
            distribute s0e, s6e, s5w, sxme @10
    """)
    assert err.cause == "distribute map value 40 is neither a lane of the superlane (0..15) nor 255"
