"""lpuasm: assembler, simulator and debugger for a simulated Groq-style LPU.

The public API, loaded on first use (so that ``import lpuasm`` stays light for
the pygments lexer)::

    from lpuasm import assemble, assemble_file, load_image, save_image, run, config

    asm = assemble_file("kernel.lasm")            # Assembly: statements, ir, cycles, image
    result = run(asm.image)                       # RunResult: stats, final SRAM
    print(result.stats.cycles, result.tensor("y"))
"""

__version__ = "0.1.0"

_LAZY = {
    "assemble": ("lpuasm.assembler", "assemble"),
    "assemble_file": ("lpuasm.assembler", "assemble_file"),
    "Assembly": ("lpuasm.assembler", "Assembly"),
    "LpuError": ("lpuasm.diagnostics", "LpuError"),
    "ImageError": ("lpuasm.imagecheck", "ImageError"),
    "SimError": ("lpuasm.sim", "SimError"),
    "Image": ("lpuasm.image", "Image"),
    "load_image": ("lpuasm.imagefile", "load"),
    "save_image": ("lpuasm.imagefile", "save"),
    "load_program": ("lpuasm.program", "load_program"),
    "RunResult": ("lpuasm.sim", "RunResult"),
    "TSP_V1": ("lpuasm.config", "TSP_V1"),
    "TINY": ("lpuasm.config", "TINY"),
}

__all__ = ["__version__", "run", "config", *_LAZY]


def run(image, config=None, **options):
    """Run an :class:`Image` on the simulated chip (its own built-in config, or
    *config*); *options* are those of :func:`lpuasm.interp.run` (timing_only,
    allow_uninit, strict_fp, max_cycles, engine_name)."""
    from .disasm import config_of
    from .diagnostics import LpuError
    from .interp import run as _run
    from .program import load_program

    cfg = config or config_of(image)
    if cfg is None:
        raise LpuError(f"image is for chip config '{image.config_name}', which is not built in; pass its config")
    return _run(load_program(image, cfg), **options)


def __getattr__(name):
    if name == "config":
        import importlib

        return importlib.import_module("lpuasm.config")
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lpuasm' has no attribute {name!r}")
