"""Layer macros of stdlib/ (matmul_tiled.lasm, mlp.lasm) on the ``tiny`` chip: each
program runs on the reference interpreter and both fast engines (bit-identical,
tests/test_stdlib.run_everywhere), its result is compared bit for bit with a numpy
model doing the same operations in the same order with the same f16 rounding
points, and close to lpuasm.model.reference's float32 math; cycle counts are
pinned (docs/stdlib.md lists them)."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.assembler import stdlib_dir
from lpuasm.model import reference as ref

from test_stdlib import assemble_error, lit, run_everywhere, same_bits

F16, F32, F64 = np.float16, np.float32, np.float64
LANES = 32          # tiny
H = LANES // 2      # the f16 K limit: columns per word of the tiled layout


def ceil_div(a, b):
    return -(-a // b)


# ---- layouts (docs/stdlib.md, "matmul_tiled.lasm") -------------------------------------------
def tile_act(a: np.ndarray) -> np.ndarray:
    """m x c -> (ceil(c/H) * m) x LANES: word t*m + r = columns t*H.. of row r, in lanes 0..H-1."""
    m, c = a.shape
    out = np.zeros((ceil_div(c, H) * m, LANES), a.dtype)
    for t in range(ceil_div(c, H)):
        blk = a[:, t * H:(t + 1) * H]
        out[t * m:(t + 1) * m, :blk.shape[1]] = blk
    return out


def untile_act(a: np.ndarray, m: int, c: int) -> np.ndarray:
    return np.concatenate([a[t * m:(t + 1) * m, :H] for t in range(ceil_div(c, H))], axis=1)[:, :c]


def tile_weights(w: np.ndarray) -> np.ndarray:
    """w (k x n, y = x @ w) -> NT*KT*H words: word (u*KT + t)*H + j = w[t*H + j, u*H:u*H+H]."""
    k, n = w.shape
    kt, nt = ceil_div(k, H), ceil_div(n, H)
    out = np.zeros((nt * kt * H, LANES), w.dtype)
    for u in range(nt):
        for t in range(kt):
            blk = w[t * H:(t + 1) * H, u * H:(u + 1) * H]
            base = (u * kt + t) * H
            out[base:base + blk.shape[0], :blk.shape[1]] = blk
    return out


def model_matmul_tiled(x16: np.ndarray, w16: np.ndarray) -> np.ndarray:
    """y = x @ w as the chip does it: per K tile exact products summed exactly,
    rounded once to f32; the K tiles' partial sums added in f32, in order."""
    k = w16.shape[0]
    acc = None
    for t in range(ceil_div(k, H)):
        p = (x16[:, t * H:(t + 1) * H].astype(F64) @ w16[t * H:(t + 1) * H].astype(F64)).astype(F32)
        acc = p if acc is None else acc + p
    return acc


def model_silu(x):
    """silu_f32's order: a = x*0.5; t = tanh(a); b = t+1; c = b*0.5; x*c."""
    return x * ((np.tanh(x * F32(0.5)) + F32(1)) * F32(0.5))


# ---- matmul_tiled_f16 --------------------------------------------------------------------------
@pytest.mark.parametrize("m, k, n, cycles", [(3, 16, 32, 76), (2, 40, 24, 152), (4, 8, 8, 44)])
def test_matmul_tiled_f16(m, k, n, cycles, tmp_path):
    g = np.random.default_rng(20)
    w = g.standard_normal((k, n)).astype(F16)
    x = g.standard_normal((m, k)).astype(F16)
    src = f""".chip tiny
.include "matmul_tiled.lasm"
.data  w, W1.b0[0], f16, {lit(tile_weights(w))}
.data  x, W3.b0[0], f16, {lit(tile_act(x))}
.space y, W3.b1[0], f32, {ceil_div(n, H) * m}
    matmul_tiled_f16 w, x, y, {m}, {k}, {n}
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = model_matmul_tiled(x, w)
    same_bits(r.tensor("y"), tile_act(want), "y")
    np.testing.assert_allclose(untile_act(r.tensor("y"), m, n), x.astype(F64) @ w.astype(F64), rtol=1e-5, atol=1e-5)
    assert r.stats.cycles == cycles


# ---- mlp_swiglu_f16 ----------------------------------------------------------------------------
def model_mlp(x16, wg, wu, wd, residual):
    """The chip's order and rounding points (mlp.lasm)."""
    gate = model_matmul_tiled(x16, wg.T)
    up = model_matmul_tiled(x16, wu.T)
    p = model_silu(gate) * up
    h16 = p.astype(F16)
    y = model_matmul_tiled(h16, wd.T)
    if residual:
        y = y + x16.astype(F32)
    return y, gate, up, p, h16


MLP_SRC = """.chip tiny
.include "mlp.lasm"
.data  wg, W0.b0[0], f16, {wg}
.data  wu, W0.b0[{ou}], f16, {wu}
.data  wd, W0.b0[{od}], f16, {wd}
.data  x,  W2.b0[0], f16, {x}
.space y,  W0.b0[{oy}], f32, {hr}
.space gate, W0.b1[0], f32, {fr}
.space up, W4.b1[0], f32, {fr}
.space h,  W2.b0[64], f16, {fr}
.space xr, W4.b0[0], f32, {hr}
    mlp_swiglu_f16 x, wg, wu, wd, y, {m}, {hidden}, {ffn}, gate, up, h{res}
    halt
"""


