"""Encoding: a scheduled IR -> an :class:`Image`.

Each queue's instructions become one stream of 64-bit words in issue order.
Idle cycles between them (gaps in the schedule and explicit ``nop`` rows alike)
become NOP words, a MEM read and write co-issued in one cycle get the pair bit
on the first of the two words, so ``nop`` in the source and a pinned cycle give the same
bytes; a trailing ``nop`` (idle time after a queue's last instruction) leaves
no trace.  The source map gets one row per non-NOP word.
"""

from __future__ import annotations

import numpy as np

from . import isa
from .image import ConstSymbol, Image, LabelSymbol, MacroFrame, SourceMap
from .ir import IR
from .schedule import durations

MAX_NOP = (1 << 32) - 1


def nop_word(queue: int, n: int) -> int:
    return isa.pack(isa.NOP, {"q": queue, "n": n})


def encode(ir: IR, cycles: np.ndarray) -> Image:
    cfg = ir.config
    dur = durations(ir)
    keep = ir.op != isa.NOP.opcode
    rows = np.nonzero(keep)[0]
    order = rows[np.argsort(ir.queue[rows], kind="stable")]
    text: dict[int, np.ndarray] = {}
    queue_sorted = ir.queue[order]
    bounds = np.flatnonzero(np.diff(queue_sorted.astype(np.int64))) + 1
    groups = np.split(order, bounds) if len(order) else []
    for g in groups:
        q = int(ir.queue[g[0]])
        c = cycles[g]
        ends = c + dur[g]
        gaps = c - np.concatenate(([0], ends[:-1]))
        words = ir.word[g].copy()
        paired = np.nonzero(gaps < 0)[0]  # a MEM slice's read and write in one cycle
        if len(paired):
            words[paired - 1] |= np.uint64(isa.PAIR_BIT)
            gaps[paired] = 0
        if gaps.any():
            words = _with_nops(words, gaps, q)
        text[q] = words.astype(np.uint64)
    # source map, rows in (queue, position) order, files renumbered by first use
    file_ids: dict[int, int] = {}
    fmap = np.zeros(max(len(ir.files), 1), dtype=np.int64)
    if len(order):
        used, first = np.unique(ir.loc_file[order], return_index=True)
        for f in used[np.argsort(first)].tolist():
            file_ids[f] = len(file_ids)
    chain = ir.loc_chain[order]
    frames, cmap = _frames(ir, chain, file_ids)
    for old, new in file_ids.items():
        fmap[old] = new
    srcmap = SourceMap(
        files=[ir.files[old] for old in file_ids],
        file=fmap[ir.loc_file[order]].astype(np.uint16),
        line=ir.loc_line[order].copy(),
        col=ir.loc_col[order].copy(),
        chain=cmap[chain.astype(np.int64) + 1].astype(np.int32) if len(chain) else chain.copy(),
        frames=frames,
    )
    # labels name the next kept row at or after their IR row
    position = np.full(len(ir), -1, dtype=np.int64)
    for g in groups:
        position[g] = np.arange(len(g))
    kept_rows = rows  # ascending IR order
    labels = []
    for name, row in ir.labels.items():
        k = np.searchsorted(kept_rows, row)
        if k < len(kept_rows):
            r = int(kept_rows[k])
            labels.append(LabelSymbol(name, int(ir.queue[r]), int(position[r])))
        else:
            labels.append(LabelSymbol(name, -1, 0))
    return Image(
        config_name=cfg.name,
        config_hash=cfg.hash,
        text=text,
        data=sorted(ir.data, key=lambda d: d.addr),
        consts=sorted((ConstSymbol(k, v) for k, v in ir.consts.items()), key=lambda s: s.name),
        labels=sorted(labels, key=lambda s: s.name),
        srcmap=srcmap,
    )


def _frames(ir: IR, chain: np.ndarray, file_ids: dict[int, int]) -> tuple[list[MacroFrame], np.ndarray]:
    """The macro frames used by *chain* (source-map order), canonical: frames of
    equal content merged, numbered by first use with every parent before its
    children, their files renumbered with *file_ids* (extended as needed).
    Returns the frames and a map from IR chain + 1 to image chain."""
    cmap = np.full(len(ir.frames) + 1, -1, dtype=np.int64)
    if not ir.frames or not len(chain):
        return [], cmap
    frames: list[MacroFrame] = []
    index: dict[tuple, int] = {}
    done = np.zeros(len(ir.frames), dtype=bool)

    def canon(k: int) -> None:
        path = []
        while k >= 0 and not done[k]:
            path.append(k)
            k = ir.frames[k].parent
        for k in reversed(path):
            f = ir.frames[k]
            fid = file_ids.setdefault(f.file, len(file_ids))
            key = (f.macro, fid, f.line, f.col, int(cmap[f.parent + 1]))
            if key not in index:
                index[key] = len(frames)
                frames.append(MacroFrame(*key))
            cmap[k + 1] = index[key]
            done[k] = True

    used, first = np.unique(chain, return_index=True)
    for k in used[np.argsort(first)].tolist():
        if k >= 0:
            canon(k)
    return frames, cmap


def _with_nops(words: np.ndarray, gaps: np.ndarray, queue: int) -> np.ndarray:
    """Insert NOP words before the words that follow a gap."""
    if gaps.max() > MAX_NOP:
        out: list[int] = []
        for w, gap in zip(words.tolist(), gaps.tolist()):
            while gap > 0:
                n = min(gap, MAX_NOP)
                out.append(nop_word(queue, n))
                gap -= n
            out.append(w)
        return np.array(out, dtype=np.uint64)
    where = np.nonzero(gaps)[0]
    n_lo = next(f.lo for f in isa.NOP.fields if f.name == "n")
    nops = np.uint64(nop_word(queue, 0)) | (gaps[where].astype(np.uint64) << np.uint64(n_lo))
    return np.insert(words, where, nops)
