"""Weights: Hugging Face safetensors checkpoints in, random weights, and out.

A *weights* dict maps Hugging Face tensor names to numpy float16 arrays in
Hugging Face's layout (``nn.Linear`` weights are ``(out_features,
in_features)``).  Llama names are exactly the checkpoint's
(``model.layers.0.self_attn.q_proj.weight``); BERT names are ``BertModel``'s
(``encoder.layer.0.attention.self.query.weight``) -- a ``bert.`` prefix, as
saved by ``BertForMaskedLM`` and friends, is stripped on load, and old
``LayerNorm.gamma``/``beta`` names are read as ``weight``/``bias``.  Tensors a
config does not use (heads, poolers, ``rotary_emb.inv_freq`` buffers,
``position_ids``) are ignored.

Files are read with ``safetensors.numpy``; numpy has no bfloat16, so BF16
tensors (what most Llama checkpoints hold) are read from the file's raw bytes
at the offsets its header gives and widened exactly to float32 before the cast
to float16.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..diagnostics import LpuError
from .config import ModelConfig, load_hf_config, save_hf_config

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


# ---- the tensors a config needs --------------------------------------------------------

def expected_tensors(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor *cfg* needs, name -> shape, in checkpoint order."""
    h, f, v = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    out: dict[str, tuple[int, ...]] = {}
    if cfg.arch == "llama":
        out["model.embed_tokens.weight"] = (v, h)
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}."
            out[p + "self_attn.q_proj.weight"] = (cfg.q_dim, h)
            out[p + "self_attn.k_proj.weight"] = (cfg.kv_dim, h)
            out[p + "self_attn.v_proj.weight"] = (cfg.kv_dim, h)
            out[p + "self_attn.o_proj.weight"] = (h, cfg.q_dim)
            out[p + "mlp.gate_proj.weight"] = (f, h)
            out[p + "mlp.up_proj.weight"] = (f, h)
            out[p + "mlp.down_proj.weight"] = (h, f)
            out[p + "input_layernorm.weight"] = (h,)
            out[p + "post_attention_layernorm.weight"] = (h,)
        out["model.norm.weight"] = (h,)
        if not cfg.tie_word_embeddings:
            out["lm_head.weight"] = (v, h)
        return out
    out["embeddings.word_embeddings.weight"] = (v, h)
    out["embeddings.position_embeddings.weight"] = (cfg.max_position_embeddings, h)
    out["embeddings.token_type_embeddings.weight"] = (cfg.type_vocab_size, h)
    out["embeddings.LayerNorm.weight"] = (h,)
    out["embeddings.LayerNorm.bias"] = (h,)
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for lin, shape in (("attention.self.query", (cfg.q_dim, h)), ("attention.self.key", (cfg.q_dim, h)),
                           ("attention.self.value", (cfg.q_dim, h)), ("attention.output.dense", (h, cfg.q_dim)),
                           ("intermediate.dense", (f, h)), ("output.dense", (h, f))):
            out[p + lin + ".weight"] = shape
            out[p + lin + ".bias"] = (shape[0],)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            out[p + ln + ".weight"] = (h,)
            out[p + ln + ".bias"] = (h,)
    return out


def layer_tensors(cfg: ModelConfig, i: int) -> dict[str, tuple[int, ...]]:
    """The tensors of layer *i* only."""
    prefix = f"model.layers.{i}." if cfg.arch == "llama" else f"encoder.layer.{i}."
    return {k: s for k, s in expected_tensors(cfg.with_layers(i + 1)).items() if k.startswith(prefix)}


def parameter_count(cfg: ModelConfig) -> int:
    return sum(int(np.prod(s)) for s in expected_tensors(cfg).values())


def _canonical(name: str, arch: str) -> str:
    if arch == "bert":
        if name.startswith("bert."):
            name = name[5:]
        if name.endswith("LayerNorm.gamma"):
            name = name[:-5] + "weight"
        elif name.endswith("LayerNorm.beta"):
            name = name[:-4] + "bias"
    return name


# ---- random weights ---------------------------------------------------------------------

