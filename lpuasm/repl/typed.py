"""Instructions typed at the debugger's prompt: assembled in the context of the
loaded image and run at once on the live chip state.

Design (the "local effects" one).  The line is assembled by the real assembler
(:func:`lpuasm.assembler.assemble`) as a one-instruction program that declares
the image's data symbols (``.space`` at their addresses) and its constants plus
the ``.equ`` typed so far, so diagnostics have the assembler's wording.  The
instruction then runs on the live state with the engines' own unit code
(:class:`lpuasm.interp._Engine`'s MEM and MXM handlers, :class:`lpuasm.units.UnitEngine`'s
VXM and SXM handlers), "issued" at the current cycle at its unit's position:

* each stream operand is the result of an earlier typed instruction on that
  stream, if there is one since the debugger last moved; else the program's
  value passing the instruction's position at the current cycle (an error if
  none passes);
* results go to a scratch copy of their streams (``print s2e`` shows them),
  which later typed instructions read and which the next move clears: typed
  instructions are an immediate mode, no cycles pass between them, and the
  program's own instructions never see their stream results;
* an SRAM write (``write``, ``scatter``) lands now, through the engine's
  write path, so it is in the undo log: the program sees it from here on, and
  going back to before it drops it, while a replay over it re-applies it
  (an injection: :mod:`.history`);
* a data directive (``.data``, ``.space``, ``.blob``, ``.npy``) is lowered by
  the assembler after the symbols in scope and placed in SRAM the same way;
* an MXM instruction (``lw``, ``iw``, ``abc``, ``acc``) acts on its plane at
  once, as if its latency were zero: ``lw`` appends a row to the weight buffer,
  ``iw`` installs the buffer, ``abc`` queues a product that is ready now,
  ``acc`` takes the oldest product if it is ready (products the program
  queued earlier come first) into an accumulator row and puts the row on its
  streams (``print s8e``).  The plane's new state stays going forward and is
  re-applied by replays, like a typed SRAM write (an injection); the
  program's own MXM instructions then find it (an extra weight row, an
  installed matrix, a product taken), so they may fail where they did not;
* a typed SRAM change that alters the words of an enabled watchpoint
  reports it (old and new values) with the instruction's output; the
  debugger does not move.

C2C instructions carry no data in this simulator, and ICU ones only pace and
order the program's instruction queues (or end it), so neither runs.
"""

from __future__ import annotations

import re

import numpy as np

from .. import isa
from .. import semantics as sem
from ..analysis import analyse
from ..diagnostics import LpuError
from ..interp import _Engine
from ..program import load_program
from ..sim import SimError
from .core import Debugger
from .errors import DebugError
from .history import _Injection
from .notation import _format

RUNNABLE = ("mem", "vxm", "sxm", "mxm")


def is_typed(line: str) -> bool:
    """Whether *line* is an instruction or a directive rather than a command."""
    words = line.split()
    if not words:
        return False
    first = words[0]
    return first.startswith(".") or first.split(".")[0].lower() in isa.TABLE


def _context(d: Debugger, skip: str | None = None) -> tuple[str, dict]:
    """Source declaring the image's data symbols, and the constants as defines."""
    lines = [f".space {s.name}, {isa.addr_name(s.addr)}, {s.dtype}, {s.rows}, {s.cols}"
             for s in d.data_symbols()]
    defines = {c.name: c.value for c in d.program.image.consts}
    defines.update(d.equs)
    defines.pop(skip, None)
    return "\n".join(lines) + ("\n" if lines else ""), defines


def _assemble(d: Debugger, line: str, skip: str | None = None):
    from ..assembler import assemble

    prefix, defines = _context(d, skip)
    first = prefix.count("\n") + 1
    try:
        return assemble(prefix + line + "\n", "<prompt>", config=d.program.config, defines=defines)
    except LpuError as e:
        diags = [g for g in e.diagnostics if getattr(g, "severity", "error") == "error"] or e.diagnostics
        if not diags:
            raise DebugError(str(e).splitlines()[0]) from None
        g = diags[0]
        span = getattr(g, "span", None)
        col = f" (column {span.col})" if span is not None and getattr(span, "line", first) == first else ""
        raise DebugError(f"{g.message}{col}") from None


