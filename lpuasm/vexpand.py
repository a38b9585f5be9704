"""Vectorised expansion of ``.for``/``.rept`` loops.

A loop is lowered without running its body once per repetition: each loop
variable becomes an int64 array over all repetitions, every operand expression
that uses one is evaluated once for all of them with numpy, range checks run on
whole arrays, the words are packed column-wise (like
:func:`lpuasm.kernels.pack_words`) and the rows are appended with
:meth:`lpuasm.ir.IRBuilder.extend`.  The IR is identical, column for column and
row for row (source map and macro frames included), to what the per-statement
path (:mod:`lpuasm.macros`) gives.

What the body may hold, at any depth:

* instructions;
* calls of macros: inlined, their arguments bound exactly as
  :meth:`MacroExpansion.bind` binds them (positional, keyword, defaults, syntax
  nodes substituted), and their bodies planned in turn (loops, ``.if``, further
  calls; at most ``MAX_DEPTH`` levels as on the slow path);
* nested ``.for``/``.rept`` loops, whose bounds may use outer loop variables
  (each repetition of the outer loop then runs the inner one its own number of
  times);
* ``.if``/``.elif``/``.else``: a condition that uses a loop variable is
  evaluated over the repetitions that reach it, and each branch's statements
  exist only in the repetitions that take it.  Branches no repetition takes are
  not looked at (they may hold ``.error``, or end a macro's recursion).

The plan is a tree of *contexts*: the repetitions (instances) that run a list
of statements, with the values of the enclosing loop variables for each one.
A loop makes a child context with one instance per (outer instance, value); an
``.if`` whose condition varies makes one with the instances that take a
branch.  The rows of an instance are its statements' rows in order, so the
row numbers come from per-instance row counts (summed bottom-up, handed out
top-down), not from a fixed ``i * per + pos``.

Macro frames are interned (:meth:`IRBuilder.intern_frame`) in the order the
per-statement path first creates them, which it also does by interning, so
``frames`` and ``loc_chain`` are the same; ``%`` names of an inlined expansion
would differ per instance, so they are given a tag no name can have: using one
(a macro-local constant, label or data symbol) makes the loop fall back.

The fast path is all or nothing per outermost loop.  Operands that do not use
a loop variable are lowered by the ordinary :class:`lpuasm.lower.Lowerer`
methods (once per body instruction); anything the vector evaluator does not
handle (floats where an integer is needed, a ``/`` that is not exact, an
unknown name, an operand kind it does not know, a value that could overflow
int64), any statement it does not take (labels, directives, ``.macro``, a
``.warning``/``.error`` in a branch some repetition takes, ``repeat``,
``sync``/``notify``) and any failed check makes it give up, drop whatever
diagnostics it recorded and leave the loop to the per-statement path, which
then reports the errors exactly as it always did.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from . import isa
from .datadirs import SLICE_RE
from .expr import FUNCTIONS, ExprError, evaluate
from .ir import PIN_ABS, PIN_NONE, PIN_REL
from .macros import Block, Env, SubstError, subst, subst_statement
from .syntax import Binary, Call, Indexed, Instruction, KwArg, ListLit, Name, Num, Str, Unary

#: set False to force the per-instruction path (the differential tests do)
ENABLED = True
#: loops expanding to fewer rows go the per-instruction path (numpy costs more there)
MIN_ROWS = 8
#: loops with fewer rows per body statement (after inlining) too: a statement costs
#: the fast path about as much as 4 rows cost the per-instruction path
MIN_ROWS_PER_STATEMENT = 4
#: re-raise unexpected exceptions instead of falling back (tests)
STRICT = False

_MARK = "\x00"      # loop variables are bound to Name("\x00<level>") while planning
_TAG = "$\x00"      # the %-name tag of an inlined macro expansion (no name has it)
_LIM = 1 << 62      # every array value stays inside (-_LIM, _LIM): no int64 overflow
_INT_RANGE = {"i8": (-128, 127), "i16": (-32768, 32767), "i32": (-(1 << 31), (1 << 31) - 1)}
_FLOAT_EXACT = {"f16": 2048, "f32": 1 << 24}   # integers converted exactly
_UNIT_PREFIX = {"alu": "alu", "plane": "mxm", "link": "c2c"}
_UNIT_FUNCS = {"alu": "alu", "mxm": "plane", "c2c": "link", "sxm": "sxm"}

stats = {"fast_loops": 0, "fast_rows": 0, "fallbacks": 0}


class Fallback(Exception):
    """The loop is not for the fast path (or a check failed): use the slow one."""


class _Unfit(Fallback):
    """A statement the fast path never takes, met wherever the loop runs at all (not
    under an .if or a nested loop, which may not run): the loop never qualifies."""


def try_loop(lw, b: Block, env: Env, var, values: range) -> bool:
    """Lower loop *b* (its range already evaluated) in one go; False (nothing
    changed) if it does not qualify."""
    if not ENABLED or lw.loc_override is not None or len(values) * len(b.body) < MIN_ROWS:
        return False
    bad = lw.__dict__.setdefault("_vx_unfit", set())
    if id(b) in bad:
        return False
    if not _fits(b.body):
        bad.add(id(b))
        return False
    diags = lw.diags
    n0 = len(diags.items)
    special = lw.special_call
    lw.special_call = lambda node: _defined(special, node)
    try:
        if not all(-_LIM < x < _LIM for x in (values.start, values.stop, values.step)):
            raise Fallback
        vals = np.arange(values.start, values.stop, values.step, dtype=np.int64)
        _check_bounded(vals)
        plan = _Planner(lw)
        root = plan.root(b, env, var, vals)
        total = _totals(root)
        if len(lw.builder) + total > lw.max_instructions:
            raise Fallback
        if total < MIN_ROWS_PER_STATEMENT * len(plan.rows):
            raise Fallback  # a few rows per body statement: row by row is cheaper
        cols = [_lower_group(lw, st, ctx.vars, ctx.n) for st, ctx, _, _ in plan.rows]
    except Exception as exc:
        del diags.items[n0:]
        stats["fallbacks"] += 1
        if isinstance(exc, _Unfit):
            bad.add(id(b))
        if STRICT and not isinstance(exc, (Fallback, ExprError, SubstError, lw.Fatal)):
            raise
        return False
    finally:
        del lw.special_call
    _commit(lw, plan, root, cols, total)
    stats["fast_loops"] += 1
    stats["fast_rows"] += total
    return True


def _defined(special, node):
    """``defined(%x)`` in an inlined expansion: the per-statement path asks about
    ``%x$N``, which a program could define (LOCAL names may be written out)."""
    arg = node.args[0]
    if type(arg) is Name and _MARK in arg.name:
        raise Fallback
    return special(node)


def _fits(items) -> bool:
    """Nothing the fast path never takes where every repetition reaches it (structure
    only: macro calls and the branches of an .if are looked at while planning)."""
    for it in items:
        t = type(it)
        if t is Block:
            if it.kind in ("for", "rept"):
                if not _fits(it.body):
                    return False
            elif it.kind != "if":
                return False
        elif t is not Instruction:
            return False
    return True


# ---- planning: which statement runs in which repetitions ------------------------------
_ROW, _CALL, _NEST = 0, 1, 2


class _Ctx:
    """The instances (repetitions) that run one list of statements: ``vars`` maps each
    loop-variable marker in scope to its values (int64, one per instance); ``par``
    (nondecreasing) is each instance's instance of the parent context, ``slot`` the
    index of this context's entry in the parent's; ``sub`` says one instance per
    parent instance at most (an .if branch), else it is a loop (``cnt`` instances per
    parent instance).  ``entries``: (_ROW, row index), (_CALL, call index) and
    (_NEST, child context), in statement order."""

    __slots__ = ("n", "vars", "level", "entries", "parent", "par", "slot", "sub", "cnt", "total", "ptotal")

    def __init__(self, n, vars_, level, parent=None, par=None, slot=-1, sub=False, cnt=None):
        self.n, self.vars, self.level = n, vars_, level
        self.parent, self.par, self.slot, self.sub, self.cnt = parent, par, slot, sub, cnt
        self.entries: list = []
        self.total = self.ptotal = None


class _Planner:
    """Walks the loop body as MacroExpansion.run would, for all instances at once."""

    def __init__(self, lw):
        self.lw = lw
        self.rows: list = []    # (statement, context, slot, call index or -1)
        self.calls: list = []   # (macro name, call span, parent call index or -1, context, slot)
        self.ncalls = 0         # expansions the per-statement path would count (lw.serial)
        self.instances = 0
        self.certain = True     # planning what runs in every repetition (see _Unfit)

    def root(self, b: Block, env: Env, var, vals: np.ndarray) -> _Ctx:
        root = _Ctx(1, {}, 0)
        n = len(vals)
        if not n:
            return root
        vars_ = {}
        if var is not None:
            marker = _MARK + "1"
            vars_[marker] = vals
            env = Env({**env.bindings, var.name: Name(marker, var.span)}, env.tag)
        child = _Ctx(n, vars_, 1, root, np.zeros(n, np.int64), 0, cnt=np.array([n], np.int64))
        root.entries.append((_NEST, child))
        self.items(b.body, env, child, -1, 0)
        return root

    def items(self, items, env: Env, ctx: _Ctx, frame: int, depth: int) -> None:
        lw = self.lw
        for it in items:
            t = type(it)
            if t is Instruction:
                st = subst_statement(it, env)
                m = lw.macros.get(st.mnemonic)
                if m is None:
                    ctx.entries.append((_ROW, len(self.rows)))
                    self.rows.append((st, ctx, len(ctx.entries) - 1, frame))
                else:
                    self.call(m, st, ctx, frame, depth)
            elif t is Block and it.kind == "if":
                self.branches(it, env, ctx, frame, depth)
            elif t is Block and it.kind in ("for", "rept"):
                self.loop(it, env, ctx, frame, depth)
            else:
                raise _Unfit if self.certain else Fallback  # labels, directives, .macro

    def call(self, m, st: Instruction, ctx: _Ctx, frame: int, depth: int) -> None:
        """An expansion of macro *m* in every instance of *ctx* (MacroExpansion.expand)."""
        lw = self.lw
        if st.pin is not None or lw.depth + depth >= lw.max_depth:
            raise Fallback
        bindings = lw.bind(m, st)
        ci = len(self.calls)
        self.calls.append((m.name, st.span, frame, ctx, len(ctx.entries)))
        ctx.entries.append((_CALL, ci))
        self.ncalls += ctx.n
        self.items(m.body, Env(bindings, _TAG), ctx, ci, depth + 1)

    def branches(self, b: Block, env: Env, ctx: _Ctx, frame: int, depth: int) -> None:
        """.if/.elif/.else: each branch in the instances that reach it and take it."""
        certain, self.certain = self.certain, False
        try:
            self._branches(b, env, ctx, frame, depth)
        finally:
            self.certain = certain

    def _branches(self, b: Block, env: Env, ctx: _Ctx, frame: int, depth: int) -> None:
        lw = self.lw
        rem = None  # the instances still to decide (indices into ctx), None: all
        for st, body in b.branches:
            if st.name == "else":
                lw.nargs(st, 0, 0, "no arguments")
                return self.under(body, env, ctx, rem, frame, depth)
            lw.nargs(st, 1, 1, "a condition")
            cond = subst(st.args[0], env)
            if not _has_marker(cond):
                if lw.value(cond, "a condition") != 0:
                    return self.under(body, env, ctx, rem, frame, depth)
                continue
            assign = ctx.vars if rem is None else {k: a[rem] for k, a in ctx.vars.items()}
            n = ctx.n if rem is None else len(rem)
            taken = np.broadcast_to(np.asarray(_Vec(lw, assign).value(cond)) != 0, (n,))
            k = int(np.count_nonzero(taken))
            if k == n:
                return self.under(body, env, ctx, rem, frame, depth)
            idx = np.arange(ctx.n, dtype=np.int64) if rem is None else rem
            if k:
                self.under(body, env, ctx, idx[taken], frame, depth)
            rem = idx[~taken]

    def under(self, body, env: Env, ctx: _Ctx, sel, frame: int, depth: int) -> None:
        """Plan *body* in the instances *sel* of *ctx* (None: all of them)."""
        if sel is None:
            return self.items(body, env, ctx, frame, depth)
        child = _Ctx(len(sel), {k: a[sel] for k, a in ctx.vars.items()}, ctx.level, ctx, sel,
                     len(ctx.entries), sub=True)
        self.grow(child.n)
        ctx.entries.append((_NEST, child))
        self.items(body, env, child, frame, depth)

    def grow(self, n: int) -> None:
        self.instances += n
        if self.instances > self.lw.max_instructions:
            raise Fallback  # (memory) the per-statement path reports what there is to report

    def bound(self, node, env: Env, ctx: _Ctx, what: str, lo=None, hi=None):
        """A loop bound: an int, or int64 values per instance of *ctx*."""
        node = subst(node, env)
        if _has_marker(node):
            return _Vec(self.lw, ctx.vars).integer(node, lo, hi)
        return self.lw.integer(node, what, lo, hi)

    def loop(self, b: Block, env: Env, ctx: _Ctx, frame: int, depth: int) -> None:
        """A nested .for/.rept (MacroExpansion.block), its bounds per instance of *ctx*."""
        lw = self.lw
        head, args = b.head, b.head.args
        if b.kind == "rept":
            lw.nargs(head, 1, 1, "a count")
            count = self.bound(args[0], env, ctx, "repetition count", 0, lw.max_repeat)
            start, step, var = 0, 1, None
        else:
            lw.nargs(head, 3, 4, "VAR, START, STOP [, STEP]")
            var = args[0]
            if type(var) is not Name or var.name[0] == "%":
                raise Fallback
            start = self.bound(args[1], env, ctx, "loop start")
            stop = self.bound(args[2], env, ctx, "loop stop")
            step = self.bound(args[3], env, ctx, "loop step") if len(args) == 4 else 1
            for x in (start, stop, step):
                if not isinstance(x, np.ndarray) and not -_LIM < x < _LIM:
                    raise Fallback
            if not any(isinstance(x, np.ndarray) for x in (start, stop, step)):
                if step == 0:
                    raise Fallback
                count = len(range(start, stop, step))
            else:
                if np.any(np.asarray(step) == 0):
                    raise Fallback
                count = np.maximum(-((np.asarray(start) - stop) // step), 0)
            if int(np.max(count)) > lw.max_repeat:
                raise Fallback
        n = ctx.n
        if isinstance(count, np.ndarray):
            cnt = np.broadcast_to(count, (n,)).astype(np.int64)
            tot = int(cnt.sum())
        else:
            cnt = None
            tot = count * n
        if tot == 0:
            return
        self.grow(tot)
        if cnt is None:
            par = np.repeat(np.arange(n, dtype=np.int64), count)
            cnt = np.full(n, count, np.int64)
            idx = np.tile(np.arange(count, dtype=np.int64), n) if var is not None else None
        else:
            par = np.repeat(np.arange(n, dtype=np.int64), cnt)
            idx = np.arange(tot, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt) if var is not None else None
        vars_ = {k: a[par] for k, a in ctx.vars.items()}
        level = ctx.level + 1
        if var is not None:
            first = start[par] if isinstance(start, np.ndarray) else start
            stride = step[par] if isinstance(step, np.ndarray) else step
            if _maxabs(first) + _maxabs(idx) * _maxabs(stride) >= _LIM:
                raise Fallback
            vals = first + idx * stride
            _check_bounded(vals)
            marker = _MARK + str(level)
            vars_[marker] = vals
            env = Env({**env.bindings, var.name: Name(marker, var.span)}, env.tag)
        child = _Ctx(tot, vars_, level, ctx, par, len(ctx.entries), cnt=cnt)
        ctx.entries.append((_NEST, child))
        certain, self.certain = self.certain, False
        self.items(b.body, env, child, frame, depth)
        self.certain = certain


def _totals(ctx: _Ctx) -> int:
    """Rows per instance of every context (bottom-up); the rows of *ctx*'s first instance."""
    t = np.zeros(ctx.n, np.int64)
    k = 0
    for kind, x in ctx.entries:
        if kind == _ROW:
            k += 1
        elif kind == _NEST:
            _totals(x)
            if x.sub:
                x.ptotal = x.total
                t[x.par] += x.total
            else:
                x.ptotal = np.bincount(x.par, weights=x.total, minlength=ctx.n).astype(np.int64)
                t += x.ptotal
    ctx.total = t + k if k else t
    return int(ctx.total[0]) if ctx.n else 0


