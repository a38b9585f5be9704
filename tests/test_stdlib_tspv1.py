"""vector.lasm, matmul.lasm, matmul_tiled.lasm and mlp.lasm on ``tsp-v1``: 320 lanes
(5 x 2^6), 44 slices per hemisphere, 32 streams per direction, 16 ALUs, 320
accumulator rows, H = 160 columns per fp16 tile.  The tiny-chip tests
(tests/test_stdlib.py, tests/test_stdlib_layers.py) run these macros on 32 lanes;
here the same calls run on the published chip, checked the same way: both fast
engines and the reference interpreter agree bit for bit (the reference skips the
repeats of a shape on other planes, streams, wraps or a split: every tsp-v1 run
has its own 230 MB SRAM), the result matches, bit for bit, the numpy model that
the tiny tests use (imported from them or from lpuasm/model/blocks.py, with
LANES = 320), and the cycle count is pinned.

Shapes that exercise tsp-v1: k and n not multiples of 160 (partial K tiles and
output tiles), m = 1 .. 5, rows of 320 lanes with the values that matter (signed
zeros, large values overflowing to inf, subnormals, saturating tanh; never a
NaN), tensors near and far from the VXM (W0 .. W43), the upper streams (s=16),
the second west plane (mxm1) and the builder's split of one product over both
west planes; wrap (timing-only weights) keeps the cycles and reads the tiles it
says.  Large weights travel as .npy files (a 320-lane .data list of a few
hundred thousand f16 values takes the parser seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.config import TSP_V1
from lpuasm.model import blocks

from test_stdlib import VECTOR_F32, VECTOR_I8, lit, model_gelu, rng_f32, run_everywhere, same_bits

F16, F32, F64 = np.float16, np.float32, np.float64
I8, I16, I32 = np.int8, np.int16, np.int32
LANES = TSP_V1.lanes    # 320
H = LANES // 2          # 160: the fp16 K limit, columns per word of the tiled layout
HEAD = ".chip tsp-v1\n"
ceil_div = blocks.ceil_div

assert LANES == 320 and TSP_V1.mem_slices_per_hemisphere == 44


def tile_act(a):
    return blocks.tile_act(a, LANES)


def untile_act(a, m, c):
    return blocks.untile_act(a, m, c, LANES)


def tile_weights(w):
    return blocks.tile_weights(w, LANES)


def model_matmul_tiled(x16, w16):
    return blocks.model_matmul_tiled(x16, w16, LANES)


def no_nan(*arrays):
    for a in arrays:
        assert not np.isnan(a).any()


# ---- vector.lasm, f32 -----------------------------------------------------------------------------
R = 3
# signed zeros, 1e10 (square 1e20), +-3e38 (sums and squares overflow to inf,
# gelu's x*x is inf, silu/gelu of -3e38 are -0), tanh saturated (+-20), small
# normals and subnormals (scale 0.1 makes new subnormals), f16's limits
SPECIAL_X = [0.0, -0.0, 1e10, -1e10, 3e38, -3e38, 20.0, -20.0, 1e-3, -1e-3, 65504.0, -65504.0,
             1.2e-38, -1e-40, 1e-40, 88.0, 9.0, -9.0, 0.5, -0.5]
SPECIAL_Y = [-0.0, 0.0, -1e10, 1e10, 3e38, 3e38, -20.0, 20.0, 1e-3, 1e-3, 65504.0, 65504.0,
             -1.2e-38, 1e-40, -1e-40, -88.0, -9.0, 9.0, 0.5, 0.5]


def vec_f32_inputs():
    x, y = rng_f32(R, LANES, seed=31), rng_f32(R, LANES, seed=32)
    x[0, :len(SPECIAL_X)] = SPECIAL_X
    y[0, :len(SPECIAL_Y)] = SPECIAL_Y
    x[1] *= F32(1000)                       # a row of large values
    y[2] *= F32(1e-3)                       # a row of small ones
    return x, y


X, Y = vec_f32_inputs()

# tiny's layout (tests/test_stdlib.VEC_DATA): x W0..W3, y W4..W7, out E0..E3 (or W0.b1);
# "far": the inputs at the west edge's far end and mid-hemisphere, out at the east's far end
VEC_LAYOUTS = {
    "near": dict(x="W0.b0[0]", y="W4.b0[0]", o="E0.b0[0]", ow="W0.b1[0]"),
    "far": dict(x="W40.b0[0]", y="W20.b1[8]", o="E40.b1[0]", ow="W24.b0[0]"),
}


def vec_data(layout="near", x=X, y=Y):
    L = VEC_LAYOUTS[layout]
    return f"""\
