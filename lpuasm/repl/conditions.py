"""The restricted condition evaluator of ``break ... if``, ``watch ... if`` and
``until``: arithmetic, comparisons, and/or/not (also written ``&&``, ``||``
and ``!``), indexing and a few numpy functions over the data symbols,
constants, ``cycle``, ``row`` and ``queue``.  Nothing else may be named or
called.

The expression is walked here, not handed to Python's ``eval``, so that the
logical operators work on tensors as they do on numbers, and short-circuit:

* ``a and b`` is the elementwise AND of the truth of a and b; b is not
  evaluated at all when a is false everywhere (``or``: when a is true
  everywhere), so ``x != 0 && 1/x > 2`` never divides by a zero constant and
  ``cycle > 9000 && any(isnan(h))`` reads no tensor before cycle 9000.  Where a
  is false in some elements only, b is evaluated over all of them and masked
  (a division by zero there gives inf or nan, silently);
* ``not a`` is elementwise, and a chained comparison ``0 < x < 5`` is the
  elementwise AND of its links, short-circuited the same way;
* a data symbol is read from SRAM only when the evaluation reaches its name.

The condition holds when the result is true in every element."""

from __future__ import annotations

import ast
import functools
import operator
import re

import numpy as np

from ..diagnostics import did_you_mean
from ..sim import read_symbol
from .errors import DebugError, _hint

# names a breakpoint condition may use besides the data symbols
_COND_FUNCS = {"abs": np.abs, "any": np.any, "all": np.all, "isnan": np.isnan, "isinf": np.isinf,
               "isfinite": np.isfinite, "max": np.max, "min": np.min, "sum": np.sum, "mean": np.mean}
_ALLOWED_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name,
                  ast.Load, ast.Subscript, ast.Slice, ast.Tuple, ast.Call, ast.cmpop, ast.boolop, ast.operator,
                  ast.unaryop)
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
           ast.BitXor: operator.xor, ast.BitAnd: operator.and_, ast.MatMult: operator.matmul}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Invert: operator.invert}
_STRING = re.compile(r"""("[^"]*"|'[^']*')""")


def _c_logic(text: str) -> str:
    """``&&``, ``||`` and ``!`` (not ``!=``) as Python's and, or, not (outside quotes)."""
    parts = _STRING.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"!(?!=)", " not ", parts[i].replace("&&", " and ").replace("||", " or "))
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _check_expr(text: str) -> ast.Expression:
    try:
        tree = ast.parse(_c_logic(text).strip(), mode="eval")
    except SyntaxError:
        raise DebugError(f"cannot parse the condition '{text}'") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES) or (isinstance(node, ast.Name) and node.id.startswith("_")):
            raise DebugError(f"condition '{text}': only arithmetic, comparisons, and/or/not (&&, ||, !), indexing "
                             f"and {', '.join(_COND_FUNCS)} are allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _COND_FUNCS):
            raise DebugError(f"condition '{text}': only {', '.join(_COND_FUNCS)} may be called")
    return tree


class _Unknown(Exception):
    """A name the condition may not use here."""


def _truth(v) -> np.ndarray:
    return np.asarray(v).astype(bool)


class _Walker:
    """Evaluates a checked condition tree; *lookup* gives a name's value."""

    def __init__(self, lookup):
        self.lookup = lookup

    def __call__(self, node):
        return getattr(self, type(node).__name__)(node)

    def Expression(self, node):
        return self(node.body)

    def Constant(self, node):
        return node.value

    def Name(self, node):
        return self.lookup(node.id)

    def BoolOp(self, node):
        acc = _truth(self(node.values[0]))
        for value in node.values[1:]:
            if isinstance(node.op, ast.And):
                if not acc.any():
                    return acc
                acc = np.logical_and(acc, _truth(self(value)))
            else:
                if acc.all():
                    return acc
                acc = np.logical_or(acc, _truth(self(value)))
        return acc

    def UnaryOp(self, node):
        v = self(node.operand)
        if isinstance(node.op, ast.Not):
            return np.logical_not(_truth(v))
        return _UNARY[type(node.op)](v)

    def BinOp(self, node):
        return _BINOPS[type(node.op)](self(node.left), self(node.right))

    def Compare(self, node):
        left, acc = self(node.left), None
        for op, right_node in zip(node.ops, node.comparators):
            if acc is not None and not acc.any():
                return acc
            right = self(right_node)
            if type(op) not in _CMPOPS:
                raise TypeError(f"'{type(op).__name__}' comparisons are not supported")
            link = _truth(_CMPOPS[type(op)](left, right))
            acc = link if acc is None else np.logical_and(acc, link)
            left = right
        return acc

    def Subscript(self, node):
        return self(node.value)[self(node.slice)]

    def Slice(self, node):
        return slice(*(None if n is None else self(n) for n in (node.lower, node.upper, node.step)))

    def Tuple(self, node):
        return tuple(self(e) for e in node.elts)

    def Call(self, node):
        return _COND_FUNCS[node.func.id](*(self(a) for a in node.args))


class Conditions:
    """Debugger mixin: evaluating a condition at the current position."""

    def _eval(self, text: str, extra: dict | None = None, who: str = "condition") -> bool:
        """Evaluate a restricted condition now: numpy functions, cycle, row,
        queue, constants (.equ) and the data symbols it reaches (only those
        are read, when the evaluation reaches them)."""
        tree = _check_expr(text)
        names = dict(_COND_FUNCS)
        names.update({c.name: c.value for c in self.program.image.consts})
        names.update(self.equs)
        names.update(cycle=self.cycle, row=self.row)
        if self.row < len(self.program):
            names["queue"] = self.program.config.queues[int(self.program.queue[self.row])]
        extra = extra or {}
        syms = {d.name: d for d in self.data_symbols() if d.name not in extra}
        cache: dict = {}

        def lookup(name: str):
            if name in extra:
                return extra[name]
            if name in syms:
                if name not in cache:
                    if not cache:
                        self._settle()
                    cache[name] = read_symbol(self.engine.sram, syms[name], self.program.config)
                return cache[name]
            if name in names and name not in _COND_FUNCS:
                return names[name]
            raise _Unknown(f"unknown name '{name}'" + _hint(did_you_mean(
                name, [n for n in (*names, *syms, *extra) if n not in _COND_FUNCS])))

        try:
            with np.errstate(all="ignore"):
                return bool(np.all(_Walker(lookup)(tree)))
        except Exception as e:  # a condition is user code: any failure is one line
            raise DebugError(f"{who}: condition '{text}' failed: {e}") from None

