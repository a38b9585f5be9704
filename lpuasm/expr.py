"""Compile-time expressions: evaluation of syntax-tree expressions to numbers."""

from __future__ import annotations

import math
from typing import Callable

from .diagnostics import did_you_mean
from .syntax import Binary, Call, Expr, Name, Num, Span, Unary


class ExprError(Exception):
    """An expression that cannot be evaluated; carries the span to blame."""

    def __init__(self, message: str, span: Span, hint: str | None = None):
        super().__init__(message)
        self.message, self.span, self.hint = message, span, hint


BUILTIN_CONSTANTS = {"inf": math.inf, "nan": math.nan, "pi": math.pi}


def _int_only(name: str, fn: Callable) -> Callable:
    def wrapped(*args):
        if not all(isinstance(a, int) for a in args):
            raise TypeError("takes integers")
        return fn(*args)
    return wrapped


FUNCTIONS: dict[str, tuple[Callable, int, int]] = {
    # name: (function, min args, max args)
    "min": (min, 1, 64),
    "max": (max, 1, 64),
    "abs": (abs, 1, 1),
    "int": (lambda x: int(x), 1, 1),
    "float": (lambda x: float(x), 1, 1),
    "ceil": (lambda x: math.ceil(x), 1, 1),
    "floor": (lambda x: math.floor(x), 1, 1),
    "ceil_div": (_int_only("ceil_div", lambda a, b: -(-a // b)), 2, 2),
    "log2": (_int_only("log2", lambda x: x.bit_length() - 1 if x > 0 and x & (x - 1) == 0 else math.log2(x)), 1, 1),
}


#: functions evaluated by the assembler, which knows the program's names:
#: name -> (min args, max args); :func:`evaluate` hands them to its *special* callback
CONTEXT_FUNCTIONS: dict[str, tuple[int, int]] = {
    "defined": (1, 1),
}

#: functions that name an operand (a stream, a unit, a queue) rather than compute a
#: number: they are resolved where an instruction takes such an operand
#: (lpuasm.lower), and are an error anywhere else.  name -> (what it names, min, max args)
OPERAND_FUNCTIONS: dict[str, tuple[str, int, int]] = {
    "stream": ("a stream", 2, 2),
    "queue": ("a queue", 1, 2),
    "alu": ("an ALU", 1, 1),
    "mxm": ("an MXM plane", 1, 1),
    "c2c": ("a C2C link", 1, 1),
    "sxm": ("an SXM", 1, 1),
}


def check_call_args(node: Call, lo: int, hi: int) -> None:
    """Raise ExprError unless *node* has lo..hi arguments."""
    if not lo <= len(node.args) <= hi:
        want = str(lo) if lo == hi else f"{lo} or more" if hi > lo + 1 else f"{lo} or {hi}"
        raise ExprError(f"{node.func}() takes {want} argument{'s' * (want != '1')}, got {len(node.args)}",
                        node.span)


def _div(a, b):
    if isinstance(a, int) and isinstance(b, int) and b and a % b == 0:
        return a // b
    return a / b


_BINARY: dict[str, Callable] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "==": lambda a, b: int(a == b),
    "!=": lambda a, b: int(a != b),
    "<": lambda a, b: int(a < b),
    "<=": lambda a, b: int(a <= b),
    ">": lambda a, b: int(a > b),
    ">=": lambda a, b: int(a >= b),
}
_INT_OPS = {"<<", ">>", "&", "|", "^", "//", "%"}


def evaluate(node: Expr, lookup: Callable[[Name], int | float],
             special: Callable[[Call], int | float] | None = None) -> int | float:
    """Value of *node*; *lookup* resolves names (raising ExprError if it can't),
    *special* evaluates the calls of :data:`CONTEXT_FUNCTIONS` (their argument
    count already checked); without it they are an error."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        return lookup(node)
    if isinstance(node, Unary):
        v = evaluate(node.operand, lookup, special)
        if node.op == "-":
            return -v
        if not isinstance(v, int):
            raise ExprError(f"'{node.op}' needs an integer operand", node.span)
        return ~v
    if isinstance(node, Binary):
        a = evaluate(node.left, lookup, special)
        b = evaluate(node.right, lookup, special)
        if node.op in _INT_OPS and not (isinstance(a, int) and isinstance(b, int)):
            raise ExprError(f"'{node.op}' needs integer operands", node.span)
        if node.op in ("/", "//", "%") and b == 0:
            raise ExprError("division by zero", node.span)
        if node.op in ("<<", ">>") and b < 0:
            raise ExprError("negative shift count", node.span)
        if node.op == "<<" and b > 256:
            raise ExprError("shift count too large", node.span)
        return _BINARY[node.op](a, b)
    if isinstance(node, Call):
        spec = FUNCTIONS.get(node.func)
        if spec is None:
            if node.func in OPERAND_FUNCTIONS:
                raise ExprError(f"{node.func}() names {OPERAND_FUNCTIONS[node.func][0]}, not a number", node.span,
                                "use it as an instruction operand")
            if node.func in CONTEXT_FUNCTIONS:
                check_call_args(node, *CONTEXT_FUNCTIONS[node.func])
                if special is None:
                    raise ExprError(f"{node.func}() cannot be used here", node.span)
                return special(node)
            raise ExprError(f"unknown function '{node.func}'", node.span,
                            did_you_mean(node.func, [*FUNCTIONS, *CONTEXT_FUNCTIONS, *OPERAND_FUNCTIONS]))
        check_call_args(node, *spec[1:])
        fn = spec[0]
        args = [evaluate(a, lookup, special) for a in node.args]
        try:
            return fn(*args)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
            raise ExprError(f"{node.func}(): {exc}", node.span) from None
    raise ExprError("expected an expression", node.span)
