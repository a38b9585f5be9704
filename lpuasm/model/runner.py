"""Running built models: inputs, the run, per-layer cycles, the check against the reference.

One mechanism for ``lpuasm model build/run/verify`` and ``lpuasm demo`` (the
CLI only parses arguments and prints): :func:`prepare` makes the tokens, their
embeddings and (for decode) the KV cache of the earlier tokens on the host;
:func:`build` makes the program and assembles it; :func:`run_image` runs an
image (with a new input if given) and measures every layer; :func:`verify`
runs the independent numpy forward pass of :mod:`lpuasm.model.reference` and
compares layer by layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..config import ChipConfig
from ..diagnostics import LpuError
from ..image import DataSymbol, Image
from ..layout import tensor_to_words
from ..outline import build_outline
from .blocks import tile_act, untile_act
from .build import ModelProgram, build_bert, build_llama
from .config import ModelConfig

F32 = np.float32

#: verify fails when a layer's max |chip - reference| exceeds this fraction of
#: the layer's max |reference| (fp16: fp16 activations into every matrix
#: product, silu and softmax from tanh/exp in f32; int8: weights quantised per
#: output channel and activations per row, 8 bits each; docs/model.md).
TOLERANCES = {"fp16": 2e-2, "int8": 6e-2}
TOLERANCE = TOLERANCES["fp16"]


@dataclass
class Inputs:
    ids: np.ndarray          # all token ids (the prompt; for decode its last one is the new token)
    x0: np.ndarray           # (rows, hidden) f32 embeddings of the rows the program runs
    cache: object | None     # reference KVCache of the earlier tokens (decode)


def prepare(cfg: ModelConfig, weights: dict[str, np.ndarray] | None, mode: str, seq: int, seed: int = 0,
            ids: np.ndarray | None = None) -> Inputs:
    """Token ids (seeded random unless given), their embeddings, and for decode
    the cache of the first seq - 1 tokens from a host-side reference prefill."""
    from . import reference

    if not 1 <= seq <= cfg.max_position_embeddings:
        raise LpuError(f"seq {seq}: {cfg.display_name} takes 1 .. {cfg.max_position_embeddings} positions "
                       f"(max_position_embeddings)")
    rng = np.random.default_rng(seed)
    if ids is None:
        ids = rng.integers(0, cfg.vocab_size, seq)
    ids = np.asarray(ids, np.int64)
    if cfg.arch == "bert":
        if mode != "prefill":
            raise LpuError("bert is an encoder: only prefill applies")
        x0 = None if weights is None else reference.bert_embed(cfg, weights, ids)
        return Inputs(ids, x0 if x0 is not None else np.zeros((seq, cfg.hidden_size), F32), None)
    if weights is None:
        rows = seq if mode == "prefill" else 1
        return Inputs(ids, np.zeros((rows, cfg.hidden_size), F32), None)
    embed = np.asarray(weights["model.embed_tokens.weight"], F32)
    if mode == "prefill":
        return Inputs(ids, embed[ids], None)
    cache = None
    if seq > 1:
        cache = reference.llama_forward(cfg, weights, ids[:-1], lm_head=False).cache
    return Inputs(ids, embed[ids[-1:]], cache)


@dataclass
class Built:
    program: ModelProgram
    assembly: object
    image: Image
    seconds_build: float
    seconds_assemble: float


def build(cfg: ModelConfig, weights, chip: ChipConfig, mode: str, seq: int, inputs: Inputs | None = None,
          timing_only: bool = False, source_dir=None, dtype: str = "fp16") -> Built:
    t0 = time.perf_counter()
    if cfg.arch == "bert":
        if mode != "prefill":
            raise LpuError("bert is an encoder: only prefill applies")
        if dtype != "fp16":
            raise LpuError(f"--dtype {dtype}: int8 weights are built for llama models only (bert: fp16)")
        prog = build_bert(cfg, None if timing_only else weights, chip, seq,
                          x0=None if inputs is None else inputs.x0, timing_only=timing_only)
    else:
        prog = build_llama(cfg, None if timing_only else weights, chip, mode, seq,
                           x0=None if inputs is None else inputs.x0,
                           cache=None if inputs is None else inputs.cache, timing_only=timing_only, dtype=dtype)
    t1 = time.perf_counter()
    asm = prog.assemble(source_dir)
    t2 = time.perf_counter()
    return Built(prog, asm, asm.image, t1 - t0, t2 - t1)


# ---- reading an image back -------------------------------------------------------------------

META_KEYS = ("MODEL_LAYERS", "MODEL_ROWS", "MODEL_HIDDEN", "MODEL_POS", "MODEL_SEQ", "MODEL_TIMING_ONLY")


def image_meta(image: Image, where: str = "image") -> dict[str, int]:
    consts = {c.name: c.value for c in image.consts}
    missing = [k for k in META_KEYS if k not in consts]
    if missing:
        raise LpuError(f"{where}: not a model image (no {', '.join(missing)}; build one with lpuasm model build)")
    return {k: int(consts[k]) for k in META_KEYS}


def _symbol(image: Image, name: str) -> DataSymbol:
    for d in image.data:
        if d.name == name:
            return d
    raise LpuError(f"model image has no data symbol '{name}'")


def set_input(image: Image, x: np.ndarray, chip: ChipConfig, where: str = "--input") -> None:
    """Replace the image's input ``x0`` with *x* (rows x hidden embeddings)."""
    meta = image_meta(image)
    x = np.asarray(x)
    want = (meta["MODEL_ROWS"], meta["MODEL_HIDDEN"])
    if x.ndim == 1 and meta["MODEL_ROWS"] == 1:
        x = x[None, :]
    if x.shape != want:
        raise LpuError(f"{where}: expected an array of shape {want} (rows x hidden embeddings), got {x.shape}")
    if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
        raise LpuError(f"{where}: expected finite floating-point values")
    sym = _symbol(image, "x0")
    if sym.init is None:
        raise LpuError(f"{where}: this image was built for timing only; it has no input to replace")
    sym.init = tensor_to_words(tile_act(x.astype(F32), chip.lanes), "f32", chip.lanes)


