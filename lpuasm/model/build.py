"""The model builder: a transformer as one fully unrolled lasm program over the stdlib.

:func:`build_llama` turns a :class:`~lpuasm.model.config.ModelConfig` and its
weights (or none, for a timing-only build) into a :class:`ModelProgram`: the
program text (a few lines per layer: ``.include``s, the tensors, and one stdlib
macro call per step of the layer), the arrays its ``.npy`` directives load
(tiled weights, the input, caches, tables), and the SRAM plan.  Assembling it
expands the macros into the long instruction sequence the chip runs.

What runs where (docs/model.md, "On the chip"):

* host: the embedding lookup (the program's input ``x0`` is the embedded
  tokens), the final RMSNorm and the LM head (applied to the last layer's output
  after the run), and, for decode, the KV cache of the earlier tokens (laid
  into SRAM in the cache layout of stdlib/attention.lasm);
* chip, per layer: RMSNorm, the q/k/v projections, RoPE, attention with the KV
  cache (the new keys and values appended in SRAM), the output projection,
  the residual adds, RMSNorm, the SwiGLU MLP.

Activations are f32 in the half-width tiled layout of stdlib/matmul_tiled.lasm
(H = LANES/2 columns per word); q, k, v and the attention output are in the
*head layout* (one tile per head: the projection weights are padded so that
each head's d columns start a tile).  Matrix products are fp16 on the MXM with
f32 results (vcvt to f16 before each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ChipConfig
from ..diagnostics import LpuError
from .blocks import ceil_div, tile_act, tile_weights
from .config import ModelConfig
from .layouts import (attention_mask, kt_cache, pad_head_cols, pad_head_rows, rope_map_mask, rope_tables,
                      to_heads, v_cache)
from .sram import Pool, SramPlan

F16, F32 = np.float16, np.float32


# ---- the program ---------------------------------------------------------------------------

MODES = ("decode", "prefill")
INCLUDES = ['.include "attention.lasm"', '.include "norm.lasm"', '.include "mlp.lasm"', '.include "rope.lasm"',
            '.include "matmul_q8.lasm"']


@dataclass
class ModelProgram:
    """A built model: program text, the arrays it loads, and what it means."""

    cfg: ModelConfig
    chip: ChipConfig
    mode: str
    seq: int                 # prefill: prompt length; decode: positions incl. the new token
    rows: int                # query rows per layer (seq for prefill, 1 for decode)
    pos: int                 # position of the first row
    timing_only: bool
    dtype: str = "fp16"      # weights: fp16, or int8 with per-channel scales
    source: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)   # the per-layer sources
    plan: SramPlan | None = None
    outputs: list[str] = field(default_factory=list)   # per layer: the output symbol
    weight_bytes: int = 0    # the layers' weights in their dtype (fp16: 2 bytes each, int8: 1)

    def write(self, directory: str | Path, name: str = "model.lasm") -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for fname, arr in self.arrays.items():
            np.save(d / fname, arr, allow_pickle=False)
        for fname, text in self.files.items():
            (d / fname).write_text(text)
        path = d / name
        path.write_text(self.source)
        return path

    def assemble(self, directory: str | Path | None = None):
        """Write the program (to *directory*, else a temporary one) and assemble it."""
        import tempfile

        from ..assembler import assemble_file

        if directory is not None:
            return assemble_file(self.write(directory), config=self.chip)
        with tempfile.TemporaryDirectory() as tmp:
            return assemble_file(self.write(tmp), config=self.chip)

    def meta(self) -> dict[str, int]:
        """What a run needs to read the image (kept in it as .equ constants)."""
        return {"MODEL_LAYERS": self.cfg.num_hidden_layers, "MODEL_ROWS": self.rows,
                "MODEL_HIDDEN": self.cfg.hidden_size, "MODEL_POS": self.pos, "MODEL_SEQ": self.seq,
                "MODEL_TIMING_ONLY": int(self.timing_only)}


class _Emitter:
    def __init__(self, prog: ModelProgram, plan: SramPlan):
        self.prog, self.plan = prog, plan
        self.data: list[str] = []
        self.layers: list[list[str]] = []

    @property
    def code(self) -> list[str]:
        return self.layers[-1]

    def tensor(self, name, dtype, words, pool, avoid=(), data=None, sub=None, near=None):
        t = self.plan.place(name, dtype, words, pool, avoid, data, sub, near)
        if t.aliased:
            return t.twin
        if data is not None and not self.prog.timing_only:
            fname = f"{name}.npy"
            self.prog.arrays[fname] = data
            self.data.append(f'.npy   {name}, {t.address()}, "{fname}", {dtype}')
        else:
            self.data.append(f".space {name}, {t.address()}, {dtype}, {words}")
        return name

    def call(self, text: str) -> None:
        self.code.append("    " + text)

    def comment(self, text: str) -> None:
        self.code.append(f"; {text}")


def check_chip(chip: ChipConfig) -> None:
    n = chip.mem_slices_per_hemisphere
    if n < 24:
        raise LpuError(f"model builder: chip '{chip.name}' has {n} MEM slices per hemisphere; the layer layout "
                       "needs at least 24 (tsp-v1 has 44)")


def _pools(chip: ChipConfig, weight_words: int = 0) -> dict[str, Pool]:
    """The slice pools: the weights at the MXM edge of the west hemisphere (12
    slices, more, up to all but 16, when *weight_words* f16 words need them),
    the activations in the other west slices, tables and scratch in the east."""
    check_chip(chip)
    n = chip.mem_slices_per_hemisphere
    pairs = -(-weight_words * 2 // (2 * chip.words_per_bank))   # twice: tensors do not pack banks tightly
    nw = min(max(12, 2 * pairs), n - 16)
    return {"weights": Pool("W", n - nw, nw, 2), "act": Pool("W", 0, n - nw, 4), "east": Pool("E", 0, n, 4)}


def _layer_weight_words(cfg: ModelConfig, chip: ChipConfig) -> int:
    """Words per slice of a layer's f16 weight tiles (padded per head and to tiles)."""
    h = chip.lanes // 2
    kt, ft = ceil_div(cfg.hidden_size, h), ceil_div(cfg.intermediate_size, h)
    heads, kvh = cfg.num_attention_heads, cfg.num_key_value_heads
    if cfg.arch == "bert":
        kvh = heads
    mlp = (3 if cfg.arch == "llama" else 2) * ft * kt * h
    return (heads + 2 * kvh) * kt * h + kt * heads * h + mlp


