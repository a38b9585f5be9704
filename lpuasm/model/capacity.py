"""Capacity honesty: how many bytes a model needs on chip against one chip's SRAM.

Counting rules (unpadded: a lower bound -- the SRAM layout may round tensors up
to whole vectors of ``lanes`` bytes):

* **matrices** (projections, MLP, LM head, embedding table) at the build dtype:
  2 bytes per element for fp16; for int8, 1 byte plus one float32 scale per
  output row (per-channel scales);
* **vectors** (norm scales, biases, BERT's position/token-type tables are
  matrices) as float32, 4 bytes: the VXM computes in float32;
* **KV cache** (llama): ``layers x 2 x kv_heads x head_dim x seq`` at 2 bytes
  (fp16) or 1 byte (int8) per element;
* **activations**: one layer's working set at a time, in float32: the residual
  stream, the normed input, q/k/v, the attention output, the two MLP
  intermediates and their product, and one head's attention scores at a time
  (the layers run one after another, so activations are reused) -- an estimate;
* the **token embedding** table is counted on chip only when
  ``embedding_on_chip`` (default off: the host does the lookup and streams
  the rows in); the **LM head** when ``lm_head_on_chip`` (default on).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ChipConfig, load as load_chip
from ..diagnostics import LpuError
from .checkpoint import expected_tensors
from .config import ModelConfig

MODES = ("prefill", "decode")
DTYPES = ("fp16", "int8")
F32_BYTES = 4


def fmt_bytes(n: float) -> str:
    """Binary units, three significant figures: 13.5 GiB, 220 MiB, 1.50 KiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            v = n / scale
            return f"{v:.3g} {unit}"
    return f"{int(n)} B"


def tensor_bytes(name: str, shape: tuple[int, ...], dtype: str) -> int:
    """On-chip bytes of one weight tensor under the counting rules above."""
    if len(shape) == 1:
        return shape[0] * F32_BYTES
    rows, cols = shape
    if dtype == "int8":
        return rows * cols + rows * F32_BYTES
    return rows * cols * 2