.equ R, {len(x)}
.data  x, {L['x']}, f32, {lit(x)}
.data  y, {L['y']}, f32, {lit(y)}
.space o, {L['o']}, f32, R
.space ow, {L['ow']}, f32, R
"""


# the calls and models of tests/test_stdlib.VECTOR_F32; tsp-v1's cycles
VECTOR_F32_CYCLES = {
    "residual_add": 39, "sub": 39, "max": 39, "scale": 35, "square": 35,
    "relu": 35, "tanh": 39, "silu": 71, "gelu": 95,
}
# the other op codes of the generic macros (one VXM op each: lpuasm/semantics.py's numpy)
VECTOR_F32_MORE = {
    "mul": ("vec_binary_f32 VOP_MUL, x, y, o, R", lambda x, y: x * y, 39),
    "min": ("vec_binary_f32 VOP_MIN, x, y, o, R", lambda x, y: np.minimum(x, y), 39),
    "add_imm": ("vec_scalar_f32 VOP_ADD, x, -2.5, o, R", lambda x, y: x + F32(-2.5), 35),
    "max_imm": ("vec_scalar_f32 VOP_MAX, x, 1e-3, o, R", lambda x, y: np.maximum(x, F32(1e-3)), 35),
    "exp": ("vec_unary_f32 VOP_EXP, x, o, R", lambda x, y: np.exp(x), 39),
    "neg": ("vec_unary_f32 VOP_NEG, x, o, R", lambda x, y: -x, 35),
    "abs": ("vec_unary_f32 VOP_ABS, x, o, R", lambda x, y: np.abs(x), 35),
    "rcp": ("vec_unary_f32 VOP_RCP, x, o, R", lambda x, y: F32(1) / x, 39),
    "mov": ("vec_unary_f32 VOP_MOV, x, o, R", lambda x, y: x.copy(), 35),
}
VECTOR_F32_ALL = {name: (call, model, VECTOR_F32_CYCLES[name]) for name, (call, model, _) in VECTOR_F32.items()}
VECTOR_F32_ALL.update(VECTOR_F32_MORE)


@pytest.mark.parametrize("name", list(VECTOR_F32_ALL))
def test_vector_f32(name, tmp_path):
    call, model, cycles = VECTOR_F32_ALL[name]
    src = HEAD + '.include "vector.lasm"\n' + vec_data() + f"    {call}\n    halt\n"
    r = run_everywhere(src, tmp_path)
    with np.errstate(all="ignore"):
        want = model(X, Y).astype(F32)
    no_nan(want)
    same_bits(r.tensor("o"), want, name)
    assert r.stats.cycles == cycles, r.stats.cycles


# layout, stream offset, ALU: the same bits anywhere; cycles grow with the distance
VEC_VARIANTS = [  # id, layout, extra arguments (one-op macros), extra arguments (silu/gelu)
    ("near-s16", "near", ", s=16", ", s=16"),
    ("near-alu9", "near", ", alu=alu9", ""),
    ("far", "far", "", ""),
    ("far-s16-alu15", "far", ", alu=alu15, s=16", ", s=16"),
]
VEC_VARIANT_CYCLES = {"near-s16": 95, "near-alu9": 95, "far": 160, "far-s16-alu15": 160}


@pytest.mark.parametrize("vid, layout, extra, extra_chain", VEC_VARIANTS, ids=[v[0] for v in VEC_VARIANTS])
def test_vector_f32_layouts_streams_alus(vid, layout, extra, extra_chain, tmp_path):
    """residual_add, square, relu (one-op macros) and silu (a chain on alu0..alu3)
    one after the other, on the streams s..s+15 and the ALU given."""
    src = HEAD + '.include "vector.lasm"\n' + vec_data(layout) + f"""\
