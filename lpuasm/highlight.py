"""Syntax highlighting for lasm, the LPU assembly language: a pygments lexer.

The keyword lists come from the instruction table (:mod:`lpuasm.isa`) and the
encoding limits of :mod:`lpuasm.config`, so a new opcode is highlighted without
touching this file.  :data:`MNEMONICS`, :data:`DIRECTIVES`, :data:`UNIT_NAMES`
and :data:`DTYPE_NAMES` are also what the REPL completes.

This module must stay light: it imports neither numpy nor lark (the REPL and
``pygmentize -l lasm`` load it on every start).

Token types::

    vadd            Keyword               (a mnemonic, in statement position)
    .f32            Punctuation + Keyword.Type
    .equ            Name.Decorator        (a known directive)
    start:          Name.Label + Punctuation
    s12e  s3w       Name.Builtin          (stream registers)
    alu1 w0 sxme    Name.Builtin          (units / instruction queues)
    W10.b0          Name.Builtin          (SRAM slice and bank; ``[16]`` follows)
    i8 f32          Keyword.Type          (a dtype as an operand)
    @  @+           Operator              (issue-cycle pin; the number follows)
    0x1f 0b101 3 2.5
                    Number.Hex / Number.Bin / Number.Integer / Number.Float
    inf nan pi      Name.Constant         (built-in constants)
    "file.npy"      String.Double (String.Escape for escapes)
    ; text          Comment.Single
    mymacro         Name.Function         (an unknown word in statement position: a macro call)
    f(...)          Name.Function         (a compile-time function call)
    other words     Name
"""

from __future__ import annotations

import dataclasses
import re

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation,
                            String, Whitespace)

from . import config, isa
from . import directives as _directives

__all__ = ["LasmLexer", "MNEMONICS", "DIRECTIVES", "UNIT_NAMES", "DTYPE_NAMES", "CONSTANTS"]

#: Every mnemonic of the instruction table, in table order.
MNEMONICS: tuple[str, ...] = tuple(isa.TABLE)

#: Assembler directives, with their leading dot.
DIRECTIVES: tuple[str, ...] = tuple("." + d for d in (*_directives.DIRECTIVES, *_directives.RESERVED))

#: Every queue / unit name the encoding can address (icu, w0..w63, e0..e63,
#: alu0..alu15, mxm0..mxm3, sxmw, sxme, c2c0..c2c15), in queue-id order of a
#: chip built at the encoding limits.  A given chip config has a subset.
UNIT_NAMES: tuple[str, ...] = dataclasses.replace(
    config.TSP_V1, name="encoding-limits", **config.ENCODING_LIMITS).queues

#: Built-in constants of expressions (see lpuasm/expr.py).
CONSTANTS: tuple[str, ...] = ("inf", "nan", "pi")

#: Element types usable as suffixes (``vadd.f32``) and as operands.
DTYPE_NAMES: tuple[str, ...] = tuple(isa.DTYPES)

_MAX_STREAM = config.ENCODING_LIMITS["streams_per_direction"] - 1
_MAX_SLICE = config.ENCODING_LIMITS["mem_slices_per_hemisphere"] - 1
_MAX_BANK = config.ENCODING_LIMITS["banks_per_slice"] - 1


def _upto(n: int) -> str:
    """A regex for the decimal integers 0..n (no leading zeros)."""
    return "(?:" + "|".join(str(i) for i in range(n, -1, -1)) + ")"


_IDENT = r"[a-z_][a-z0-9_]*"
_DEC = r"[0-9]+(?:_[0-9]+)*"
_STREAM = rf"s{_upto(_MAX_STREAM)}[ew]\b"
_ADDRESS = rf"[we]{_upto(_MAX_SLICE)}\.b{_upto(_MAX_BANK)}\b"


class LasmLexer(RegexLexer):
    """Lexer for lasm, the assembly language of the lpuasm LPU simulator."""

    name = "lasm"
    aliases = ["lasm"]
    filenames = ["*.lasm"]
    mimetypes = ["text/x-lasm"]
    flags = re.IGNORECASE | re.MULTILINE

    tokens = {
        # Statement position: the start of a line, or just after a label.
        "root": [
            (r"\n", Whitespace),
            (r"[ \t\r\f]+", Whitespace),
            (r";.*?$", Comment.Single),
            (rf"({_IDENT})([ \t]*)(:)",
             bygroups(Name.Label, Whitespace, Punctuation)),
            (words(DIRECTIVES, suffix=r"\b"), Name.Decorator, "operands"),
            (r"\." + _IDENT, Name, "operands"),  # an unknown directive
            (words(MNEMONICS, suffix=r"\b"), Keyword, ("operands", "suffix")),
            (_IDENT, Name.Function, ("operands", "suffix")),  # a macro call
            default("operands"),
        ],
        # Dtype suffixes right after a mnemonic: vadd.f32, vcvt.f16.f32.
        "suffix": [
            (words(DTYPE_NAMES, prefix=r"(\.)(", suffix=r")\b"),
             bygroups(Punctuation, Keyword.Type)),
            (rf"(\.)({_IDENT})", bygroups(Punctuation, Name)),
            default("#pop"),
        ],
        # The rest of a statement, up to the end of the line.
        "operands": [
            (r"\n", Whitespace, "#pop"),
            (r"[ \t\r\f]+", Whitespace),
            (r";.*?$", Comment.Single),
            (r'"', String.Double, "string"),
            (r"@\+?", Operator),
            (_ADDRESS, Name.Builtin),
            (_STREAM, Name.Builtin),
            (words(UNIT_NAMES, suffix=r"\b"), Name.Builtin),
            (words(DTYPE_NAMES, suffix=r"\b"), Keyword.Type),
            include("numbers"),
            (words(CONSTANTS, suffix=r"\b"), Name.Constant),
            (rf"({_IDENT})(?=[ \t]*\()", Name.Function),
            (_IDENT, Name),
            (r"//|<<|>>|[-+*/%&|^~=]", Operator),
            (r"[,\[\]().:]", Punctuation),
        ],
        "numbers": [
            (r"0x[0-9a-f]+(?:_[0-9a-f]+)*\b", Number.Hex),
            (r"0b[01]+(?:_[01]+)*\b", Number.Bin),
            (rf"{_DEC}(?:\.{_DEC}(?:e[+-]?\d+)?|e[+-]?\d+)\b", Number.Float),
            (rf"{_DEC}\b", Number.Integer),
        ],
        "string": [
            (r'\\.', String.Escape),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            default("#pop"),  # unterminated: the newline ends the statement
        ],
    }
