"""The numpy reference forward passes: plain, independent of the simulator.

Everything is computed in float32 from the (float16) weights, following the
Hugging Face ``transformers`` implementations:

* **Llama decoder**: token embedding; per layer ``h = x + o_proj(attn(rope(q),
  rope(k), v))`` on ``input_layernorm(x)``, then ``out = h + down(silu(gate(n))
  * up(n))`` on ``n = post_attention_layernorm(h)``; final ``model.norm``; LM
  head (``lm_head.weight``, or the embedding when tied).  RMSNorm is
  ``w * x / sqrt(mean(x^2) + eps)``.  RoPE uses HF's *rotate_half* convention:
  dimension ``j`` of a head pairs with ``j + head_dim/2`` at frequency
  ``theta^(-2j/head_dim)``.  Grouped-query attention: query head ``h`` reads
  key/value head ``h // (heads / kv_heads)``.  Causal mask: the query at
  absolute position ``p`` sees keys ``0..p``.  Scores are scaled by
  ``1/sqrt(head_dim)``.
* **KV cache**: :class:`KVCache` holds, per layer, keys (after RoPE) and values
  as ``(kv_heads, length, head_dim)`` float32.  Decode of one token at position
  ``length`` gives exactly the last row of a prefill of ``length + 1`` tokens.
* **BERT encoder**: word + position + token-type embeddings, LayerNorm;
  per layer bidirectional attention (with an optional padding mask), then
  post-LN: ``h = LN(x + dense(attn))``, ``out = LN(h + dense(gelu(dense(h))))``.
  ``gelu`` is the exact erf form; ``gelu_new``/``gelu_pytorch_tanh`` the tanh
  approximation.

Every pass returns a :class:`ForwardResult` with the output of each layer (for
per-layer error reports) and, with ``trace=True``, each layer's intermediates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..diagnostics import LpuError
from .config import ModelConfig

F32 = np.float32


# ---- primitives ------------------------------------------------------------------------

def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    x = x.astype(F32)
    var = np.mean(x * x, axis=-1, keepdims=True)
    return (x / np.sqrt(var + F32(eps))) * w.astype(F32)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    x = x.astype(F32)
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + F32(eps)) * w.astype(F32) + b.astype(F32)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (F32(1) + np.exp(-x))


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to double accuracy (numpy has none): math.erf elementwise."""
    flat = np.fromiter((math.erf(v) for v in x.astype(np.float64).ravel()), dtype=np.float64, count=x.size)
    return flat.reshape(x.shape)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x * Phi(x) (HF ``gelu``)."""
    return (0.5 * x.astype(np.float64) * (1.0 + _erf(x / math.sqrt(2.0)))).astype(F32)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """Tanh-approximated GELU (HF ``gelu_new`` / ``gelu_pytorch_tanh``)."""
    x = x.astype(F32)
    return F32(0.5) * x * (F32(1) + np.tanh(F32(math.sqrt(2.0 / math.pi)) * (x + F32(0.044715) * x ** 3)))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w.T (+ b)`` with ``w`` in nn.Linear layout ``(out, in)``."""
    y = x.astype(F32) @ w.astype(F32).T
    return y if b is None else y + b.astype(F32)


# ---- RoPE -----------------------------------------------------------------------------

def rope_inv_freq(cfg: ModelConfig) -> np.ndarray:
    """Per-pair inverse frequencies (head_dim/2,), float64, with HF's
    ``linear`` and ``llama3`` rope_scaling applied."""
    d = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    rs = cfg.rope_scaling or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        mid = (wavelen <= old / lo) & (wavelen >= old / hi)
        inv = np.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    return inv