.space a, {VEC_LAYOUTS[layout]['o'].replace('[0]', '[8]')}, f32, R
.space q, {VEC_LAYOUTS[layout]['o'].replace('[0]', '[16]')}, f32, R
    residual_add_f32 x, y, o, R{extra}
    square_f32 x, a, R{extra}
    relu_f32 y, ow, R, east=0{extra}
    silu_f32 x, q, R{extra_chain}
    halt
"""
    r = run_everywhere(src, tmp_path)
    with np.errstate(all="ignore"):
        same_bits(r.tensor("o"), X + Y, "o")
        same_bits(r.tensor("a"), X * X, "a")
        same_bits(r.tensor("ow"), np.maximum(Y, F32(0)), "ow")
        same_bits(r.tensor("q"), VECTOR_F32["silu"][1](X, Y), "q")
    assert r.stats.cycles == VEC_VARIANT_CYCLES[vid], r.stats.cycles


def test_vector_f32_west_output_and_in_place(tmp_path):
    """tests/test_stdlib.test_vector_f32_west_output_and_in_place on tsp-v1."""
    src = HEAD + '.include "vector.lasm"\n' + vec_data() + """\
    residual_add_f32 x, y, ow, R, east=0
    gelu_f32 ow, ow, R, east=0
    halt
"""
    r = run_everywhere(src, tmp_path)
    with np.errstate(all="ignore"):
        want = model_gelu(X + Y)
    no_nan(want)
    same_bits(r.tensor("ow"), want, "ow")
    assert r.stats.cycles == 157, r.stats.cycles


# ---- vector.lasm, i8 ------------------------------------------------------------------------------
def vec_i8_inputs():
    g = np.random.default_rng(33)
    x, y = g.integers(-128, 128, (R, LANES)).astype(I8), g.integers(-128, 128, (R, LANES)).astype(I8)
    x[0, :10] = [-128, 127, -128, 127, 0, -1, 1, -100, -128, 100]     # sums and differences wrap
    y[0, :10] = [-128, 127, 127, -128, 0, -1, -1, 100, 1, 100]
    return x, y


XI, YI = vec_i8_inputs()
VEC_I8_DATA = f"""\
.equ R, {R}
.data  x, W0.b0[0], i8, {lit(XI)}
.data  y, W1.b0[0], i8, {lit(YI)}
.space o, E0.b0[0], i8, R
"""
VECTOR_I8_CYCLES = {"residual_add": 30, "relu": 29, "add_imm": 29, "min": 30}
VECTOR_I8_MORE = {
    "sub": ("vec_binary_i8 VOP_SUB, x, y, o, R", lambda x, y: (x.astype(I16) - y).astype(I8), 30),
    "mul": ("vec_binary_i8 VOP_MUL, x, y, o, R", lambda x, y: (x.astype(I16) * y).astype(I8), 30),
    "max_imm": ("vec_scalar_i8 VOP_MAX, x, -3, o, R", lambda x, y: np.maximum(x, I8(-3)), 29),
    "neg": ("vec_scalar_i8 VOP_NEG, x, 0, o, R", lambda x, y: (-x.astype(I16)).astype(I8), 29),
    "abs": ("vec_scalar_i8 VOP_ABS, x, 0, o, R", lambda x, y: np.abs(x.astype(I16)).astype(I8), 29),
}
VECTOR_I8_ALL = {name: (call, model, VECTOR_I8_CYCLES[name]) for name, (call, model, _) in VECTOR_I8.items()}
VECTOR_I8_ALL.update(VECTOR_I8_MORE)


@pytest.mark.parametrize("name", list(VECTOR_I8_ALL))
def test_vector_i8(name, tmp_path):
    call, model, cycles = VECTOR_I8_ALL[name]
    src = HEAD + '.include "vector.lasm"\n' + VEC_I8_DATA + f"    {call}\n    halt\n"
    r = run_everywhere(src, tmp_path)
    same_bits(r.tensor("o"), model(XI, YI), name)
    assert r.stats.cycles == cycles, r.stats.cycles


def test_vector_i8_on_other_streams(tmp_path):
    """tests/test_stdlib.test_vector_i8_on_other_streams on tsp-v1, with s=0, 4 and 29
    (the last three streams of 32): the same values, the same cycles."""
    cycles = []
    for s in (0, 4, 29):
        src = HEAD + '.include "vector.lasm"\n' + VEC_I8_DATA + f"""\