def random_weights(cfg: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float16 weights with activations of order one throughout:
    linear weights ~ N(0, 1/in_features), embeddings ~ N(0, 1), norm scales
    ~ 1 + N(0, 0.1), biases ~ N(0, 0.02) (LayerNorm biases N(0, 0.1))."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_tensors(cfg).items():
        if name.endswith("embeddings.weight") or name.endswith("embed_tokens.weight"):
            a = rng.standard_normal(shape)
        elif len(shape) == 2:
            a = rng.standard_normal(shape) / np.sqrt(shape[1])
        elif "norm" in name.lower():
            a = (1.0 + 0.1 * rng.standard_normal(shape)) if name.endswith("weight") else 0.1 * rng.standard_normal(shape)
        else:
            a = 0.02 * rng.standard_normal(shape)
        out[name] = a.astype(np.float16)
    return out


# ---- loading ---------------------------------------------------------------------------

def load_checkpoint(path: str | Path, cfg: ModelConfig | None = None, arch: str | None = None,
                    dtype: type = np.float16) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """Read a Hugging Face checkpoint directory: ``config.json`` (unless *cfg*
    is given) and ``model.safetensors`` or the shards listed in
    ``model.safetensors.index.json``.  Returns the config and the weights,
    checked against :func:`expected_tensors` and cast to *dtype*.  When *cfg*
    has fewer layers than the checkpoint, only those layers are read."""
    d = Path(path)
    if not d.is_dir():
        raise LpuError(f"checkpoint '{d}' is not a directory (expected config.json and model.safetensors inside)")
    if cfg is None:
        cfg = load_hf_config(d / "config.json", arch=arch)
    files = _weight_files(d)
    want = expected_tensors(cfg)
    found: dict[str, tuple[Path, str]] = {}
    for f in files:
        for raw in _keys(f):
            name = _canonical(raw, cfg.arch)
            if name in want:
                found.setdefault(name, (f, raw))
    missing = [n for n in want if n not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LpuError(f"checkpoint '{d}': missing tensor '{missing[0]}'{more} for a {cfg.display_name} model")
    weights: dict[str, np.ndarray] = {}
    by_file: dict[Path, list[tuple[str, str]]] = {}
    for name in want:
        f, raw = found[name]
        by_file.setdefault(f, []).append((name, raw))
    for f, names in by_file.items():
        for (name, raw), a in zip(names, _read_tensors(f, [r for _, r in names])):
            if tuple(a.shape) != want[name]:
                raise LpuError(f"checkpoint '{d}': tensor '{raw}' has shape {tuple(a.shape)}, "
                               f"expected {want[name]} for {cfg.display_name}")
            if not np.issubdtype(a.dtype, np.floating):
                raise LpuError(f"checkpoint '{d}': tensor '{raw}' has dtype {a.dtype}, expected a float type")
            weights[name] = np.ascontiguousarray(a.astype(dtype, copy=False))
    return cfg, {n: weights[n] for n in want}


def _weight_files(d: Path) -> list[Path]:
    index = d / INDEX_FILE
    if index.exists():
        try:
            data = json.loads(index.read_text())
            wmap = data["weight_map"]
            if not isinstance(wmap, dict):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError):
            raise LpuError(f"{index}: not a safetensors index (expected a JSON object with a 'weight_map' object)") from None
        files = []
        for shard in dict.fromkeys(wmap.values()):
            p = d / shard
            if not p.exists():
                raise LpuError(f"{index}: shard '{shard}' is listed but not in '{d}'")
            files.append(p)
        return files
    single = d / SINGLE_FILE
    if single.exists():
        return [single]
    shards = sorted(d.glob("model-*-of-*.safetensors"))
    if shards:
        return shards
    raise LpuError(f"checkpoint '{d}': no {SINGLE_FILE} (nor {INDEX_FILE} with shards)")


def _keys(f: Path) -> list[str]:
    from safetensors import safe_open
    try:
        with safe_open(str(f), framework="np") as h:
            return list(h.keys())
    except Exception as e:  # safetensors raises its own SafetensorError
        raise LpuError(f"cannot read safetensors file '{f}': {e}") from None


def _read_tensors(f: Path, names: list[str]):
    """Yield the tensors *names* of file *f*, in order."""
    from safetensors import safe_open
    with safe_open(str(f), framework="np") as h:
        for name in names:
            if h.get_slice(name).get_dtype() == "BF16":
                yield _read_bf16(f, name)
            else:
                yield h.get_tensor(name)


def _read_bf16(f: Path, name: str) -> np.ndarray:
    """numpy has no bfloat16: read the raw bytes and widen them to float32
    (a bfloat16 is the top half of a float32, so this is exact)."""
    with open(f, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        info = header[name]
        start, end = info["data_offsets"]
        fh.seek(8 + n + start)
        raw = np.frombuffer(fh.read(end - start), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


# ---- saving ---------------------------------------------------------------------------

def save_checkpoint(path: str | Path, cfg: ModelConfig, weights: dict[str, np.ndarray],
                    shards: int = 1, dtype: type | str | None = None) -> Path:
    """Write *cfg* and *weights* as a Hugging Face checkpoint directory:
    ``config.json`` plus ``model.safetensors`` (``shards == 1``) or
    ``model-0000i-of-0000n.safetensors`` and ``model.safetensors.index.json``.
    *dtype* casts every tensor first (``"bf16"`` writes bfloat16, truncated
    toward zero from float32 -- for tests of the bf16 reader)."""
    from safetensors.numpy import save_file
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    save_hf_config(d / "config.json", cfg)
    names = list(weights)
    if shards < 1:
        raise LpuError("save_checkpoint: shards must be at least 1")
    groups = [names[i::shards] for i in range(shards)] if shards > 1 else [names]
    groups = [sorted(g, key=names.index) for g in groups if g]
    writer = _save_bf16 if dtype in ("bf16", "bfloat16") else save_file
    cast = None if dtype in (None, "bf16", "bfloat16") else np.dtype(dtype)
    files = [SINGLE_FILE] if len(groups) == 1 else \
        [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))]
    weight_map = {}
    total = 0
    for fname, group in zip(files, groups):
        tensors = {n: np.ascontiguousarray(weights[n] if cast is None else weights[n].astype(cast)) for n in group}
        writer(tensors, str(d / fname), metadata={"format": "pt"})
        for n in group:
            weight_map[n] = fname
            total += tensors[n].nbytes
    if len(groups) > 1:
        (d / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return d


def _save_bf16(tensors: dict[str, np.ndarray], filename: str, metadata: dict | None = None) -> None:
    header: dict = {"__metadata__": metadata or {}}
    blobs = []
    offset = 0
    for n, a in tensors.items():
        bits = (np.asarray(a, dtype=np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        header[n] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [offset, offset + len(bits)]}
        blobs.append(bits)
        offset += len(bits)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(filename, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