def mlp_program(x16, wg, wu, wd, residual):
    m, hidden = x16.shape
    ffn = wg.shape[0]
    twg, twu, twd = tile_weights(wg.T), tile_weights(wu.T), tile_weights(wd.T)
    ou = len(twg)
    od = ou + len(twu)
    oy = od + len(twd)
    return MLP_SRC.format(x=lit(tile_act(x16)), wg=lit(twg), wu=lit(twu), wd=lit(twd), ou=ou, od=od, oy=oy,
                          fr=ceil_div(ffn, H) * m, hr=ceil_div(hidden, H) * m, m=m, hidden=hidden, ffn=ffn,
                          res=", residual=1, xr=xr" if residual else "")


@pytest.mark.parametrize("m, hidden, ffn, residual, cycles", [
    (3, 16, 40, True, 578), (2, 24, 32, False, 408),
])
def test_mlp_swiglu_f16(m, hidden, ffn, residual, cycles, tmp_path):
    g = np.random.default_rng(21)
    x = g.standard_normal((m, hidden)).astype(F16)
    wg = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)   # (out, in), as HF stores them
    wu = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)
    wd = (g.standard_normal((hidden, ffn)) / np.sqrt(ffn)).astype(F16)
    r = run_everywhere(mlp_program(x, wg, wu, wd, residual), tmp_path)
    y, gate, up, p, h16 = model_mlp(x, wg, wu, wd, residual)
    same_bits(r.tensor("h"), tile_act(h16), "h")
    same_bits(r.tensor("gate"), tile_act(gate), "gate")
    same_bits(r.tensor("up"), tile_act(up), "up")
    same_bits(r.tensor("y"), tile_act(y), "y")
    # and close to the reference's float32 math (down(silu(gate(x)) * up(x)) [+ x])
    xf = x.astype(F32)
    want = ref.linear(ref.silu(ref.linear(xf, wg)) * ref.linear(xf, wu), wd)
    if residual:
        want = want + xf
    np.testing.assert_allclose(untile_act(r.tensor("y"), m, hidden), want, rtol=2e-3, atol=2e-3)
    assert r.stats.cycles == cycles


def test_one_tile_is_matmul_f16(tmp_path):
    """k, n <= H: one tile, the same bits as matmul.lasm's matmul_f16 (y's lanes H.. zero)."""
    g = np.random.default_rng(22)
    w = g.standard_normal((H, H)).astype(F16)
    x = g.standard_normal((2, H)).astype(F16)
    want = (x.astype(F64) @ w.astype(F64)).astype(F32)
    same_bits(model_matmul_tiled(x, w), want, "model")


def test_layer_files_have_a_documented_header():
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "stdlib.md").read_text()
    for f in ("matmul_tiled.lasm", "mlp.lasm"):
        lines = (stdlib_dir() / f).read_text().splitlines()
        assert lines[0] == ".once", f
        assert lines[1].startswith(f"; {f}:"), f
        assert f"## {f}" in doc, f


LAYER_SPACES = """\
.space w, W0.b0[0], f16, 64
.space x, W2.b0[0], f16, 4
.space y, W4.b1[0], f32, 4
"""
LAYER_GUARDS = [
    ("matmul_tiled.lasm", "matmul_tiled_f16 w, x, y, 2, 0, 8", "matmul_tiled_f16: k = 0; at least 1"),
    ("matmul_tiled.lasm", "matmul_tiled_f16 w, x, y, 2, 8, 0", "matmul_tiled_f16: n = 0; at least 1"),
    ("matmul_tiled.lasm", "matmul_tiled_f16 w, x, y, 0, 8, 8", "matmul_tiled_f16: m = 0 rows of x; at least 1"),
    ("mlp.lasm", "mlp_swiglu_f16 x, w, w, w, y, 2, 0, 8, y, y, x",
     "mlp_swiglu_f16: hidden = 0, ffn = 8; each at least 1"),
    ("mlp.lasm", "mlp_swiglu_f16 x, w, w, w, y, 0, 8, 8, y, y, x", "mlp_swiglu_f16: m = 0 rows of x; at least 1"),
]


@pytest.mark.parametrize("file, call, message", LAYER_GUARDS)
def test_layer_error_guards(file, call, message, tmp_path):
    src = ".chip tiny\n" + f'.include "{file}"\n' + LAYER_SPACES + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.message == message
    assert d.notes and d.notes[-1].message.startswith("in expansion of macro")


def test_a_program_named_like_a_stdlib_file_includes_the_stdlib_one(tmp_path):
    from lpuasm.assembler import assemble_file

    prog = tmp_path / "mlp.lasm"
    prog.write_text('.chip tiny\n.include "mlp.lasm"\n.equ HAS, defined(mlp_swiglu_f16)\n')
    asm = assemble_file(prog, stop_after="lower")
    assert asm.ir.consts["HAS"] == 1