.space ow, W2.b0[0], i8, R
    residual_add_i8 x, y, o, R, s={s}
    relu_i8 x, ow, R, east=0, s={s}
    halt
"""
        r = run_everywhere(src, tmp_path, reference=s == 0)
        same_bits(r.tensor("o"), VECTOR_I8["residual_add"][1](XI, YI), "o")
        same_bits(r.tensor("ow"), VECTOR_I8["relu"][1](XI, YI), "ow")
        cycles.append(r.stats.cycles)
    assert cycles == [35] * 3, cycles


# ---- matmul.lasm ----------------------------------------------------------------------------------
# tiny's layout (tests/test_stdlib.py): w W1.b0, x W2.b0 (f16: w W1..W2, x W3..W4), y W3.b1 (W3..W6)
MM_LAYOUTS = {
    "near": dict(w="W1.b0[0]", x="W2.b0[0]", xh="W3.b0[0]", y="W3.b1[0]"),
    "far": dict(w="W42.b0[0]", x="W30.b1[0]", xh="W30.b1[0]", y="W10.b0[0]"),
}


@pytest.mark.parametrize("m, k, n, layout, cycles", [
    (3, 320, 320, "near", 445), (5, 200, 300, "near", 328), (2, 37, 160, "near", 161),
    (4, 111, 320, "far", 189),
])
def test_matmul_i8(m, k, n, layout, cycles, tmp_path):
    g = np.random.default_rng(40 + k)
    w = g.integers(-128, 128, (k, n)).astype(I8)
    x = g.integers(-128, 128, (m, k)).astype(I8)
    w[0, :4], x[0, :4] = -128, -128         # the extreme products
    np.save(tmp_path / "w.npy", w)
    L = MM_LAYOUTS[layout]
    src = HEAD + f"""\
.include "matmul.lasm"
.npy   w, {L['w']}, "w.npy"
.data  x, {L['x']}, i8, {lit(x)}
.space y, {L['y']}, i32, {m}
    matmul_i8 w, x, y, {m}, {k}
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = np.zeros((m, LANES), I32)
    want[:, :n] = x.astype(I32) @ w.astype(I32)     # the tiny test's model
    same_bits(r.tensor("y"), want, "y")
    assert r.stats.macs == m * LANES * LANES
    assert r.stats.cycles == cycles, r.stats.cycles


