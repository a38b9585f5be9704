"""int8 weights with per-channel scales for stdlib/matmul_q8.lasm.

The host side quantises a Linear layer's weights (PyTorch's ``(out, in)`` = n x k)
per output channel, symmetric: ``W ~ Wq * ws[col]``, and lays them out as the
macro's weight tiles; the chip quantises the activations per row (per token) and
multiplies.  :func:`quantise_act` and :func:`model_matmul_q8` are numpy models of
exactly what the chip computes (float32, the same operations in the same order),
so a run can be compared bit for bit; the float matmul ``x @ W.T`` is what they
approximate (about 1e-2 relative error).
"""

from __future__ import annotations

import numpy as np

from .blocks import ceil_div, tile_act

F32, F64 = np.float32, np.float64

#: the row max |x| is raised to at least this (stdlib's Q8_FLOOR): an all-zero row
#: then gets a finite scale and quantises to zeros, with no inf or NaN
FLOOR = F32(2.0 ** -100)
#: the immediate f32(1/127) of the scale step
INV127 = F32(1 / 127)


def quantise_per_channel(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w (n x k, (out, in)) -> (wq int8 n x k, ws f32 (n,)): ws = f32(max_j |w[c][j]| / 127),
    wq = round_half_even(w / ws) clipped to -127..127; a row of zeros gets ws = 0, wq = 0."""
    w64 = np.asarray(w, F64)
    ws = (np.abs(w64).max(axis=1) / 127).astype(F32)
    safe = np.where(ws > 0, ws, F32(1)).astype(F64)
    wq = np.clip(np.rint(w64 / safe[:, None]), -127, 127).astype(np.int8)
    return wq, ws


def tile_weights_q8(wq: np.ndarray, lanes: int) -> np.ndarray:
    """wq (n x k int8, (out, in)) -> the macro's weight tiles of Wq^T: NT*KP*lanes words,
    word (u*KP + p)*lanes + j holds wq[u*H + i][p*lanes + j] in lane i < H
    (H = lanes // 2, KP = ceil(k / lanes), NT = ceil(n / H))."""
    h = lanes // 2
    n, k = wq.shape
    kp, nt = ceil_div(k, lanes), ceil_div(n, h)
    out = np.zeros((nt * kp * lanes, lanes), np.int8)
    wt = wq.T
    for u in range(nt):
        for p in range(kp):
            blk = wt[p * lanes:(p + 1) * lanes, u * h:(u + 1) * h]
            base = (u * kp + p) * lanes
            out[base:base + blk.shape[0], :blk.shape[1]] = blk
    return out


def tile_scales(ws: np.ndarray, lanes: int) -> np.ndarray:
    """ws (n,) -> NT f32 words: word u holds ws[u*H + i] in lane i < H."""
    return tile_act(np.asarray(ws, F32)[None, :], lanes)


def quantise_weights(w: np.ndarray, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """w (n x k, (out, in)) -> (weight tiles int8, scale tiles f32), the macro's w and ws."""
    wq, ws = quantise_per_channel(w)
    return tile_weights_q8(wq, lanes), tile_scales(ws, lanes)


def split_tiles(tiles: np.ndarray, n: int, k: int, lanes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The weight tiles of :func:`tile_weights_q8` cut for ``split=1``: (w, wb), w the
    output tiles 0 .. C-1 (C = ceil(NT / 2)) and wb the rest (None when NT = 1).
    Put them in different slices: the two planes stream them at once."""
    nt, kp = ceil_div(n, lanes // 2), ceil_div(k, lanes)
    cut = ceil_div(nt, 2) * kp * lanes
    return tiles[:cut], (tiles[cut:] if nt > 1 else None)


def quantise_act(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What quant_act_q8 computes for x (m x k f32, plain layout): (xq int8 m x k,
    sx f32 (m,), inv f32 (m,)), in the chip's order:
    am = max_j |x[r][j]|; sx = max(am, FLOOR) * f32(1/127); inv = 1 / sx;
    xq = round_half_even(x * inv), saturated to int8."""
    x = np.asarray(x, F32)
    am = np.abs(x).max(axis=1)
    sx = np.maximum(am, FLOOR) * INV127
    inv = F32(1) / sx
    with np.errstate(invalid="ignore"):
        xq = np.clip(np.rint((x * inv[:, None]).astype(F64)), -128, 127).astype(np.int8)
    return xq, sx, inv


def model_matmul_q8_xq(xq: np.ndarray, sx: np.ndarray, wq: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """What matmul_xq_q8 computes: y (m x n f32) = f32(acc) * (sx[r] * ws[col]),
    acc = xq @ wq^T exact in int32 (wrapping), f32(acc) rounded to nearest even."""
    acc = (xq.astype(np.int64) @ wq.T.astype(np.int64)).astype(np.int32)
    c = np.asarray(sx, F32)[:, None] * np.asarray(ws, F32)[None, :]
    return acc.astype(F32) * c


def model_matmul_q8(x: np.ndarray, wq: np.ndarray, ws: np.ndarray) -> np.ndarray:
    """What matmul_tiled_q8 computes for x (m x k f32), wq (n x k int8), ws (n,) f32."""
    xq, sx, _ = quantise_act(x)
    return model_matmul_q8_xq(xq, sx, wq, ws)


def tile_xq(xq: np.ndarray, lanes: int) -> np.ndarray:
    """xq (m x k) -> the full-width tiled layout of the macro's xq: KP*m words,
    word p*m + r holds columns p*lanes .. p*lanes+lanes-1 of row r."""
    m, k = xq.shape
    kp = ceil_div(k, lanes)
    out = np.zeros((kp * m, lanes), xq.dtype)
    for p in range(kp):
        blk = xq[:, p * lanes:(p + 1) * lanes]
        out[p * m:(p + 1) * m, :blk.shape[1]] = blk
    return out
