"""``lpuasm expand``: a lowered program printed back as flat source.

Every directive is evaluated and every macro, ``.rept``, ``.for`` and ``.if``
expanded: the text holds the data and constants as directives, then one
instruction per line in source order, with its pin, indented two spaces per
level of macro expansion, and a comment naming its source line and the macros
it was expanded from (innermost first).  Assembling the text gives the same
program (text, data and symbols) as the original; only the source map differs.
"""

from __future__ import annotations

from . import config as chipconfig
from . import isa
from .disasm import _const_value, _data_directive, _Symbolizer, format_instruction
from .ir import IR, PIN_ABS, PIN_REL


def expanded_text(ir: IR, source_name: str = "") -> str:
    cfg = ir.config
    lines = [f"; expansion of {source_name or 'a program'}: chip {cfg.name}, {len(ir)} instructions"]
    if cfg.name in chipconfig.BUILTIN and chipconfig.BUILTIN[cfg.name].hash == cfg.hash:
        lines.append(f".chip {cfg.name}")
    else:
        lines.append(f"; assemble with --config for chip '{cfg.name}'")
    for name in sorted(ir.consts):
        lines.append(f".equ {name}, {_const_value(ir.consts[name])}")
    for d in sorted(ir.data, key=lambda d: d.addr):
        lines.append(_data_directive(d, cfg.lanes))
    labels: dict[int, list[str]] = {}
    for name, row in sorted(ir.labels.items()):
        labels.setdefault(row, []).append(name)
    symbolize = _Symbolizer(ir.data, cfg.lanes)
    chains: dict[int, tuple[int, str]] = {-1: (0, "")}
    words, pin_kind, pin = ir.word.tolist(), ir.pin_kind.tolist(), ir.pin.tolist()
    files, line, chain = ir.loc_file.tolist(), ir.loc_line.tolist(), ir.loc_chain.tolist()
    for i, word in enumerate(words):
        for name in labels.get(i, ()):
            lines.append(f"{name}:")
        row, fields = isa.unpack(word)
        text = format_instruction(row, fields, cfg, symbolize)
        if pin_kind[i] == PIN_ABS:
            text += f" @{pin[i]}"
        elif pin_kind[i] == PIN_REL:
            text += f" @+{pin[i]}"
        depth, via = chains.get(chain[i]) or chains.setdefault(chain[i], _describe(ir, chain[i]))
        code = f"    {'  ' * depth}{text}"
        lines.append(f"{code:<48} ; {ir.files[files[i]]}:{line[i]}{via}")
    for name in labels.get(len(ir), ()):
        lines.append(f"{name}:")
    return "\n".join(lines) + "\n"


def _describe(ir: IR, k: int) -> tuple[int, str]:
    """(depth, ``in a < b`` text) of the macro chain *k*."""
    names = []
    while k >= 0:
        f = ir.frames[k]
        names.append(f"{f.macro} ({ir.files[f.file]}:{f.line})")
        k = f.parent
    return len(names), (", in " + " < ".join(names)) if names else ""
