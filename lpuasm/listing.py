"""Listings and symbol maps: human-readable views of an image."""

from __future__ import annotations

from . import isa
from .config import ChipConfig
from .diagnostics import SourceCache
from .disasm import _Symbolizer, format_instruction, walk
from .image import Image


def listing(image: Image, config: ChipConfig, sources: SourceCache | None = None) -> str:
    """Every word of the image in issue order: cycle, queue, word, source
    location, disassembly (indented two spaces per level of macro expansion)
    and the source line it came from."""
    sources = sources or SourceCache()
    sm = image.srcmap
    symbolize = _Symbolizer(image.data, config.lanes)
    records = sorted(walk(image), key=lambda r: (r.cycle, r.queue, r.word_index))
    locs = [f"{sm.files[int(sm.file[r.srcrow])]}:{int(sm.line[r.srcrow])}" if r.srcrow >= 0 else "" for r in records]
    lw = max([24] + [len(x) for x in locs])
    out = [f"; listing: chip {config.name}, {image.instruction_count()} instructions, "
           f"{image.word_count()} words",
           f"; {'cycle':>8}  {'queue':<6} {'word':<18}  {'location':<{lw}} {'instruction':<36} source"]
    for r, loc in zip(records, locs):
        text = format_instruction(r.row, r.fields, config, symbolize)
        if r.srcrow >= 0 and len(sm.chain) and sm.chain[r.srcrow] >= 0:
            text = "  " * _depth(sm, int(sm.chain[r.srcrow])) + text  # macro expansion depth
        src = ""
        if r.srcrow >= 0:
            src = (sources.line(sm.files[int(sm.file[r.srcrow])], int(sm.line[r.srcrow])) or "").strip()
        out.append(f"  {r.cycle:>8}  {config.queues[r.queue]:<6} {r.word:#018x}  {loc:<{lw}} {text:<36} {src}".rstrip())
    return "\n".join(out) + "\n"


def _depth(sm, k: int) -> int:
    d = 0
    while k >= 0:
        d, k = d + 1, sm.frames[k].parent
    return d


def symbol_map(image: Image, config: ChipConfig) -> str:
    """Every symbol of the image: data (address, dtype, shape, words), constants, labels."""
    out = [f"; symbols: chip {config.name}", f"; {'name':<20} {'kind':<6} value"]
    for d in image.data:
        n = d.words_per_plane(config.lanes)
        init = "initialised" if d.init is not None else "reserved"
        where = f"{n} word{'s' * (n != 1)}"
        if d.planes > 1:
            first = isa.addr_name(d.addr).split(".")[0]
            last = isa.addr_name(d.plane_addr(d.planes - 1)).split(".")[0]
            where += f" in each of {d.planes} slices {first}..{last}"
        out.append(f"  {d.name:<20} {'data':<6} {isa.addr_name(d.addr)}  {d.dtype} {d.rows}x{d.cols}  {where}, {init}")
    for c in image.consts:
        out.append(f"  {c.name:<20} {'const':<6} {c.value!r}")
    cycles = {(r.queue, r.position): r.cycle for r in walk(image) if r.position >= 0}
    for lab in image.labels:
        if lab.queue < 0:
            out.append(f"  {lab.name:<20} {'label':<6} end of program")
        else:
            out.append(f"  {lab.name:<20} {'label':<6} {config.queues[lab.queue]}:{lab.index} "
                       f"@{cycles.get((lab.queue, lab.index), '?')}")
    return "\n".join(out) + "\n"
