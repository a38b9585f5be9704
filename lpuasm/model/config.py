"""Model configurations: a Llama-family decoder or a BERT-family encoder.

A :class:`ModelConfig` comes from a Hugging Face ``config.json`` (read with the
standard library), from a ``--shapes`` string, or from a named preset.  Field
names follow Hugging Face's, so ``to_hf_dict()`` writes a ``config.json`` that
``from_hf_dict()`` (and ``transformers``) read back.

Errors are :class:`~lpuasm.diagnostics.LpuError` with one line naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..diagnostics import LpuError

ARCHS = ("llama", "bert")

#: activation names accepted per arch (HF spelling); "gelu" is the exact erf form,
#: "gelu_new" / "gelu_pytorch_tanh" the tanh approximation.
LLAMA_ACTS = ("silu",)
BERT_ACTS = ("gelu", "gelu_new", "gelu_pytorch_tanh")

#: HF ``model_type`` / ``architectures`` entries we accept, per arch
_MODEL_TYPES = {"llama": "llama", "bert": "bert"}
_ARCHITECTURES = {
    "LlamaForCausalLM": "llama", "LlamaModel": "llama",
    "BertModel": "bert", "BertForMaskedLM": "bert", "BertForPreTraining": "bert",
    "BertForSequenceClassification": "bert", "BertForTokenClassification": "bert",
    "BertForQuestionAnswering": "bert",
}


@dataclass(frozen=True)
class ModelConfig:
    """Shapes and constants of one model.  ``arch`` is "llama" or "bert"; fields
    that do not apply to an arch keep their defaults and are not written."""

    arch: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int
    max_position_embeddings: int
    #: llama: grouped-query attention; equal to num_attention_heads for MHA (always for bert)
    num_key_value_heads: int = 0
    #: per-head width; 0 means hidden_size // num_attention_heads
    head_dim_: int = 0
    hidden_act: str = ""
    # llama
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    tie_word_embeddings: bool = False
    # bert
    layer_norm_eps: float = 1e-12
    type_vocab_size: int = 2
    #: a display name ("Llama-2-7B"); empty for anonymous shapes
    name: str = ""

    def __post_init__(self) -> None:
        if self.num_key_value_heads == 0:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        if not self.hidden_act:
            object.__setattr__(self, "hidden_act", "silu" if self.arch == "llama" else "gelu")
        _validate(self)

    # ---- derived ------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.head_dim_ or self.hidden_size // self.num_attention_heads

    @property
    def q_dim(self) -> int:
        """Width of the query projection (heads x head_dim)."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the key and of the value projection (kv_heads x head_dim)."""
        return self.num_key_value_heads * self.head_dim

    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 without GQA)."""
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def display_name(self) -> str:
        return self.name or f"{self.arch} {self.shapes_string()}"

    def with_layers(self, n: int) -> "ModelConfig":
        """The same model cut (or grown) to *n* layers."""
        base = re.sub(r" \(\d+ layers?\)$", "", self.name)
        name = f"{base} ({n} layer{'s' if n != 1 else ''})" if base and n != self._full_layers(base) else base
        return dataclasses.replace(self, num_hidden_layers=n, name=name)

    def _full_layers(self, base: str) -> int:
        """The layer count of the preset named *base* (or this config's own)."""
        for p in PRESETS.values():
            if p.name == base:
                return p.num_hidden_layers
        return self.num_hidden_layers

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def shapes_string(self) -> str:
        """The ``--shapes`` string that rebuilds this config's shapes."""
        parts = [f"hidden={self.hidden_size}", f"heads={self.num_attention_heads}"]
        if self.arch == "llama":
            parts.append(f"kv_heads={self.num_key_value_heads}")
        parts += [f"ffn={self.intermediate_size}", f"layers={self.num_hidden_layers}", f"vocab={self.vocab_size}"]
        if self.head_dim_ and self.head_dim_ != self.hidden_size // self.num_attention_heads:
            parts.append(f"head_dim={self.head_dim_}")
        return ",".join(parts)

    # ---- Hugging Face config.json --------------------------------------------
    def to_hf_dict(self) -> dict:
        """A Hugging Face ``config.json`` body for this config."""
        common = {
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": self.hidden_act,
            "torch_dtype": "float16",
        }
        if self.arch == "llama":
            d = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **common,
                 "num_key_value_heads": self.num_key_value_heads,
                 "rms_norm_eps": self.rms_norm_eps, "rope_theta": self.rope_theta,
                 "rope_scaling": self.rope_scaling,
                 "tie_word_embeddings": self.tie_word_embeddings,
                 "attention_bias": False, "mlp_bias": False}
            if self.head_dim_:
                d["head_dim"] = self.head_dim_
            return d
        return {"architectures": ["BertModel"], "model_type": "bert", **common,
                "layer_norm_eps": self.layer_norm_eps, "type_vocab_size": self.type_vocab_size,
                "position_embedding_type": "absolute"}