@pytest.mark.parametrize("m, k, n, plane, layout, cycles", [
    (3, 160, 320, "mxm1", "near", 285), (4, 100, 250, "mxm1", "near", 226),
    (1, 7, 320, "mxm1", "near", 130), (2, 160, 320, "mxm0", "far", 236),
])
def test_matmul_f16(m, k, n, plane, layout, cycles, tmp_path):
    g = np.random.default_rng(50 + k)
    w = g.standard_normal((k, n)).astype(F16)
    x = g.standard_normal((m, k)).astype(F16)
    w[0, 0], x[0, 0] = F16(65504), F16(-65504)        # a product of 2^32, exact
    np.save(tmp_path / "w.npy", w)
    L = MM_LAYOUTS[layout]
    src = HEAD + f"""\
.include "matmul.lasm"
.npy   w, {L['w']}, "w.npy"
.data  x, {L['xh']}, f16, {lit(x)}
.space y, {L['y']}, f32, {m}
    matmul_f16 w, x, y, {m}, {k}, plane={plane}
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = np.zeros((m, LANES), F32)
    want[:, :n] = (x.astype(F64) @ w.astype(F64)).astype(F32)      # the tiny test's model
    same_bits(r.tensor("y"), want, "y")
    assert r.stats.cycles == cycles, r.stats.cycles


@pytest.mark.parametrize("m, k, n, cycles", [(3, 700, 320, 844), (2, 321, 200, 451), (1, 960, 320, 1093)])
def test_matmul_tiled_i8(m, k, n, cycles, tmp_path):
    g = np.random.default_rng(60 + k)
    w = g.integers(-128, 128, (k, n)).astype(I8)
    x = g.integers(-128, 128, (m, k)).astype(I8)
    np.save(tmp_path / "w.npy", w)
    src = HEAD + f"""\
.include "matmul.lasm"
.npy   w, W1.b0[0], "w.npy"
.data  x, W2.b0[0], i8, {lit(x)}
.space y, W3.b1[0], i32, {m}
    matmul_tiled_i8 w, x, y, {m}, {k}
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = np.zeros((m, LANES), I32)
    want[:, :n] = x.astype(I32) @ w.astype(I32)
    same_bits(r.tensor("y"), want, "y")
    assert r.stats.cycles == cycles, r.stats.cycles


# ---- matmul_tiled.lasm ----------------------------------------------------------------------------
def mt_inputs(m, k, n, seed):
    g = np.random.default_rng(seed)
    w = g.standard_normal((k, n)).astype(F16)
    x = g.standard_normal((m, k)).astype(F16)
    return x, w


def mt_program(tmp_path, x, weights, calls, y_words, y="W3.b1[0]", xb=None):
    """tiny's layout (tests/test_stdlib_layers.py): x W3.b0 (W3..W4), y W3.b1
    (W3..W6) unless *y* says; the weight tensors (name -> tiles) at W1.b0 (W1..W2)
    and, a second one, W8.b0 (W8..W9); *xb*: an address for a copy of x."""
    decl = []
    for (name, tw), addr in zip(weights.items(), ("W1.b0[0]", "W8.b0[0]")):
        np.save(tmp_path / f"{name}.npy", tw)
        decl.append(f'.npy   {name}, {addr}, "{name}.npy"')
    if xb:
        decl.append(f".data  xb, {xb}, f16, {lit(tile_act(x))}")
    return HEAD + '.include "matmul_tiled.lasm"\n' + "\n".join(decl) + f"""
.data  x, W3.b0[0], f16, {lit(tile_act(x))}
.space y, {y}, f32, {y_words}
""" + "".join(f"    {c}\n" for c in calls) + "    halt\n"


MT_CASES = [  # m, k, n, cycles
    (1, 100, 50, 223),      # one tile: matmul_f16's bits
    (1, 200, 170, 538),     # 2 x 2 tiles, both partial
    (2, 300, 330, 1062),    # KT 2, NT 3 (the last of 10 columns)
    (3, 161, 161, 476),     # one row and one column past a tile
    (3, 480, 100, 624),     # K a multiple of H: 3 full K tiles
]


@pytest.mark.parametrize("m, k, n, cycles", MT_CASES, ids=[f"m{c[0]}-{c[1]}x{c[2]}" for c in MT_CASES])
def test_matmul_tiled_f16(m, k, n, cycles, tmp_path):
    x, w = mt_inputs(m, k, n, seed=70 + k + n)
    src = mt_program(tmp_path, x, {"w": tile_weights(w)}, [f"matmul_tiled_f16 w, x, y, {m}, {k}, {n}"],
                     ceil_div(n, H) * m)
    r = run_everywhere(src, tmp_path)
    want = model_matmul_tiled(x, w)
    same_bits(r.tensor("y"), tile_act(want), "y")
    np.testing.assert_allclose(untile_act(r.tensor("y"), m, n), x.astype(F64) @ w.astype(F64), rtol=1e-5, atol=1e-5)
    assert r.stats.cycles == cycles, r.stats.cycles