def _place(ctx: _Ctx, start: np.ndarray, pos: list) -> None:
    """Row numbers: *start* holds each instance's first row; fills pos[row index]."""
    cur = start.copy()
    for kind, x in ctx.entries:
        if kind == _ROW:
            pos[x] = cur.copy()
            cur += 1
        elif kind == _NEST:
            if x.sub:
                s2 = cur[x.par]
                cur[x.par] += x.total
            else:
                before = np.cumsum(x.total) - x.total           # rows of the children before each
                first = (np.cumsum(x.cnt) - x.cnt)[x.par]       # each child's parent's first child
                s2 = cur[x.par] + before - before[first]
                cur += x.ptotal
            _place(x, s2, pos)


def _key(ctx: _Ctx, slot: int) -> tuple:
    """When entry *slot* of *ctx* first runs (its first instance): (slot in the root,
    instance, slot, instance, slot, ...), compared as tuples."""
    parts, inst = [slot], 0
    while ctx.parent is not None:
        parts.append(inst)
        parts.append(ctx.slot)
        inst = int(ctx.par[inst])
        ctx = ctx.parent
    return tuple(reversed(parts))


def _has_marker(node) -> bool:
    t = type(node)
    if t is Name:
        return node.name[0] == _MARK
    if t is Binary:
        return _has_marker(node.left) or _has_marker(node.right)
    if t is Unary:
        return _has_marker(node.operand)
    if t is Call or t is ListLit:
        return any(_has_marker(a) for a in (node.args if t is Call else node.items))
    if t is Indexed:
        return node.base[0] == _MARK or _has_marker(node.index)
    if t is KwArg:
        return _has_marker(node.value)
    return False


