"""The notation of the debugger's commands: reading subscripts (``y[0:2, 0:8]``),
SRAM addresses (``W3.b0[0:4]``) and stream positions (``s3e@w2``), and writing
tensors and row ranges."""

from __future__ import annotations

import re

import numpy as np

from .. import chip
from .errors import DebugError, _int

_ADDR_RE = re.compile(r"^([we])(\d+)\.b(\d+)(?:\[(.*)\])?$", re.IGNORECASE)
_STREAM_RE = re.compile(r"^s(\d+)([ew])@([a-z0-9()]+)(?::(\d+))?$", re.IGNORECASE)


def _split_subscript(expr: str):
    """``name[...]`` -> (name, numpy index or None); only integers and slices."""
    m = re.fullmatch(r"([A-Za-z_][\w.]*)\s*(?:\[(.*)\])?", expr)
    if not m:
        raise DebugError(f"cannot read '{expr}' (write a symbol, optionally with [rows, cols] like y[0:2, 0:8])")
    if m.group(2) is None:
        return m.group(1), None
    parts = [s.strip() for s in m.group(2).split(",")]
    index = []
    for part in parts:
        if ":" in part:
            bits = part.split(":")
            if len(bits) > 3:
                raise DebugError(f"bad slice '{part}'")
            vals = [None if not b.strip() else _int(b.strip(), "index") for b in bits]
            index.append(slice(*vals))
        else:
            index.append(_int(part, "index"))
    return m.group(1), tuple(index)


def _slice_bounds(ix, n: int) -> range:
    if ix is None:
        return range(0, 1)
    if isinstance(ix, int):
        if not 0 <= ix < n:
            raise DebugError(f"word {ix} is outside the bank (0..{n - 1})")
        return range(ix, ix + 1)
    r = range(n)[ix]
    if r.step != 1:
        raise DebugError("an SRAM word range takes no step")
    return r


def _position(geo: chip.Geometry, where: str) -> int | None:
    fixed = {"vxm": geo.vxm, "sxmw": geo.sxm(False), "sxme": geo.sxm(True), "mxmw": 0, "mxme": 2 * geo.n + 4}
    if where in fixed:
        return fixed[where]
    q = geo.config.queue_id(where)
    return geo.queue_position(q) if q is not None else None


def _format(values, hexa: bool = False) -> str:
    opts = dict(threshold=4000, linewidth=110)
    if hexa:
        width = np.asarray(values).dtype.itemsize * 2
        opts["formatter"] = {"int": lambda v: f"0x{int(v):0{width}x}"}
    with np.printoptions(**opts):
        return str(np.asarray(values))


def _inline(values) -> str:
    """A tensor on the rest of a line, or from the next line if it needs several."""
    if values is None:
        return " (not seen)"
    text = _format(values)
    return (" " if "\n" not in text else "\n") + text


def _ranges(values: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if i == j else f"{values[i]}-{values[j]}")
        i = j + 1
    return ", ".join(out)