def build_llama(cfg: ModelConfig, weights: dict[str, np.ndarray] | None, chip: ChipConfig,
                mode: str = "decode", seq: int = 8, x0: np.ndarray | None = None, cache=None,
                timing_only: bool = False, plane: str = "mxm0", dtype: str = "fp16") -> ModelProgram:
    """The program for *cfg*'s layers.  prefill: ``seq`` tokens from position 0
    (``x0`` (seq, hidden) their embeddings); decode: one token at position
    ``seq - 1`` (``x0`` (1, hidden)) after *cache* (a reference KVCache of
    seq - 1 positions).  ``weights`` None (or *timing_only*) builds without
    values: a program to time, not to check.  *dtype* int8: weights as int8
    with a scale per output channel, activations quantised per row on the chip
    (stdlib/matmul_q8.lasm)."""
    if dtype not in ("fp16", "int8"):
        raise LpuError(f"unknown dtype '{dtype}' (expected fp16 or int8)")
    if mode not in MODES:
        raise LpuError(f"unknown mode '{mode}' (expected decode or prefill)")
    _check(cfg, "llama", chip, seq)
    timing_only = timing_only or weights is None
    lanes, h = chip.lanes, chip.lanes // 2
    d, heads, kvh = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    hidden = cfg.hidden_size
    if d % 2:
        raise LpuError(f"model builder: head_dim {d} must be even (RoPE)")
    m = seq if mode == "prefill" else 1
    pos = 0 if mode == "prefill" else seq - 1
    group = heads // kvh
    if group * m > chip.mxm_acc_rows:
        raise LpuError(f"model builder: {group * m} accumulator rows needed ({group} heads per kv head x {m} rows); "
                       f"chip '{chip.name}' has {chip.mxm_acc_rows}")
    prog = ModelProgram(cfg, chip, mode, seq, m, pos, timing_only, dtype=dtype)
    plan = SramPlan(chip, _pools(chip, 0 if timing_only else cfg.num_hidden_layers * _layer_weight_words(cfg, chip)),
                    alias=timing_only)
    prog.plan = plan
    e = _Emitter(prog, plan)
    kt_n = ceil_div(hidden, h)           # tiles of a hidden-wide activation
    cache_tiles = ceil_div(seq, h)
    ctx_tiles = ceil_div(pos + m, h)
    scale = 1.0 / math.sqrt(d)

    # shared tables: RoPE for the rows' positions, the attention mask
    from .reference import rope_cos_sin

    cos, sin = rope_cos_sin(cfg, np.arange(pos, pos + m))
    ct, st = rope_tables(cos, sin, heads, lanes)
    mp, mk = rope_map_mask(d, lanes)
    e.tensor("rope_cos", "f32", heads * m, "act", data=ct)
    e.tensor("rope_sin", "f32", heads * m, "act", data=st)
    e.tensor("rope_map", "i16", 1, "east", data=mp)
    e.tensor("rope_mask", "f32", 1, "east", data=mk, avoid=())
    e.tensor("rope_scr", "f32", heads * m, "east", avoid=("rope_mask", "rope_map"))
    e.tensor("att_mask", "f32", m * ctx_tiles, "east", data=attention_mask(pos, m, ctx_tiles, lanes))
    if x0 is None:
        x0 = np.zeros((m, hidden), F32)
    e.tensor("x0", "f32", kt_n * m, "act", data=tile_act(np.asarray(x0, F32), lanes))
    prog.weight_bytes = _nominal_weight_bytes(cfg) // (2 if dtype == "int8" else 1)
    xin = "x0"
    for li in range(cfg.num_hidden_layers):
        e.layers.append([])
        xin = _llama_layer(e, cfg, weights, li, xin, m, pos, cache, cache_tiles, ctx_tiles, scale, plane)
        prog.outputs.append(xin)
    _finish(prog, e)
    return prog


