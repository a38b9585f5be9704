"""Normalisations and the BERT MLP on the half-width tiled layout of
stdlib/matmul_tiled.lasm (H = LANES // 2 columns per word; a tensor of m rows and
c columns is ceil(c/H) tiles of m words): norm.lasm's rmsnorm_tiled_f32 and
layernorm_tiled_f32, mlp.lasm's mlp_gelu_f16 (with bias_gelu_f32_f16 and
bias_add_f32).  Each program runs on both fast engines and, on ``tiny`` and the
smallest ``tsp-v1`` cases, the reference interpreter (bit-identical,
tests/test_stdlib.run_everywhere); the result is compared bit for bit with a numpy
float32 model in the macros' operation order (the models below) and within a
tolerance with lpuasm.model.reference; cycle counts are pinned."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.model import blocks
from lpuasm.model import reference as ref

from test_stdlib import assemble_error, lit, model_gelu, roll_tree, run_everywhere, same_bits

F16, F32, F64 = np.float16, np.float32, np.float64
LANES = {"tiny": 32, "tsp-v1": 320}
EPS = 1e-5
ceil_div = blocks.ceil_div


# ---- numpy models (the macros' order; tiled in and out) ------------------------------------------
def tile_sum(xt, m, kt, f):
    """_nt_tsum_f32: per row, a = f(x_0); a = a + f(x_t) for t = 1 .. kt-1 (elementwise, tile order)."""
    acc = None
    for t in range(kt):
        q = f(xt[t * m:(t + 1) * m])
        acc = q if acc is None else acc + q
    return acc


def model_rmsnorm_tiled(xt, gt, m, cols, eps, lanes):
    kt = ceil_div(cols, lanes // 2)
    s = roll_tree(tile_sum(xt, m, kt, lambda v: v * v), np.add)          # the rotate tree of reduce.lasm
    r = F32(1) / np.sqrt(s * F32(1 / cols) + F32(eps))
    return np.concatenate([(xt[t * m:(t + 1) * m] * r) * gt[t:t + 1] for t in range(kt)])


def model_layernorm_tiled(xt, gt, bt, maskt, m, cols, eps, lanes):
    kt = ceil_div(cols, lanes // 2)
    mu = roll_tree(tile_sum(xt, m, kt, lambda v: v), np.add) * F32(1 / cols)
    d = np.concatenate([(xt[t * m:(t + 1) * m] - mu) * maskt[t:t + 1] for t in range(kt)])
    s2 = roll_tree(tile_sum(d, m, kt, lambda v: v * v), np.add)
    r = F32(1) / np.sqrt(s2 * F32(1 / cols) + F32(eps))
    return np.concatenate([((d[t * m:(t + 1) * m] * r) * gt[t:t + 1]) + bt[t:t + 1] for t in range(kt)])


def model_mlp_gelu(x16, wu, bu, wd, bd, xr, lanes):
    """mlp_gelu_f16: (y, h16) in the plain (m, c) layout; xr None or the f32 residual."""
    h = blocks.model_matmul_tiled(x16, wu.T, lanes)
    h16 = model_gelu(h + bu).astype(F16)
    y = blocks.model_matmul_tiled(h16, wd.T, lanes) + bd
    return (y if xr is None else y + xr), h16


def norm_data(m, cols, seed):
    g = np.random.default_rng(seed)
    x = (g.standard_normal((m, cols)) * 3 + 0.5).astype(F32)
    if m >= 3:
        x[2] *= F32(1e-3)                   # eps matters in this row
    gain = (1 + 0.1 * g.standard_normal((1, cols))).astype(F32)
    bias = (0.1 * g.standard_normal((1, cols))).astype(F32)
    return x, gain, bias


# ---- layouts -------------------------------------------------------------------------------------
# tiny has 8 slices per hemisphere: x and s share W4..W7, ss and tmp W0..W3; the
# final pass's y then shares slices with one of its inputs (correct, but its words
# follow each other at the chain's latency).  tsp-v1: every tensor in its own slices.
LAYOUT = {
    "tiny": dict(x="W4.b0[0]", s="W4.b1[0]", d="W4.b1[16]", ss="W0.b0[0]", tmp="W0.b1[0]",
                 scr="E0.b0[0]", mask="E0.b1[0]", g="E0.b1[32]", b="E4.b0[0]",
                 y="E4.b1[0]", yw="W0.b0[64]"),
    "tsp-v1": dict(x="W0.b0[0]", ss="W4.b0[0]", tmp="W4.b1[0]", s="W8.b0[0]", d="W12.b0[0]",
                   scr="E0.b0[0]", mask="E0.b1[0]", g="E4.b0[0]", b="E8.b0[0]",
                   y="E12.b0[0]", yw="W16.b0[0]"),
}


def norm_program(kind, chip, m, cols, east, xt, gt, bt=None, maskt=None):
    kt = ceil_div(cols, LANES[chip] // 2)
    L = LAYOUT[chip]
    src = f""".chip {chip}