def layer_spans(outline, layers: int) -> list[tuple[int, int]]:
    """(first, last) issue cycle of each layer's instructions: those whose
    outermost macro call is in ``layer<i>.lasm`` (lpuasm.outline)."""
    spans = []
    for i in range(layers):
        calls = [c for c in outline.calls if outline.layer.get(c.file) == i]
        spans.append((min(c.first for c in calls), max(c.last for c in calls)) if calls else (0, 0))
    return spans


@dataclass
class ModelRun:
    meta: dict[str, int]
    result: object
    spans: list[tuple[int, int]]
    seconds: float
    outline: object = None   # lpuasm.outline.Outline: every outermost call's instructions and cycles
    hidden: list[np.ndarray] = field(default_factory=list)   # per layer (rows, hidden); empty if timing-only

    def layer_cycles(self) -> list[int]:
        """Cycles each layer adds: from the previous layer's last issue to this one's."""
        out, prev = [], 0
        for first, last in self.spans:
            out.append(last - prev if prev else last + 1)
            prev = last
        return out


def run_image(image: Image, chip: ChipConfig, timing_only: bool = False, x: np.ndarray | None = None) -> ModelRun:
    from ..interp import run
    from ..program import load_program

    meta = image_meta(image)
    timing_only = timing_only or bool(meta["MODEL_TIMING_ONLY"])
    if x is not None:
        set_input(image, x, chip)
    prog = load_program(image, chip)
    t0 = time.perf_counter()
    result = run(prog, timing_only=timing_only)
    secs = time.perf_counter() - t0
    outline = build_outline(prog)
    out = ModelRun(meta, result, layer_spans(outline, meta["MODEL_LAYERS"]), secs, outline=outline)
    if not timing_only:
        for i in range(meta["MODEL_LAYERS"]):
            out.hidden.append(untile_act(result.tensor(f"x{i + 1}"), meta["MODEL_ROWS"], meta["MODEL_HIDDEN"],
                                         chip.lanes))
    return out


# ---- the check ---------------------------------------------------------------------------------

@dataclass
class LayerError:
    layer: int
    max_abs: float
    max_rel: float          # max_abs / max |reference|

    @property
    def ok(self) -> bool:
        return self.max_rel <= TOLERANCE


def reference_layers(cfg: ModelConfig, weights, inputs: Inputs, mode: str) -> list[np.ndarray]:
    """The independent numpy forward pass: each layer's output for the rows the chip ran."""
    from . import reference

    if cfg.arch == "bert":
        res = reference.bert_forward(cfg, weights, inputs.ids)
    elif mode == "prefill":
        res = reference.llama_forward(cfg, weights, inputs.ids, lm_head=False)
    else:
        res = reference.llama_forward(cfg, weights, inputs.ids[-1:], cache=inputs.cache, lm_head=False)
    return [np.asarray(x, F32) for x in res.layers]


def compare(got: list[np.ndarray], want: list[np.ndarray]) -> list[LayerError]:
    out = []
    for i, (g, w) in enumerate(zip(got, want)):
        err = float(np.max(np.abs(g.astype(np.float64) - w)))
        scale = float(np.max(np.abs(w))) or 1.0
        out.append(LayerError(i, err, err / scale))
    return out
