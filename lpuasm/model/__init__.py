"""The model builder's chip-independent foundation.

* :mod:`.config` -- :class:`ModelConfig` (Llama decoder / BERT encoder) from a
  Hugging Face ``config.json``, a ``--shapes`` string or a preset;
* :mod:`.checkpoint` -- safetensors checkpoints (single or sharded) in and out,
  expected tensor names and shapes, random weights;
* :mod:`.reference` -- the numpy reference forward passes;
* :mod:`.capacity` -- bytes needed on chip against one chip's SRAM.

See docs/model.md.
"""

from .capacity import Capacity, check_fits, estimate
from .checkpoint import expected_tensors, load_checkpoint, parameter_count, random_weights, save_checkpoint
from .config import PRESETS, ModelConfig, from_hf_dict, load_hf_config, parse_shapes, preset
from .reference import KVCache, ForwardResult, bert_forward, forward, llama_decode, llama_forward, llama_prefill

__all__ = [
    "Capacity", "check_fits", "estimate",
    "expected_tensors", "load_checkpoint", "parameter_count", "random_weights", "save_checkpoint",
    "PRESETS", "ModelConfig", "from_hf_dict", "load_hf_config", "parse_shapes", "preset",
    "KVCache", "ForwardResult", "bert_forward", "forward", "llama_decode", "llama_forward", "llama_prefill",
]
