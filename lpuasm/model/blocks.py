"""Transformer blocks as lasm programs over the stdlib, with their numpy models.

The first block is the Llama MLP (``stdlib/mlp.lasm``): this module lays its
inputs out in SRAM in the 16-column tiles of ``stdlib/matmul_tiled.lasm``,
writes the program text, and models, in numpy, exactly what the chip computes
(operation order and f16 rounding points), so a run can be checked bit for bit;
:func:`lpuasm.model.reference` gives the float32 maths it must be close to.
"""

from __future__ import annotations

import numpy as np

from ..config import ChipConfig

F16, F32, F64 = np.float16, np.float32, np.float64


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def tile_act(a: np.ndarray, lanes: int) -> np.ndarray:
    """m x c activations -> (ceil(c/H) * m) words of *lanes*: word t*m + r holds
    columns t*H.. of row r in lanes 0..H-1 (H = lanes/2, the fp16 K limit)."""
    h = lanes // 2
    m, c = a.shape
    out = np.zeros((ceil_div(c, h) * m, lanes), a.dtype)
    for t in range(ceil_div(c, h)):
        blk = a[:, t * h:(t + 1) * h]
        out[t * m:(t + 1) * m, :blk.shape[1]] = blk
    return out


def untile_act(a: np.ndarray, m: int, c: int, lanes: int) -> np.ndarray:
    """Inverse of :func:`tile_act`."""
    h = lanes // 2
    return np.concatenate([a[t * m:(t + 1) * m, :h] for t in range(ceil_div(c, h))], axis=1)[:, :c]


def _weight_tiles(w: np.ndarray, lanes: int, cols: int) -> np.ndarray:
    """w (k x n) -> NT*KT*H words, H = lanes/2 rows by *cols* columns a tile
    (NT = ceil(n/cols), KT = ceil(k/H)): word (u*KT + t)*H + j holds
    w[t*H + j, u*cols:u*cols+cols] (zero past k and n)."""
    h = lanes // 2
    k, n = w.shape
    kt, nt = ceil_div(k, h), ceil_div(n, cols)
    out = np.zeros((nt * kt * h, lanes), w.dtype)
    for u in range(nt):
        for t in range(kt):
            blk = w[t * h:(t + 1) * h, u * cols:(u + 1) * cols]
            base = (u * kt + t) * h
            out[base:base + blk.shape[0], :blk.shape[1]] = blk
    return out


def tile_weights(w: np.ndarray, lanes: int) -> np.ndarray:
    """w (k x n, y = x @ w) -> NT*KT*H words for matmul_tiled_f16: word
    (u*KT + t)*H + j holds w[t*H + j, u*H:u*H+H]."""
    return _weight_tiles(w, lanes, lanes // 2)


def tile_weights_wide(w: np.ndarray, lanes: int) -> np.ndarray:
    """w (k x n, y = x @ w) -> NU*KT*H words for matmul_wide_f16 (NU = ceil(n/lanes),
    KT = ceil(k/H), H = lanes/2): word (v*KT + t)*H + j holds w[t*H + j, v*lanes:v*lanes+lanes]
    (zero past k and n)."""
    return _weight_tiles(w, lanes, lanes)


def split_wide(tw: np.ndarray, n: int, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """tile_weights_wide's words -> (w, wb) for matmul_wide_f16's split=1: the first
    ceil(NU/2) wide tiles (every K tile of each) and the rest."""
    nu = ceil_div(n, lanes)
    cut = ceil_div(nu, 2) * (len(tw) // nu)
    return tw[:cut], tw[cut:]


def model_matmul_tiled(x16: np.ndarray, w16: np.ndarray, lanes: int) -> np.ndarray:
    """y = x @ w as the chip computes it: per K tile, exact products summed
    exactly and rounded once to f32; the tiles' partial sums added in f32, in order."""
    h = lanes // 2
    acc = None
    for t in range(ceil_div(w16.shape[0], h)):
        p = (x16[:, t * h:(t + 1) * h].astype(F64) @ w16[t * h:(t + 1) * h].astype(F64)).astype(F32)
        acc = p if acc is None else acc + p
    return acc


def model_silu(x: np.ndarray) -> np.ndarray:
    """silu_f32's order: x * ((tanh(x * 0.5) + 1) * 0.5)."""
    return x * ((np.tanh(x * F32(0.5)) + F32(1)) * F32(0.5))


def model_mlp(x16, wg, wu, wd, residual: bool, lanes: int):
    """What mlp_swiglu_f16 computes: (y, gate, up, silu(gate)*up, h16)."""
    gate = model_matmul_tiled(x16, wg.T, lanes)
    up = model_matmul_tiled(x16, wu.T, lanes)
    p = model_silu(gate) * up
    h16 = p.astype(F16)
    y = model_matmul_tiled(h16, wd.T, lanes)
    if residual:
        y = y + x16.astype(F32)
    return y, gate, up, p, h16


def _lit(a: np.ndarray) -> str:
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in a) + "]"


def mlp_source(x16, wg, wu, wd, residual: bool, config: ChipConfig) -> str:
    """A program running stdlib's mlp_swiglu_f16 on x (m x hidden, f16) with
    HF-layout weights wg, wu (ffn x hidden) and wd (hidden x ffn); the result
    ``y`` is left in SRAM in the tiled layout (:func:`untile_act`)."""
    lanes = config.lanes
    h = lanes // 2
    m, hidden = x16.shape
    ffn = wg.shape[0]
    twg, twu, twd = tile_weights(wg.T, lanes), tile_weights(wu.T, lanes), tile_weights(wd.T, lanes)
    ou, od = len(twg), len(twg) + len(twu)
    oy = od + len(twd)
    fr, hr = ceil_div(ffn, h) * m, ceil_div(hidden, h) * m
    res = ", residual=1, xr=xr" if residual else ""
    return f"""; a Llama SwiGLU MLP block from the stdlib (lpuasm/model/blocks.py)
.chip {config.name}
.include "mlp.lasm"
.data  wg, W0.b0[0], f16, {_lit(twg)}
.data  wu, W0.b0[{ou}], f16, {_lit(twu)}
.data  wd, W0.b0[{od}], f16, {_lit(twd)}
.data  x,  W2.b0[0], f16, {_lit(tile_act(x16, lanes))}
.space y,  W0.b0[{oy}], f32, {hr}
.space gate, W0.b1[0], f32, {fr}
.space up, W4.b1[0], f32, {fr}
.space h,  W2.b0[64], f16, {fr}
.space xr, W4.b0[0], f32, {hr}
    mlp_swiglu_f16 x, wg, wu, wd, y, {m}, {hidden}, {ffn}, gate, up, h{res}
    halt
"""
