"""Vectorised expansion of ``.for``/``.rept`` loops.

A loop whose body holds only instructions (no labels, directives, macro calls
or ``.if``), or nested ``.for``/``.rept`` loops of such bodies whose bounds do
not depend on an outer loop variable, is lowered without running its body once
per repetition: each loop variable becomes an int64 array over all
repetitions, every operand expression that uses one is evaluated once for all
of them with numpy, range checks run on whole arrays, the words are packed
column-wise (like :func:`lpuasm.kernels.pack_words`) and the rows are appended
with :meth:`lpuasm.ir.IRBuilder.extend`.  The IR is identical, column for column
and row for row, to what the per-instruction path (:mod:`lpuasm.macros`) gives.

The fast path is all or nothing.  Operands that do not use a loop variable are
lowered by the ordinary :class:`lpuasm.lower.Lowerer` methods (once per body
instruction); anything the vector evaluator does not handle (floats where an
integer is needed, a ``/`` that is not exact, an unknown name, an operand kind
it does not know, a value that could overflow int64) and any failed check makes
it give up, drop whatever diagnostics it recorded and leave the loop to the
per-instruction path, which then reports the errors exactly as it always did.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from . import isa
from .datadirs import SLICE_RE
from .expr import FUNCTIONS, ExprError, evaluate
from .ir import PIN_ABS, PIN_NONE, PIN_REL
from .kernels import pack_words
from .macros import Block, Env, SubstError, subst, subst_statement
from .syntax import Binary, Call, Indexed, Instruction, KwArg, ListLit, Name, Str, Unary

#: set False to force the per-instruction path (the differential tests do)
ENABLED = True
#: loops expanding to fewer rows go the per-instruction path (numpy costs more there)
MIN_ROWS = 8
#: re-raise unexpected exceptions instead of falling back (tests)
STRICT = False

_MARK = "\x00"      # loop variables are bound to Name("\x00<level>") while planning
_LIM = 1 << 62      # every array value stays inside (-_LIM, _LIM): no int64 overflow
_INT_RANGE = {"i8": (-128, 127), "i16": (-32768, 32767), "i32": (-(1 << 31), (1 << 31) - 1)}
_FLOAT_EXACT = {"f16": 2048, "f32": 1 << 24}   # integers converted exactly
_UNIT_PREFIX = {"alu": "alu", "plane": "mxm", "link": "c2c"}
_UNIT_FUNCS = {"alu": "alu", "mxm": "plane", "c2c": "link", "sxm": "sxm"}

stats = {"fast_loops": 0, "fast_rows": 0, "fallbacks": 0}


class Fallback(Exception):
    """The loop is not for the fast path (or a check failed): use the slow one."""


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
    if diags.has_errors:
        return False
    n0 = len(diags.items)
    try:
        vals = np.arange(values.start, values.stop, values.step, dtype=np.int64)
        _check_bounded(vals)
        groups, total = _plan_loop(lw, b, env, var, vals, 0)
        if total == 0 or len(lw.builder) + total > lw.max_instructions:
            raise Fallback
        cols = [_lower_group(lw, st, assign, len(pos)) for st, assign, pos in groups]
    except Exception as exc:
        del diags.items[n0:]
        stats["fallbacks"] += 1
        if STRICT and not isinstance(exc, (Fallback, ExprError, SubstError, lw.Fatal)):
            raise
        return False
    _commit(lw, groups, cols, total)
    stats["fast_loops"] += 1
    stats["fast_rows"] += total
    return True


def _fits(items) -> bool:
    """Only instructions and nested .for/.rept of them (structure only)."""
    for it in items:
        t = type(it)
        if t is Block:
            if it.kind not in ("for", "rept") or not _fits(it.body):
                return False
        elif t is not Instruction:
            return False
    return True


# ---- planning: which statement, with which loop values, lands on which row -----------
def _plan_loop(lw, b: Block, env: Env, var, vals: np.ndarray, level: int):
    """Groups (statement, {marker: values}, row positions) of all repetitions of *b*,
    and the number of rows."""
    if var is not None:
        marker = _MARK + str(level)
        env = Env({**env.bindings, var.name: Name(marker, var.span)}, env.tag)
    groups, per = _plan_items(lw, b.body, env, level + 1)
    n = len(vals)
    out = []
    for st, assign, pos in groups:
        k = len(pos)
        a2 = {m: np.tile(a, n) for m, a in assign.items()}
        if var is not None:
            a2[marker] = np.repeat(vals, k)
        out.append((st, a2, (np.arange(n, dtype=np.int64)[:, None] * per + pos[None, :]).ravel()))
    return out, n * per


def _plan_items(lw, items, env: Env, level: int):
    groups, off = [], 0
    for it in items:
        if type(it) is Instruction:
            if it.mnemonic in lw.macros:
                raise Fallback
            groups.append((subst_statement(it, env), {}, np.array([off], dtype=np.int64)))
            off += 1
            continue
        vals, var = _inner_range(lw, it, env)
        if not len(vals):
            continue
        inner, n = _plan_loop(lw, it, env, var, vals, level)
        groups.extend((st, a, p + off) for st, a, p in inner)
        off += n
    return groups, off


def _inner_range(lw, b: Block, env: Env):
    """Values and variable of a nested loop; its bounds must not use a loop variable."""
    args = b.head.args
    if any(type(a) is KwArg for a in args):
        raise Fallback
    if b.kind == "rept":
        if len(args) != 1:
            raise Fallback
        count = _scalar_int(lw, subst(args[0], env))
        if not 0 <= count <= lw.max_repeat:
            raise Fallback
        return np.arange(count, dtype=np.int64), None
    if len(args) not in (3, 4):
        raise Fallback
    var = args[0]
    if type(var) is not Name or var.name[0] == "%":
        raise Fallback
    start, stop = (_scalar_int(lw, subst(a, env)) for a in args[1:3])
    step = _scalar_int(lw, subst(args[3], env)) if len(args) == 4 else 1
    r = range(start, stop, step) if step else None
    if r is None or len(r) > lw.max_repeat:
        raise Fallback
    vals = np.arange(start, stop, step, dtype=np.int64)
    _check_bounded(vals)
    return vals, var


def _scalar_int(lw, node) -> int:
    if _has_marker(node) or isinstance(node, (Str, ListLit, KwArg, Indexed)):
        raise Fallback
    v = evaluate(node, lw.lookup, lw.special_call)
    if isinstance(v, float):
        if not v.is_integer():
            raise Fallback
        v = int(v)
    return v


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
                if type(addr) is not Indexed:
                    raise Fallback
                if len(node.args) == 2:
                    k = _scalar_int(self.lw, node.args[1])
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
    try:
        word = pack_words(row, **values)
    except ValueError:
        raise Fallback from None
    return row, word, queue, pin_kind, pin


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
def _commit(lw, groups, cols, total: int) -> None:
    b = lw.builder
    start = len(b)
    op = np.empty(total, np.uint8)
    word = np.empty(total, np.uint64)
    queue = np.empty(total, np.int64)
    pin_kind = np.empty(total, np.uint8)
    pin = np.empty(total, np.int64)
    loc_file = np.empty(total, np.uint16)
    loc_line = np.empty(total, np.uint32)
    loc_col = np.empty(total, np.uint16)
    loc_width = np.empty(total, np.uint16)
    order = sorted(range(len(groups)), key=lambda g: int(groups[g][2][0]))
    for g in order:  # files are numbered in order of first use, as row by row
        b.file_id(groups[g][0].span.file)
    for (st, _, pos), (row, w, q, pk, p) in zip(groups, cols):
        span = st.span
        op[pos] = row.opcode
        word[pos] = w
        queue[pos] = q
        pin_kind[pos] = pk
        pin[pos] = p
        loc_file[pos] = b.file_id(span.file)
        loc_line[pos] = span.line
        loc_col[pos] = span.col
        loc_width[pos] = span.end_col - span.col
    b.extend({"op": op, "word": word, "queue": queue, "pin_kind": pin_kind, "pin": pin,
              "loc_file": loc_file, "loc_line": loc_line, "loc_col": loc_col, "loc_width": loc_width,
              "loc_chain": np.full(total, lw.chain, np.int32)})
    # what Lowerer.instruction keeps row by row: the last row of each queue, labels
    rq = queue[::-1]
    qs, first = np.unique(rq, return_index=True)
    for qid, k in zip(qs.tolist(), (total - 1 - first).tolist()):
        lw.last_row_of_queue[qid] = (isa.BY_OPCODE[int(op[k])], int(word[k]))
    for name in lw.pending_labels:
        lw.labels[name] = start
    lw.pending_labels.clear()