def _check(cfg: ModelConfig, arch: str, chip: ChipConfig, seq: int) -> None:
    """What every build needs: the architecture, a seq the model takes, heads that fit a plane."""
    if cfg.arch != arch:
        raise LpuError(f"model builder: build_{arch} needs a {arch} config, got {cfg.arch}")
    if seq < 1:
        raise LpuError(f"seq must be at least 1, got {seq}")
    if seq > cfg.max_position_embeddings:
        raise LpuError(f"seq {seq} exceeds the model's max_position_embeddings {cfg.max_position_embeddings}")
    if cfg.head_dim > chip.lanes // 2:
        raise LpuError(f"model builder: head_dim {cfg.head_dim} exceeds the fp16 MXM's {chip.lanes // 2} rows on "
                       f"chip '{chip.name}'")


def _finish(prog: ModelProgram, e: _Emitter) -> None:
    cfg = prog.cfg
    head = [f"; {cfg.display_name}: {cfg.num_hidden_layers} layer(s), {prog.mode}, seq {prog.seq}, "
            f"built by lpuasm model build", f".chip {prog.chip.name}", *INCLUDES, ""]
    meta = [f".equ {k}, {v}" for k, v in prog.meta().items()]
    body = [f'.include "layer{i}.lasm"' for i in range(cfg.num_hidden_layers)]
    prog.source = "\n".join(head + meta + [""] + e.data + [""] + body + ["    halt", ""])
    for i, code in enumerate(e.layers):
        prog.files[f"layer{i}.lasm"] = "\n".join([f"; layer {i} of {cfg.display_name}"] + code + [""])


def _nominal_weight_bytes(cfg: ModelConfig) -> int:
    from .checkpoint import layer_tensors

    return 2 * sum(int(np.prod(shape)) for i in range(cfg.num_hidden_layers) for shape in layer_tensors(cfg, i).values())