def _scalar_int(lw, node) -> int:
    if _has_marker(node) or isinstance(node, (Str, ListLit, KwArg, Indexed)):
        raise Fallback
    v = evaluate(node, lw.lookup, lw.special_call)
    if isinstance(v, float):
        if not v.is_integer():
            raise Fallback
        v = int(v)
    return v


def _check_bounded(a: np.ndarray) -> None:
    if a.size and (int(a.min()) <= -_LIM or int(a.max()) >= _LIM):
        raise Fallback


def _maxabs(x) -> int:
    if isinstance(x, np.ndarray):
        return max(-int(x.min()), int(x.max()), 0) if x.size else 0
    return abs(x)


# ---- vector evaluation -----------------------------------------------------------
class _Vec:
    """Operands of one body instruction over all its rows: values are ints
    (the same on every row) or int64 arrays."""

    def __init__(self, lw, assign: dict):
        self.lw, self.assign, self.cfg = lw, assign, lw.config

    def value(self, node):
        if not _has_marker(node):
            if isinstance(node, (Str, ListLit, KwArg, Indexed)):
                raise Fallback
            v = evaluate(node, self.lw.lookup, self.lw.special_call)
            if type(v) is not int or not -_LIM < v < _LIM:
                raise Fallback  # floats (and huge ints) only where no loop variable is
            return v
        t = type(node)
        if t is Name:
            a = self.assign.get(node.name)
            if a is None:
                raise Fallback
            return a
        if t is Unary:
            v = self.value(node.operand)
            r = -v if node.op == "-" else ~v if node.op == "~" else None
            if r is None:
                raise Fallback
            _check_bounded(r)
            return r
        if t is Binary:
            return _binary(node.op, self.value(node.left), self.value(node.right))
        if t is Call:
            spec = FUNCTIONS.get(node.func)
            if spec is None or not spec[1] <= len(node.args) <= spec[2]:
                raise Fallback
            args = [self.value(a) for a in node.args]
            if node.func in ("min", "max") and len(args) >= 2:
                return reduce(np.minimum if node.func == "min" else np.maximum, args)
            if node.func == "abs":
                return np.abs(args[0])
            if node.func == "int":
                return args[0]
            if node.func == "ceil_div":
                return -_binary("//", -args[0], args[1])
            raise Fallback
        raise Fallback

    def integer(self, node, lo=None, hi=None):
        v = self.value(node)
        if isinstance(v, np.ndarray):
            if v.size and ((lo is not None and int(v.min()) < lo) or (hi is not None and int(v.max()) > hi)):
                raise Fallback
        elif (lo is not None and v < lo) or (hi is not None and v > hi):
            raise Fallback
        return v

    # ---- operands (only those that use a loop variable come here) ----
    def operand(self, row, spec, node, dtypes):
        kind = spec.kind
        if kind == "stream":
            return self.stream(node), None
        if kind == "src":
            if type(node) is Call and node.func == "stream":
                return self.stream(node), None
            if type(node) is not Name and type(node) not in (Binary, Unary, Call):
                raise Fallback
            v = self.value(node)
            dt = dtypes[0] if dtypes else "i32"
            if dt in isa.FLOAT_DTYPES:
                if _maxabs(v) > _FLOAT_EXACT[dt]:
                    raise Fallback
                bits = np.asarray(v, dtype=np.int64).astype(np.float32).view(np.uint32).astype(np.int64)
                return isa.SRC_IMMEDIATE | bits, None
            lo, hi = _INT_RANGE[dt]
            if isinstance(v, np.ndarray) and v.size and (int(v.min()) < lo or int(v.max()) > hi):
                raise Fallback
            return isa.SRC_IMMEDIATE | (v & 0xFFFFFFFF), None
        if kind == "addr":
            return self.address(node)
        if kind == "queue":
            if type(node) is not Call:
                raise Fallback
            if node.func == "queue":
                if not 1 <= len(node.args) <= 2:
                    raise Fallback
                addr = node.args[0]
                if type(addr) is Name and addr.name[0] != _MARK and not SLICE_RE.match(addr.name):
                    addr = Indexed(addr.name, Num(0, addr.span), addr.span)  # what address() makes of it
                if type(addr) is not Indexed:
                    raise Fallback
                k = 0
                if len(node.args) == 2:
                    k = node.args[1]
                    k = self.integer(k, 0) if _has_marker(k) else _scalar_int(self.lw, k)
                    if isinstance(k, np.ndarray):  # a byte plane per row: the queue of each one
                        planes = np.unique(k)
                        qs = np.array([self.address(self.lw.plane_shifted(addr, p, node.span) if p else addr)[1]
                                       for p in planes.tolist()], dtype=np.int64)
                        q = qs[np.searchsorted(planes, k)]
                        return q, q
                    if k < 0:
                        raise Fallback
                if k:
                    addr = self.lw.plane_shifted(addr, k, node.span)
                _, q = self.address(addr)
                return q, q
            unit = _UNIT_FUNCS.get(node.func)
            if unit is None:
                raise Fallback
            _, q = self.unit(node, unit)
            return q, q
        if kind in ("alu", "plane", "link", "sxm"):
            if type(node) is not Call or _UNIT_FUNCS.get(node.func) != kind:
                raise Fallback
            return self.unit(node, kind)
        if kind in ("uimm", "simm"):
            bits = spec.width
            if spec.signed:
                return self.integer(node, -(1 << (bits - 1)), (1 << (bits - 1)) - 1), None
            return self.integer(node, 0, (1 << bits) - 1), None
        raise Fallback

    def west(self, node):
        """The direction argument as 'west' (1) / 'east' (0): e/w, or 1 east / 0 west."""
        if type(node) is Name and node.name.lower() in ("e", "w"):
            return int(node.name.lower() == "w")
        v = self.value(node)
        if isinstance(v, np.ndarray):
            if not np.all((v == 0) | (v == 1)):
                raise Fallback
            return (v == 0).astype(np.int64)
        if v not in (0, 1):
            raise Fallback
        return int(v == 0)

    def stream(self, node):
        if type(node) is not Call or node.func != "stream" or len(node.args) != 2:
            raise Fallback
        index = self.integer(node.args[0], 0, self.cfg.streams_per_direction - 1)
        return index | (self.west(node.args[1]) << 5)

    def unit(self, node: Call, kind: str):
        if len(node.args) != 1:
            raise Fallback
        cfg = self.cfg
        if kind == "sxm":
            west = self.west(node.args[0])
            qw, qe = cfg.queue_id("sxmw"), cfg.queue_id("sxme")
            return 1 - west, np.where(west == 1, qw, qe) if isinstance(west, np.ndarray) else (qw if west else qe)
        limit = {"alu": cfg.vxm_alus_per_lane, "plane": cfg.mxm_planes, "link": cfg.c2c_links}[kind]
        k = self.integer(node.args[0], 0, limit - 1)
        table = np.array([cfg.queue_id(f"{_UNIT_PREFIX[kind]}{j}") for j in range(limit)], dtype=np.int64)
        return k, table[k]

    def address(self, node):
        """(addr code, queue) of ``sym[i]``, ``sym.pK[i]`` or ``W3.b0[i]``."""
        from .lower import PLANE_RE

        if type(node) is not Indexed or node.base[0] == _MARK:
            raise Fallback
        cfg = self.cfg
        m = SLICE_RE.match(node.base)
        if m:
            east = m.group(1).lower() == "e"
            slice_, bank = int(m.group(2)), int(m.group(3))
            if slice_ >= cfg.mem_slices_per_hemisphere or bank >= cfg.banks_per_slice:
                raise Fallback
            offset = self.integer(node.index, 0, cfg.words_per_bank - 1)
            return isa.addr_code(east, slice_, bank, 0) | offset, cfg.queue_id(f"{'e' if east else 'w'}{slice_}")
        name, plane = node.base, 0
        m = PLANE_RE.match(name)
        if m:
            name, plane = m.group(1), int(m.group(2))
        elif "." in name:
            raise Fallback
        sym = self.lw.data.get(name)
        if sym is None or plane >= sym.planes:
            raise Fallback
        index = self.integer(node.index, 0, sym.words_per_plane(cfg.lanes) - 1)
        base = sym.plane_addr(plane)
        east, slice_, _, offset = isa.addr_parts(base)
        if offset + sym.words_per_plane(cfg.lanes) > 4096:
            raise Fallback  # cannot happen (define_data checks it); the code would carry
        return base + index, cfg.queue_id(f"{'e' if east else 'w'}{slice_}")