MT_PLANES = {  # the product m=2, 300 x 330 (tiles as MT_CASES), on each west plane and stream set
    "mxm0-s0": ("mxm0", "", 1062), "mxm1-s16": ("mxm1", ", s=16", 1062),
    "mxm1-s0": ("mxm1", "", 1062), "mxm0-s16": ("mxm0", ", s=16", 1062),
}


@pytest.mark.parametrize("pid", list(MT_PLANES))
def test_matmul_tiled_f16_plane_and_streams(pid, tmp_path):
    plane, s, cycles = MT_PLANES[pid]
    m, k, n = 2, 300, 330
    x, w = mt_inputs(m, k, n, seed=70 + k + n)
    src = mt_program(tmp_path, x, {"w": tile_weights(w)}, [f"matmul_tiled_f16 w, x, y, {m}, {k}, {n}, {plane}{s}"],
                     ceil_div(n, H) * m)
    r = run_everywhere(src, tmp_path, reference=pid == "mxm1-s16")
    same_bits(r.tensor("y"), tile_act(model_matmul_tiled(x, w)), "y")
    assert r.stats.cycles == cycles, r.stats.cycles


SPLIT_CASES = [  # m, k, n, x copied for mxm1, cycles split, cycles on one plane
    (2, 300, 490, False, 1197, 1369), (2, 300, 490, True, 743, 1369),
    (3, 170, 330, False, 499, 675), (3, 170, 330, True, 488, 675),
]


@pytest.mark.parametrize("m, k, n, copy, cycles, cycles_one_plane", SPLIT_CASES,
                         ids=[f"m{c[0]}-{c[1]}x{c[2]}-{'xcopy' if c[3] else 'xshared'}" for c in SPLIT_CASES])
def test_matmul_tiled_f16_split_over_the_west_planes(m, k, n, copy, cycles, cycles_one_plane, tmp_path):
    """The model builder's product (lpuasm/model/build.py, _weight_fns): output
    tiles 0 .. ceil(NT/2)-1 on mxm0 with s=0, the others on mxm1 with s=16 into
    y's words from cut*m on, each from its own weight tensor: the bits of one
    product, in fewer cycles than on one plane.  y sits apart from x (W12..W15).
    With one x for both halves (as the builder passes it), the second half's
    reads of x wait in x's slice queues behind the first half's, the last of
    which follows the first half's last weight tile: the halves overlap only by
    their drains.  With a copy of x in other slices (W30..W31) they run side by
    side, in a little over half the time."""
    x, w = mt_inputs(m, k, n, seed=80 + k + n)
    tw = tile_weights(w)
    nt, kt = ceil_div(n, H), ceil_div(k, H)
    cut = ceil_div(nt, 2)
    src = mt_program(tmp_path, x, {"wa": tw[:cut * kt * H], "wb": tw[cut * kt * H:]}, [
        f"matmul_tiled_f16 wa, x, y, {m}, {k}, {cut * H}, mxm0",
        f"matmul_tiled_f16 wb, {'xb' if copy else 'x'}, y[{cut * m}], {m}, {k}, {n - cut * H}, mxm1, s=16",
    ], nt * m, y="W12.b0[0]", xb="W30.b0[0]" if copy else None)
    r = run_everywhere(src, tmp_path, reference=m == 3)
    same_bits(r.tensor("y"), tile_act(model_matmul_tiled(x, w)), "y")
    one = run_everywhere(mt_program(tmp_path, x, {"w": tw}, [f"matmul_tiled_f16 w, x, y, {m}, {k}, {n}"], nt * m,
                                    y="W12.b0[0]"), tmp_path, name="one.lasm", reference=False)
    same_bits(one.tensor("y"), r.tensor("y"), "one plane")
    assert (r.stats.cycles, one.stats.cycles) == (cycles, cycles_one_plane)
    assert r.stats.cycles < one.stats.cycles


