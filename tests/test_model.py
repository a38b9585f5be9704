"""lpuasm.model: configs, checkpoints, the numpy reference, capacity."""

import cmath
import json
import math

import numpy as np
import pytest

from lpuasm.diagnostics import LpuError
from lpuasm.model import capacity, checkpoint, reference
from lpuasm.model.config import (ModelConfig, from_hf_dict, load_hf_config, parse_shapes, preset, default_ffn)

TINY_SHAPES = "hidden=32,heads=4,kv_heads=2,ffn=48,layers=2,vocab=50"


def tiny_llama(**kw):
    cfg = parse_shapes("llama", TINY_SHAPES)
    return cfg.replace(**kw) if kw else cfg


def tiny_bert(**kw):
    cfg = parse_shapes("bert", "hidden=32,heads=4,ffn=64,layers=2,vocab=50,max_pos=16")
    return cfg.replace(**kw) if kw else cfg


# ---- config ------------------------------------------------------------------------------

LLAMA_JSON = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 172,
    "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 2, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "vocab_size": 128, "max_position_embeddings": 256, "tie_word_embeddings": False,
    "hidden_act": "silu", "torch_dtype": "bfloat16", "bos_token_id": 1,
}
BERT_JSON = {
    "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 48, "intermediate_size": 96,
    "num_hidden_layers": 2, "num_attention_heads": 3, "layer_norm_eps": 1e-12, "vocab_size": 100,
    "max_position_embeddings": 32, "type_vocab_size": 2, "hidden_act": "gelu",
    "position_embedding_type": "absolute",
}


def test_config_from_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_JSON))
    c = load_hf_config(tmp_path)
    assert (c.arch, c.hidden_size, c.num_attention_heads, c.num_key_value_heads) == ("llama", 64, 8, 2)
    assert (c.head_dim, c.group_size, c.q_dim, c.kv_dim) == (8, 4, 64, 16)
    assert c.rope_theta == 500000.0 and c.rms_norm_eps == 1e-5 and not c.tie_word_embeddings
    assert from_hf_dict(c.to_hf_dict()) == c
    b = from_hf_dict(BERT_JSON)
    assert (b.arch, b.hidden_size, b.head_dim, b.layer_norm_eps, b.type_vocab_size) == ("bert", 48, 16, 1e-12, 2)
    assert b.num_key_value_heads == 3 and b.hidden_act == "gelu"
    assert from_hf_dict(b.to_hf_dict()) == b
    # num_key_value_heads absent: plain multi-head attention
    d = dict(LLAMA_JSON)
    del d["num_key_value_heads"]
    assert from_hf_dict(d).num_key_value_heads == 8


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": None}, "missing required field 'hidden_size'"),
    ({"num_hidden_layers": "three"}, "field 'num_hidden_layers' must be an integer"),
    ({"num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
    ({"num_attention_heads": 7}, "hidden_size 64 is not a multiple of num_attention_heads 7"),
    ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "unknown architecture (model_type 'gpt2')"),
    ({"hidden_act": "relu"}, "hidden_act 'relu' is not supported for llama"),
    ({"rms_norm_eps": -1.0}, "rms_norm_eps must be a positive number"),
    ({"attention_bias": True}, "attention_bias=true is not supported"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling type 'yarn' is not supported"),
])
def test_config_json_errors(change, message):
    d = {**LLAMA_JSON, **change}
    d = {k: v for k, v in d.items() if v is not None}
    with pytest.raises(LpuError) as e:
        from_hf_dict(d)
    assert message in str(e.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(LpuError, match="cannot read model config"):
        load_hf_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(LpuError, match="not valid JSON"):
        load_hf_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(BERT_JSON))
    with pytest.raises(LpuError, match="describes a bert model, but --arch llama"):
        load_hf_config(tmp_path, arch="llama")


def test_config_from_shapes():
    c = parse_shapes("llama", "hidden=256,heads=4,kv_heads=2,ffn=688,layers=2,vocab=1000")
    assert (c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size,
            c.num_hidden_layers, c.vocab_size, c.head_dim) == (256, 4, 2, 688, 2, 1000, 64)
    assert parse_shapes("llama", c.shapes_string()) == c
    d = parse_shapes("llama", "hidden=4096,heads=32")
    assert d.intermediate_size == 11008 == default_ffn("llama", 4096) and d.num_key_value_heads == 32
    b = parse_shapes("bert", "hidden=768,heads=12,layers=12")
    assert b.intermediate_size == 3072 and b.arch == "bert" and b.max_position_embeddings == 512
    # a preset as the base
    p = parse_shapes("llama", "llama2-70b,layers=1")
    assert p.num_hidden_layers == 1 and p.num_key_value_heads == 8 and p.hidden_size == 8192
    assert p.display_name == "Llama-2-70B (1 layer)"