def run_typed(d: Debugger, line: str) -> str:
    """Assemble *line* and run it now; the state is intact on any error."""
    d._need()
    text = line.split(";", 1)[0].strip()
    if text.startswith("."):
        return _directive(d, text)
    mnemonic = text.split()[0].split(".")[0].lower()
    if mnemonic in _REFUSED:
        raise DebugError(f"'{mnemonic}' cannot run at the prompt: {_REFUSED[mnemonic]}")
    # a pin is ignored: the instruction issues now (pinned, the scheduler lets it read any stream)
    asm = _assemble(d, re.sub(r"\s@\S+\s*$", "", text) + " @0")
    p = load_program(asm.image, d.program.config)
    if len(p) != 1:
        raise DebugError(f"type one instruction at a time ('{text}' is {len(p)})")
    row = isa.BY_OPCODE[int(p.op[0])]
    if row.unit not in RUNNABLE:
        raise DebugError(f"'{row.mnemonic}' cannot run at the prompt: {_REFUSED[row.mnemonic]}")
    a = analyse(p, check=False)
    cfg = p.config
    # inputs: typed results first, else the program's value passing this position now
    planes = []
    for k in range(len(a.reads.row)):
        key = (int(a.reads.direction[k]), int(a.reads.index[k]))
        if key in d.typed_streams:
            planes.append(d.typed_streams[key])
        else:
            value, _ = d._stream_byte(key[0], key[1], int(a.position[0]), d.cycle)
            planes.append(value.view(np.uint8))
    inputs = np.stack(planes)[None] if planes else np.zeros((1, 0, cfg.lanes), np.uint8)
    outputs = {}
    where = f"{p.text(0)}  at cycle {d.cycle} on {cfg.queues[int(p.queue[0])]}"
    before = d._watched_values() if row.mnemonic in ("write", "scatter") else []
    if row.unit == "mxm":
        return _run_mxm(d, p, a, row, inputs, where)
    shim = _Shim(d, a, inputs, outputs)
    d._settle()
    try:
        getattr(shim, "_" + row.unit)(np.array([0]), row)
    except SimError as e:
        raise DebugError(_cause(e)) from None
    d.engine.nan_inf += shim.nan_inf
    if "written" in outputs:
        addr, values = outputs["written"]
        text = f"{where}:\n{addr} = {_format(values.view(np.int8))}"
        reports = d._typed_watch_reports(before, p.text(0))
        return f"{text}\n{reports}" if reports else text
    if "planes" in outputs:
        out = outputs["planes"][0]
        w = a.writes
        for k in range(len(w.row)):
            d.typed_streams[(int(w.direction[k]), int(w.index[k]))] = out[k].copy()
        first = f"s{int(w.index[0])}{'ew'[int(w.direction[0])]}"
        dt = _result_dtype(p, row, len(w.row))
        if dt is not None:
            values = sem.from_planes(out[None], dt)[0]
            return f"{where}:\n{first} ({dt}) = {_format(values)}"
        return f"{where}:\n{first}.. ({len(w.row)} streams, i8) =\n{_format(out.view(np.int8))}"
    return where


_REFUSED = {
    **{m: "C2C instructions carry no data in this simulator (multi-chip runs come later)"
       for m in ("send", "receive", "deskew")},
    "nop": "it only delays its queue, and a typed instruction issues on no queue of the program",
    "repeat": "it repeats the previous instruction of a queue of the program; type that instruction again",
    "ifetch": "it only costs its queue fetch cycles, and a typed instruction issues on no queue of the program",
    "sync": "it parks a queue of the program until a notify, at the program's start only",
    "notify": "it releases the queues parked by sync, at the program's start only",
    "config": "it sets a unit's configuration register, which the simulator does not model",
    "halt": "it ends the program; the program's own halt ends it (continue runs there)",
}


def _cause(e: SimError) -> str:
    return e.cause if getattr(e, "cause", None) else str(e).splitlines()[0]


def _run_mxm(d: Debugger, p, a, row: isa.Instr, inputs: np.ndarray, where: str) -> str:
    """An MXM instruction typed at the prompt: its effect on the plane now
    (zero latency), kept as an injection that replays re-apply."""
    a.delay = np.zeros_like(a.delay)  # this one-row analysis is ours: the effect lands now
    outputs: dict = {}

    def redo(engine) -> None:
        shim = _Shim(d, a, inputs, outputs, engine)
        shim.planes, shim.events, shim.seq = engine.planes, [], 0
        shim._mxm(np.array([0]), row)
        shim._apply_events(1 << 62)
        engine.nan_inf += shim.nan_inf

    d._settle()
    try:
        d.engine._apply_events(d.cycle)  # the program's own plane events due by now
    except SimError as e:
        raise DebugError(_cause(e)) from None
    saved = d.engine.save_state()
    try:
        redo(d.engine)
    except SimError as e:
        d.engine.load_state(saved)  # the state stays intact
        raise DebugError(_cause(e)) from None
    d.injections.append(_Injection(d.row, d.cycle, redo=redo, applied=True))
    f = _Engine._fields(_FieldsOnly(p), np.array([0]), row)
    k = int(f["p"][0])
    st = d.engine.planes[k]
    if row.mnemonic == "lw":
        what = f"mxm{k} weight buffer: {len(st.buffer)} {st.buffer_dtype} row{'s' * (len(st.buffer) != 1)}"
    elif row.mnemonic == "iw":
        what = (f"mxm{k} weights: {st.dtype} {st.weights.shape[0]}x{st.weights.shape[1]} (install {st.version})"
                if st.weights is not None else f"mxm{k} weights: zeros of any dtype (install {st.version})")
    elif row.mnemonic == "abc":
        what = f"mxm{k} products: {len(st.pending)} queued, the typed one ready now"
    else:
        out = outputs["planes"][0]
        w = a.writes
        for j in range(len(w.row)):
            d.typed_streams[(int(w.direction[j]), int(w.index[j]))] = out[j].copy()
        dt = isa.DTYPE_NAMES[int(f["dt"][0])]
        values = sem.from_planes(out[None], dt)[0]
        first = f"s{int(w.index[0])}{'ew'[int(w.direction[0])]}"
        return (f"{where}:\nmxm{k} accumulator row {int(f['row'][0])} -> {first} ({dt}) = {_format(values)}")
    return f"{where}:\n{what}"


