"""The assembler pipeline: named stages that keep their results.

    source text --parse--> syntax tree --lower--> IR --schedule--> cycles --encode--> Image

:func:`assemble` runs the stages in order and returns an :class:`Assembly`
holding every intermediate result, so the CLI, the REPL and the tests can stop
after any stage (``stop_after``) and look.  Errors are collected per stage and
raised together as one :class:`LpuError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from . import config as chipconfig
from .config import ChipConfig, ConfigError
from .diagnostics import Diagnostics, LpuError, SourceCache
from .encode import encode
from .image import Image
from .ir import IR
from .lower import Lowerer
from .parser import parse
from .schedule import schedule
from .syntax import Binary, Directive, Name, Str

STAGES = ("parse", "lower", "schedule", "encode")


@dataclass
class Assembly:
    """Results of the pipeline stages that ran."""

    filename: str
    config: ChipConfig | None = None
    sources: SourceCache = field(default_factory=SourceCache)
    statements: list | None = None
    ir: IR | None = None
    cycles: np.ndarray | None = None
    image: Image | None = None
    warnings: list = field(default_factory=list)


def stdlib_dir() -> Path:
    """Folder of the bundled macro library (package data of lpuasm.stdlib)."""
    try:
        return Path(str(resources.files("lpuasm.stdlib")))
    except ModuleNotFoundError:  # running from a source tree without install
        return Path(__file__).resolve().parent.parent / "stdlib"


def assemble(text: str, filename: str = "<input>", config: ChipConfig | None = None,
             include_dirs=(), defines: dict | None = None, stop_after: str = "encode") -> Assembly:
    """Assemble *text*.  *config* None means: the file's ``.chip``, else tsp-v1.
    Raises LpuError with every diagnostic found."""
    if stop_after not in STAGES:
        raise ValueError(f"unknown stage {stop_after!r}")
    asm = Assembly(filename)
    diags = Diagnostics(asm.sources)
    asm.sources.add(filename, text)
    asm.statements = parse(text, filename, asm.sources)
    if stop_after == "parse":
        return asm
    asm.config = _chip(asm.statements, config, filename, diags)
    diags.check()
    lowerer = Lowerer(asm.config, diags, include_dirs, defines, parse=parse)
    path = Path(filename) if not filename.startswith("<") else None
    lowerer.lower_file(asm.statements, path)
    asm.ir = lowerer.finish()
    diags.check()
    asm.warnings = [d for d in diags.items if d.severity == "warning"]
    if stop_after == "lower":
        return asm
    asm.cycles = schedule(asm.ir, diags)
    diags.check()
    if stop_after == "schedule":
        return asm
    asm.image = encode(asm.ir, asm.cycles)
    asm.warnings = [d for d in diags.items if d.severity == "warning"]
    return asm


def assemble_file(path: str | Path, **kwargs) -> Assembly:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LpuError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LpuError(f"{path}: not a text file (is it an .lpu image?)") from None
    return assemble(text, str(path), **kwargs)


def _chip(statements, config: ChipConfig | None, filename: str, diags: Diagnostics) -> ChipConfig:
    """The chip config: the caller's, checked against a ``.chip`` directive if any."""
    chips = [s for s in statements if isinstance(s, Directive) and s.name == "chip"]
    if not chips:
        return config or chipconfig.TSP_V1
    for extra in chips[1:]:
        diags.error("'.chip' given twice", extra.span)
    st = chips[0]
    arg = st.args[0] if len(st.args) == 1 else None
    name = _dashed_name(arg)
    if isinstance(arg, Str):
        spec = arg.value if arg.value in chipconfig.BUILTIN else str(Path(filename).parent / arg.value)
    elif name is not None:
        spec = name
    else:
        diags.error("'.chip' expects a config name (tiny, tsp-v1) or a \"file.toml\"", st.span)
        return config or chipconfig.TSP_V1
    try:
        wanted = chipconfig.load(spec)
    except ConfigError as exc:
        diags.error(str(exc), arg.span)
        return config or chipconfig.TSP_V1
    if config is not None and config.hash != wanted.hash:
        diags.error(f"this file is for chip '{wanted.name}', but the chip config in use is '{config.name}'",
                    arg.span, f"drop --config, or assemble with --config {wanted.name}")
    return wanted


def _dashed_name(node) -> str | None:
    """``tsp-v1`` parses as a subtraction; read it back as a name."""
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Binary) and node.op == "-":
        left, right = _dashed_name(node.left), _dashed_name(node.right)
        if left is not None and right is not None:
            return f"{left}-{right}"
    return None