def wrapped_weights(tw, k, n, wrap):
    """The k x NT*H matrix that matmul_tiled_f16 with wrap multiplies by: tile
    (u, t) read from stored tile (u*KT + t) mod wrap (its first min(H, k - t*H)
    rows; the stored tiles are tw's first wrap)."""
    kt, nt = ceil_div(k, H), ceil_div(n, H)
    weff = np.zeros((k, nt * H), tw.dtype)
    for u in range(nt):
        for t in range(kt):
            i, rows = (u * kt + t) % wrap, min(H, k - t * H)
            weff[t * H:t * H + rows, u * H:(u + 1) * H] = tw[i * H:i * H + rows, :H]
    return weff


@pytest.mark.parametrize("wrap", [1, 2, 4, 6])
def test_matmul_tiled_f16_wrap(wrap, tmp_path):
    """wrap=N (timing-only builds): only N weight tiles stored, tile i read from
    tile i mod N; the cycles of the full layout (test_matmul_tiled_f16, m=2,
    300 x 330: 6 tiles, so wrap=6 is the product itself)."""
    m, k, n = 2, 300, 330
    x, w = mt_inputs(m, k, n, seed=70 + k + n)
    tw = tile_weights(w)
    src = mt_program(tmp_path, x, {"w": tw[:wrap * H]}, [f"matmul_tiled_f16 w, x, y, {m}, {k}, {n}, wrap={wrap}"],
                     ceil_div(n, H) * m)
    r = run_everywhere(src, tmp_path, reference=wrap == 1)
    weff = wrapped_weights(tw, k, n, wrap)
    same_bits(r.tensor("y"), tile_act(model_matmul_tiled(x, weff)), "y")
    if wrap == 6:
        same_bits(r.tensor("y"), tile_act(model_matmul_tiled(x, w)), "y")
    else:
        assert not np.array_equal(r.tensor("y"), tile_act(model_matmul_tiled(x, w)))
    full = [c for c in MT_CASES if c[:3] == (m, k, n)][0][3]
    assert r.stats.cycles == full, r.stats.cycles


# ---- mlp.lasm -------------------------------------------------------------------------------------
def mlp_program(x16, wg, wu, wd, residual, tmp_path):
    """blocks.mlp_source's program (the model builder's MLP block) for tsp-v1, with
    its three weight .data lists moved to .npy files (the same tiles)."""
    src = blocks.mlp_source(x16, wg, wu, wd, residual, TSP_V1)
    tiles = {"wg": tile_weights(wg.T), "wu": tile_weights(wu.T), "wd": tile_weights(wd.T)}
    out = []
    for line in src.splitlines():
        parts = line.split(", ", 3)
        if parts[0].startswith(".data") and parts[0].split()[1] in tiles:
            name = parts[0].split()[1]
            assert parts[2] == "f16"
            np.save(tmp_path / f"{name}.npy", tiles[name])
            line = f'.npy   {name}, {parts[1]}, "{name}.npy"'
        out.append(line)
    assert sum(line.startswith(".npy") for line in out) == 3
    return "\n".join(out) + "\n"


def mlp_inputs(m, hidden, ffn, seed):
    g = np.random.default_rng(seed)
    x = g.standard_normal((m, hidden)).astype(F16)
    wg = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)   # (out, in), as HF stores them
    wu = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)
    wd = (g.standard_normal((hidden, ffn)) / np.sqrt(ffn)).astype(F16)
    return x, wg, wu, wd


MLP_CASES = [  # m, hidden, ffn, residual, cycles
    (2, 200, 330, True, 2518), (1, 170, 161, False, 1330), (3, 100, 480, True, 1756),
]