def _binary(op: str, a, b):
    arr_a, arr_b = isinstance(a, np.ndarray), isinstance(b, np.ndarray)
    if op in ("+", "-"):
        r = a + b if op == "+" else a - b
    elif op == "*":
        if _maxabs(a) * _maxabs(b) >= _LIM:
            raise Fallback
        r = a * b
    elif op in ("//", "%", "/"):
        if np.any(b == 0):
            raise Fallback
        if op == "/":
            if np.any(a % b):
                raise Fallback  # not exact: the slow path makes a float
            op = "//"
        r = a // b if op == "//" else a % b
    elif op in ("<<", ">>"):
        if (int(b.min()) if arr_b else b) < 0:
            raise Fallback
        mb = int(b.max()) if arr_b else b
        if op == "<<":
            if mb > 62 or (_maxabs(a) << mb) >= _LIM:
                raise Fallback
            r = a << b
        else:
            r = a >> (np.minimum(b, 63) if arr_b else min(b, 63))
    elif op == "&":
        r = a & b
    elif op == "|":
        r = a | b
    elif op == "^":
        r = a ^ b
    elif op in ("==", "!=", "<", "<=", ">", ">="):
        r = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
             ">": np.greater, ">=": np.greater_equal}[op](a, b).astype(np.int64)
    else:
        raise Fallback
    if not (arr_a or arr_b):
        return r
    r = np.asarray(r)
    if r.dtype != np.int64:
        raise Fallback
    _check_bounded(r)
    return r