@pytest.mark.parametrize("arch, text, message", [
    ("llama", "hidden=256", "missing 'heads'"),
    ("llama", "hidden=256,heads=4,wibble=3", "unknown key 'wibble'"),
    ("llama", "hidden=256,heads=4,layers=two", "'layers' must be an integer"),
    ("llama", "hidden=256,heads=3", "hidden_size 256 is not a multiple of num_attention_heads 3"),
    ("llama", "hidden=256,heads=4,kv_heads=3", "not a multiple of num_key_value_heads 3"),
    ("llama", "hidden=256,heads=4,layers=0", "num_hidden_layers must be a positive integer"),
    ("llama", "hidden=256,heads=4,hidden=512", "'hidden' given twice"),
    ("llama", "hidden256", "unknown model preset 'hidden256'"),
    ("bert", "hidden=256,heads=4,kv_heads=2", "kv_heads does not apply to bert"),
    ("bert", "llama2-7b", "preset 'Llama-2-7B' is a llama model, not bert"),
    ("gpt", "hidden=4,heads=1", "unknown architecture 'gpt'"),
])
def test_shapes_errors(arch, text, message):
    with pytest.raises(LpuError) as e:
        parse_shapes(arch, text)
    assert message in str(e.value)


def test_presets():
    assert preset("LLAMA2-7B").name == "Llama-2-7B"
    with pytest.raises(LpuError, match="unknown model preset 'gpt-5'"):
        preset("gpt-5")


# ---- checkpoints ---------------------------------------------------------------------

def test_expected_names_llama():
    cfg = tiny_llama()
    names = checkpoint.expected_tensors(cfg)
    assert names["model.embed_tokens.weight"] == (50, 32)
    assert names["model.layers.1.self_attn.q_proj.weight"] == (32, 32)
    assert names["model.layers.1.self_attn.k_proj.weight"] == (16, 32)
    assert names["model.layers.0.mlp.down_proj.weight"] == (32, 48)
    assert names["model.layers.0.post_attention_layernorm.weight"] == (32,)
    assert names["lm_head.weight"] == (50, 32) and names["model.norm.weight"] == (32,)
    assert len(names) == 1 + 2 * 9 + 2
    assert "lm_head.weight" not in checkpoint.expected_tensors(cfg.replace(tie_word_embeddings=True))