.include "norm.lasm"
.data  x, {L['x']}, f32, {lit(xt)}
.space ss, {L['ss']}, f32, {m}
.space tmp, {L['tmp']}, f32, {m}
.space s, {L['s']}, f32, {m}
.space scr, {L['scr']}, f32, {m}
.data  g, {L['g']}, f32, {lit(gt)}
.space y, {L['y'] if east else L['yw']}, f32, {kt * m}
"""
    if kind == "rms":
        return src + f"    rmsnorm_tiled_f32 x, g, y, {m}, {cols}, {EPS}, ss, s, tmp, scr, east={east}\n    halt\n"
    return src + f""".data  b, {L['b']}, f32, {lit(bt)}
.data  mask, {L['mask']}, f32, {lit(maskt)}
.space d, {L['d']}, f32, {kt * m}
    layernorm_tiled_f32 x, g, b, y, {m}, {cols}, {EPS}, mask, d, ss, s, tmp, scr, east={east}
    halt
"""


# chip, m, cols, east, cycles, reference interpreter too
RMS_CASES = [
    ("tiny", 1, 5, 1, 281, True), ("tiny", 1, 70, 1, 295, True), ("tiny", 2, 40, 1, 304, True),
    ("tiny", 3, 24, 1, 331, True), ("tiny", 3, 70, 1, 352, True), ("tiny", 2, 40, 0, 365, True),
    ("tsp-v1", 1, 256, 1, 1351, True), ("tsp-v1", 3, 300, 1, 1431, False),
    ("tsp-v1", 2, 4096, 1, 1471, False), ("tsp-v1", 3, 1000, 0, 1470, False),
]
LN_CASES = [
    ("tiny", 1, 5, 1, 554, True), ("tiny", 1, 70, 1, 740, True), ("tiny", 2, 40, 1, 798, True),
    ("tiny", 3, 24, 1, 852, True), ("tiny", 3, 70, 1, 1254, True), ("tiny", 2, 40, 0, 774, True),
    ("tsp-v1", 1, 256, 1, 2686, True), ("tsp-v1", 3, 300, 1, 2846, False),
    ("tsp-v1", 2, 4096, 1, 2926, False), ("tsp-v1", 3, 1000, 0, 2920, False),
]


def case_id(c):
    return f"{c[0]}-m{c[1]}-c{c[2]}-{'east' if c[3] else 'west'}"


@pytest.mark.parametrize("chip, m, cols, east, cycles, reference", RMS_CASES, ids=[case_id(c) for c in RMS_CASES])
def test_rmsnorm_tiled(chip, m, cols, east, cycles, reference, tmp_path):
    lanes = LANES[chip]
    x, g, _ = norm_data(m, cols, seed=cols * 10 + m)
    xt, gt = blocks.tile_act(x, lanes), blocks.tile_act(g, lanes)
    r = run_everywhere(norm_program("rms", chip, m, cols, east, xt, gt), tmp_path, reference=reference)
    same_bits(r.tensor("y"), model_rmsnorm_tiled(xt, gt, m, cols, EPS, lanes), "y")
    got = blocks.untile_act(r.tensor("y"), m, cols, lanes)
    np.testing.assert_allclose(got, ref.rms_norm(x, g[0], EPS), rtol=2e-5, atol=1e-6)
    assert r.stats.cycles == cycles


@pytest.mark.parametrize("chip, m, cols, east, cycles, reference", LN_CASES, ids=[case_id(c) for c in LN_CASES])
def test_layernorm_tiled(chip, m, cols, east, cycles, reference, tmp_path):
    lanes = LANES[chip]
    x, g, b = norm_data(m, cols, seed=cols * 10 + m)
    T = lambda a: blocks.tile_act(a, lanes)  # noqa: E731
    xt, gt, bt, maskt = T(x), T(g), T(b), T(np.ones((1, cols), F32))
    r = run_everywhere(norm_program("ln", chip, m, cols, east, xt, gt, bt, maskt), tmp_path, reference=reference)
    same_bits(r.tensor("y"), model_layernorm_tiled(xt, gt, bt, maskt, m, cols, EPS, lanes), "y")
    got = blocks.untile_act(r.tensor("y"), m, cols, lanes)
    np.testing.assert_allclose(got, ref.layer_norm(x, g[0], b[0], EPS), rtol=2e-5, atol=2e-5)
    assert r.stats.cycles == cycles


def test_models_match_the_plain_float32_forms():
    """The tiled models are float32 forms of the references (the sums in another order)."""
    lanes = 32
    x, g, b = norm_data(3, 70, seed=1)
    T = lambda a: blocks.tile_act(a, lanes)  # noqa: E731
    y = blocks.untile_act(model_rmsnorm_tiled(T(x), T(g), 3, 70, EPS, lanes), 3, 70, lanes)
    np.testing.assert_allclose(y, ref.rms_norm(x, g[0], EPS), rtol=2e-6, atol=1e-7)
    mt = T(np.ones((1, 70), F32))
    y = blocks.untile_act(model_layernorm_tiled(T(x), T(g), T(b), mt, 3, 70, EPS, lanes), 3, 70, lanes)
    np.testing.assert_allclose(y, ref.layer_norm(x, g[0], b[0], EPS), rtol=1e-5, atol=1e-5)
    # the padding (lanes >= H, columns past cols) comes out zero
    yt = model_layernorm_tiled(T(x), T(g), T(b), mt, 3, 70, EPS, lanes)
    assert not yt[:, 16:].any() and not yt[12:, 6:].any()


@pytest.mark.parametrize("chip", ["tiny", "tsp-v1"])
def test_norms_in_place_after_a_residual_add(chip, tmp_path):
    """The layer builder's order: x = x + o in place (east=0), then the norm with y = x
    (and, for LayerNorm, d = x): the reads of x follow writes of x on the same
    queues and banks, and the results are still bit-exact."""
    lanes = LANES[chip]
    h = lanes // 2
    m, cols = 3, 3 * h - 5
    kt = ceil_div(cols, h)
    x, g, b = norm_data(m, cols, seed=40)
    o = np.random.default_rng(41).standard_normal((m, cols)).astype(F32)
    T = lambda a: blocks.tile_act(a, lanes)  # noqa: E731
    xt, ot, gt, bt, maskt = T(x), T(o), T(g), T(b), T(np.ones((1, cols), F32))
    head = f""".chip {chip}