# ---- lowering one body instruction for all its rows ------------------------------------
def _lower_group(lw, st: Instruction, assign: dict, n: int):
    """(row, word, queue, pin_kind, pin) of one body instruction on its *n* rows:
    the checks and encoding of Lowerer.instruction, on arrays."""
    base, *suffixes = st.mnemonic.split(".")
    row = isa.lookup(base)
    if row is None or row is isa.REPEAT or row.mnemonic in ("sync", "notify"):
        raise Fallback
    dtypes = lw.suffixes(row, suffixes, st)
    values: dict = {}
    for i, dt in enumerate(dtypes):
        values["dt" if i == 0 else "dt2"] = isa.DTYPES[dt]
    ops = st.operands
    required = sum(not o.optional for o in row.operands)
    if not required <= len(ops) <= len(row.operands):
        raise Fallback
    vec = _Vec(lw, assign)

    def operand(row, spec, node, dtypes):
        return (vec if _has_marker(node) else lw).operand(row, spec, node, dtypes)

    queue = lw.collect_operands(row, ops, dtypes, values, operand)
    if row.queue is not None:
        queue = lw.config.queue_id(row.queue)
    if queue is None:
        raise Fallback
    _check_streams(lw, row, values, dtypes, ops)
    pin_kind, pin = PIN_NONE, 0
    if st.pin is not None:
        pin_kind = PIN_REL if st.pin.relative else PIN_ABS
        if _has_marker(st.pin.expr):
            pin = vec.integer(st.pin.expr, 0, 1 << 40)
        else:
            pin = lw.integer(st.pin.expr, "issue cycle", 0, (1 << 40))
    return row, _pack(row, values), queue, pin_kind, pin


