"""Where a model's tensors live, word by word: the layouts of the model builder.

Pure numpy, no chip state: weight matrices padded per head so that a
projection's output tiles are heads (the *head layout* of stdlib/attention.lasm),
the KV cache layouts (K transposed, V natural), the attention mask table, and
the RoPE tables for the head layout.  docs/model.md, "Layout"; the activations'
half-width tiled layout is in blocks.py (tile_act, tile_weights).
"""

from __future__ import annotations

import numpy as np

from .blocks import ceil_div

F16, F32 = np.float16, np.float32


def pad_head_cols(wt: np.ndarray, heads: int, d: int, h: int) -> np.ndarray:
    """W^T (k x heads*d) -> (k x heads*h): head n's columns start at n*h."""
    out = np.zeros((wt.shape[0], heads * h), wt.dtype)
    for n in range(heads):
        out[:, n * h:n * h + d] = wt[:, n * d:(n + 1) * d]
    return out


def pad_head_rows(wt: np.ndarray, heads: int, d: int, h: int) -> np.ndarray:
    """W^T (heads*d x n) -> (heads*h x n): head n's rows start at n*h."""
    out = np.zeros((heads * h, wt.shape[1]), wt.dtype)
    for n in range(heads):
        out[n * h:n * h + d] = wt[n * d:(n + 1) * d]
    return out


def to_heads(a: np.ndarray, heads: int, d: int, lanes: int) -> np.ndarray:
    """(m, heads*d) -> head layout: word n*m + r holds head n of row r in lanes 0..d-1."""
    m = a.shape[0]
    out = np.zeros((heads * m, lanes), a.dtype)
    for n in range(heads):
        out[n * m:(n + 1) * m, :d] = a[:, n * d:(n + 1) * d]
    return out


def from_heads(w: np.ndarray, heads: int, m: int, d: int) -> np.ndarray:
    """Inverse of :func:`to_heads`."""
    return np.concatenate([w[n * m:(n + 1) * m, :d] for n in range(heads)], axis=1)


def kt_cache(k: np.ndarray, tiles: int, lanes: int) -> np.ndarray:
    """Keys (kvh, T, d) -> the transposed cache: word (g*tiles + c)*d + i holds
    dim i of tokens c*H .. c*H+H-1 in lanes 0..H-1 (H = lanes/2)."""
    kvh, t, d = k.shape
    h = lanes // 2
    out = np.zeros((kvh * tiles * d, lanes), F16)
    for g in range(kvh):
        for c in range(ceil_div(t, h)):
            blk = k[g, c * h:(c + 1) * h].T  # d x (<= H)
            base = (g * tiles + c) * d
            out[base:base + d, :blk.shape[1]] = blk
    return out


def v_cache(v: np.ndarray, tiles: int, lanes: int) -> np.ndarray:
    """Values (kvh, T, d) -> word g*tiles*H + t holds token t's values in lanes 0..d-1."""
    kvh, t, d = v.shape
    h = lanes // 2
    out = np.zeros((kvh * tiles * h, lanes), F16)
    for g in range(kvh):
        out[g * tiles * h:g * tiles * h + t, :d] = v[g]
    return out


def attention_mask(pos: int, m: int, ctx_tiles: int, lanes: int, causal: bool = True, length: int | None = None
                   ) -> np.ndarray:
    """f32 (m*ctx_tiles, lanes): word r*ctx_tiles + c lane L is 0 where token c*H+L
    may be seen by query row r (position pos+r), -inf elsewhere (and in lanes >= H)."""
    h = lanes // 2
    out = np.full((m * ctx_tiles, lanes), -np.inf, F32)
    for r in range(m):
        last = pos + r if causal else (length or pos + m) - 1
        for c in range(ctx_tiles):
            tok = c * h + np.arange(h)
            out[r * ctx_tiles + c, :h] = np.where(tok <= last, 0.0, -np.inf)
    return out


def rope_tables(cos: np.ndarray, sin: np.ndarray, heads: int, lanes: int):
    """Per-position tables (m, d) -> rows n*m + r for every head (head layout)."""
    m, d = cos.shape
    c = np.zeros((heads * m, lanes), F32)
    s = np.zeros((heads * m, lanes), F32)
    for n in range(heads):
        c[n * m:(n + 1) * m, :d] = cos
        s[n * m:(n + 1) * m, :d] = sin
    return c, s


def rope_map_mask(d: int, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """stdlib/rope.lasm's tables for heads of d lanes (lanes past the last whole head map to themselves)."""
    half = d // 2
    i = np.arange(lanes)
    whole = lanes // d * d
    lo = (i % d) < half
    mp = np.where(i >= whole, i, np.where(lo, i + half, i - half)).astype(np.int16)
    mask = np.where((i < whole) & lo, 1.0, 0.0).astype(F32)
    return mp[None, :], mask[None, :]