def _result_dtype(p, row: isa.Instr, groups: int) -> str | None:
    if row.unit != "vxm" or not row.dtypes:
        return "i8" if groups == 1 else None
    f = _Engine._fields(_FieldsOnly(p), np.array([0]), row)
    key = "dt2" if row.mnemonic == "vcvt" else "dt"
    return isa.DTYPE_NAMES[int(f[key][0])]


class _FieldsOnly:
    def __init__(self, p):
        self.p = p


class _Shim(_Engine):
    """The engine's unit code run on one typed instruction: SRAM is the live
    engine's, stream operands are given, results are captured."""

    def __init__(self, d: Debugger, a, inputs: np.ndarray, outputs: dict, engine: _Engine | None = None):
        # no _Engine.__init__: no ring buffer
        self.d, self.a, self.p, self.cfg = d, a, a.program, a.program.config
        self.live = engine if engine is not None else d.engine
        self.sram, self.valid = self.live.sram, self.live.valid
        self.allow_uninit, self.strict_fp = d.allow_uninit, False
        self.nan_inf = 0
        self.cycle = d.cycle
        self._given, self._captured = inputs, outputs

    def _inputs(self, rows):
        return self._given

    def _outputs(self, rows, planes):
        self._captured["planes"] = np.asarray(planes)

    def _queue_write(self, commit, where, values) -> None:
        # lands now, through the live engine's write path (and so its undo log); replays re-apply it
        self.d._inject(_Injection(self.d.row, self.d.cycle, [(where, values)]))
        h, sl, b, off = where
        first = int(np.ravel(off)[0])
        self._captured["written"] = (isa.addr_name(isa.addr_code(bool(h[0]), int(sl[0]), int(b[0]), first)),
                                     np.asarray(self.live.sram[int(h[0]), int(sl[0]), int(b[0]), first]))


DATA_DIRECTIVES = (".data", ".space", ".blob", ".npy")


def _directive(d: Debugger, text: str) -> str:
    """``.equ NAME, VALUE`` (or ``.set``): a constant for later typed
    instructions and conditions; ``.data``, ``.space``, ``.blob``, ``.npy``: a
    tensor placed in SRAM now (:func:`_data_directive`)."""
    word = text.split()[0].lower()
    if word in DATA_DIRECTIVES:
        return _data_directive(d, text, word)
    if word not in (".equ", ".set"):
        raise DebugError(f"only .equ, .set, {', '.join(DATA_DIRECTIVES)} work at the prompt ('{word}' does not)")
    rest = text[len(word):].strip()
    name = rest.split(",", 1)[0].strip()
    if not name or "," not in rest:
        raise DebugError(f"{word}: write {word} NAME, VALUE")
    asm = _assemble(d, text, skip=name)
    value = next((c.value for c in asm.image.consts if c.name == name), None)
    if value is None:
        raise DebugError(f"{word}: '{name}' was not defined")
    d.equs[name] = value
    return f"{name} = {value}"


def _data_directive(d: Debugger, text: str, word: str) -> str:
    """A data directive, lowered by the assembler (after the data symbols in
    scope, so a clash or an overlap is its error), then placed in SRAM at the
    current cycle through the engine's write path: an injection
    (:mod:`.history`), so going back to before it removes the tensor and the
    symbol.  ``.space`` only defines the symbol (its words keep what they hold)."""
    asm = _assemble(d, text)
    known = set(d.symbol_names())
    new = [s for s in asm.image.data if s.name not in known]
    if len(new) != 1:
        raise DebugError(f"{word}: defined no data symbol")
    sym = new[0]
    cfg = d.program.config
    n = sym.words_per_plane(cfg.lanes)
    writes = []
    if sym.init is not None:
        for plane in range(sym.planes):
            east, slice_, bank, offset = isa.addr_parts(sym.plane_addr(plane))
            where = (np.full(n, int(east)), np.full(n, slice_), np.full(n, bank), np.arange(offset, offset + n))
            writes.append((where, np.ascontiguousarray(sym.init[plane * n:(plane + 1) * n])))
    d._settle()
    before = d._watched_values() if writes else []
    d._inject(_Injection(d.row, d.cycle, writes, sym))
    reports = d._typed_watch_reports(before, f"{word} {sym.name}")
    off = isa.addr_parts(sym.addr)[3]
    span = isa.addr_name(sym.addr).split("[")[0] + f"[{off}:{off + n}]"
    if sym.planes > 1:
        span += f" and the next {sym.planes - 1} slice{'s' * (sym.planes > 2)} (its byte planes)"
    what = (f"placed at cycle {d.cycle}" if writes else "reserved (its words keep what they hold)")
    text = f"{sym.name} ({sym.dtype}, {sym.rows}x{sym.cols}) at {span}: {what}"
    return f"{text}\n{reports}" if reports else text