# ---- validation ---------------------------------------------------------------

def _validate(cfg: ModelConfig) -> None:
    where = f"model config{' ' + repr(cfg.name) if cfg.name else ''}"
    if cfg.arch not in ARCHS:
        raise LpuError(f"{where}: unknown architecture '{cfg.arch}' (supported: {', '.join(ARCHS)})")
    for f in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "vocab_size", "max_position_embeddings", "type_vocab_size"):
        v = getattr(cfg, f)
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise LpuError(f"{where}: {f} must be a positive integer, got {v!r}")
    if isinstance(cfg.head_dim_, bool) or not isinstance(cfg.head_dim_, int) or cfg.head_dim_ < 0:
        raise LpuError(f"{where}: head_dim must be a positive integer, got {cfg.head_dim_!r}")
    if not cfg.head_dim_ and cfg.hidden_size % cfg.num_attention_heads:
        raise LpuError(f"{where}: hidden_size {cfg.hidden_size} is not a multiple of "
                       f"num_attention_heads {cfg.num_attention_heads}")
    if cfg.num_attention_heads % cfg.num_key_value_heads:
        raise LpuError(f"{where}: num_attention_heads {cfg.num_attention_heads} is not a multiple of "
                       f"num_key_value_heads {cfg.num_key_value_heads}")
    for f in ("rms_norm_eps", "layer_norm_eps", "rope_theta"):
        v = getattr(cfg, f)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise LpuError(f"{where}: {f} must be a positive number, got {v!r}")
    if cfg.arch == "llama":
        if cfg.hidden_act not in LLAMA_ACTS:
            raise LpuError(f"{where}: hidden_act '{cfg.hidden_act}' is not supported for llama (supported: silu)")
        if cfg.head_dim % 2:
            raise LpuError(f"{where}: head_dim {cfg.head_dim} must be even (RoPE rotates pairs)")
        if cfg.rope_scaling is not None:
            _check_rope_scaling(where, cfg.rope_scaling)
    else:
        if cfg.hidden_act not in BERT_ACTS:
            raise LpuError(f"{where}: hidden_act '{cfg.hidden_act}' is not supported for bert "
                           f"(supported: {', '.join(BERT_ACTS)})")
        if cfg.num_key_value_heads != cfg.num_attention_heads:
            raise LpuError(f"{where}: bert has no grouped-query attention (num_key_value_heads must equal num_attention_heads)")


def _check_rope_scaling(where: str, rs: Any) -> None:
    if not isinstance(rs, dict):
        raise LpuError(f"{where}: rope_scaling must be an object or null, got {rs!r}")
    kind = rs.get("rope_type", rs.get("type"))
    need = {"linear": ("factor",),
            "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")}
    if kind == "default":
        return
    if kind not in need:
        raise LpuError(f"{where}: rope_scaling type {kind!r} is not supported (supported: default, linear, llama3)")
    for k in need[kind]:
        if not isinstance(rs.get(k), (int, float)) or isinstance(rs.get(k), bool) or rs[k] <= 0:
            raise LpuError(f"{where}: rope_scaling '{kind}' needs a positive number '{k}'")


# ---- from a Hugging Face config.json ----------------------------------------------

def detect_arch(data: dict) -> str:
    """'llama' or 'bert' from a config.json body's model_type / architectures."""
    mt = data.get("model_type")
    if mt in _MODEL_TYPES:
        return _MODEL_TYPES[mt]
    for a in data.get("architectures") or []:
        if a in _ARCHITECTURES:
            return _ARCHITECTURES[a]
    what = f"model_type {mt!r}" if mt is not None else f"architectures {data.get('architectures')!r}"
    raise LpuError(f"config.json: unknown architecture ({what}); supported: llama (LlamaForCausalLM), bert (BertModel)")


