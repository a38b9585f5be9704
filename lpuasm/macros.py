"""The macro language: ``.macro``/``.endm``, ``.rept``/``.endr``,
``.for``/``.endfor`` and ``.if``/``.elif``/``.else``/``.endif``.

Expansion works on the syntax tree.  :func:`structure` turns a file's flat
statement list into a tree of :class:`Block` nodes (finding unterminated and
stray block directives); :class:`MacroExpansion`, a mixin of
:class:`lpuasm.lower.Lowerer`, walks that tree, binding macro parameters and
loop variables in an :class:`Env` and substituting them into each statement's
syntax nodes (never into text) before the statement is lowered.  Names that
start with ``%`` are macro-local: each macro expansion renames ``%x`` to
``%x$N`` with N unique to the expansion.

Loops take a fast path first (:mod:`lpuasm.vexpand`): the loop variables
become numpy arrays over all repetitions, macro calls and ``.if`` in the body
are planned for all of them at once, and the loop is lowered column-wise, to
the same IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import isa
from .diagnostics import Diagnostic, did_you_mean
from .expr import ExprError
from .syntax import (
    Binary, Call, Directive, Indexed, Instruction, KwArg, Label, ListLit, Name, Num, Span, Str, Unary,
)

#: opener -> closer of each block directive
CLOSER = {"macro": "endm", "rept": "endr", "for": "endfor", "if": "endif"}
OPENER = {v: k for k, v in CLOSER.items()}

MAX_DEPTH = 64                  # nested macro expansions
MAX_INSTRUCTIONS = 20_000_000   # instructions in the expanded program
MAX_REPEAT = 20_000_000         # repetitions of one .rept / .for


@dataclass
class Block:
    """A block directive with its body: ``kind`` is macro, rept, for or if.
    ``branches`` holds (directive, body) pairs: one for macro/rept/for, the
    ``.if``, ``.elif``s and ``.else`` of an if."""

    kind: str
    head: Directive
    branches: list = field(default_factory=list)

    @property
    def body(self) -> list:
        return self.branches[0][1]


@dataclass
class Macro:
    name: str
    params: list  # (name, default syntax node or None)
    body: list
    span: Span


@dataclass
class Env:
    """Compile-time bindings in effect: parameter/loop variable -> syntax node,
    and the suffix that makes ``%`` names unique (None outside macros)."""

    bindings: dict
    tag: str | None = None


def structure(statements, error) -> list:
    """Nest the statements between block directives into :class:`Block` nodes.
    *error(message, span, notes)* reports unmatched directives."""
    root: list = []
    stack: list[Block] = []
    cur = root
    for st in statements:
        name = st.name if type(st) is Directive else None
        if name in CLOSER:
            block = Block(name, st, [(st, [])])
            cur.append(block)
            stack.append(block)
            cur = block.body
            continue
        if name in ("elif", "else"):
            if not stack or stack[-1].kind != "if":
                error(f"'.{name}' without '.if'", st.span, _open_note(stack))
                continue
            block = stack[-1]
            if block.branches[-1][0].name == "else":
                error(f"'.{name}' after '.else'", st.span,
                      [Diagnostic("note", "'.else' is here", block.branches[-1][0].span)])
                continue
            block.branches.append((st, []))
            cur = block.branches[-1][1]
            continue
        if name in OPENER:
            want = OPENER[name]
            if not any(b.kind == want for b in stack):
                error(f"'.{name}' without '.{want}'", st.span, _open_note(stack))
                continue
            while stack[-1].kind != want:
                inner = stack.pop()
                error(f"'.{inner.kind}' is not closed", inner.head.span, None,
                      f"expected '.{CLOSER[inner.kind]}' before the '.{name}' at line {st.span.line}")
            stack.pop()
            cur = stack[-1].branches[-1][1] if stack else root
            continue
        cur.append(st)
    for block in stack:
        error(f"'.{block.kind}' is not closed", block.head.span, None,
              f"add '.{CLOSER[block.kind]}' at the end of its body")
    return root


def _open_note(stack) -> list:
    if not stack:
        return []
    b = stack[-1]
    return [Diagnostic("note", f"inside the '.{b.kind}' opened here", b.head.span)]


# ---- substitution ---------------------------------------------------------------------
def local_name(name: str, tag: str) -> str:
    """``%x`` (or ``%x.p1``) made unique by *tag* (``$7``)."""
    head, dot, rest = name.partition(".")
    return f"{head}{tag}{dot}{rest}"


def subst(node, env: Env):
    """*node* with the bindings of *env* substituted and ``%`` names renamed."""
    t = type(node)
    if t is Num or t is Str:
        return node
    if t is Name:
        b = env.bindings.get(node.name)
        if b is not None:
            return b
        if env.tag and node.name[0] == "%":
            return Name(local_name(node.name, env.tag), node.span)
        return node
    if t is Binary:
        return Binary(node.op, subst(node.left, env), subst(node.right, env), node.span)
    if t is Unary:
        return Unary(node.op, subst(node.operand, env), node.span)
    if t is Call:
        return Call(node.func, tuple(subst(a, env) for a in node.args), node.span)
    if t is Indexed:
        return _indexed(node, env)
    if t is ListLit:
        return ListLit(tuple(subst(a, env) for a in node.items), node.span)
    if t is KwArg:
        return KwArg(node.name, subst(node.value, env), node.span)
    return node


class SubstError(Exception):
    def __init__(self, message: str, span: Span):
        self.message, self.span = message, span


def _indexed(node: Indexed, env: Env):
    head, dot, rest = node.base.partition(".")
    index = subst(node.index, env)
    b = env.bindings.get(head)
    if b is None:
        base = local_name(node.base, env.tag) if env.tag and head[0] == "%" else node.base
        return Indexed(base, index, node.span)
    if type(b) is Name:
        return Indexed(b.name + dot + rest, index, node.span)
    if type(b) is Indexed and not dot:
        # an address argument indexed again: W3.b0[4] as a, a[2] is W3.b0[4 + 2]
        return Indexed(b.base, Binary("+", b.index, index, node.index.span), node.span)
    if type(b) is Indexed and "." not in b.base:
        # a word of a symbol, then a byte plane of it: x[3] as a, a.p1[2] is x.p1[3 + 2]
        return Indexed(b.base + dot + rest, Binary("+", b.index, index, node.index.span), node.span)
    raise SubstError(f"'{head}' is bound to an argument that cannot be indexed", node.span)


def subst_statement(st, env: Env):
    t = type(st)
    if t is Instruction:
        pin = st.pin
        if pin is not None:
            pin = type(pin)(pin.relative, subst(pin.expr, env), pin.span)
        return Instruction(st.mnemonic, tuple(subst(o, env) for o in st.operands), pin, st.span)
    if t is Directive:
        return Directive(st.name, tuple(subst(o, env) for o in st.args), st.span)
    if t is Label:
        b = env.bindings.get(st.name)
        if type(b) is Name:
            return Label(b.name, st.span)
        if env.tag and st.name[0] == "%":
            return Label(local_name(st.name, env.tag), st.span)
    return st


class Abort(Exception):
    """Stop lowering altogether (an expansion limit; the diagnostic is recorded)."""


class MacroExpansion:
    """The block directives and macro calls: a mixin of :class:`lpuasm.lower.Lowerer`."""

    max_depth = MAX_DEPTH
    max_instructions = MAX_INSTRUCTIONS
    max_repeat = MAX_REPEAT

    def init_macros(self) -> None:
        self.macros: dict[str, Macro] = {}
        self.chain = -1         # current macro frame of the IR builder (-1: none)
        self.depth = 0          # macro expansions in progress
        self.serial = 0         # expansions so far (for %-name tags)

    def run(self, items, env: Env | None) -> None:
        """Lower a structured statement list under *env*."""
        for st in items:
            try:
                t = type(st)
                if t is Block:
                    self.block(st, env)
                    continue
                if env is not None:
                    st = subst_statement(st, env)
                if t is Instruction:
                    m = self.macros.get(st.mnemonic)
                    if m is not None:
                        self.expand(m, st)
                    else:
                        self.instruction(st)
                elif t is Label:
                    self.label(st)
                else:
                    self.directive(st)
            except ExprError as e:
                self.diags.error(e.message, e.span, e.hint)
            except SubstError as e:
                self.diags.error(e.message, e.span)
            except self.Fatal:
                pass

    def check_size(self, span: Span) -> None:
        if len(self.builder) > self.max_instructions:
            self.diags.error(f"the expanded program exceeds {self.max_instructions} instructions", span,
                             "is a .rept, .for or recursive macro running away?")
            raise Abort

    # ---- blocks -------------------------------------------------------------------------
    def block(self, b: Block, env: Env | None) -> None:
        head = b.head
        if b.kind == "macro":
            return self.define_macro(b)
        if b.kind == "if":
            for st, body in b.branches:
                if st.name == "else":
                    self.nargs(st, 0, 0, "no arguments")
                    return self.run(body, env)
                self.nargs(st, 1, 1, "a condition")
                cond = subst(st.args[0], env) if env is not None else st.args[0]
                if self.value(cond, "a condition") != 0:
                    return self.run(body, env)
            return
        env = env or Env({})
        if b.kind == "rept":
            self.nargs(head, 1, 1, "a count")
            count = self.integer(subst(head.args[0], env), "repetition count", 0, self.max_repeat)
            values, var = range(count), None
        else:
            self.nargs(head, 3, 4, "VAR, START, STOP [, STEP]")
            var = head.args[0]
            if type(var) is not Name or var.name[0] == "%":
                self.fail("expected a loop variable name", var.span)
            start, stop = (self.integer(subst(a, env), what) for a, what in
                           zip(head.args[1:3], ("loop start", "loop stop")))
            step = self.integer(subst(head.args[3], env), "loop step") if len(head.args) == 4 else 1
            if step == 0:
                self.fail("the loop step must not be 0", head.args[3].span)
            values = range(start, stop, step)
            if len(values) > self.max_repeat:
                self.fail(f"'.for' runs {len(values)} times, more than the limit of {self.max_repeat}", head.span)
        from . import vexpand  # (imports lower, which imports this module)
        if vexpand.try_loop(self, b, env, var, values):
            return  # lowered in one go, vectorised over the repetitions
        context = self.diags.context
        context.append(None)
        try:
            for v in values:
                if var is None:
                    context[-1] = Diagnostic("note", f"in repetition {v} of .rept", head.span)
                    self.run(b.body, env)
                else:
                    context[-1] = Diagnostic("note", f"in repetition {var.name} = {v} of .for", head.span)
                    self.run(b.body, Env({**env.bindings, var.name: Num(v, var.span)}, env.tag))
                self.check_size(head.span)
        finally:
            context.pop()

    def define_macro(self, b: Block) -> None:
        head = b.head
        if self.depth:
            self.fail("a macro cannot be defined inside a macro", head.span)
        if not head.args or type(head.args[0]) is not Name:
            self.fail("'.macro' expects NAME [PARAM [= DEFAULT]], ...", head.span)
        name_node = head.args[0]
        name = name_node.name
        if isa.lookup(name) is not None:
            self.fail(f"'{name}' is an instruction mnemonic and cannot name a macro", name_node.span)
        if name in self.macros:
            prev = self.macros[name].span
            self.fail(f"macro '{name}' is already defined", name_node.span,
                      notes=[Diagnostic("note", "previously defined here", prev)])
        params, seen = [], set()
        for p in head.args[1:]:
            pname, default = (p.name, None) if type(p) is Name else (p.name, p.value) if type(p) is KwArg else (None, None)
            if pname is None or pname[0] == "%":
                self.fail("expected a parameter name (NAME or NAME=DEFAULT)", p.span)
            if self.RESERVED_RE.match(pname):
                self.fail(f"'{pname}' is a register, unit or dtype name and cannot name a parameter", p.span)
            if pname in seen:
                self.fail(f"parameter '{pname}' is given twice", p.span)
            seen.add(pname)
            params.append((pname, default))
        self.macros[name] = Macro(name, params, b.body, name_node.span)

    # ---- calls ------------------------------------------------------------------------------
    def expand(self, m: Macro, call: Instruction) -> None:
        if call.pin is not None:
            self.fail("a macro call cannot be pinned (pin the instructions in its body)", call.pin.span)
        if self.depth >= self.max_depth:
            self.fail(f"macro expansion nested deeper than {self.max_depth} levels", call.span,
                      "a macro that calls itself needs an '.if' that ends the recursion")
        bindings = self.bind(m, call)
        self.serial += 1
        # equal frames are one (as in the image): the calls of one line repeated by a
        # loop share a frame, and the vectorised loops (vexpand) make the same ones
        span = call.span
        frame = self.builder.intern_frame(m.name, span.file, span.line, span.col, self.chain)
        context = self.diags.context
        context.append(Diagnostic("note", f"in expansion of macro '{m.name}'", call.span))
        chain, self.chain = self.chain, frame
        self.depth += 1
        try:
            self.run(m.body, Env(bindings, f"${self.serial}"))
        finally:
            self.depth -= 1
            self.chain = chain
            context.pop()
        self.check_size(call.span)

    def bind(self, m: Macro, call: Instruction) -> dict:
        names = [p for p, _ in m.params]
        got: dict = {}
        positional, keyword_seen = [], False
        for a in call.operands:
            if type(a) is KwArg:
                keyword_seen = True
            elif keyword_seen:
                self.fail("positional arguments must come before keyword arguments", a.span)
            else:
                positional.append(a)
        if len(positional) > len(names):
            self.fail(f"macro '{m.name}' takes {len(names)} argument{'s' * (len(names) != 1)}, "
                      f"got {len(positional)}", positional[len(names)].span, self.usage(m))
        for p, a in zip(names, positional):
            got[p] = a
        for a in call.operands:
            if type(a) is not KwArg:
                continue
            if a.name not in names:
                self.fail(f"macro '{m.name}' has no parameter '{a.name}'", a.span,
                          did_you_mean(a.name, names) or self.usage(m))
            if a.name in got:
                self.fail(f"argument '{a.name}' is given twice", a.span)
            got[a.name] = a.value
        env = Env(got)
        for p, default in m.params:
            if p not in got:
                if default is None:
                    self.fail(f"macro '{m.name}' needs argument '{p}'", call.span, self.usage(m))
                got[p] = subst(default, env)  # defaults may use the parameters before them
        return got

    @staticmethod
    def usage(m: Macro) -> str:
        params = ", ".join(p if d is None else f"{p}=..." for p, d in m.params)
        return f"usage: {m.name} {params}".rstrip()