.include "norm.lasm"
.data  x, W4.b0[0], f32, {lit(xt)}
.data  o, W0.b1[16], f32, {lit(ot)}
.space ss, W0.b0[0], f32, {m}
.space tmp, W0.b1[0], f32, {m}
.space s, W4.b1[0], f32, {m}
.space scr, E0.b0[0], f32, {m}
.data  g, E0.b1[0], f32, {lit(gt)}
.data  b, E4.b0[0], f32, {lit(bt)}
.data  mask, E4.b1[0], f32, {lit(maskt)}
    vec_binary_f32 VOP_ADD, x, o, x, {kt * m}, east=0
"""
    cycles = {}
    for kind, call, model in [
        ("rms", f"rmsnorm_tiled_f32 x, g, x, {m}, {cols}, {EPS}, ss, s, tmp, scr, east=0",
         lambda xs: model_rmsnorm_tiled(xs, gt, m, cols, EPS, lanes)),
        ("ln", f"layernorm_tiled_f32 x, g, b, x, {m}, {cols}, {EPS}, mask, x, ss, s, tmp, scr, east=0",
         lambda xs: model_layernorm_tiled(xs, gt, bt, maskt, m, cols, EPS, lanes)),
    ]:
        r = run_everywhere(head + f"    {call}\n    halt\n", tmp_path, reference=chip == "tiny")
        same_bits(r.tensor("x"), model(xt + ot), kind)
        cycles[kind] = r.stats.cycles
    assert cycles == {"tiny": {"rms": 687, "ln": 1199}, "tsp-v1": {"rms": 1687, "ln": 3181}}[chip]


# ---- mlp_gelu_f16 --------------------------------------------------------------------------------
def mlp_program(chip, x16, wu, bu, wd, bd, residual, xr32, tmp_path, wrap=None):
    """All west but the biases; on tiny as mlp_swiglu_f16's test: weights W0..W1,
    x and h16 W2..W3, y W0..W3 past the weights, h and xr W4..W7."""
    lanes = LANES[chip]
    m, hidden = x16.shape
    ffn = wu.shape[0]
    h = lanes // 2
    ft, ht = ceil_div(ffn, h), ceil_div(hidden, h)
    twu, twd = blocks.tile_weights(wu.T, lanes), blocks.tile_weights(wd.T, lanes)
    np.save(tmp_path / "wu.npy", twu)
    np.save(tmp_path / "wd.npy", twd)
    od, oy = len(twu), len(twu) + len(twd)
    res = {0: "", 1: ", residual=1, xr=xr", 2: ", residual=2, xr=xr"}[residual]
    xr = (f".data  xr, W4.b0[0], f32, {lit(blocks.tile_act(xr32, lanes))}" if residual == 2
          else f".space xr, W4.b0[0], f32, {ht * m}")
    return f""".chip {chip}