def from_hf_dict(data: dict, arch: str | None = None, name: str = "", source: str = "config.json") -> ModelConfig:
    """A :class:`ModelConfig` from a parsed Hugging Face config.json body.
    *arch* ("llama"/"bert") checks the file's own architecture when given."""
    if not isinstance(data, dict):
        raise LpuError(f"{source}: expected a JSON object at the top level")
    found = detect_arch(data)
    if arch is not None and arch != found:
        raise LpuError(f"{source}: describes a {found} model, but --arch {arch} was asked for")

    def req(key: str, kind: type = int) -> Any:
        if key not in data or data[key] is None:
            raise LpuError(f"{source}: missing required field '{key}' for a {found} model")
        return _typed(source, key, data[key], kind)

    def opt(key: str, default: Any, kind: type) -> Any:
        if data.get(key) is None:
            return default
        return _typed(source, key, data[key], kind)

    kw: dict[str, Any] = dict(
        arch=found,
        hidden_size=req("hidden_size"),
        intermediate_size=req("intermediate_size"),
        num_hidden_layers=req("num_hidden_layers"),
        num_attention_heads=req("num_attention_heads"),
        vocab_size=req("vocab_size"),
        max_position_embeddings=opt("max_position_embeddings", 2048 if found == "llama" else 512, int),
        name=name,
    )
    if found == "llama":
        for flag in ("attention_bias", "mlp_bias"):
            if data.get(flag):
                raise LpuError(f"{source}: {flag}=true is not supported (Llama projections have no biases here)")
        kw.update(
            num_key_value_heads=opt("num_key_value_heads", kw["num_attention_heads"], int),
            head_dim_=opt("head_dim", 0, int),
            hidden_act=opt("hidden_act", "silu", str),
            rms_norm_eps=opt("rms_norm_eps", 1e-6, float),
            rope_theta=opt("rope_theta", 10000.0, float),
            rope_scaling=data.get("rope_scaling"),
            tie_word_embeddings=opt("tie_word_embeddings", False, bool),
        )
        if kw["head_dim_"] == kw["hidden_size"] // kw["num_attention_heads"]:
            kw["head_dim_"] = 0
    else:
        pet = data.get("position_embedding_type", "absolute")
        if pet != "absolute":
            raise LpuError(f"{source}: position_embedding_type '{pet}' is not supported (only absolute)")
        kw.update(
            hidden_act=opt("hidden_act", "gelu", str),
            layer_norm_eps=opt("layer_norm_eps", 1e-12, float),
            type_vocab_size=opt("type_vocab_size", 2, int),
        )
    try:
        return ModelConfig(**kw)
    except LpuError as e:
        raise LpuError(f"{source}: {e}") from None


