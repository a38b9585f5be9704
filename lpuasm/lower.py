"""Lowering: syntax tree -> IR.

Walks the statements of a file (following ``.include``), evaluates directives
and compile-time expressions, checks every instruction against the instruction
table and the chip config, and appends encoded rows to an :class:`IRBuilder`.
Errors are collected with their spans; lowering goes on after an error so that
one run reports as many as it can.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from . import isa
from .config import ChipConfig
from .diagnostics import Diagnostic, Diagnostics, LpuError, did_you_mean
from .directives import DIRECTIVES
from .expr import BUILTIN_CONSTANTS, OPERAND_FUNCTIONS, ExprError, check_call_args, evaluate
from .datadirs import SLICE_RE, DataDirectives
from .image import DataSymbol
from .ir import IR, PIN_ABS, PIN_NONE, PIN_REL, IRBuilder
from .macros import Abort, MacroExpansion, structure
from .syntax import Call, Directive, Indexed, Instruction, KwArg, Label, ListLit, Name, Num, Span, Str

STREAM_RE = re.compile(r"s(\d+)([ew])$", re.I)
PLANE_RE = re.compile(r"(%?[A-Za-z_][A-Za-z0-9_]*(?:\$[0-9]+)*)\.p(\d+)$")
UNIT_RES = {
    "alu": re.compile(r"alu(\d+)$", re.I),
    "plane": re.compile(r"mxm(\d+)$", re.I),
    "link": re.compile(r"c2c(\d+)$", re.I),
    "sxm": re.compile(r"sxm([we])$", re.I),
}
RESERVED_RE = re.compile(r"(s\d+[ew]|[we]\d+|alu\d+|mxm\d+|c2c\d+|sxm[we]|icu|i8|i16|i32|f16|f32)$", re.I)
_UNIT_WORDS = {"alu": ("an ALU", "alu"), "plane": ("an MXM plane", "mxm"), "link": ("a C2C link", "c2c"),
               "sxm": ("an SXM", "sxm")}
#: the operand function that computes a unit operand: alu(k), mxm(p), c2c(l), sxm(d)
_UNIT_FUNCS = {"alu": "alu", "mxm": "plane", "c2c": "link", "sxm": "sxm"}
_QUEUE_HINT = "queues are icu, w0.., e0.., alu0.., mxm0.., sxmw, sxme, c2c0..; or queue(ADDRESS), alu(K), mxm(K), sxm(D), c2c(K)"
MAX_INCLUDE_DEPTH = 64


class Fatal(Exception):
    """Stop lowering (the diagnostic is already recorded)."""


class Lowerer(MacroExpansion, DataDirectives):
    """Lowers one program (a main file and what it includes) to IR."""

    Fatal = Fatal
    RESERVED_RE = RESERVED_RE
    file_depth = 0

    def __init__(self, config: ChipConfig, diags: Diagnostics, include_dirs=(), defines=None,
                 parse=None) -> None:
        self.config = config
        self.diags = diags
        self.include_dirs = [Path(d) for d in include_dirs]
        self.parse = parse
        self.builder = IRBuilder(config)
        self.consts: dict[str, int | float] = {}
        self.const_kind: dict[str, str] = {}  # name -> "equ" | "set" | "define"
        self.defined_at: dict[str, Span | None] = {}
        self.data: dict[str, DataSymbol] = {}
        self.failed_data: set[str] = set()  # data directives that failed: no follow-on errors
        self.labels: dict[str, int] = {}
        self.pending_labels: list[str] = []
        self.last_row_of_queue: dict[int, tuple[isa.Instr, int]] = {}  # queue -> (row, word)
        self.loc_override: tuple[str, int, int] | None = None
        self.include_stack: list[Path] = []
        self.once_files: set[Path] = set()  # files that said '.once'
        self.init_macros()
        self.predefined = {
            "LANES": config.lanes,
            "SUPERLANES": config.superlanes,
            "SLICES": config.mem_slices_per_hemisphere,
            "BANKS": config.banks_per_slice,
            "WORDS": config.words_per_bank,
            "STREAMS": config.streams_per_direction,
            "MXM_ACC_ROWS": config.mxm_acc_rows,
        }
        for name, value in (defines or {}).items():
            if RESERVED_RE.match(name) or name in self.predefined or name in BUILTIN_CONSTANTS:
                self.diags.error(f"-D {name}: '{name}' is a predefined or register name and cannot be defined")
                continue
            self.consts[name] = value
            self.const_kind[name] = "define"
            self.defined_at[name] = None

    # ---- driver -----------------------------------------------------------------
    def lower_file(self, statements, path: Path | None) -> None:
        """Lower the statements of one file (the main file, or an included one)."""
        if path is not None:
            self.include_stack.append(path.resolve())
        outermost = not self.file_depth
        self.file_depth += 1
        try:
            self.run(structure(statements, self.structure_error), None)
        except Abort:
            if not outermost:
                raise
        finally:
            self.file_depth -= 1
            if path is not None:
                self.include_stack.pop()

    def structure_error(self, message: str, span: Span, notes=None, hint: str | None = None) -> None:
        self.diags.error(message, span, hint, notes)

    def finish(self) -> IR:
        end = len(self.builder)
        for name in self.pending_labels:
            self.labels[name] = end
        return self.builder.finish(
            data=sorted(self.data.values(), key=lambda d: d.addr),
            consts=dict(self.consts),
            labels=dict(self.labels),
        )

    # ---- names --------------------------------------------------------------------
    def fail(self, message: str, span: Span, hint: str | None = None, notes=None):
        self.diags.error(message, span, hint, notes)
        raise Fatal

    def check_new_name(self, name: str, span: Span, kind: str) -> None:
        if RESERVED_RE.match(name):
            self.fail(f"'{name}' is a register, unit or dtype name and cannot name a {kind}", span)
        if name in self.predefined or name in BUILTIN_CONSTANTS:
            self.fail(f"'{name}' is a predefined constant and cannot name a {kind}", span)
        where = None
        if name in self.labels or name in self.pending_labels:
            where = "label"
        elif name in self.data:
            where = "data symbol"
        elif name in self.consts and not (kind == "variable" and self.const_kind.get(name) == "set"):
            where = "constant"
        if where:
            prev = self.defined_at.get(name)
            notes = [Diagnostic("note", "previously defined here", prev)] if prev else []
            hint = "it was defined with -D on the command line" if prev is None and self.const_kind.get(name) == "define" else None
            self.fail(f"'{name}' is already defined as a {where}", span, hint, notes)

    def lookup(self, node: Name) -> int | float:
        name = node.name
        if name in self.consts:
            return self.consts[name]
        if name in self.predefined:
            return self.predefined[name]
        if name in BUILTIN_CONSTANTS:
            return BUILTIN_CONSTANTS[name]
        if name in self.data:
            raise ExprError(f"'{name}' is a data symbol, not a number", node.span,
                            "data symbols are SRAM addresses; use them as address operands")
        if name in self.labels or name in self.pending_labels:
            raise ExprError(f"label '{name}' cannot be used in an expression", node.span)
        candidates = list(self.consts) + list(self.predefined)
        raise ExprError(f"undefined symbol '{name}'", node.span, did_you_mean(name, candidates))

    def value(self, node, what: str = "a number") -> int | float:
        if isinstance(node, (Str, ListLit, KwArg, Indexed)):
            self.fail(f"expected {what}", node.span)
        return evaluate(node, self.lookup, self.special_call)

    def special_call(self, node: Call) -> int:
        """The functions of expr.CONTEXT_FUNCTIONS: ``defined(NAME)``."""
        arg = node.args[0]
        if not isinstance(arg, Name):
            raise ExprError("defined() takes a name", arg.span,
                            "a macro parameter or loop variable is replaced by its argument first")
        name = arg.name
        return int(name in self.consts or name in self.predefined or name in BUILTIN_CONSTANTS
                   or name in self.data or name in self.labels or name in self.pending_labels
                   or name in self.macros)

    def integer(self, node, what: str = "an integer", lo: int | None = None, hi: int | None = None) -> int:
        v = self.value(node, what)
        if isinstance(v, float):
            if v.is_integer():
                v = int(v)
            else:
                self.fail(f"expected {what}, got {v:g}", node.span)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            self.fail(f"{what} {v} is out of range ({rng})", node.span)
        return v

    # ---- labels -------------------------------------------------------------------
    def label(self, st: Label) -> None:
        self.check_new_name(st.name, st.span, "label")
        self.pending_labels.append(st.name)
        self.defined_at[st.name] = st.span

    # ---- directives -------------------------------------------------------------------
    def directive(self, st: Directive) -> None:
        if st.name in ("data", "npy", "blob", "space") and st.args and isinstance(st.args[0], Name):
            try:
                self._directive(st)
            except Fatal:
                self.failed_data.add(st.args[0].name)
                raise
            return
        self._directive(st)

    def _directive(self, st: Directive) -> None:
        handler = getattr(self, f"d_{st.name}", None)
        if handler is None or st.name not in DIRECTIVES:
            self.fail(f"unknown directive '.{st.name}'", st.span, did_you_mean(st.name, DIRECTIVES))
        handler(st)

    def nargs(self, st: Directive, lo: int, hi: int, usage: str) -> None:
        if not lo <= len(st.args) <= hi:
            self.fail(f"'.{st.name}' expects {usage}", st.span)
        for a in st.args:
            if isinstance(a, KwArg):
                self.fail(f"'.{st.name}' takes no keyword arguments", a.span)

    def name_arg(self, node) -> str:
        if not isinstance(node, Name):
            self.fail("expected a name", node.span)
        return node.name

    def d_equ(self, st: Directive) -> None:
        self.nargs(st, 2, 2, "NAME, VALUE")
        name = self.name_arg(st.args[0])
        self.check_new_name(name, st.args[0].span, "constant")
        self.consts[name] = self.value(st.args[1])
        self.const_kind[name] = "equ"
        self.defined_at[name] = st.args[0].span

    def d_set(self, st: Directive) -> None:
        self.nargs(st, 2, 2, "NAME, VALUE")
        name = self.name_arg(st.args[0])
        self.check_new_name(name, st.args[0].span, "variable")
        self.consts[name] = self.value(st.args[1])
        self.const_kind[name] = "set"
        self.defined_at[name] = st.args[0].span

    def d_chip(self, st: Directive) -> None:
        pass  # handled by the assembler before lowering starts (see assembler.chip_directive)

    def d_loc(self, st: Directive) -> None:
        n = len(st.args)
        if n < 3 or (n - 3) % 4:
            self.fail(f"'.loc' expects {DIRECTIVES['loc'][0]}", st.span)
        for a in st.args:
            if isinstance(a, KwArg):
                self.fail("'.loc' takes no keyword arguments", a.span)
        file, line, col = self.location(st.args[:3])
        chain = None
        if n > 3:
            links = [st.args[i:i + 4] for i in range(3, n, 4)]
            chain = -1
            for link in reversed(links):  # given innermost first; built outermost first
                if not isinstance(link[0], Str) or not link[0].value:
                    self.fail("expected a macro name string", link[0].span)
                chain = self.builder.intern_frame(link[0].value, *self.location(link[1:]), chain)
        self.loc_override = (file, line, col, chain)

    def location(self, args) -> tuple[str, int, int]:
        if not isinstance(args[0], Str):
            self.fail("expected a file name string", args[0].span)
        return (args[0].value, self.integer(args[1], "line", 1, 2**32 - 1),
                self.integer(args[2], "column", 1, 2**16 - 1))

    def resolve_path(self, name: str, span: Span, stdlib: bool) -> Path:
        base = Path(span.file).parent
        candidates = [base / name] + [d / name for d in self.include_dirs]
        if stdlib:
            from .assembler import stdlib_dir
            candidates.append(stdlib_dir() / name)
        # a file finds itself last: `work/mlp.lasm` including "mlp.lasm" means the stdlib's
        here = Path(span.file).resolve() if not span.file.startswith("<") else None
        found = [c for c in candidates if c.is_file()]
        for c in found:
            if c.resolve() != here:
                return c
        if found:
            return found[0]
        searched = ", ".join(str(c.parent) for c in candidates)
        self.fail(f"cannot find '{name}'", span, f"searched {searched}; add a directory with -I")

    def d_include(self, st: Directive) -> None:
        self.nargs(st, 1, 1, '"FILE"')
        if not isinstance(st.args[0], Str):
            self.fail("expected a file name string", st.args[0].span)
        path = self.resolve_path(st.args[0].value, st.args[0].span, stdlib=True)
        if path.resolve() in self.once_files:
            return  # included before, and it said '.once'
        if path.resolve() in self.include_stack:
            chain = " -> ".join(p.name for p in self.include_stack + [path])
            self.fail(f"include cycle: {chain}", st.span)
        if len(self.include_stack) > MAX_INCLUDE_DEPTH:
            self.fail(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", st.span)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            self.fail(f"cannot read '{path}': {getattr(exc, 'strerror', None) or exc}", st.args[0].span)
        self.diags.context.append(Diagnostic("note", "in file included from here", st.span))
        try:
            try:
                statements = self.parse(text, str(path), self.diags.sources)
            except LpuError as e:
                for d in e.diagnostics:
                    d.notes.extend(self.diags.context[::-1])
                self.diags.items.extend(e.diagnostics)
                return
            for inner in statements:
                if isinstance(inner, Directive) and inner.name == "chip":
                    self.diags.error("'.chip' must be in the main file", inner.span)
            self.lower_file(statements, path)
        finally:
            self.diags.context.pop()

    def d_once(self, st: Directive) -> None:
        self.nargs(st, 0, 0, "no arguments")
        if self.depth:
            self.fail("'.once' cannot be used in a macro (put it at the top of the file)", st.span)
        if self.include_stack:
            self.once_files.add(self.include_stack[-1])

    def d_error(self, st: Directive) -> None:
        self.diags.error(self.user_message(st), st.span)

    def d_warning(self, st: Directive) -> None:
        d = Diagnostic("warning", self.user_message(st), st.span, None, self.diags.context[::-1])
        self.diags.items.append(d)

    def user_message(self, st: Directive) -> str:
        """The text of ``.error "MESSAGE" [, VALUE]...``: each ``{}`` of MESSAGE
        replaced by the next VALUE."""
        if not st.args or not isinstance(st.args[0], Str):
            self.fail(f"'.{st.name}' expects {DIRECTIVES[st.name][0]}", st.span)
        for a in st.args:
            if isinstance(a, KwArg):
                self.fail(f"'.{st.name}' takes no keyword arguments", a.span)
        text, values = st.args[0].value, st.args[1:]
        holes = text.count("{}")
        if holes != len(values):
            self.fail(f"the message has {holes} '{{}}' placeholder{'s' * (holes != 1)} but {len(values)} "
                      f"value{'s' * (len(values) != 1)} follow{'s' * (len(values) == 1)}", st.span)
        parts = text.split("{}")
        out = [parts[0]]
        for v, part in zip(values, parts[1:]):
            out += [self.show(v), part]
        return "".join(out)

    def show(self, node) -> str:
        """An operand as text for a message: a number's value; a name that is not a
        constant (a stream, unit, data symbol...) or a string as written."""
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Name) and not (node.name in self.consts or node.name in self.predefined
                                           or node.name in BUILTIN_CONSTANTS):
            return node.name
        if isinstance(node, Indexed):
            return f"{node.base}[{self.show(node.index)}]"
        v = self.value(node, "a value")
        return repr(v) if isinstance(v, float) else str(v)

    # ---- instructions -----------------------------------------------------------------
    def instruction(self, st: Instruction) -> None:
        base, *suffixes = st.mnemonic.split(".")
        row = isa.lookup(base)
        if row is None:
            self.fail(f"unknown mnemonic '{base}'", st.span, did_you_mean(base, [*isa.TABLE, *self.macros]))
        values: dict[str, int] = {}
        dtypes = self.suffixes(row, suffixes, st)
        for i, dt in enumerate(dtypes):
            values["dt" if i == 0 else "dt2"] = isa.DTYPES[dt]
        ops = st.operands
        required = sum(not o.optional for o in row.operands)
        if not required <= len(ops) <= len(row.operands):
            want = str(required) if required == len(row.operands) else f"{required} to {len(row.operands)}"
            usage = row.syntax
            self.fail(f"'{base}' expects {want} operand{'s' * (want != '1')}, got {len(ops)}", st.span,
                      f"usage: {usage}")
        queue = self.collect_operands(row, ops, dtypes, values, self.operand)
        if row.queue is not None:
            queue = self.config.queue_id(row.queue)
        self.check_streams(row, values, dtypes, ops)
        if row is isa.REPEAT:
            self.check_repeat(st, values, queue)
        if row.mnemonic in ("sync", "notify") and queue in self.last_row_of_queue:
            self.fail(f"'{row.mnemonic}' is only allowed at program start, before any other instruction of queue "
                      f"{self.config.queues[queue]}", st.span)
        pin_kind, pin = PIN_NONE, 0
        if st.pin is not None:
            pin_kind = PIN_REL if st.pin.relative else PIN_ABS
            pin = self.integer(st.pin.expr, "issue cycle", 0, (1 << 40))
        word = isa.pack(row, values)
        span, chain = st.span, self.chain
        if self.loc_override is not None:
            f, line, col, loc_chain = self.loc_override
            span = Span(f, line, col, col + (span.end_col - span.col))
            if loc_chain is not None:
                chain = loc_chain
        index = self.builder.add(row, word, queue, pin_kind, pin, span, chain)
        self.last_row_of_queue[queue] = (row, word)
        for name in self.pending_labels:
            self.labels[name] = index
        self.pending_labels.clear()

    def collect_operands(self, row: isa.Instr, ops, dtypes: list[str], values: dict, operand) -> int | None:
        """Fill *values* with every operand's field value, through *operand*
        (omitted optional operands take their default); return the queue the
        operands select, or None."""
        queue = None
        for i, spec in enumerate(row.operands):
            node = ops[i] if i < len(ops) else None
            if node is None:
                v = spec.default
                if spec.kind == "alu":
                    queue = self.config.queue_id(f"alu{v}")
            else:
                v, q = operand(row, spec, node, dtypes)
                if q is not None:
                    queue = q
            values[spec.name] = v
        return queue

    def suffixes(self, row: isa.Instr, suffixes: list[str], st: Instruction) -> list[str]:
        if len(suffixes) != row.nsuffixes:
            if row.nsuffixes == 0:
                self.fail(f"'{row.mnemonic}' takes no dtype suffix", st.span)
            example = row.mnemonic + "".join(f".{d[-1]}" for d in row.dtypes)
            self.fail(f"'{row.mnemonic}' needs {row.nsuffixes} dtype suffix{'es' * (row.nsuffixes > 1)}, "
                      f"e.g. '{example}'", st.span)
        out = []
        for sfx, allowed in zip(suffixes, row.dtypes):
            dt = sfx.lower()
            if dt not in isa.DTYPES:
                self.fail(f"unknown dtype '{sfx}'", st.span, did_you_mean(dt, isa.DTYPES) or
                          "dtypes are i8, i16, i32, f16, f32")
            if dt not in allowed:
                self.fail(f"'{row.mnemonic}' does not support dtype {dt} (supported: {', '.join(allowed)})", st.span)
            out.append(dt)
        return out

    def operand(self, row: isa.Instr, spec: isa.Operand, node, dtypes: list[str]) -> tuple[int, int | None]:
        """(field value, queue id or None) of one operand."""
        kind = spec.kind
        cfg = self.config
        if kind == "stream":
            return self.stream(node), None
        if kind == "src":
            if (isinstance(node, Name) and STREAM_RE.match(node.name)) or \
                    (isinstance(node, Call) and node.func == "stream"):
                return self.stream(node), None
            v = self.value(node, "a stream or an immediate")
            dt = dtypes[0] if dtypes else "i32"
            if dt in isa.FLOAT_DTYPES:
                # round to the dtype (the chip computes in it); fp32 bits are stored
                try:
                    with np.errstate(over="ignore"):
                        rounded = np.float16(v) if dt == "f16" else np.float32(v)
                except OverflowError:  # an integer beyond any float
                    rounded = np.float32(np.inf)
                if np.isinf(rounded) and not (isinstance(v, float) and math.isinf(v)):
                    self.fail(f"immediate {v:g} does not fit {dt}", node.span)
                return isa.SRC_IMMEDIATE | int(np.float32(rounded).view(np.uint32)), None
            if isinstance(v, float):
                if not v.is_integer():
                    self.fail(f"immediate {v:g} is not an integer ({row.mnemonic}.{dt} takes integer immediates)",
                              node.span)
                v = int(v)
            info = {"i8": (-128, 127), "i16": (-32768, 32767), "i32": (-(1 << 31), (1 << 31) - 1)}[dt]
            if not info[0] <= v <= info[1]:
                self.fail(f"immediate {v} does not fit {dt}", node.span)
            return isa.SRC_IMMEDIATE | (v & 0xFFFFFFFF), None
        if kind == "addr":
            code = self.address(node)
            east, slice_, _, _ = isa.addr_parts(code)
            return code, cfg.queue_id(f"{'e' if east else 'w'}{slice_}")
        if kind == "queue":
            if isinstance(node, Call) and node.func == "queue":
                q = self.queue_of(node)
                return q, q
            if isinstance(node, Call) and node.func in _UNIT_FUNCS:
                _, q = self.unit_call(node, _UNIT_FUNCS[node.func])
                return q, q
            if isinstance(node, Call) and node.func in OPERAND_FUNCTIONS:
                self.fail(f"{node.func}() names {OPERAND_FUNCTIONS[node.func][0]}, not a queue", node.span,
                          _QUEUE_HINT)
            if not isinstance(node, Name) or cfg.queue_id(node.name) is None:
                text = node.name if isinstance(node, Name) else "this"
                self.fail(f"'{text}' is not a queue of chip '{cfg.name}'", node.span,
                          did_you_mean(text, cfg.queues) if isinstance(node, Name) else _QUEUE_HINT)
            return cfg.queue_id(node.name), cfg.queue_id(node.name)
        if kind in UNIT_RES:
            if isinstance(node, Call) and _UNIT_FUNCS.get(node.func) == kind:
                return self.unit_call(node, kind)
            m = UNIT_RES[kind].match(node.name) if isinstance(node, Name) else None
            limit = {"alu": cfg.vxm_alus_per_lane, "plane": cfg.mxm_planes, "link": cfg.c2c_links, "sxm": 2}[kind]
            if m is None or (kind != "sxm" and int(m.group(1)) >= limit):
                what, prefix = _UNIT_WORDS[kind]
                expect = "sxmw or sxme" if kind == "sxm" else f"{prefix}0..{prefix}{limit - 1}"
                self.fail(f"expected {what} ({expect})", node.span)
            v = (m.group(1).lower() == "e") if kind == "sxm" else int(m.group(1))
            return int(v), cfg.queue_id(node.name.lower())
        # immediates
        bits = spec.width
        if spec.signed:
            return self.integer(node, spec.name, -(1 << (bits - 1)), (1 << (bits - 1)) - 1), None
        return self.integer(node, spec.name, 0, (1 << bits) - 1), None

    def stream(self, node) -> int:
        if isinstance(node, Call) and node.func == "stream":
            check_call_args(node, 2, 2)
            index = self.integer(node.args[0], "a stream index")
            d = self.direction(node.args[1])
            name = f"s{index}{d}"
        else:
            m = STREAM_RE.match(node.name) if isinstance(node, Name) else None
            if m is None:
                self.fail("expected a stream (s0e, s3w, ...)", node.span)
            index, d, name = int(m.group(1)), m.group(2).lower(), node.name
        n = self.config.streams_per_direction
        if not 0 <= index < n:
            self.fail(f"stream {name} does not exist on chip '{self.config.name}' (streams are s0..s{n - 1}, e or w)", node.span)
        return isa.stream_code(index, d == "w")

    def direction(self, node) -> str:
        """The direction argument of stream() and sxm(): ``e`` or ``w`` (as a name),
        or a compile-time value, 1 for east and 0 for west."""
        if isinstance(node, Name) and node.name.lower() in ("e", "w"):
            return node.name.lower()
        v = self.value(node, "a direction")
        if v not in (0, 1):
            self.fail(f"expected a direction: e or w, or 1 (east) or 0 (west), got {v:g}", node.span)
        return "e" if v else "w"

    def unit_call(self, node: Call, kind: str) -> tuple[int, int]:
        """``alu(k)``, ``mxm(p)``, ``c2c(l)``, ``sxm(d)``: (field value, queue id)."""
        check_call_args(node, 1, 1)
        cfg = self.config
        what, prefix = _UNIT_WORDS[kind]
        if kind == "sxm":
            d = self.direction(node.args[0])
            return int(d == "e"), cfg.queue_id(f"sxm{d}")
        k = self.integer(node.args[0], "a unit index")
        limit = {"alu": cfg.vxm_alus_per_lane, "plane": cfg.mxm_planes, "link": cfg.c2c_links}[kind]
        if not 0 <= k < limit:
            self.fail(f"expected {what} ({prefix}0..{prefix}{limit - 1}), got {node.func}({k})", node.span)
        return k, cfg.queue_id(f"{prefix}{k}")

    def queue_of(self, node: Call) -> int:
        """``queue(ADDRESS [, PLANE])``: the queue of the slice that holds ADDRESS, or
        byte plane PLANE of it (the slice PLANE slices further on)."""
        check_call_args(node, 1, 2)
        addr = node.args[0]
        if not isinstance(addr, (Name, Indexed)):
            self.fail("queue() takes an SRAM address (a data symbol, or a parameter bound to an address)",
                      addr.span)
        if len(node.args) == 2:
            k = self.integer(node.args[1], "byte plane", 0)
            if k:
                addr = self.plane_shifted(addr, k, node.span)
        east, slice_, _, _ = isa.addr_parts(self.address(addr))
        return self.config.queue_id(f"{'e' if east else 'w'}{slice_}")

    @staticmethod
    def plane_shifted(node, k: int, span: Span):
        """The address *k* byte planes (slices) after *node*, blamed on *span*:
        ``x`` -> ``x.pk[0]``, ``x.p1[i]`` -> ``x.p(1+k)[i]``, ``W3.b0[i]`` -> ``W(3+k).b0[i]``."""
        if isinstance(node, Name):
            return Indexed(f"{node.name}.p{k}", Num(0, span), span)
        m = SLICE_RE.match(node.base)
        if m:
            return Indexed(f"{m.group(1)}{int(m.group(2)) + k}.b{m.group(3)}", node.index, span)
        m = PLANE_RE.match(node.base)
        base, plane = (m.group(1), int(m.group(2))) if m else (node.base, 0)
        return Indexed(f"{base}.p{plane + k}", node.index, span)

    def address(self, node) -> int:
        if isinstance(node, Indexed) and SLICE_RE.match(node.base):
            return self.explicit_address(node)
        plane = 0
        if isinstance(node, Name):
            name, index, span = node.name, 0, node.span
        elif isinstance(node, Indexed):
            name, span = node.base, node.span
            m = PLANE_RE.match(name)
            if m:
                name, plane = m.group(1), int(m.group(2))
            elif "." in name:
                self.fail(f"'{name}' is not an address; byte plane k of symbol x is x.pk[word]", span)
            index = self.integer(node.index, "word index")
        else:
            self.fail("expected an SRAM address (a data symbol, symbol[word], symbol.p1[word] or W3.b0[16])", node.span)
        sym = self.data.get(name)
        if sym is None and name in self.failed_data:
            raise Fatal  # its definition was already reported
        if sym is None:
            hint = did_you_mean(name, self.data)
            if name in self.consts:
                hint = f"'{name}' is a constant; addresses are data symbols or W3.b0[16]"
            self.fail(f"undefined data symbol '{name}'", span, hint)
        if plane >= sym.planes:
            self.fail(f"'{name}' ({sym.dtype}) has byte plane{'s' * (sym.planes > 1)} p0..p{sym.planes - 1}", span)
        n = sym.words_per_plane(self.config.lanes)
        if not 0 <= index < n:
            self.fail(f"word {index} is outside '{name}' ({n} word{'s' * (n != 1)}: 0..{n - 1})", span)
        return sym.plane_addr(plane) + index

    def check_streams(self, row: isa.Instr, values: dict, dtypes: list[str], ops) -> None:
        """Stream groups of multi-byte dtypes must be aligned and fit the streams."""
        n = self.config.streams_per_direction
        for i, spec in enumerate(row.operands):
            if spec.kind not in ("stream", "src") or i >= len(ops):
                continue
            code = values[spec.name]
            if spec.kind == "src" and code & isa.SRC_IMMEDIATE:
                continue
            if row.mnemonic == "transpose":
                group, why = 16, "transpose works on 16 streams"
            elif row.mnemonic == "permute" and spec.name == "map":
                group, why = 2, "the permute map is an i16 stream group"
            elif row.unit in ("mem", "c2c") or spec.name == "map" or not dtypes:
                continue
            else:
                dt = dtypes[1] if (row.mnemonic == "vcvt" and spec.name == "d") else dtypes[0]
                group, why = isa.DTYPE_BYTES[dt], f"{dt} occupies a group of {isa.DTYPE_BYTES[dt]} streams"
            index = code & 31
            if group > 1 and (index % group or index + group > n):
                good = ", ".join(f"s{k}{'w' if code >> 5 else 'e'}" for k in range(0, min(n, 4 * group), group))
                self.diags.error(f"stream s{index}{'w' if code >> 5 else 'e'} cannot start a group of {group} ({why})",
                                 ops[i].span, f"use a stream index that is a multiple of {group}: {good}, ...")

    def check_repeat(self, st: Instruction, values: dict, queue: int) -> None:
        prev = self.last_row_of_queue.get(queue)
        qname = self.config.queues[queue]
        if prev is None:
            self.fail(f"'repeat' must follow an instruction of queue {qname}", st.span)
        if prev[0].unit == "icu":
            self.fail(f"'repeat' cannot repeat '{prev[0].mnemonic}' (ICU instructions cannot be repeated)", st.span)
        if st.pin is not None:
            self.fail("'repeat' cannot be pinned: it issues right after the instruction it repeats", st.pin.span)
        if values["n"] < 1 or values["d"] < 1:
            self.fail("'repeat' needs n >= 1 and d >= 1", st.span)
        prow = prev[0]
        has_addr = any(op.kind == "addr" for op in prow.operands)
        if values["stride"] and not has_addr:
            self.fail(f"a stride needs an instruction with an SRAM address ('{prow.mnemonic}' has none)", st.span)
        if has_addr and values["stride"]:
            _, fields = isa.unpack(prev[1])
            addr = next(fields[op.name] for op in prow.operands if op.kind == "addr")
            last = (addr & 0xFFF) + values["n"] * values["stride"]
            if not 0 <= last < self.config.words_per_bank:
                self.fail(f"the last repetition addresses word {last}, outside the bank "
                          f"(0..{self.config.words_per_bank - 1})", st.span)


def parse_define(text: str) -> tuple[str, int | float]:
    """``NAME=VALUE`` from the command line (VALUE an int or float; default 1)."""
    name, _, value = text.partition("=")
    if not re.match(r"[A-Za-z_][A-Za-z0-9_]*$", name):
        raise ValueError(f"-D {text}: '{name}' is not a valid name")
    if not value:
        return name, 1
    try:
        return name, int(value, 0)
    except ValueError:
        try:
            v = float(value)
        except ValueError:
            raise ValueError(f"-D {text}: '{value}' is not a number") from None
        if not math.isfinite(v):
            raise ValueError(f"-D {text}: the value must be finite") from None
        return name, v