.include "mlp.lasm"
.npy   wu, W0.b0[0], "wu.npy"
.npy   wd, W0.b0[{od}], "wd.npy"
.space y,  W0.b0[{oy}], f32, {ht * m}
.data  x,  W2.b0[0], f16, {lit(blocks.tile_act(x16, lanes))}
.space h16, W2.b0[{ht * m}], f16, {ft * m}
.space h,  W4.b1[0], f32, {ft * m}
{xr}
.data  bu, E0.b0[0], f32, {lit(blocks.tile_act(bu, lanes))}
.data  bd, E0.b0[{ft}], f32, {lit(blocks.tile_act(bd, lanes))}
    mlp_gelu_f16 x, wu, bu, wd, bd, y, {m}, {hidden}, {ffn}, h, h16{res}{'' if wrap is None else f', wrap={wrap}'}
    halt
"""


def mlp_data(m, hidden, ffn, seed):
    g = np.random.default_rng(seed)
    x = g.standard_normal((m, hidden)).astype(F16)
    wu = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)    # (out, in), as HF stores them
    wd = (g.standard_normal((hidden, ffn)) / np.sqrt(ffn)).astype(F16)
    bu = (0.1 * g.standard_normal((1, ffn))).astype(F32)
    bd = (0.1 * g.standard_normal((1, hidden))).astype(F32)
    xr = g.standard_normal((m, hidden)).astype(F32)
    return x, wu, bu, wd, bd, xr


# chip, m, hidden, ffn, residual, cycles, reference interpreter too
MLP_CASES = [
    ("tiny", 3, 16, 40, 1, 359, True), ("tiny", 2, 24, 32, 0, 317, True), ("tiny", 2, 40, 24, 2, 452, True),
    ("tiny", 1, 16, 16, 0, 128, True), ("tsp-v1", 2, 256, 600, 2, 2571, False),
]


@pytest.mark.parametrize("chip, m, hidden, ffn, residual, cycles, reference", MLP_CASES,
                         ids=[f"{c[0]}-m{c[1]}-{c[2]}x{c[3]}-res{c[4]}" for c in MLP_CASES])
def test_mlp_gelu_f16(chip, m, hidden, ffn, residual, cycles, reference, tmp_path):
    lanes = LANES[chip]
    x, wu, bu, wd, bd, xr32 = mlp_data(m, hidden, ffn, seed=hidden * 100 + ffn + m)
    r = run_everywhere(mlp_program(chip, x, wu, bu, wd, bd, residual, xr32, tmp_path), tmp_path,
                       reference=reference)
    xr = {0: None, 1: x.astype(F32), 2: xr32}[residual]
    y, h16 = model_mlp_gelu(x, wu, bu[0], wd, bd[0], xr, lanes)
    same_bits(r.tensor("h16"), blocks.tile_act(h16, lanes), "h16")
    same_bits(r.tensor("y"), blocks.tile_act(y, lanes), "y")
    if residual == 1:
        same_bits(r.tensor("xr"), blocks.tile_act(x.astype(F32), lanes), "xr")
    # close to the reference's float32 BERT MLP with the tanh GELU (HF gelu_new) ...
    xf = x.astype(F32)
    got = blocks.untile_act(r.tensor("y"), m, hidden, lanes)
    res = 0 if xr is None else xr
    want = ref.linear(ref.gelu_tanh(ref.linear(xf, wu, bu[0])), wd, bd[0]) + res
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)
    # ... and, less closely, to BERT's exact erf GELU (|gelu_tanh - gelu| <= 4.7e-4 per element)
    exact = ref.linear(ref.gelu(ref.linear(xf, wu, bu[0])), wd, bd[0]) + res
    np.testing.assert_allclose(got, exact, rtol=3e-3, atol=3e-3)
    assert r.stats.cycles == cycles


def test_mlp_gelu_wrap_keeps_the_cycles(tmp_path):
    """wrap=1 (timing-only weights) reads every weight tile from tile 0: the same
    cycle count as the full layout (the values are not the product's)."""
    x, wu, bu, wd, bd, xr32 = mlp_data(2, 24, 32, seed=24 * 100 + 32 + 2)
    src = mlp_program("tiny", x, wu, bu, wd, bd, 0, xr32, tmp_path, wrap=1)
    r = run_everywhere(src, tmp_path, reference=False)
    assert r.stats.cycles == 317
    y, _ = model_mlp_gelu(x, wu, bu[0], wd, bd[0], None, 32)
    assert not np.array_equal(r.tensor("y"), blocks.tile_act(y, 32))   # wrap reached the matmuls


def test_gelu_tanh_vs_erf_bound():
    """The documented bound: the tanh approximation is within 4.8e-4 of the exact GELU."""
    x = np.linspace(-8, 8, 20001).astype(F32)
    d = np.abs(ref.gelu_tanh(x).astype(F64) - ref.gelu(x).astype(F64))
    assert 4.5e-4 < d.max() < 4.8e-4


# ---- .error guards -------------------------------------------------------------------------------
SPACES = """\
.space x, W4.b0[0], f32, 4
.space s, W4.b1[0], f32, 2
.space d, W4.b1[8], f32, 4
.space ss, W0.b0[0], f32, 2
.space tmp, W0.b1[0], f32, 2
.space scr, E0.b0[0], f32, 2
.space g, E0.b1[0], f32, 2
.space b, E4.b0[0], f32, 2
.space mask, E4.b0[4], f32, 2
.space y, E4.b1[0], f32, 4
.space w, W0.b0[8], f16, 64
.space h16, W2.b0[16], f16, 4
"""
GUARDS = [
    ("norm.lasm", "rmsnorm_tiled_f32 x, g, y, 2, 0, 1e-5, ss, s, tmp, scr",
     "rmsnorm_tiled_f32: cols = 0; at least 1"),
    ("norm.lasm", "rmsnorm_tiled_f32 x, g, y, 0, 20, 1e-5, ss, s, tmp, scr",
     "rmsnorm_tiled_f32: m = 0 rows of x; at least 1"),
    ("norm.lasm", "layernorm_tiled_f32 x, g, b, y, 2, -3, 1e-5, mask, d, ss, s, tmp, scr",
     "layernorm_tiled_f32: cols = -3; at least 1"),
    ("norm.lasm", "layernorm_tiled_f32 x, g, b, y, 0, 20, 1e-5, mask, d, ss, s, tmp, scr",
     "layernorm_tiled_f32: m = 0 rows of x; at least 1"),
    ("mlp.lasm", "mlp_gelu_f16 h16, w, g, w, b, y, 2, 0, 8, x, h16",
     "mlp_gelu_f16: hidden = 0, ffn = 8; each at least 1"),
    ("mlp.lasm", "mlp_gelu_f16 h16, w, g, w, b, y, 0, 8, 8, x, h16",
     "mlp_gelu_f16: m = 0 rows of x; at least 1"),
    ("mlp.lasm", "mlp_gelu_f16 h16, w, g, w, b, y, 2, 8, 8, x, h16, residual=3",
     "mlp_gelu_f16: residual = 3; 0 (none), 1 (xr = f32(x), a scratch) or 2 (xr given, f32)"),
]


@pytest.mark.parametrize("file, call, message", GUARDS, ids=[f"{g[1].split()[0]}-{i}" for i, g in enumerate(GUARDS)])
def test_error_guards(file, call, message, tmp_path):
    src = f'.chip tiny\n.include "{file}"\n' + SPACES + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.severity == "error"
    assert d.message == message
    assert d.notes and d.notes[-1].message.startswith("in expansion of macro")
    assert d.notes[-1].span.line == src.splitlines().index(f"    {call}") + 1