def _weight_fns(e: _Emitter, weights, prefix: str, plane: str):
    """wt(name, fn): the tiled data of weight *prefix+name* (None when timing
    only); weight(name, words, data): place a weight tensor, in a timing-only
    build cut to one bank (the products read it with wrap=: the same slices and
    banks stream the same rows); wraps: name -> ', wrap=N'; product(...): a
    matrix product split by output tiles over the two west planes."""
    timing, chip = e.prog.timing_only, e.prog.chip
    h = chip.lanes // 2
    wraps: dict[str, str] = {}
    cap_tiles = chip.words_per_bank // h
    plane2 = "mxm1" if plane == "mxm0" else "mxm0"

    def wt(name, fn):
        w = _w(weights, prefix + name)
        return None if (w is None or timing) else fn(w)

    def weight(name, words, data, avoid=()):
        if timing and words > cap_tiles * h:
            words = cap_tiles * h
            wraps[name] = f", wrap={cap_tiles}"
        return e.tensor(name, "f16", words, "weights", avoid=avoid, data=data)

    def product(name, data, x, y, m, k, n):
        """y = x @ W (tiles *data* of W^T, k x n): output tiles 0 .. C-1 on
        *plane*, the rest on the other west plane, K tiles interleaved
        (matmul_tiled_f16's split=1), so both planes stream weights at once."""
        nt, kt = ceil_div(n, h), ceil_div(k, h)
        cut = ceil_div(nt, 2)
        names = []
        for half, (u0, u1) in enumerate([(0, cut), (cut, nt)]):
            if u0 < u1:
                part = None if data is None else data[u0 * kt * h:u1 * kt * h]
                names.append(weight(f"{name}_{'ab'[half]}", (u1 - u0) * kt * h, part))
        wrap = wraps.get(names[0], "") or wraps.get(names[-1], "")
        if len(names) == 1:
            e.call(f"matmul_tiled_f16 {names[0]}, {x}, {y}, {m}, {k}, {n}, {plane}{wrap}")
        else:
            e.call(f"matmul_tiled_f16 {names[0]}, {x}, {y}, {m}, {k}, {n}, {plane}{wrap}, split=1, wb={names[1]}, "
                   f"plane2={plane2}")

    lanes = chip.lanes
    cap_q8 = chip.words_per_bank // lanes

    def quant(P, x, m, k):
        """quant_act_q8 of x (f32, k columns): (xq, sx), by matmul_q8.lasm's layout rules."""
        kt, kp = ceil_div(k, h), ceil_div(k, lanes)
        ss = e.tensor(P + "ss", "f32", m, "act", avoid=(x,))
        am = e.tensor(P + "am", "f32", m, "act", avoid=(ss,))
        tmp = e.tensor(P + "tmp", "f32", m, "act", avoid=(am,))
        xq = e.tensor(P + "xq", "i8", kp * m, "act", avoid=(x,))
        xo = e.tensor(P + "xo", "i8", max(1, kt // 2 * m), "act", avoid=(x, xq))
        scr = e.tensor(P + "scr", "f32", m, "east")
        sx = e.tensor(P + "sx", "f32", m, "east", avoid=(scr,))
        e.call(f"quant_act_q8 {x}, {xq}, {sx}, {m}, {k}, {xo}, {ss}, {am}, {tmp}, {scr}")
        return xq, sx

    def product_q8(name, w, xq, sx, y, m, k, n):
        """y = x @ W^T from quant's (xq, sx): W (n x k, (out, in)) as int8 tiles
        and per-channel scales, split over the two west planes (matmul_xq_q8)."""
        from .quant import quantise_weights, split_tiles

        nt, kp = ceil_div(n, h), ceil_div(k, lanes)
        cut = ceil_div(nt, 2)
        tiles = scales = None
        if w is not None:
            tiles, scales = quantise_weights(w, lanes)
        parts = split_tiles(tiles, n, k, lanes) if tiles is not None else (None, None)
        names, wrap = [], ""
        for half, (u0, u1) in enumerate([(0, cut), (cut, nt)]):
            if u0 >= u1:
                continue
            words = (u1 - u0) * kp * lanes
            if timing and words > cap_q8 * lanes:
                words, wrap = cap_q8 * lanes, f", wrap={cap_q8}"
            names.append(e.tensor(f"{name}_{'ab'[half]}", "i8", words, "weights", data=parts[half]))
        ws = e.tensor(name + "_s", "f32", nt, "east", data=scales, avoid=(sx,))
        split = f", split=1, wb={names[1]}, plane2={plane2}" if len(names) > 1 else ""
        e.call(f"matmul_xq_q8 {names[0]}, {ws}, {xq}, {sx}, {y}, {m}, {k}, {n}, {plane}{wrap}{split}")

    return wt, weight, wraps, product, quant, product_q8


def _w(weights, name):
    return None if weights is None else np.asarray(weights[name], F32)


def _llama_layer(e: _Emitter, cfg: ModelConfig, weights, li: int, xin: str, m: int, pos: int, cache,
                 cache_tiles: int, ctx_tiles: int, scale: float, plane: str) -> str:
    chip = e.prog.chip
    lanes, h = chip.lanes, chip.lanes // 2
    d, heads, kvh = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    hidden, ffn = cfg.hidden_size, cfg.intermediate_size
    kt_n, ft_n = ceil_div(hidden, h), ceil_div(ffn, h)
    p = f"model.layers.{li}."
    L = f"l{li}_"
    timing = e.prog.timing_only

    wt, weight, wraps, product, quant, product_q8 = _weight_fns(e, weights, p, plane)

    # weights: f16 tiles of W^T (q/k/v columns and o rows padded per head)
    def heads_cols(n):
        return lambda w: tile_weights(pad_head_cols(w.T, n, d, h).astype(F16), lanes)

    def plain(w):
        return tile_weights(w.T.astype(F16), lanes)

    g1 = e.tensor(L + "g_attn", "f32", kt_n, "east",
                  data=wt("input_layernorm.weight", lambda w: tile_act(w[None, :], lanes)))
    g2 = e.tensor(L + "g_mlp", "f32", kt_n, "east",
                  data=wt("post_attention_layernorm.weight", lambda w: tile_act(w[None, :], lanes)))

    # KV cache (f16): earlier tokens from the host, the new ones appended by the program
    k_past = v_past = None
    if cache is not None and not timing and cache.length:
        k_past, v_past = cache.k[li], cache.v[li]
    zk = np.zeros((kvh, 0, d), F32) if k_past is None else k_past
    zv = np.zeros((kvh, 0, d), F32) if v_past is None else v_past
    # the caches of a chunk of kv heads per tensor: as many as one bank holds
    # (a 4096-token cache of a 128-dim head fills one), one attention call each
    words = e.prog.chip.words_per_bank
    chunk = max(1, min(kvh, words // (cache_tiles * d), (words - e.prog.seq) // (cache_tiles * h) + 1))
    kts, vcs = [], []
    for j, g0 in enumerate(range(0, kvh, chunk)):
        ga = min(kvh, g0 + chunk)
        vwords = (ga - g0 - 1) * cache_tiles * h + e.prog.seq
        kts.append(e.tensor(f"{L}kt{j}", "f16", (ga - g0) * cache_tiles * d, "act",
                            data=None if timing else kt_cache(zk[g0:ga].astype(F16), cache_tiles, lanes)))
        vcs.append(e.tensor(f"{L}vc{j}", "f16", vwords, "act", avoid=(kts[-1],),
                            data=None if timing else v_cache(zv[g0:ga].astype(F16), cache_tiles, lanes)[:vwords]))
    e.comment(f"layer {li}: attention")
    q8 = e.prog.dtype == "int8"

    def hf(name, fn=lambda w: w):
        """An HF weight (out, in) for the int8 path, transformed by *fn*."""
        w = _w(weights, p + name)
        return None if (w is None or timing) else fn(w)

    def out_heads(n):      # (n*d, k) -> (n*H, k): each head's output rows start a tile
        return lambda w: pad_head_cols(w.T, n, d, h).T

    hn = _rmsnorm(e, L + "an", xin, g1, m, hidden, cfg.rms_norm_eps)
    q = e.tensor(L + "q", "f32", heads * m, "act", avoid=("rope_cos",))
    k = e.tensor(L + "k", "f32", kvh * m, "act", avoid=("rope_cos",))
    v = e.tensor(L + "v", "f32", kvh * m, "act")
    if q8:
        xq, sx = quant(L + "qa_", hn, m, hidden)
        for t, nh, name in ((q, heads, "q_proj"), (k, kvh, "k_proj"), (v, kvh, "v_proj")):
            product_q8(L + "w" + name[0], hf(f"self_attn.{name}.weight", out_heads(nh)), xq, sx, t, m, hidden, nh * h)
    else:
        hn16 = e.tensor(L + "an16", "f16", kt_n * m, "act")
        e.call(f"cvt_f32_f16 {hn}, {hn16}, {kt_n * m}")
        product(L + "wq", wt("self_attn.q_proj.weight", heads_cols(heads)), hn16, q, m, hidden, heads * h)
        product(L + "wk", wt("self_attn.k_proj.weight", heads_cols(kvh)), hn16, k, m, hidden, kvh * h)
        product(L + "wv", wt("self_attn.v_proj.weight", heads_cols(kvh)), hn16, v, m, hidden, kvh * h)
    qr = _rope(e, L + "qr", q, heads * m, d)
    kr = _rope(e, L + "kr", k, kvh * m, d)
    att = _attention(e, L, qr, kr, v, kts, vcs, chunk, m, heads, kvh, d, pos, cache_tiles, ctx_tiles, scale,
                     plane)
    o = e.tensor(L + "o", "f32", kt_n * m, "act", avoid=(xin,))   # read with xin in one op
    if q8:
        xq, sx = quant(L + "oa_", att, m, heads * h)
        product_q8(L + "wo", hf("self_attn.o_proj.weight", lambda w: pad_head_rows(w.T, heads, d, h).T),
                   xq, sx, o, m, heads * h, hidden)
    else:
        att16 = e.tensor(L + "att16", "f16", heads * m, "act")
        e.call(f"cvt_f32_f16 {att}, {att16}, {heads * m}")
        product(L + "wo", wt("self_attn.o_proj.weight",
                             lambda w: tile_weights(pad_head_rows(w.T, heads, d, h).astype(F16), lanes)),
                att16, o, m, heads * h, hidden)
    x2 = e.tensor(L + "x_attn", "f32", kt_n * m, "act", avoid=(xin, o))
    e.call(f"vec_binary_f32 VOP_ADD, {xin}, {o}, {x2}, {kt_n * m}, east=0")

    e.comment(f"layer {li}: MLP")
    hn2 = _rmsnorm(e, L + "mn", x2, g2, m, hidden, cfg.rms_norm_eps)
    gate = e.tensor(L + "gate", "f32", ft_n * m, "act")
    up = e.tensor(L + "up", "f32", ft_n * m, "act", avoid=(gate,))
    hmid = e.tensor(L + "h", "f16", ft_n * m, "act", avoid=(gate,))
    mlp = e.tensor(L + "mlp", "f32", kt_n * m, "act", avoid=(x2,))
    # mlp_swiglu_f16's steps, each product split over the two west planes
    if q8:
        xq, sx = quant(L + "ma_", hn2, m, hidden)
        product_q8(L + "wu", hf("mlp.up_proj.weight"), xq, sx, up, m, hidden, ffn)
        product_q8(L + "wg", hf("mlp.gate_proj.weight"), xq, sx, gate, m, hidden, ffn)
        e.call(f"swiglu_f32_f16 {gate}, {up}, {hmid}, {ft_n * m}")
        h32 = e.tensor(L + "h32", "f32", ft_n * m, "act", avoid=(hmid,))
        e.call(f"cvt_f16_f32 {hmid}, {h32}, {ft_n * m}")
        xq, sx = quant(L + "da_", h32, m, ffn)
        product_q8(L + "wd", hf("mlp.down_proj.weight"), xq, sx, mlp, m, ffn, hidden)
    else:
        hn2_16 = e.tensor(L + "mn16", "f16", kt_n * m, "act")
        e.call(f"cvt_f32_f16 {hn2}, {hn2_16}, {kt_n * m}")
        product(L + "wu", wt("mlp.up_proj.weight", plain), hn2_16, up, m, hidden, ffn)
        product(L + "wg", wt("mlp.gate_proj.weight", plain), hn2_16, gate, m, hidden, ffn)
        e.call(f"swiglu_f32_f16 {gate}, {up}, {hmid}, {ft_n * m}")
        product(L + "wd", wt("mlp.down_proj.weight", plain), hmid, mlp, m, ffn, hidden)
    out = e.tensor(f"x{li + 1}", "f32", kt_n * m, "act", avoid=(x2, mlp))
    e.call(f"vec_binary_f32 VOP_ADD, {x2}, {mlp}, {out}, {kt_n * m}, east=0")
    return out


def _rope(e: _Emitter, name: str, x: str, rows: int, d: int) -> str:
    tmp = e.tensor(name + "_tmp", "f32", rows, "act", near="rope_sin")
    out = e.tensor(name, "f32", rows, "act", avoid=(tmp,))
    e.call(f"rope_f32 {x}, rope_cos, rope_sin, {out}, {rows}, {d}, rope_map, rope_mask, rope_scr, {tmp}, east=0")
    return out


def _rmsnorm(e: _Emitter, name: str, x: str, g: str, m: int, cols: int, eps: float) -> str:
    """stdlib/norm.lasm's rmsnorm_tiled_f32 into a new WEST tensor (its layout rules)."""
    h = e.prog.chip.lanes // 2
    ss = e.tensor(name + "_ss", "f32", m, "act", avoid=(x,))
    s = e.tensor(name + "_s", "f32", m, "act", avoid=(ss,))
    tmp = e.tensor(name + "_tmp", "f32", m, "act", avoid=(s, x))
    scr = e.tensor(name + "_scr", "f32", m, "east")
    y = e.tensor(name, "f32", ceil_div(cols, h) * m, "act", avoid=(x, tmp))
    e.call(f"rmsnorm_tiled_f32 {x}, {g}, {y}, {m}, {cols}, {float(eps)!r}, {ss}, {s}, {tmp}, {scr}, east=0")
    return y


def _attention(e: _Emitter, L: str, q, k, v, kts, vcs, chunk, m, heads, kvh, d, pos, cache_tiles, ctx_tiles, scale,
               plane):
    """stdlib/attention.lasm per chunk of kv heads (with their query heads),
    scratch placed by its layout rules: one attention_f16 for a single chunk;
    with several, first every chunk's kv_append_f16, then every chunk's
    attend_f16 (the calls share streams and the plane: a chunk's appends must
    not run into the previous chunk's P @ V loads)."""
    group = heads // kvh
    out = e.tensor(L + "att", "f32", heads * m, "act")
    chunks = list(enumerate(range(0, kvh, chunk)))
    whole = len(chunks) == 1
    appends = {}
    for j, g0 in chunks:
        nkv = min(kvh, g0 + chunk) - g0
        P = f"{L}a{j}_"
        kh = e.tensor(P + "kh", "f16", nkv * m, "act", avoid=(k, kts[j]))
        oh = e.tensor(P + "oh", "f16", m, "east")
        ks = e.tensor(P + "ks", "f32", nkv * d, "east", avoid=(oh,))
        appends[j] = f"{kh}, {oh}, {ks}"
        if not whole:
            e.call(f"kv_append_f16 {k}[{g0 * m}], {v}[{g0 * m}], {kts[j]}, {vcs[j]}, {m}, {nkv}, {d}, {pos}, "
                   f"{cache_tiles}, {appends[j]}")
    for j, g0 in chunks:
        nkv = min(kvh, g0 + chunk) - g0
        rows = nkv * group * m
        P = f"{L}a{j}_"
        kt, vc = kts[j], vcs[j]
        q16 = e.tensor(P + "q16", "f16", rows, "act", avoid=(q,))
        sc = e.tensor(P + "s", "f32", rows * ctx_tiles, "east", avoid=("att_mask",))
        ex = e.tensor(P + "e", "f32", rows * ctx_tiles, "east", avoid=(sc,))
        rx = e.tensor(P + "rx", "f32", rows, "act", avoid=(vc,))
        tmp = e.tensor(P + "tmp", "f32", rows, "act", avoid=(vc,))
        ry = e.tensor(P + "ry", "f32", rows, "act", avoid=(rx, tmp, vc))
        p16 = e.tensor(P + "p16", "f16", rows * ctx_tiles, "act", avoid=(ry, vc))
        scr = e.tensor(P + "scr", "f32", rows, "east")
        common = (f"{m}, {nkv * group}, {nkv}, {d}, {{}}, {cache_tiles}, {scale!r}, att_mask, {q16}, {{}}{sc}, {ex}, "
                  f"{p16}, {rx}, {ry}, {tmp}, {scr}, plane={plane}")
        qa, oa = f"{q}[{g0 * group * m}]", f"{out}[{g0 * group * m}]"
        if whole:
            e.call(f"attention_f16 {qa}, {k}[{g0 * m}], {v}[{g0 * m}], {kt}, {vc}, {oa}, "
                   + common.format(pos, appends[j] + ", "))
        else:
            e.call(f"attend_f16 {qa}, {kt}, {vc}, {oa}, " + common.format(pos + m, ""))
    return out


# ---- BERT ----------------------------------------------------------------------------------

def build_bert(cfg: ModelConfig, weights: dict[str, np.ndarray] | None, chip: ChipConfig, seq: int = 8,
               x0: np.ndarray | None = None, timing_only: bool = False, plane: str = "mxm0") -> ModelProgram:
    """The encoder layers on ``seq`` tokens (prefill; bidirectional attention).
    ``x0`` (seq, hidden): the embeddings after the embedding LayerNorm (host)."""
    _check(cfg, "bert", chip, seq)
    timing_only = timing_only or weights is None
    lanes, h = chip.lanes, chip.lanes // 2
    m = seq
    if m > chip.mxm_acc_rows:
        raise LpuError(f"model builder: {m} accumulator rows needed (one per token); chip '{chip.name}' has "
                       f"{chip.mxm_acc_rows}")
    prog = ModelProgram(cfg, chip, "prefill", seq, m, 0, timing_only)
    plan = SramPlan(chip, _pools(chip, 0 if timing_only else cfg.num_hidden_layers * _layer_weight_words(cfg, chip)),
                    alias=timing_only)
    prog.plan = plan
    e = _Emitter(prog, plan)
    kt_n = ceil_div(cfg.hidden_size, h)
    cache_tiles = ceil_div(seq, h)
    e.tensor("att_mask", "f32", m * cache_tiles, "east",
             data=attention_mask(0, m, cache_tiles, lanes, causal=False, length=seq))
    ones = tile_act(np.ones((1, cfg.hidden_size), F32), lanes)
    e.tensor("ln_mask", "f32", kt_n, "east", data=ones)
    if x0 is None:
        x0 = np.zeros((m, cfg.hidden_size), F32)
    e.tensor("x0", "f32", kt_n * m, "act", data=tile_act(np.asarray(x0, F32), lanes))
    prog.weight_bytes = _nominal_weight_bytes(cfg)
    xin = "x0"
    for li in range(cfg.num_hidden_layers):
        e.layers.append([])
        xin = _bert_layer(e, cfg, weights, li, xin, m, cache_tiles, plane)
        prog.outputs.append(xin)
    _finish(prog, e)
    return prog


def _bert_layer(e: _Emitter, cfg: ModelConfig, weights, li: int, xin: str, m: int, cache_tiles: int,
                plane: str) -> str:
    lanes, h = e.prog.chip.lanes, e.prog.chip.lanes // 2
    d, heads = cfg.head_dim, cfg.num_attention_heads
    hidden, ffn = cfg.hidden_size, cfg.intermediate_size
    kt_n, ft_n = ceil_div(hidden, h), ceil_div(ffn, h)
    p = f"encoder.layer.{li}."
    L = f"l{li}_"
    wt, weight, wraps, product, quant, product_q8 = _weight_fns(e, weights, p, plane)

    def qkv(name):
        return wt(name + ".weight", lambda w: tile_weights(pad_head_cols(w.T, heads, d, h).astype(F16), lanes))

    def head_bias(name):
        return wt(name + ".bias", lambda b: to_heads(b[None, :], heads, d, lanes))

    def row(name):
        return wt(name, lambda b: tile_act(b[None, :], lanes))

    def tiles(name):
        return wt(name + ".weight", lambda w: tile_weights(w.T.astype(F16), lanes))

    wu = weight(L + "wu", ft_n * kt_n * h, tiles("intermediate.dense"))
    wd = weight(L + "wd", kt_n * ft_n * h, tiles("output.dense"))
    bq = e.tensor(L + "bq", "f32", heads, "east", data=head_bias("attention.self.query"))
    bk = e.tensor(L + "bk", "f32", heads, "east", data=head_bias("attention.self.key"))
    bv = e.tensor(L + "bv", "f32", heads, "east", data=head_bias("attention.self.value"))
    bo = e.tensor(L + "bo", "f32", kt_n, "east", data=row("attention.output.dense.bias"))
    bu = e.tensor(L + "bu", "f32", ft_n, "east", data=row("intermediate.dense.bias"))
    bd = e.tensor(L + "bd", "f32", kt_n, "east", data=row("output.dense.bias"))
    g1 = e.tensor(L + "ln1_g", "f32", kt_n, "east", data=row("attention.output.LayerNorm.weight"))
    b1 = e.tensor(L + "ln1_b", "f32", kt_n, "east", data=row("attention.output.LayerNorm.bias"))
    g2 = e.tensor(L + "ln2_g", "f32", kt_n, "east", data=row("output.LayerNorm.weight"))
    b2 = e.tensor(L + "ln2_b", "f32", kt_n, "east", data=row("output.LayerNorm.bias"))
    timing = e.prog.timing_only
    zeros = None if timing else np.zeros((heads, 0, d), F16)
    kt = e.tensor(L + "kt", "f16", heads * cache_tiles * d, "act",
                  data=None if timing else kt_cache(zeros, cache_tiles, lanes))
    vc = e.tensor(L + "vc", "f16", (heads - 1) * cache_tiles * h + m, "act", avoid=(kt,),
                  data=None if timing else v_cache(zeros, cache_tiles, lanes)[:(heads - 1) * cache_tiles * h + m])

    e.comment(f"layer {li}: self-attention")
    x16 = e.tensor(L + "x16", "f16", kt_n * m, "act", avoid=(xin,))
    e.call(f"cvt_f32_f16 {xin}, {x16}, {kt_n * m}")
    q = e.tensor(L + "q", "f32", heads * m, "act")
    k = e.tensor(L + "k", "f32", heads * m, "act")
    v = e.tensor(L + "v", "f32", heads * m, "act")
    for name, t in (("query", q), ("key", k), ("value", v)):
        product(f"{L}w{name[0]}", qkv("attention.self." + name), x16, t, m, hidden, heads * h)
    for t, b in ((q, bq), (k, bk), (v, bv)):
        e.call(f"bias_add_f32 {t}, {b}, {m}, {heads}")
    att = _attention(e, L, q, k, v, [kt], [vc], heads, m, heads, heads, d, 0, cache_tiles, cache_tiles,
                     1.0 / math.sqrt(d), plane)
    att16 = e.tensor(L + "att16", "f16", heads * m, "act")
    e.call(f"cvt_f32_f16 {att}, {att16}, {heads * m}")
    o = e.tensor(L + "o", "f32", kt_n * m, "act", avoid=(xin,))
    product(L + "wo", wt("attention.output.dense.weight",
                         lambda w: tile_weights(pad_head_rows(w.T, heads, d, h).astype(F16), lanes)),
            att16, o, m, heads * h, hidden)
    e.call(f"bias_add_f32 {o}, {bo}, {m}, {kt_n}, residual=1, xr={xin}")
    x1 = _layernorm(e, L + "ln1", o, g1, b1, m, hidden, cfg.layer_norm_eps)

    e.comment(f"layer {li}: MLP")
    x1_16 = e.tensor(L + "x1_16", "f16", kt_n * m, "act", avoid=(wu, x1))
    e.call(f"cvt_f32_f16 {x1}, {x1_16}, {kt_n * m}")
    hid = e.tensor(L + "h", "f32", ft_n * m, "act")
    h16 = e.tensor(L + "h16", "f16", ft_n * m, "act", avoid=(hid, wd))
    y = e.tensor(L + "y", "f32", kt_n * m, "act", avoid=(x1,))
    e.call(f"mlp_gelu_f16 {x1_16}, {wu}, {bu}, {wd}, {bd}, {y}, {m}, {hidden}, {ffn}, {hid}, {h16}, residual=2, "
           f"xr={x1}, plane={plane}{wraps.get(wu, '')}")
    return _layernorm(e, f"x{li + 1}", y, g2, b2, m, hidden, cfg.layer_norm_eps, name_is_output=True)


def _layernorm(e: _Emitter, name: str, x: str, g: str, b: str, m: int, cols: int, eps: float,
               name_is_output: bool = False) -> str:
    """stdlib/norm.lasm's layernorm_tiled_f32 into a new WEST tensor (its layout rules)."""
    h = e.prog.chip.lanes // 2
    pre = name + "_" if not name_is_output else name + "_ln_"
    d = e.tensor(pre + "d", "f32", ceil_div(cols, h) * m, "act", avoid=(x,))
    ss = e.tensor(pre + "ss", "f32", m, "act", avoid=(x, d))
    s = e.tensor(pre + "s", "f32", m, "act", avoid=(ss,))
    tmp = e.tensor(pre + "tmp", "f32", m, "act", avoid=(s, x, d))
    scr = e.tensor(pre + "scr", "f32", m, "east")
    y = e.tensor(name, "f32", ceil_div(cols, h) * m, "act", avoid=(x, d, tmp))
    e.call(f"layernorm_tiled_f32 {x}, {g}, {b}, {y}, {m}, {cols}, {float(eps)!r}, ln_mask, {d}, {ss}, {s}, {tmp}, "
           f"{scr}, east=0")
    return y
