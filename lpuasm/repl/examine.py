"""Examining the machine state at the current position: data symbols, SRAM
words, values on the streams, the results of typed instructions, the MXM planes
and the VXM ALUs (``print``, ``x``, ``info mxm``, ``info vxm``)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .. import chip, isa
from .. import semantics as sem
from ..diagnostics import did_you_mean
from ..image import DataSymbol
from ..sim import SimError, read_symbol
from .errors import DebugError, _hint, _one_line
from .notation import _ADDR_RE, _STREAM_RE, _format, _position, _ranges, _slice_bounds, _split_subscript


class Examine:
    """Debugger mixin: reading SRAM, streams and unit state as an instruction
    issued now would see them."""

    def _settle(self) -> None:
        """Commit the SRAM writes that an instruction issued now would see."""
        self.engine._commit(self.cycle)

    def sram_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(SRAM, valid mask) as seen now: for tests and ``x``."""
        self._need()
        self._settle()
        return self.engine.sram, self.engine.valid

    def examine(self, expr: str, fmt: str | None = None) -> str:
        """``print``/``x``: a data symbol (``y``, ``y[0:2, 0:8]``), an SRAM
        region (``W3.b0[0:4]``) or a stream at a position (``s3e@w2``,
        ``s3e@w2:15`` at an earlier cycle)."""
        self._need()
        expr = expr.strip()
        if not expr:
            raise DebugError("print: what? (a symbol, an address like W3.b0[0:4], or a stream like s3e@w2)")
        if fmt is not None and fmt not in isa.DTYPE_BYTES and fmt not in ("x", "u8"):
            raise DebugError(f"unknown format '/{fmt}'; use one of {', '.join(isa.DTYPE_BYTES)}, u8, x"
                             + _hint(did_you_mean(fmt, list(isa.DTYPE_BYTES))))
        m = _STREAM_RE.match(expr)
        if m:
            return self._examine_stream(m, fmt)
        m = re.fullmatch(r"s(\d+)([ew])", expr, re.IGNORECASE)
        if m:
            return self._examine_typed(int(m.group(1)), 0 if m.group(2).lower() == "e" else 1, fmt)
        if re.match(r"mxm\d+\b", expr, re.IGNORECASE) and expr.split("[")[0] not in self.symbol_names():
            return self._examine_mxm(expr, fmt)
        cfg = self.program.config
        sym, index, _ = self._region(expr, fmt, "print")
        shown = fmt if fmt in isa.DTYPE_BYTES else sym.dtype
        if shown != sym.dtype:
            sym = dataclasses.replace(sym, dtype=shown)
        self._settle()
        tensor = read_symbol(self.engine.sram, sym, cfg)
        if fmt in ("x", "u8"):
            tensor = tensor.view(np.dtype(f"u{tensor.dtype.itemsize}"))
        if index is not None:
            try:
                tensor = tensor[index]
            except IndexError as e:
                raise DebugError(f"{expr}: {e}") from None
        return f"{expr} ({sym.dtype}, {'x'.join(map(str, np.shape(tensor))) or 'scalar'}) at cycle " \
               f"{self.cycle}:\n{_format(tensor, fmt == 'x')}"

    def _region(self, expr: str, fmt: str | None, who: str):
        """A data symbol or SRAM words: (DataSymbol, numpy index or None, label)."""
        name, index = _split_subscript(expr)
        sym = next((d for d in self.data_symbols() if d.name == name), None)
        cfg = self.program.config
        if sym is None:
            a = _ADDR_RE.match(name)
            if a is None:
                raise DebugError(f"no data symbol '{name}'" + _hint(did_you_mean(
                    name, [d.name for d in self.data_symbols()])))
            east, slice_, bank = a.group(1).lower() == "e", int(a.group(2)), int(a.group(3))
            if slice_ >= cfg.mem_slices_per_hemisphere or bank >= cfg.banks_per_slice:
                raise DebugError(f"no SRAM slice {a.group(1).upper()}{slice_}.b{bank} on chip {cfg.name}")
            words = _slice_bounds(index[0] if index else None, cfg.words_per_bank)
            sym = DataSymbol(name.upper(), isa.addr_code(east, slice_, bank, words.start), "i8",
                             len(range(words.start, words.stop)), cfg.lanes)
            index = None
            if sym.rows == 0:
                raise DebugError(f"{name}: the word range is empty")
        return sym, index, expr

    def _stream_place(self, m: re.Match) -> tuple[int, int, int]:
        """(direction, index, position) of a ``s3e@w2`` match."""
        geo = chip.Geometry(self.program.config)
        where = m.group(3).lower()
        pos = _position(geo, where)
        if pos is None:
            raise DebugError(f"no position '{where}' (a queue like w3, e0, alu0, or vxm, sxmw, sxme, mxmw, mxme)")
        idx = int(m.group(1))
        if idx >= self.program.config.streams_per_direction:
            raise DebugError(f"no stream s{idx}: chip {self.program.config.name} has "
                             f"{self.program.config.streams_per_direction} per direction")
        return (0 if m.group(2).lower() == "e" else 1), idx, pos

    def _stream_byte(self, direction: int, idx: int, pos: int, at: int) -> tuple[np.ndarray, int]:
        """The byte plane passing *pos* on stream (direction, idx) at cycle *at*, and its producer row."""
        geo = chip.Geometry(self.program.config)
        w = self.analysis.writes
        same = (w.direction == direction) & (w.index == idx) & (
            (w.position <= pos) if direction == 0 else (w.position >= pos))
        same &= (w.cycle + np.abs(pos - w.position)) == at
        cand = np.nonzero(same)[0]
        name = f"s{idx}{'ew'[direction]}"
        if not len(cand):
            raise DebugError(f"no value passes {geo.position_name(pos)} on stream {name} at cycle {at}")
        j = int(cand[np.argmin(np.abs(pos - w.position[cand]))])  # the nearest upstream write wins
        value = self.engine.stream_value(j)
        if value is None:
            raise DebugError(f"the value on {name} at {geo.position_name(pos)}, cycle {at}, is no longer kept "
                             f"(no instruction reads it after cycle {at})")
        return value.view(np.int8), int(w.row[j])

    def _examine_stream(self, m: re.Match, fmt: str | None) -> str:
        p, cfg = self.program, self.program.config
        geo = chip.Geometry(cfg)
        direction, idx, pos = self._stream_place(m)
        at = self.cycle if m.group(4) is None else int(m.group(4))
        if at > self.cycle:
            raise DebugError(f"cycle {at} is in the future (now {self.cycle}); step there first")
        dtype = fmt if fmt in isa.DTYPE_BYTES else "i8"
        b = isa.DTYPE_BYTES[dtype]
        if idx % b or idx + b > cfg.streams_per_direction:
            raise DebugError(f"a {dtype} stream group starts at a multiple of {b} below {cfg.streams_per_direction}")
        planes, producers = [], []
        for k in range(b):
            value, row = self._stream_byte(direction, idx + k, pos, at)
            planes.append(value.view(np.uint8))
            producers.append(row)
        values = sem.from_planes(np.stack(planes)[None], dtype)[0]
        if fmt == "x":
            values = values.view(np.dtype(f"u{values.dtype.itemsize}"))
        src = p.text(producers[0])
        return (f"s{idx}{'ew'[direction]}@{geo.position_name(pos)} at cycle {at} ({dtype}, from row {producers[0]}: "
                f"{src}):\n{_format(values, fmt == 'x')}")

    def _examine_typed(self, idx: int, direction: int, fmt: str | None) -> str:
        """``print s2e``: the result of a typed instruction on that stream."""
        dtype = fmt if fmt in isa.DTYPE_BYTES else "i8"
        b = isa.DTYPE_BYTES[dtype]
        name = f"s{idx}{'ew'[direction]}"
        planes = [self.typed_streams.get((direction, idx + k)) for k in range(b)]
        if any(pl is None for pl in planes):
            raise DebugError(f"no typed instruction has written {name} here (a stream in the program needs a "
                             f"position: {name}@vxm)")
        values = sem.from_planes(np.stack(planes)[None], dtype)[0]
        if fmt == "x":
            values = values.view(np.dtype(f"u{values.dtype.itemsize}"))
        return f"{name} ({dtype}, typed) at cycle {self.cycle}:\n{_format(values, fmt == 'x')}"

    # ---- MXM planes and VXM ALUs ------------------------------------------------------------------
    def _plane(self, text: str):
        m = re.fullmatch(r"mxm(\d+)", text, re.IGNORECASE)
        n = self.program.config.mxm_planes
        if m is None or int(m.group(1)) >= n:
            raise DebugError(f"no MXM plane '{text}' (mxm0..mxm{n - 1})")
        self._settle()
        try:
            self.engine._apply_events(self.cycle)
        except SimError as e:
            raise DebugError(_one_line(e)) from None
        return int(m.group(1)), self.engine.planes[int(m.group(1))]

    def info_mxm(self, which: str = "") -> str:
        """``info mxm`` / ``info mxm0``: each plane's weights, buffer, products, accumulators."""
        self._need()
        cfg = self.program.config
        names = [which] if which else [f"mxm{i}" for i in range(cfg.mxm_planes)]
        out = []
        for name in names:
            p, st = self._plane(name)
            if st.installed and st.weights is not None:
                w = f"{st.dtype} {st.weights.shape[0]}x{st.weights.shape[1]} (install {st.version})"
            else:
                w = "zeros of any dtype (empty install)" if st.installed else "none installed"
            buf = (f"{len(st.buffer)} {st.buffer_dtype} row{'s' * (len(st.buffer) != 1)} of "
                   f"{chip.mxm_k(cfg, st.buffer_dtype)}" if st.buffer else "empty")
            ready = [int(e[0]) for e in st.pending]
            pend = (f"{len(ready)} (ready at cycle {', '.join(map(str, ready[:6]))}"
                    f"{', ...' if len(ready) > 6 else ''})" if ready else "none")
            acc = _ranges(sorted(st.acc)) if st.acc else "none"
            out.append(f"mxm{p} at cycle {self.cycle}:\n  weights     {w}\n  buffer      {buf}\n"
                       f"  products    {pend}\n  accumulator rows in use: {acc}"
                       + (f" ({len(st.acc)} of {cfg.mxm_acc_rows})" if st.acc else ""))
        return "\n".join(out)

    def _examine_mxm(self, expr: str, fmt: str | None) -> str:
        """``mxm0`` (as info mxm0), ``mxm0.weights[...]``, ``mxm0.buffer``, ``mxm0.acc[ROW]``."""
        name, index = _split_subscript(expr)
        plane, _, part = name.partition(".")
        if not part:
            if index is not None:
                raise DebugError(f"{expr}: index one of {plane}.weights, {plane}.buffer, {plane}.acc")
            return self.info_mxm(plane)
        p, st = self._plane(plane)
        if part == "weights":
            if not st.installed:
                raise DebugError(f"mxm{p} has no weights installed at cycle {self.cycle}")
            t = st.weights if st.weights is not None else np.zeros((0, self.program.config.lanes), np.int8)
        elif part == "buffer":
            if not st.buffer:
                raise DebugError(f"the weight buffer of mxm{p} is empty at cycle {self.cycle}")
            t = np.stack(st.buffer)
        elif part == "acc":
            if not st.acc:
                raise DebugError(f"no accumulator row of mxm{p} is in use at cycle {self.cycle}")
            if index is not None and isinstance(index[0], int):
                if index[0] not in st.acc:
                    raise DebugError(f"accumulator row {index[0]} of mxm{p} is not in use (in use: "
                                     f"{_ranges(sorted(st.acc))})")
                t, index = st.acc[index[0]], index[1:] or None
            else:
                rows = sorted(st.acc)
                t = np.stack([st.acc[r] for r in rows])
        else:
            raise DebugError(f"no '{part}' of an MXM plane (weights, buffer, acc)")
        t = np.asarray(t)
        dt = {np.dtype(v): k for k, v in sem.NP.items()}.get(t.dtype, t.dtype.name)
        if fmt == "x" or fmt == "u8":
            t = t.view(np.dtype(f"u{t.dtype.itemsize}"))
        elif fmt in isa.DTYPE_BYTES and np.dtype(sem.NP[fmt]) != t.dtype:
            if np.dtype(sem.NP[fmt]).itemsize != t.dtype.itemsize:
                raise DebugError(f"{name} holds {dt} values; /{fmt} needs the same element size")
            t = t.view(sem.NP[fmt])
        if index is not None:
            try:
                t = t[index]
            except IndexError as e:
                raise DebugError(f"{expr}: {e}") from None
        if fmt in isa.DTYPE_BYTES:
            dt = fmt
        return (f"{expr} ({dt}, {'x'.join(map(str, np.shape(t))) or 'scalar'}) at cycle {self.cycle}:\n"
                f"{_format(t, fmt == 'x')}")

    def info_vxm(self) -> str:
        """``info vxm``: each ALU's last issued instruction (and when its result
        is on its stream) and its next one."""
        self._need()
        p, cfg = self.program, self.program.config
        lines = [f"VXM ALUs at cycle {self.cycle}:"]
        for q, rows in enumerate(self._queue_rows):
            if cfg.unit_of_queue(q) != "vxm":
                continue
            done = int(np.searchsorted(rows, self.row, "left"))
            if done:
                r = int(rows[done - 1])
                ready = int(p.cycle[r] + self.analysis.delay[r])
                state = "result in flight" if ready > self.cycle else "idle"
                last = f"last @{int(p.cycle[r])} {p.text(r)} (result at cycle {ready}: {state})"
            else:
                last = "nothing issued yet"
            nxt = "done" if done >= len(rows) else f"@{int(p.cycle[rows[done]])} {p.text(int(rows[done]))}"
            lines.append(f"  {cfg.queues[q]:<5} {done}/{len(rows)}  {last}; next {nxt}")
        if len(lines) == 1:
            lines.append("  (no VXM instructions in the program)")
        return "\n".join(lines)
