"""The lasm syntax tree: small typed nodes with source spans.

The parser (:mod:`lpuasm.parser`, the only module that imports lark) turns
source text into a list of statements made of these nodes.  Nothing here knows
what a mnemonic or directive means: that is the assembler's job, guided by the
instruction table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Span:
    """A source range on one line: 1-based line and column, ``end_col`` exclusive."""

    file: str
    line: int
    col: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# ---- expressions -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Num:
    """An integer or floating-point literal."""

    value: int | float
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A bare identifier: a symbol, a register (``s3e``), a unit (``alu2``)..."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` or ``~x``."""

    op: str
    operand: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    """``a OP b`` for OP in ``+ - * / // % << >> & | ^``."""

    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """``f(a, b)``: a built-in compile-time function."""

    func: str
    args: tuple["Expr", ...]
    span: Span


Expr = Union[Num, Name, Unary, Binary, Call]


# ---- operands ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Indexed:
    """``base[index]``, where base is a name (``x``) or a dotted name (``W3.b1``)."""

    base: str
    index: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class ListLit:
    """``[a, b, ...]``; items are expressions or nested lists."""

    items: tuple["Operand", ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Str:
    """A double-quoted string (escapes already resolved)."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class KwArg:
    """``name = value`` (keyword arguments of directives and, later, macros)."""

    name: str
    value: "Operand"
    span: Span


Operand = Union[Num, Name, Unary, Binary, Call, Indexed, ListLit, Str, KwArg]


# ---- statements -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pin:
    """``@expr`` (absolute issue cycle) or ``@+expr`` (cycles after the previous instruction)."""

    relative: bool
    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Label:
    """``name:``"""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Instruction:
    """``mnemonic[.suffix...] operand, ... [@pin]``; span covers the mnemonic."""

    mnemonic: str
    operands: tuple[Operand, ...]
    pin: Pin | None
    span: Span


@dataclass(frozen=True, slots=True)
class Directive:
    """``.name operand, ...``; ``name`` without the dot, span covers ``.name``."""

    name: str
    args: tuple[Operand, ...]
    span: Span


Statement = Union[Label, Instruction, Directive]


def span_of(node) -> Span:
    return node.span