def _pack(row, values: dict):
    """The words of :func:`lpuasm.kernels.pack_words` (same checks; one that fails
    is a Fallback): an int if no value is an array, else a uint64 array."""
    scalars, arrays = {}, []
    for k, v in values.items():
        if isinstance(v, np.ndarray) and v.ndim:
            arrays.append((k, v))
            scalars[k] = 0
        else:
            scalars[k] = int(v)
    try:
        const = isa.pack(row, scalars)
    except ValueError:
        raise Fallback from None
    if not arrays:
        return const
    fields = {f.name: f for f in row.fields}
    word = None
    for k, v in arrays:
        f = fields.get(k)
        if f is None:
            raise Fallback
        lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, f.mask)
        if int(v.min()) < lo or int(v.max()) > hi:
            raise Fallback
        part = (v & f.mask).astype(np.uint64) << np.uint64(f.lo)
        word = part if word is None else word | part
    return word | np.uint64(const) if const else word


def _check_streams(lw, row, values, dtypes, ops) -> None:
    """Lowerer.check_streams on arrays: any misaligned stream group -> Fallback."""
    n = lw.config.streams_per_direction
    for i, spec in enumerate(row.operands):
        if spec.kind not in ("stream", "src") or i >= len(ops):
            continue
        if row.mnemonic == "transpose":
            group = 16
        elif row.mnemonic == "permute" and spec.name == "map":
            group = 2
        elif row.unit in ("mem", "c2c") or spec.name == "map" or not dtypes:
            continue
        else:
            dt = dtypes[1] if (row.mnemonic == "vcvt" and spec.name == "d") else dtypes[0]
            group = isa.DTYPE_BYTES[dt]
        if group <= 1:
            continue
        code = np.asarray(values[spec.name], dtype=np.int64)
        index = code & 31
        bad = (index % group != 0) | (index + group > n)
        if spec.kind == "src":
            bad &= (code & isa.SRC_IMMEDIATE) == 0
        if np.any(bad):
            raise Fallback