def test_checkpoint_roundtrip(tmp_path):
    cfg = tiny_llama()
    w = checkpoint.random_weights(cfg, seed=1)
    checkpoint.save_checkpoint(tmp_path / "one", cfg, w)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["config.json", "model.safetensors"]
    cfg2, w2 = checkpoint.load_checkpoint(tmp_path / "one")
    assert cfg2 == cfg
    assert list(w2) == list(w)
    for n in w:
        assert w2[n].dtype == np.float16 and np.array_equal(w2[n], w[n])
    # sharded, with an index
    checkpoint.save_checkpoint(tmp_path / "sharded", cfg, w, shards=3)
    files = sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert files == ["config.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                     "model-00003-of-00003.safetensors", "model.safetensors.index.json"]
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(w)
    _, w3 = checkpoint.load_checkpoint(tmp_path / "sharded")
    assert all(np.array_equal(w3[n], w[n]) for n in w)
    # fewer layers than the checkpoint: only those are read
    _, w4 = checkpoint.load_checkpoint(tmp_path / "one", cfg=cfg.with_layers(1))
    assert "model.layers.1.mlp.up_proj.weight" not in w4 and "model.layers.0.mlp.up_proj.weight" in w4


def test_checkpoint_dtypes(tmp_path):
    cfg = tiny_llama(num_hidden_layers=1)
    w = checkpoint.random_weights(cfg, seed=2)
    w32 = {n: a.astype(np.float32) + np.float32(1e-4) for n, a in w.items()}
    checkpoint.save_checkpoint(tmp_path / "f32", cfg, w32)
    _, got = checkpoint.load_checkpoint(tmp_path / "f32")
    assert all(got[n].dtype == np.float16 and np.array_equal(got[n], w32[n].astype(np.float16)) for n in w)
    # bf16 (numpy has none): fp16 values with short mantissas survive exactly
    wb = {n: (np.round(a.astype(np.float32) * 64) / 64).astype(np.float16) for n, a in w.items()}
    checkpoint.save_checkpoint(tmp_path / "bf16", cfg, wb, dtype="bf16")
    _, got = checkpoint.load_checkpoint(tmp_path / "bf16")
    assert all(got[n].dtype == np.float16 and np.array_equal(got[n], wb[n]) for n in w)
    _, got32 = checkpoint.load_checkpoint(tmp_path / "bf16", dtype=np.float32)
    assert got32["model.norm.weight"].dtype == np.float32


def test_checkpoint_errors(tmp_path):
    from safetensors.numpy import save_file
    cfg = tiny_llama(num_hidden_layers=1)
    w = checkpoint.random_weights(cfg)
    d = tmp_path / "ck"
    checkpoint.save_checkpoint(d, cfg, w)
    missing = {n: a for n, a in w.items() if n != "model.layers.0.mlp.gate_proj.weight"}
    save_file(missing, str(d / "model.safetensors"))
    with pytest.raises(LpuError, match=r"missing tensor 'model\.layers\.0\.mlp\.gate_proj\.weight'"):
        checkpoint.load_checkpoint(d)
    bad = dict(w)
    bad["model.layers.0.self_attn.k_proj.weight"] = np.zeros((32, 32), np.float16)
    save_file(bad, str(d / "model.safetensors"))
    with pytest.raises(LpuError, match=r"tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape "
                                       r"\(32, 32\), expected \(16, 32\)"):
        checkpoint.load_checkpoint(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(LpuError, match="no model.safetensors"):
        checkpoint.load_checkpoint(d)
    with pytest.raises(LpuError, match="is not a directory"):
        checkpoint.load_checkpoint(tmp_path / "nope")


def test_checkpoint_bert_prefix_and_extras(tmp_path):
    from safetensors.numpy import save_file
    cfg = tiny_bert()
    w = checkpoint.random_weights(cfg, seed=3)
    checkpoint.save_checkpoint(tmp_path, cfg, w)
    # as BertForMaskedLM saves it: bert. prefix, old gamma/beta names, a head and a buffer
    hf = {}
    for n, a in w.items():
        n = n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        hf["bert." + n] = a
    hf["cls.predictions.bias"] = np.zeros(50, np.float32)
    hf["bert.embeddings.position_ids"] = np.arange(16, dtype=np.int64)[None]
    save_file(hf, str(tmp_path / "model.safetensors"))
    cfg2, w2 = checkpoint.load_checkpoint(tmp_path)
    assert cfg2 == cfg and list(w2) == list(w)
    assert all(np.array_equal(w2[n], w[n]) for n in w)
    assert "encoder.layer.1.attention.output.LayerNorm.bias" in w2


# ---- llama reference ------------------------------------------------------------------

def test_rope_matches_complex_rotation():
    cfg = tiny_llama(rope_theta=100.0)
    d = cfg.head_dim
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, d)).astype(np.float32)
    positions = np.array([0, 1, 2, 7, 30])
    cos, sin = reference.rope_cos_sin(cfg, positions)
    got = reference.apply_rope(x, cos, sin)
    for h in range(2):
        for t, pos in enumerate(positions):
            for j in range(d // 2):
                theta = 100.0 ** (-2 * j / d)
                z = complex(x[h, t, j], x[h, t, j + d // 2]) * cmath.exp(1j * pos * theta)
                assert got[h, t, j] == pytest.approx(z.real, abs=1e-5)
                assert got[h, t, j + d // 2] == pytest.approx(z.imag, abs=1e-5)


def loop_attention(q, k, v, causal, start=0):
    """Attention by explicit loops, float64, GQA by h // (H // KVH)."""
    H, T, d = q.shape
    KVH, S, _ = k.shape
    out = np.zeros((H, T, d))
    for h in range(H):
        g = h // (H // KVH)
        for t in range(T):
            keys = [s for s in range(S) if not causal or s <= start + t]
            sc = [sum(float(q[h, t, i]) * float(k[g, s, i]) for i in range(d)) / math.sqrt(d) for s in keys]
            m = max(sc)
            e = [math.exp(x - m) for x in sc]
            tot = sum(e)
            for s, w in zip(keys, e):
                out[h, t] += (w / tot) * v[g, s].astype(np.float64)
    return out


def test_attention_against_loops():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((4, 3, 8)).astype(np.float32)
    k = rng.standard_normal((2, 5, 8)).astype(np.float32)
    v = rng.standard_normal((2, 5, 8)).astype(np.float32)
    for causal in (False, True):
        got, probs = reference.attention(q, k, v, causal=causal, q_start=2)
        np.testing.assert_allclose(got, loop_attention(q, k, v, causal, start=2), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    _, probs = reference.attention(q, k, v, causal=True, q_start=2)
    assert np.all(probs[:, 0, 3:] == 0) and np.all(probs[:, 1, 4:] == 0) and np.all(probs[:, 2] > 0)


def loop_llama_layer(cfg, w, x):
    """An independent one-layer Llama: float64, complex RoPE, loop attention."""
    p = "model.layers.0."
    W = {n: w[n].astype(np.float64) for n in w}
    T = x.shape[0]
    H, KVH, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    x = x.astype(np.float64)

    def rms(a, g):
        return np.stack([r / math.sqrt(sum(v * v for v in r) / len(r) + cfg.rms_norm_eps) for r in a]) * g

    def rope(a):  # a (heads, T, d): rotate each (j, j + d/2) pair as one complex number
        out = a.copy()
        for t in range(T):
            for j in range(d // 2):
                z = (a[:, t, j] + 1j * a[:, t, j + d // 2]) * cmath.exp(1j * t * cfg.rope_theta ** (-2 * j / d))
                out[:, t, j], out[:, t, j + d // 2] = z.real, z.imag
        return out

    n1 = rms(x, W[p + "input_layernorm.weight"])
    q = rope((n1 @ W[p + "self_attn.q_proj.weight"].T).reshape(T, H, d).transpose(1, 0, 2))
    k = rope((n1 @ W[p + "self_attn.k_proj.weight"].T).reshape(T, KVH, d).transpose(1, 0, 2))
    v = (n1 @ W[p + "self_attn.v_proj.weight"].T).reshape(T, KVH, d).transpose(1, 0, 2)
    a = loop_attention(q, k, v, causal=True).transpose(1, 0, 2).reshape(T, H * d)
    h = x + a @ W[p + "self_attn.o_proj.weight"].T
    n2 = rms(h, W[p + "post_attention_layernorm.weight"])
    g = n2 @ W[p + "mlp.gate_proj.weight"].T
    u = n2 @ W[p + "mlp.up_proj.weight"].T
    return h + ((g / (1 + np.exp(-g))) * u) @ W[p + "mlp.down_proj.weight"].T


def test_llama_layer_against_independent_derivation():
    cfg = tiny_llama(num_hidden_layers=1)
    w = checkpoint.random_weights(cfg, seed=4)
    ids = np.array([3, 1, 4, 1, 5, 9])
    res = reference.llama_prefill(cfg, w, ids, trace=True)
    x0 = w["model.embed_tokens.weight"][ids].astype(np.float32)
    np.testing.assert_array_equal(res.embeddings, x0)
    want = loop_llama_layer(cfg, w, x0)
    np.testing.assert_allclose(res.layers[0], want, rtol=1e-4, atol=1e-4)
    # final norm and lm head
    fn = w["model.norm.weight"].astype(np.float64)
    hid = want / np.sqrt((want ** 2).mean(-1, keepdims=True) + cfg.rms_norm_eps) * fn
    np.testing.assert_allclose(res.logits, hid @ w["lm_head.weight"].astype(np.float64).T, rtol=1e-4, atol=1e-4)
    assert res.logits.dtype == np.float32 and res.logits.shape == (6, cfg.vocab_size)
    assert set(res.traces[0]) >= {"q", "k", "v", "probs", "attn", "gate", "up", "output"}


def test_llama_causal_and_tied():
    cfg = tiny_llama()
    w = checkpoint.random_weights(cfg, seed=5)
    a = reference.llama_prefill(cfg, w, np.array([1, 2, 3, 4]))
    b = reference.llama_prefill(cfg, w, np.array([1, 2, 3, 40]))
    np.testing.assert_array_equal(a.logits[:3], b.logits[:3])
    assert not np.allclose(a.logits[3], b.logits[3])
    tied = cfg.replace(tie_word_embeddings=True)
    wt = {n: x for n, x in w.items() if n != "lm_head.weight"}
    r = reference.llama_prefill(tied, wt, np.array([1, 2]))
    np.testing.assert_allclose(r.logits, r.hidden @ w["model.embed_tokens.weight"].astype(np.float32).T, rtol=1e-5)


def test_gqa_equals_mha_with_repeated_kv_heads():
    cfg = tiny_llama()  # 4 query heads, 2 kv heads
    w = checkpoint.random_weights(cfg, seed=6)
    mha = cfg.replace(num_key_value_heads=4)
    wm = dict(w)
    d = cfg.head_dim
    for i in range(cfg.num_hidden_layers):
        for proj in ("k_proj", "v_proj"):
            n = f"model.layers.{i}.self_attn.{proj}.weight"
            blocks = w[n].reshape(2, d, cfg.hidden_size)
            wm[n] = blocks[[0, 0, 1, 1]].reshape(4 * d, cfg.hidden_size)  # query head h reads kv head h // 2
    ids = np.array([7, 8, 9, 10, 11])
    np.testing.assert_allclose(reference.llama_prefill(cfg, w, ids).logits,
                               reference.llama_prefill(mha, wm, ids).logits, rtol=1e-5, atol=1e-5)


def test_decode_with_cache_equals_prefill():
    cfg = tiny_llama()
    w = checkpoint.random_weights(cfg, seed=7)
    ids = np.array([5, 6, 7, 8, 9, 10, 11])
    full = reference.llama_prefill(cfg, w, ids)
    pre = reference.llama_prefill(cfg, w, ids[:-1])
    assert pre.cache.length == 6 and pre.cache.k[1].shape == (cfg.num_key_value_heads, 6, cfg.head_dim)
    dec = reference.llama_decode(cfg, w, int(ids[-1]), pre.cache)
    assert dec.logits.shape == (1, cfg.vocab_size) and dec.cache.length == 7
    np.testing.assert_allclose(dec.logits[0], full.logits[-1], rtol=1e-5, atol=1e-5)
    for i in range(cfg.num_hidden_layers):
        np.testing.assert_allclose(dec.layers[i][0], full.layers[i][-1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dec.cache.k[i], full.cache.k[i], rtol=1e-5, atol=1e-5)
    # token by token from an empty cache
    cache = reference.KVCache.empty(cfg)
    for t, tok in enumerate(ids):
        step = reference.llama_decode(cfg, w, int(tok), cache)
        np.testing.assert_allclose(step.logits[0], full.logits[t], rtol=1e-5, atol=1e-5)
        cache = step.cache


def test_llama_rope_scaling_and_errors():
    cfg = tiny_llama(rope_scaling={"rope_type": "linear", "factor": 2.0})
    base = reference.rope_inv_freq(tiny_llama())
    np.testing.assert_allclose(reference.rope_inv_freq(cfg), base / 2)
    l3 = tiny_llama(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    inv = reference.rope_inv_freq(l3)
    assert inv[0] == base[0] and np.all(inv <= base)
    w = checkpoint.random_weights(tiny_llama())
    with pytest.raises(LpuError, match="token id out of range"):
        reference.llama_prefill(tiny_llama(), w, np.array([50]))
    with pytest.raises(LpuError, match="lack tensor 'model.norm.weight'"):
        reference.llama_prefill(tiny_llama(), {n: a for n, a in w.items() if n != "model.norm.weight"}, np.array([1]))


# ---- bert reference -------------------------------------------------------------------

def test_gelu_values():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 1.0, 2.0], np.float32)
    want = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(float)]
    np.testing.assert_allclose(reference.gelu(x), want, rtol=1e-6, atol=1e-7)
    assert reference.gelu(np.float32([1.0]))[0] == pytest.approx(0.8413447460685429, rel=1e-6)
    np.testing.assert_allclose(reference.gelu_tanh(x), want, atol=1e-3)


def test_bert_reference():
    cfg = tiny_bert()
    w = checkpoint.random_weights(cfg, seed=8)
    ids = np.array([2, 7, 1, 8, 2, 8])
    tt = np.array([0, 0, 0, 1, 1, 1])
    res = reference.bert_forward(cfg, w, ids, token_type_ids=tt, trace=True)
    assert res.logits is None and res.cache is None
    assert res.hidden.shape == (6, 32) and len(res.layers) == 2 and res.hidden.dtype == np.float32
    # post-LN: each layer's output, un-scaled, has zero mean and unit variance per row
    for i, out in enumerate([res.embeddings] + res.layers):
        ln = "embeddings.LayerNorm" if i == 0 else f"encoder.layer.{i - 1}.output.LayerNorm"
        z = (out - w[ln + ".bias"].astype(np.float32)) / w[ln + ".weight"].astype(np.float32)
        np.testing.assert_allclose(z.mean(-1), 0, atol=1e-5)
        np.testing.assert_allclose(z.var(-1), 1, atol=1e-4)
    # bidirectional: the last token changes the first row
    other = reference.bert_forward(cfg, w, np.array([2, 7, 1, 8, 2, 9]), token_type_ids=tt)
    assert not np.allclose(other.hidden[0], res.hidden[0])
    # token types matter; a padding mask hides keys exactly like dropping them
    assert not np.allclose(reference.bert_forward(cfg, w, ids).hidden, res.hidden)
    padded = reference.bert_forward(cfg, w, np.array([2, 7, 1, 0, 0]), attention_mask=np.array([1, 1, 1, 0, 0]))
    short = reference.bert_forward(cfg, w, np.array([2, 7, 1]))
    np.testing.assert_allclose(padded.hidden[:3], short.hidden, rtol=1e-5, atol=1e-5)
    assert np.all(res.traces[0]["probs"] > 0)
    with pytest.raises(LpuError, match="exceed max_position_embeddings 16"):
        reference.bert_forward(cfg, w, np.zeros(17, np.int64))
    with pytest.raises(LpuError, match="needs a llama config"):
        reference.llama_forward(cfg, w, ids)


# ---- capacity -------------------------------------------------------------------------

def test_parameter_counts_of_presets():
    assert checkpoint.parameter_count(preset("llama2-7b")) == 6_738_415_616
    assert checkpoint.parameter_count(preset("llama2-70b")) == 68_976_648_192
    assert checkpoint.parameter_count(preset("bert-base")) == 108_891_648  # BertModel without the pooler


def test_capacity_llama2():
    cap = capacity.estimate(preset("llama2-7b"), "tsp-v1", mode="decode", seq=4096)
    assert cap.sram_bytes == 220 * 2**20
    assert cap.layer_weight_bytes == 2 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + 4 * 2 * 4096
    assert cap.kv_cache_bytes == 32 * 2 * 4096 * 4096 * 2  # 2 GiB
    # on chip: layers + final norm + lm head; the embedding lookup is on the host
    assert cap.weight_bytes == 32 * cap.layer_weight_bytes + 4 * 4096 + 2 * 32000 * 4096
    assert not cap.fits and cap.chips_for_weights == 58
    assert cap.message() == ("Llama-2-7B needs 12.3 GiB of fp16 weights (embedding table on the host); "
                             "one tsp-v1 chip holds 220 MiB: ~58 chips just for the weights")
    with pytest.raises(LpuError, match="Llama-2-7B needs 12.3 GiB"):
        capacity.check_fits(cap)
    cap70 = capacity.estimate(preset("llama2-70b"), mode="decode", seq=4096)
    assert cap70.kv_cache_bytes == 80 * 2 * 1024 * 4096 * 2
    assert cap70.chips_for_weights == 596 and "~596 chips" in cap70.message()
    # int8 halves the matrices (plus per-row float32 scales)
    c8 = capacity.estimate(preset("llama2-7b"), mode="decode", seq=4096, dtype="int8")
    assert c8.layer_weight_bytes < cap.layer_weight_bytes * 0.51
    # one 7B layer still does not fit one chip
    assert not capacity.estimate(preset("llama2-7b"), layers=1).fits


def test_capacity_small_models_fit():
    cap = capacity.estimate(preset("tiny-llama"), "tsp-v1", mode="prefill", seq=128)
    assert cap.fits and "fits" in cap.message() and cap.message().startswith("tiny-llama (prefill, seq 128, fp16)")
    assert capacity.estimate(preset("tiny-bert"), mode="prefill", seq=128).fits
    assert not capacity.estimate(preset("tiny-llama"), chip="tiny", seq=128).fits
    with pytest.raises(LpuError, match="only prefill"):
        capacity.estimate(preset("bert-base"), mode="decode")
    with pytest.raises(LpuError, match="unknown dtype 'fp8'"):
        capacity.estimate(preset("tiny-llama"), dtype="fp8")
    assert "total on chip" in cap.table()