@dataclass
class Capacity:
    """The bytes a model needs on chip, by part, against one chip's SRAM."""

    model: str
    chip: str
    sram_bytes: int
    mode: str
    dtype: str
    seq: int
    layers: int
    #: weights of one decoder/encoder layer (the largest, should they differ)
    layer_weight_bytes: int
    #: token embedding table (on chip only with embedding_on_chip)
    embedding_bytes: int
    #: other embedding tables and the embedding LayerNorm (bert), final norm (llama)
    other_weight_bytes: int
    #: LM head (llama, untied or tied: the tied table is counted here once more
    #: only if the embedding is not on chip)
    lm_head_bytes: int
    embedding_on_chip: bool
    lm_head_on_chip: bool
    kv_cache_bytes: int
    activation_bytes: int
    #: program memory, when the caller models it (0 otherwise)
    program_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def weight_bytes(self) -> int:
        """All weights that live on chip."""
        w = self.layers * self.layer_weight_bytes + self.other_weight_bytes
        if self.embedding_on_chip:
            w += self.embedding_bytes
        if self.lm_head_on_chip:
            w += self.lm_head_bytes
        return w

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.kv_cache_bytes + self.activation_bytes + self.program_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.sram_bytes

    @property
    def chips_for_weights(self) -> int:
        return -(-self.weight_bytes // self.sram_bytes)

    @property
    def chips_total(self) -> int:
        return -(-self.total_bytes // self.sram_bytes)

    def message(self) -> str:
        """One line: what is needed against what one chip holds."""
        chip = f"one {self.chip} chip holds {fmt_bytes(self.sram_bytes)}"
        if self.weight_bytes > self.sram_bytes:
            where = "" if self.embedding_on_chip else " (embedding table on the host)"
            return (f"{self.model} needs {fmt_bytes(self.weight_bytes)} of {self.dtype} weights{where}; {chip}: "
                    f"~{self.chips_for_weights} chips just for the weights")
        verdict = "fits" if self.fits else f"does not fit (~{self.chips_total} chips)"
        return (f"{self.model} ({self.mode}, seq {self.seq}, {self.dtype}) needs {fmt_bytes(self.total_bytes)} "
                f"({fmt_bytes(self.weight_bytes)} weights + {fmt_bytes(self.kv_cache_bytes)} KV cache + "
                f"{fmt_bytes(self.activation_bytes)} activations"
                + (f" + {fmt_bytes(self.program_bytes)} program" if self.program_bytes else "")
                + f"); {chip}: {verdict}")

    def table(self) -> str:
        rows = [("weights per layer", self.layer_weight_bytes),
                (f"weights, {self.layers} layers", self.layers * self.layer_weight_bytes),
                ("embedding" + ("" if self.embedding_on_chip else " (host, not counted)"), self.embedding_bytes),
                ("lm head" + ("" if self.lm_head_on_chip else " (host, not counted)"), self.lm_head_bytes),
                ("norms / other tables", self.other_weight_bytes),
                (f"KV cache (seq {self.seq})", self.kv_cache_bytes),
                ("activations (est.)", self.activation_bytes)]
        if self.program_bytes:
            rows.append(("program", self.program_bytes))
        rows += [("total on chip", self.total_bytes), (f"one {self.chip} chip", self.sram_bytes)]
        return "\n".join(f"  {k:<34} {fmt_bytes(v):>10}" for k, v in rows)


def estimate(cfg: ModelConfig, chip: ChipConfig | str | None = "tsp-v1", mode: str = "decode",
             dtype: str = "fp16", seq: int = 1, layers: int | None = None, embedding_on_chip: bool = False,
             lm_head_on_chip: bool = True, program_bytes: int = 0) -> Capacity:
    """The capacity of *cfg* (cut to *layers* when given) in *mode* for *seq*
    tokens: the prompt length for prefill, the KV-cache length for decode
    (the cache holds *seq* positions, the new token included)."""
    if mode not in MODES:
        raise LpuError(f"unknown mode '{mode}' (expected {' or '.join(MODES)})")
    if dtype not in DTYPES:
        raise LpuError(f"unknown dtype '{dtype}' (expected {' or '.join(DTYPES)})")
    if seq < 1:
        raise LpuError(f"seq must be at least 1, got {seq}")
    if layers is not None:
        cfg = cfg.with_layers(layers)
    chip_cfg = chip if isinstance(chip, ChipConfig) else load_chip(chip)
    shapes = expected_tensors(cfg.with_layers(1))
    layer_prefix = "model.layers.0." if cfg.arch == "llama" else "encoder.layer.0."
    layer_w = sum(tensor_bytes(n, s, dtype) for n, s in shapes.items() if n.startswith(layer_prefix))
    embed_name = "model.embed_tokens.weight" if cfg.arch == "llama" else "embeddings.word_embeddings.weight"
    embed_w = tensor_bytes(embed_name, shapes[embed_name], dtype)
    lm_head = 0
    if cfg.arch == "llama":
        lm_head = tensor_bytes("lm_head.weight", (cfg.vocab_size, cfg.hidden_size), dtype)
        if cfg.tie_word_embeddings and embedding_on_chip:
            lm_head = 0  # shares the embedding table
    other = sum(tensor_bytes(n, s, dtype) for n, s in shapes.items()
                if not n.startswith(layer_prefix) and n not in (embed_name, "lm_head.weight"))
    h, f = cfg.hidden_size, cfg.intermediate_size
    rows = seq if mode == "prefill" else 1
    ctx = seq
    if cfg.arch == "llama":
        kv_elem = 2 if dtype == "fp16" else 1
        kv = cfg.num_hidden_layers * 2 * cfg.kv_dim * ctx * kv_elem
    else:
        kv = 0
        if mode == "decode":
            raise LpuError("bert is an encoder: only prefill mode applies")
    per_row = 2 * h + cfg.q_dim + 2 * cfg.kv_dim + cfg.q_dim + 3 * f
    act = rows * per_row * F32_BYTES + rows * ctx * F32_BYTES  # + one head's scores
    if cfg.arch == "llama" and lm_head_on_chip:
        act = max(act, rows * cfg.vocab_size * F32_BYTES + rows * h * F32_BYTES)
    return Capacity(model=cfg.display_name, chip=chip_cfg.name, sram_bytes=chip_cfg.sram_bytes, mode=mode,
                    dtype=dtype, seq=seq, layers=cfg.num_hidden_layers, layer_weight_bytes=layer_w,
                    embedding_bytes=embed_w, other_weight_bytes=other, lm_head_bytes=lm_head,
                    embedding_on_chip=embedding_on_chip, lm_head_on_chip=lm_head_on_chip and cfg.arch == "llama",
                    kv_cache_bytes=kv, activation_bytes=act, program_bytes=program_bytes)


def check_fits(cap: Capacity) -> None:
    """Raise the one-line message as an LpuError when *cap* does not fit."""
    if not cap.fits:
        raise LpuError(cap.message())