# ---- appending the rows ---------------------------------------------------------
def _commit(lw, plan: _Planner, root: _Ctx, cols, total: int) -> None:
    b = lw.builder
    start = len(b)
    # frames and files, in the order the per-statement path first meets them
    events = [(_key(ctx, slot), 0, i) for i, (_, _, _, ctx, slot) in enumerate(plan.calls)]
    events += [(_key(ctx, slot), 1, i) for i, (_, ctx, slot, _) in enumerate(plan.rows)]
    events.sort()
    frame_ids = [0] * len(plan.calls)
    for _, kind, i in events:
        if kind == 0:
            name, span, parent, _, _ = plan.calls[i]
            frame_ids[i] = b.intern_frame(name, span.file, span.line, span.col,
                                          lw.chain if parent < 0 else frame_ids[parent])
        else:
            b.file_id(plan.rows[i][0].span.file)
    lw.serial += plan.ncalls
    if total == 0:
        return
    pos: list = [None] * len(plan.rows)
    _place(root, np.zeros(1, np.int64), pos)
    # per body statement (group) values; the rows of group g are pos[g]
    ng = len(plan.rows)
    spans = [st.span for st, _, _, _ in plan.rows]
    table = {
        "op": np.array([c[0].opcode for c in cols], np.uint8),
        "pin_kind": np.array([c[3] for c in cols], np.uint8),
        "loc_file": np.array([b.file_id(sp.file) for sp in spans], np.uint16),
        "loc_line": np.array([sp.line for sp in spans], np.uint32),
        "loc_col": np.array([sp.col for sp in spans], np.uint16),
        "loc_width": np.array([sp.end_col - sp.col for sp in spans], np.uint16),
        "loc_chain": np.array([lw.chain if f < 0 else frame_ids[f] for _, _, _, f in plan.rows], np.int32),
    }
    allpos = np.concatenate(pos) if ng > 1 else pos[0]
    lens = [len(p) for p in pos]
    gid = np.empty(total, np.int32 if ng < (1 << 31) else np.int64)
    gid[allpos] = np.repeat(np.arange(ng, dtype=gid.dtype), lens)
    columns = {name: t[gid] for name, t in table.items()}
    word = np.empty(total, np.uint64)
    word[allpos] = np.concatenate([np.broadcast_to(np.asarray(c[1], np.uint64), (k,)) for c, k in zip(cols, lens)])
    columns["word"] = word
    for name, j, dtype in (("queue", 2, np.int64), ("pin", 4, np.int64)):
        vals = [c[j] for c in cols]
        arr = [g for g, v in enumerate(vals) if isinstance(v, np.ndarray)]
        col = np.array([0 if isinstance(v, np.ndarray) else v for v in vals], dtype)[gid]
        for g in arr:
            col[pos[g]] = vals[g]
        columns[name] = col
    b.extend(columns)
    # what Lowerer.instruction keeps row by row: the last row of each queue, labels
    last: dict = {}
    for g, (c, p) in enumerate(zip(cols, pos)):
        q = c[2]
        if isinstance(q, np.ndarray):
            qs, first = np.unique(q[::-1], return_index=True)
            for qid, k in zip(qs.tolist(), (len(q) - 1 - first).tolist()):
                r = int(p[k])
                if last.get(qid, -1) < r:
                    last[qid] = r
        else:
            r = int(p[-1])
            if last.get(q, -1) < r:
                last[q] = r
    for qid, r in sorted(last.items(), key=lambda x: x[1]):
        lw.last_row_of_queue[qid] = (isa.BY_OPCODE[int(columns["op"][r])], int(word[r]))
    for name in lw.pending_labels:
        lw.labels[name] = start
    lw.pending_labels.clear()
