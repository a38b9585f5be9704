"""The restricted condition evaluator of ``break ... if``, ``watch ... if`` and
``until``: arithmetic, comparisons, and/or/not, indexing and a few numpy
functions over the data symbols, constants, ``cycle``, ``row`` and ``queue``.
Nothing else may be named or called."""

from __future__ import annotations

import ast

import numpy as np

from ..sim import read_symbol
from .errors import DebugError

# names a breakpoint condition may use besides the data symbols
_COND_FUNCS = {"abs": np.abs, "any": np.any, "all": np.all, "isnan": np.isnan, "isinf": np.isinf,
               "isfinite": np.isfinite, "max": np.max, "min": np.min, "sum": np.sum, "mean": np.mean}
_ALLOWED_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name,
                  ast.Load, ast.Subscript, ast.Slice, ast.Tuple, ast.Call, ast.cmpop, ast.boolop, ast.operator,
                  ast.unaryop)


def _check_expr(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise DebugError(f"cannot parse the condition '{text}'") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES) or (isinstance(node, ast.Name) and node.id.startswith("_")):
            raise DebugError(f"condition '{text}': only arithmetic, comparisons, and/or/not, indexing and "
                             f"{', '.join(_COND_FUNCS)} are allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _COND_FUNCS):
            raise DebugError(f"condition '{text}': only {', '.join(_COND_FUNCS)} may be called")
    return tree


class Conditions:
    """Debugger mixin: evaluating a condition at the current position."""

    def _eval(self, text: str, extra: dict | None = None, who: str = "condition") -> bool:
        """Evaluate a restricted condition now: numpy functions, cycle, row,
        queue, constants (.equ) and the data symbols it names (only those are read)."""
        tree = _check_expr(text)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names = dict(_COND_FUNCS)
        names.update({c.name: c.value for c in self.program.image.consts})
        names.update(self.equs)
        names.update(cycle=self.cycle, row=self.row)
        if self.row < len(self.program):
            names["queue"] = self.program.config.queues[int(self.program.queue[self.row])]
        names.update(extra or {})
        syms = [d for d in self.data_symbols() if d.name in used and d.name not in (extra or {})]
        if syms:
            self._settle()
        for d in syms:
            names[d.name] = read_symbol(self.engine.sram, d, self.program.config)
        try:
            return bool(np.all(eval(compile(tree, "<condition>", "eval"), {"__builtins__": {}}, names)))
        except Exception as e:  # a condition is user code: any failure is one line
            raise DebugError(f"{who}: condition '{text}' failed: {e}") from None