@pytest.mark.parametrize("m, hidden, ffn, residual, cycles", MLP_CASES,
                         ids=[f"m{c[0]}-{c[1]}x{c[2]}-res{int(c[3])}" for c in MLP_CASES])
def test_mlp_swiglu_f16(m, hidden, ffn, residual, cycles, tmp_path):
    x, wg, wu, wd = mlp_inputs(m, hidden, ffn, seed=90 + hidden + ffn)
    r = run_everywhere(mlp_program(x, wg, wu, wd, residual, tmp_path), tmp_path)
    y, gate, up, p, h16 = blocks.model_mlp(x, wg, wu, wd, residual, LANES)
    same_bits(r.tensor("h"), tile_act(h16), "h")
    same_bits(r.tensor("up"), tile_act(up), "up")
    same_bits(r.tensor("gate"), tile_act(gate), "gate")    # swiglu_f32_f16 reads gate, keeps it
    same_bits(r.tensor("y"), tile_act(y), "y")
    if residual:
        same_bits(r.tensor("xr"), tile_act(x.astype(F32)), "xr")
    assert r.stats.cycles == cycles, r.stats.cycles


# swiglu_f32_f16 and the conversions on their own (elsewhere they run only inside the MLPs
# and the model builder's layers)
def swiglu_inputs(rows, seed):
    g = np.random.default_rng(seed)
    gate = (g.standard_normal((rows, LANES)) * 4).astype(F32)
    up = (g.standard_normal((rows, LANES)) * 4).astype(F32)
    gate[0, :8] = [0.0, -0.0, 30.0, -30.0, 1e5, -1e5, 1e30, -1e30]   # silu ~ x, ~ -0
    up[0, :8] = [1.0, 1.0, 1e4, 1e4, 1.0, 1.0, 1e-20, 1.0]           # p past f16's range: inf
    return gate, up


@pytest.mark.parametrize("rows, cycles", [(1, 55), (4, 94)])
def test_swiglu_f32_f16(rows, cycles, tmp_path):
    gate, up = swiglu_inputs(rows, seed=100 + rows)
    src = HEAD + f"""\
.include "mlp.lasm"
.data  gate, W0.b1[0], f32, {lit(gate)}
.data  up, W4.b1[0], f32, {lit(up)}
.space h, W8.b0[0], f16, {rows}
    swiglu_f32_f16 gate, up, h, {rows}
    halt
"""
    r = run_everywhere(src, tmp_path)
    with np.errstate(all="ignore"):
        want = (blocks.model_silu(gate) * up).astype(F16)     # blocks.model_mlp's p, h16
    no_nan(want)
    assert np.isinf(want[0]).any()
    same_bits(r.tensor("h"), want, "h")
    same_bits(r.tensor("gate"), gate, "gate")                # read only
    assert r.stats.cycles == cycles, r.stats.cycles


def test_cvt_f32_f16_and_back(tmp_path):
    """cvt_f32_f16 (round to nearest even; past 65504 inf; below 2^-24 zero or
    subnormal) and cvt_f16_f32 (exact), one after the other."""
    g = np.random.default_rng(110)
    p = (g.standard_normal((3, LANES)) * 100).astype(F32)
    p[0, :12] = [0.0, -0.0, 65504.0, 65519.0, 65520.0, -1e6, 1e-8, 3e-8, -3e-5, 1.0 + 2.0 ** -11,
                 1.0 + 3 * 2.0 ** -11, 2049.0]
    src = HEAD + f"""\
.include "mlp.lasm"
.data  p, W0.b0[0], f32, {lit(p)}
.space h, W8.b0[0], f16, 3
.space q, W12.b0[0], f32, 3
    cvt_f32_f16 p, h, 3
    cvt_f16_f32 h, q, 3
    halt
"""
    r = run_everywhere(src, tmp_path)
    with np.errstate(over="ignore"):
        h = p.astype(F16)
    same_bits(r.tensor("h"), h, "h")
    same_bits(r.tensor("q"), h.astype(F32), "q")
    assert r.stats.cycles == 75, r.stats.cycles