def rope_cos_sin(cfg: ModelConfig, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables ``(len(positions), head_dim)`` (each half repeated)."""
    ang = np.asarray(positions, dtype=np.float64)[:, None] * rope_inv_freq(cfg)[None, :]
    ang = np.concatenate([ang, ang], axis=-1)
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def rotate_half(x: np.ndarray) -> np.ndarray:
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate ``x`` (..., T, head_dim) by the tables for its T positions."""
    return x * cos + rotate_half(x) * sin


# ---- attention ------------------------------------------------------------------------

def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool, q_start: int = 0,
              key_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention.  ``q`` (H, T, d); ``k``, ``v`` (KVH, S, d)
    with ``H % KVH == 0`` (query head h reads kv head ``h // (H // KVH)``).
    With *causal*, query t (absolute position ``q_start + t``) sees keys
    ``0..q_start + t``.  *key_mask* (S,) of 0/1 hides keys where 0.
    Returns the output (H, T, d) and the probabilities (H, T, S)."""
    H, T, d = q.shape
    KVH, S, _ = k.shape
    rep = H // KVH
    k = np.repeat(k, rep, axis=0)
    v = np.repeat(v, rep, axis=0)
    scores = (q @ k.transpose(0, 2, 1)) * F32(1.0 / math.sqrt(d))
    neg = np.finfo(F32).min
    if causal:
        allowed = np.arange(S)[None, :] <= (q_start + np.arange(T))[:, None]
        scores = np.where(allowed[None], scores, neg)
    if key_mask is not None:
        scores = np.where(np.asarray(key_mask, dtype=bool)[None, None, :], scores, neg)
    p = softmax(scores.astype(F32))
    return (p @ v).astype(F32), p


# ---- results and cache ---------------------------------------------------------------------

@dataclass
class KVCache:
    """Per-layer keys (after RoPE) and values, each (kv_heads, length, head_dim) float32."""

    k: list[np.ndarray]
    v: list[np.ndarray]

    @property
    def length(self) -> int:
        return self.k[0].shape[1] if self.k else 0

    @classmethod
    def empty(cls, cfg: ModelConfig) -> "KVCache":
        z = np.zeros((cfg.num_key_value_heads, 0, cfg.head_dim), F32)
        return cls([z] * cfg.num_hidden_layers, [z] * cfg.num_hidden_layers)


@dataclass
class ForwardResult:
    #: (T, hidden): the input to layer 0 (after the embedding LayerNorm for bert)
    embeddings: np.ndarray
    #: the residual stream after each layer, each (T, hidden)
    layers: list[np.ndarray]
    #: llama: after the final norm; bert: the last layer's output
    hidden: np.ndarray
    #: (T, vocab) for llama; None for bert
    logits: np.ndarray | None = None
    #: llama: keys and values of every position seen so far
    cache: KVCache | None = None
    #: with trace=True: per layer, name -> intermediate array
    traces: list[dict[str, np.ndarray]] = field(default_factory=list)


def _w(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return weights[name]
    except KeyError:
        raise LpuError(f"reference: weights lack tensor '{name}'") from None


def _check_ids(cfg: ModelConfig, ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise LpuError(f"reference: token ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    if ids.size == 0:
        raise LpuError("reference: no tokens")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        raise LpuError(f"reference: token id out of range 0..{cfg.vocab_size - 1}")
    return ids


# ---- llama ---------------------------------------------------------------------------------

def llama_layer(cfg: ModelConfig, weights: dict[str, np.ndarray], i: int, x: np.ndarray,
                positions: np.ndarray, past_k: np.ndarray | None = None, past_v: np.ndarray | None = None,
                trace: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One decoder layer on ``x`` (T, hidden) at *positions* (T,), after a
    cache of ``past_k.shape[1]`` positions.  Returns the output and the full
    keys and values (past + new)."""
    p = f"model.layers.{i}."
    T = x.shape[0]
    H, KVH, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    n1 = rms_norm(x, _w(weights, p + "input_layernorm.weight"), cfg.rms_norm_eps)
    q = linear(n1, _w(weights, p + "self_attn.q_proj.weight")).reshape(T, H, d).transpose(1, 0, 2)
    k = linear(n1, _w(weights, p + "self_attn.k_proj.weight")).reshape(T, KVH, d).transpose(1, 0, 2)
    v = linear(n1, _w(weights, p + "self_attn.v_proj.weight")).reshape(T, KVH, d).transpose(1, 0, 2)
    cos, sin = rope_cos_sin(cfg, positions)
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    if past_k is not None and past_k.shape[1]:
        k = np.concatenate([past_k, k], axis=1)
        v = np.concatenate([past_v, v], axis=1)
    start = k.shape[1] - T
    a, probs = attention(q, k, v, causal=True, q_start=start)
    a = a.transpose(1, 0, 2).reshape(T, H * d)
    o = linear(a, _w(weights, p + "self_attn.o_proj.weight"))
    h = x + o
    n2 = rms_norm(h, _w(weights, p + "post_attention_layernorm.weight"), cfg.rms_norm_eps)
    gate = linear(n2, _w(weights, p + "mlp.gate_proj.weight"))
    up = linear(n2, _w(weights, p + "mlp.up_proj.weight"))
    act = silu(gate) * up
    mlp = linear(act, _w(weights, p + "mlp.down_proj.weight"))
    out = h + mlp
    if trace is not None:
        trace.update(input=x, attn_norm=n1, q=q, k=k, v=v, probs=probs, attn=a, o_proj=o, resid_attn=h,
                     mlp_norm=n2, gate=gate, up=up, act=act, mlp=mlp, output=out)
    return out, k, v


def llama_forward(cfg: ModelConfig, weights: dict[str, np.ndarray], ids: np.ndarray | None = None,
                  inputs_embeds: np.ndarray | None = None, cache: KVCache | None = None,
                  trace: bool = False, lm_head: bool = True) -> ForwardResult:
    """Run T new tokens (``ids`` or their embeddings ``(T, hidden)``) after
    *cache* (positions ``cache.length ..``).  Returns logits for all T."""
    if cfg.arch != "llama":
        raise LpuError(f"reference: llama_forward needs a llama config, got {cfg.arch}")
    if inputs_embeds is None:
        ids = _check_ids(cfg, ids)
        x = _w(weights, "model.embed_tokens.weight")[ids].astype(F32)
    else:
        x = np.asarray(inputs_embeds, dtype=F32)
        if x.ndim != 2 or x.shape[1] != cfg.hidden_size:
            raise LpuError(f"reference: inputs_embeds must be (T, {cfg.hidden_size}), got {x.shape}")
    cache = cache or KVCache.empty(cfg)
    if len(cache.k) != cfg.num_hidden_layers:
        raise LpuError(f"reference: cache has {len(cache.k)} layers, model has {cfg.num_hidden_layers}")
    positions = np.arange(cache.length, cache.length + x.shape[0])
    res = ForwardResult(embeddings=x, layers=[], hidden=x, cache=KVCache([], []))
    for i in range(cfg.num_hidden_layers):
        tr: dict | None = {} if trace else None
        x, k, v = llama_layer(cfg, weights, i, x, positions, cache.k[i], cache.v[i], tr)
        res.layers.append(x)
        res.cache.k.append(k)
        res.cache.v.append(v)
        if tr is not None:
            res.traces.append(tr)
    res.hidden = rms_norm(x, _w(weights, "model.norm.weight"), cfg.rms_norm_eps)
    if lm_head:
        head = _w(weights, "model.embed_tokens.weight" if cfg.tie_word_embeddings else "lm_head.weight")
        res.logits = linear(res.hidden, head)
    return res


def llama_prefill(cfg: ModelConfig, weights: dict[str, np.ndarray], ids: np.ndarray, **kw) -> ForwardResult:
    """All tokens of a prompt at once from an empty cache."""
    return llama_forward(cfg, weights, ids, **kw)


def llama_decode(cfg: ModelConfig, weights: dict[str, np.ndarray], token: int, cache: KVCache, **kw) -> ForwardResult:
    """One token at position ``cache.length``; logits (1, vocab), cache grown by one."""
    return llama_forward(cfg, weights, np.array([token]), cache=cache, **kw)


# ---- bert ---------------------------------------------------------------------------------

def bert_embed(cfg: ModelConfig, weights: dict[str, np.ndarray], ids: np.ndarray,
               token_type_ids: np.ndarray | None = None) -> np.ndarray:
    ids = _check_ids(cfg, ids)
    T = ids.shape[0]
    if T > cfg.max_position_embeddings:
        raise LpuError(f"reference: {T} tokens exceed max_position_embeddings {cfg.max_position_embeddings}")
    tt = np.zeros(T, dtype=np.int64) if token_type_ids is None else np.asarray(token_type_ids)
    if tt.shape != (T,) or tt.min() < 0 or tt.max() >= cfg.type_vocab_size:
        raise LpuError(f"reference: token_type_ids must be {T} ids in 0..{cfg.type_vocab_size - 1}")
    e = (_w(weights, "embeddings.word_embeddings.weight")[ids].astype(F32)
         + _w(weights, "embeddings.position_embeddings.weight")[:T].astype(F32)
         + _w(weights, "embeddings.token_type_embeddings.weight")[tt].astype(F32))
    return layer_norm(e, _w(weights, "embeddings.LayerNorm.weight"), _w(weights, "embeddings.LayerNorm.bias"),
                      cfg.layer_norm_eps)


def bert_layer(cfg: ModelConfig, weights: dict[str, np.ndarray], i: int, x: np.ndarray,
               key_mask: np.ndarray | None = None, trace: dict | None = None) -> np.ndarray:
    p = f"encoder.layer.{i}."
    T = x.shape[0]
    H, d = cfg.num_attention_heads, cfg.head_dim

    def lin(name: str, inp: np.ndarray) -> np.ndarray:
        return linear(inp, _w(weights, p + name + ".weight"), _w(weights, p + name + ".bias"))

    q = lin("attention.self.query", x).reshape(T, H, d).transpose(1, 0, 2)
    k = lin("attention.self.key", x).reshape(T, H, d).transpose(1, 0, 2)
    v = lin("attention.self.value", x).reshape(T, H, d).transpose(1, 0, 2)
    a, probs = attention(q, k, v, causal=False, key_mask=key_mask)
    a = a.transpose(1, 0, 2).reshape(T, H * d)
    o = lin("attention.output.dense", a)
    h = layer_norm(x + o, _w(weights, p + "attention.output.LayerNorm.weight"),
                   _w(weights, p + "attention.output.LayerNorm.bias"), cfg.layer_norm_eps)
    inter = lin("intermediate.dense", h)
    act = gelu(inter) if cfg.hidden_act == "gelu" else gelu_tanh(inter)
    mlp = lin("output.dense", act)
    out = layer_norm(h + mlp, _w(weights, p + "output.LayerNorm.weight"), _w(weights, p + "output.LayerNorm.bias"),
                     cfg.layer_norm_eps)
    if trace is not None:
        trace.update(input=x, q=q, k=k, v=v, probs=probs, attn=a, attn_dense=o, attn_out=h,
                     intermediate=inter, act=act, mlp=mlp, output=out)
    return out


def bert_forward(cfg: ModelConfig, weights: dict[str, np.ndarray], ids: np.ndarray | None = None,
                 token_type_ids: np.ndarray | None = None, attention_mask: np.ndarray | None = None,
                 inputs_embeds: np.ndarray | None = None, trace: bool = False) -> ForwardResult:
    """The encoder on one sequence.  ``attention_mask`` (T,) of 1/0 hides
    padding keys, as HF's.  ``inputs_embeds`` skips the embedding stage (it is
    the input to layer 0, after the embedding LayerNorm)."""
    if cfg.arch != "bert":
        raise LpuError(f"reference: bert_forward needs a bert config, got {cfg.arch}")
    x = bert_embed(cfg, weights, ids, token_type_ids) if inputs_embeds is None else np.asarray(inputs_embeds, F32)
    if attention_mask is not None and np.asarray(attention_mask).shape != (x.shape[0],):
        raise LpuError(f"reference: attention_mask must have shape ({x.shape[0]},)")
    res = ForwardResult(embeddings=x, layers=[], hidden=x)
    for i in range(cfg.num_hidden_layers):
        tr: dict | None = {} if trace else None
        x = bert_layer(cfg, weights, i, x, attention_mask, tr)
        res.layers.append(x)
        if tr is not None:
            res.traces.append(tr)
    res.hidden = x
    return res


def forward(cfg: ModelConfig, weights: dict[str, np.ndarray], ids: np.ndarray, **kw) -> ForwardResult:
    """llama_forward or bert_forward by ``cfg.arch``."""
    return (llama_forward if cfg.arch == "llama" else bert_forward)(cfg, weights, ids, **kw)