def _typed(source: str, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise LpuError(f"{source}: field '{key}' must be {_KIND_NAMES[kind]}, got {value!r}")
    return value


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def load_hf_config(path: str | Path, arch: str | None = None) -> ModelConfig:
    """Read ``config.json`` (or the config.json inside directory *path*)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text()
    except OSError as e:
        raise LpuError(f"cannot read model config '{p}': {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LpuError(f"{p}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return from_hf_dict(data, arch=arch, source=str(p))


def save_hf_config(path: str | Path, cfg: ModelConfig) -> None:
    Path(path).write_text(json.dumps(cfg.to_hf_dict(), indent=2) + "\n")


# ---- from a --shapes string -----------------------------------------------------------

#: shapes keys -> (field, type)
SHAPE_KEYS: dict[str, tuple[str, type]] = {
    "hidden": ("hidden_size", int),
    "heads": ("num_attention_heads", int),
    "kv_heads": ("num_key_value_heads", int),
    "ffn": ("intermediate_size", int),
    "layers": ("num_hidden_layers", int),
    "vocab": ("vocab_size", int),
    "max_pos": ("max_position_embeddings", int),
    "head_dim": ("head_dim_", int),
    "eps": ("", float),
    "theta": ("rope_theta", float),
    "type_vocab": ("type_vocab_size", int),
    "tie": ("tie_word_embeddings", bool),
    "act": ("hidden_act", str),
}


def default_ffn(arch: str, hidden: int) -> int:
    """FFN width when a shapes string gives none: 4 x hidden for bert; Llama's
    2/3 x 4 x hidden rounded up to a multiple of 256 (4096 -> 11008)."""
    if arch == "bert":
        return 4 * hidden
    return 256 * -(-int(8 * hidden / 3) // 256)


def parse_shapes(arch: str, text: str, base: ModelConfig | None = None) -> ModelConfig:
    """A config from ``key=value,...`` (keys: see :data:`SHAPE_KEYS`).  *text* may
    start with a preset name (``llama2-7b,layers=1``); *base* is another way to
    give one.  Without a base, ``hidden`` and ``heads`` are required; layers
    default to 1, vocab to 1000, max_pos to 2048 (llama) / 512 (bert)."""
    if arch not in ARCHS:
        raise LpuError(f"unknown architecture '{arch}' (supported: {', '.join(ARCHS)})")
    items = [s.strip() for s in text.split(",") if s.strip()]
    if items and "=" not in items[0]:
        base = preset(items[0])
        items = items[1:]
    if base is not None and base.arch != arch:
        raise LpuError(f"--shapes: preset '{base.name}' is a {base.arch} model, not {arch}")
    given: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise LpuError(f"--shapes: expected key=value, got '{item}'")
        if key not in SHAPE_KEYS:
            raise LpuError(f"--shapes: unknown key '{key}' (known: {', '.join(SHAPE_KEYS)})")
        if key in given:
            raise LpuError(f"--shapes: '{key}' given twice")
        given[key] = _parse_value(key, value.strip(), SHAPE_KEYS[key][1])
    if arch == "bert" and ("kv_heads" in given or "theta" in given or "tie" in given):
        bad = [k for k in ("kv_heads", "theta", "tie") if k in given]
        raise LpuError(f"--shapes: {', '.join(bad)} does not apply to bert")
    if arch == "llama" and "type_vocab" in given:
        raise LpuError("--shapes: type_vocab does not apply to llama")
    fields: dict[str, Any] = {}
    for key, value in given.items():
        fname = SHAPE_KEYS[key][0] or ("rms_norm_eps" if arch == "llama" else "layer_norm_eps")
        fields[fname] = value
    if base is not None:
        heads = fields.get("num_attention_heads")
        if heads is not None and "num_key_value_heads" not in fields:
            # keep the preset's kv heads where they still divide the new head count
            fields["num_key_value_heads"] = base.num_key_value_heads if heads % base.num_key_value_heads == 0 else heads
        if set(fields) == {"num_hidden_layers"}:
            return base.with_layers(fields["num_hidden_layers"])
        try:
            return dataclasses.replace(base, name="" if fields else base.name, **fields)
        except LpuError as e:
            raise LpuError(f"--shapes: {e}") from None
    for key in ("hidden", "heads"):
        if key not in given:
            raise LpuError(f"--shapes: missing '{key}' (e.g. --shapes hidden=256,heads=4,ffn=688,layers=2)")
    fields.setdefault("intermediate_size", default_ffn(arch, fields["hidden_size"]))
    fields.setdefault("num_hidden_layers", 1)
    fields.setdefault("vocab_size", 1000)
    fields.setdefault("max_position_embeddings", 2048 if arch == "llama" else 512)
    if arch == "llama":
        fields.setdefault("rms_norm_eps", 1e-5)
    try:
        return ModelConfig(arch=arch, **fields)
    except LpuError as e:
        raise LpuError(f"--shapes: {e}") from None


def _parse_value(key: str, value: str, kind: type) -> Any:
    try:
        if kind is int:
            v = float(value)
            if not v.is_integer():
                raise ValueError
            return int(v)
        if kind is float:
            return float(value)
        if kind is bool:
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ValueError
        return value
    except ValueError:
        raise LpuError(f"--shapes: '{key}' must be {_KIND_NAMES[kind]}, got '{value}'") from None


# ---- presets ---------------------------------------------------------------------

def _llama(name: str, hidden: int, ffn: int, layers: int, heads: int, kv: int, vocab: int = 32000,
           max_pos: int = 4096, eps: float = 1e-5, theta: float = 10000.0, **kw: Any) -> ModelConfig:
    return ModelConfig(arch="llama", hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
                       max_position_embeddings=max_pos, rms_norm_eps=eps, rope_theta=theta, name=name, **kw)


def _bert(name: str, hidden: int, ffn: int, layers: int, heads: int, vocab: int = 30522,
          max_pos: int = 512) -> ModelConfig:
    return ModelConfig(arch="bert", hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                       num_attention_heads=heads, vocab_size=vocab, max_position_embeddings=max_pos,
                       layer_norm_eps=1e-12, type_vocab_size=2, name=name)


PRESETS: dict[str, ModelConfig] = {
    # small enough for one tsp-v1 chip (see capacity.py), with GQA
    "tiny-llama": _llama("tiny-llama", 256, 688, 2, 4, 2, vocab=1000, max_pos=512),
    "llama2-7b": _llama("Llama-2-7B", 4096, 11008, 32, 32, 32),
    "llama2-13b": _llama("Llama-2-13B", 5120, 13824, 40, 40, 40),
    "llama2-70b": _llama("Llama-2-70B", 8192, 28672, 80, 64, 8),
    "llama3-8b": _llama("Llama-3-8B", 4096, 14336, 32, 32, 8, vocab=128256, max_pos=8192, theta=500000.0),
    "tinyllama-1.1b": _llama("TinyLlama-1.1B", 2048, 5632, 22, 32, 4, max_pos=2048),
    "tiny-bert": _bert("tiny-bert", 128, 512, 2, 2, vocab=1000, max_pos=128),
    "bert-base": _bert("BERT-base", 768, 3072, 12, 12),
    "bert-large": _bert("BERT-large", 1024, 4096, 24, 16),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise LpuError(f"unknown model preset '{name}' (known: {', '.join(PRESETS)})") from None
