"""The lasm parser: source text to a list of :mod:`lpuasm.syntax` statements.

This is the only module of the project that imports lark.  The grammar
(``grammar/lasm.lark``, shipped as package ``lpuasm.grammar``) is syntax only;
it is run by lark's LALR parser with an inline transformer (:class:`_Builder`),
so the syntax-tree nodes are built directly by the parser's reductions, without
an intermediate lark tree.

Syntax errors are collected, not just the first: on an error the parser records
a diagnostic, skips the rest of the offending line and resumes at the next one
(each line starts in the same parser state, so this is exact).  All syntax
errors of a file are raised together in one :class:`LpuError`.

:func:`bare_parse` runs the same grammar through a plain LALR Lark (tree
output), as the baseline of parsing benchmarks.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import replace
from pathlib import Path

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, LpuError, SourceCache
from .syntax import (
    Binary, Call, Directive, Indexed, Instruction, KwArg, Label, ListLit, Name, Num, Pin,
    Span, Statement, Str, Unary,
)

__all__ = ["parse", "bare_parse", "grammar_text", "MAX_ERRORS"]

MAX_ERRORS = 50

_LARK_OPTIONS = dict(parser="lalr", lexer="contextual", propagate_positions=False,
                     maybe_placeholders=False)


def grammar_text() -> str:
    """The text of ``lasm.lark``: the installed package resource, or the
    ``grammar/`` folder of a source checkout."""
    try:
        from importlib.resources import files
        return files("lpuasm.grammar").joinpath("lasm.lark").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        path = Path(__file__).resolve().parent.parent / "grammar" / "lasm.lark"
        return path.read_text(encoding="utf-8")


# ---- building nodes -----------------------------------------------------------------
_PRECEDENCE = {"*": 5, "/": 5, "//": 5, "%": 5, "+": 4, "-": 4, "<<": 3, ">>": 3,
               "&": 2, "^": 1, "|": 0, "==": -1, "!=": -1, "<": -1, "<=": -1, ">": -1, ">=": -1}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}


class _Builder:
    """Rule callbacks for lark's inline transformer: one method per rule or alias
    of the grammar, each taking the list of the rule's kept children."""

    def __init__(self) -> None:
        self.file = "<input>"
        self.out: list[Statement] = []       # completed statements, in order
        self.errors: list[Diagnostic] = []   # non-fatal errors found while building

    def _span(self, tok) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_column)

    # statements: appended to self.out as they complete, so that what precedes
    # a syntax error survives it
    def start(self, children):
        return None

    def label(self, c):
        tok = c[0]
        self.out.append(Label(str(tok), Span(self.file, tok.line, tok.column, tok.end_column)))

    def instruction(self, c):
        tok = c[0]
        pin = None
        if len(c) > 1 and type(c[-1]) is Pin:
            pin = c.pop()
        self.out.append(Instruction(str(tok), tuple(c[1:]), pin,
                                    Span(self.file, tok.line, tok.column, tok.end_column)))

    def directive(self, c):
        tok = c[0]
        self.out.append(Directive(tok[1:], tuple(c[1:]),
                                  Span(self.file, tok.line, tok.column, tok.end_column)))

    def pin(self, c):
        at, expr = c
        return Pin(at.type == "AT_PLUS", expr,
                   Span(self.file, at.line, at.column, expr.span.end_col))

    # operands
    def kwarg(self, c):
        tok, value = c
        return KwArg(str(tok), value, Span(self.file, tok.line, tok.column, value.span.end_col))

    bare_kwarg = kwarg

    def string(self, c):
        tok = c[0]
        span = Span(self.file, tok.line, tok.column, tok.end_column)
        body = tok[1:-1]
        if "\\" in body:
            body = self._unescape(body, span)
        return Str(body, span)

    def _unescape(self, body: str, span: Span) -> str:
        out = []
        i, n = 0, len(body)
        while i < n:
            ch = body[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            esc = body[i + 1]  # the STRING terminal guarantees one
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
            else:
                col = span.col + 1 + i
                self.errors.append(Diagnostic(
                    "error", f"unknown escape sequence '\\{esc}'",
                    Span(span.file, span.line, col, col + 2)))
                out.append(esc)
            i += 2
        return "".join(out)

    def indexed(self, c):
        base, index, close = c
        return Indexed(str(base), index, Span(self.file, base.line, base.column, close.end_column))

    def list(self, c):
        open_, close = c[0], c[-1]
        return ListLit(tuple(c[1:-1]), Span(self.file, open_.line, open_.column, close.end_column))

    # expressions
    def expr(self, c):
        """A flat run of prefix operators, atoms and binary operators (tokens are
        str, nodes are not): apply the unary operators, then the binary ones by
        precedence (shunting-yard; all binary operators are left-associative)."""
        file = self.file
        operands = []
        binops = []
        prefix = []
        for x in c:
            if isinstance(x, str):
                if len(operands) > len(binops):
                    binops.append(x)
                else:
                    prefix.append(x)
                continue
            while prefix:
                op = prefix.pop()
                x = Unary(str(op), x, Span(file, op.line, op.column, x.span.end_col))
            operands.append(x)
        stack = [operands[0]]
        ops = []
        for op, rhs in zip(binops, operands[1:]):
            p = _PRECEDENCE[op]
            while ops and _PRECEDENCE[ops[-1]] >= p:
                right = stack.pop()
                left = stack.pop()
                ls = left.span
                stack.append(Binary(ops.pop(), left, right,
                                    Span(file, ls.line, ls.col, right.span.end_col)))
            ops.append(str(op))
            stack.append(rhs)
        while ops:
            right = stack.pop()
            left = stack.pop()
            ls = left.span
            stack.append(Binary(ops.pop(), left, right,
                                Span(file, ls.line, ls.col, right.span.end_col)))
        return stack[0]

    def paren(self, c):
        """``( expr )``: the inner node, its span widened to the parentheses."""
        open_, node, close = c
        return replace(node, span=Span(self.file, open_.line, open_.column, close.end_column))

    def dec(self, c):
        tok = c[0]
        return Num(int(tok), Span(self.file, tok.line, tok.column, tok.end_column))

    def radix(self, c):
        tok = c[0]
        return Num(int(tok, 0), Span(self.file, tok.line, tok.column, tok.end_column))

    def float(self, c):
        tok = c[0]
        return Num(float(tok), Span(self.file, tok.line, tok.column, tok.end_column))

    def name(self, c):
        tok = c[0]
        return Name(str(tok), Span(self.file, tok.line, tok.column, tok.end_column))

    bare_name = name

    def call(self, c):
        tok, close = c[0], c[-1]
        return Call(str(tok), tuple(c[1:-1]), Span(self.file, tok.line, tok.column, close.end_column))


# ---- the parsers, built once -----------------------------------------------------------
_lock = threading.Lock()
_parser: Lark | None = None
_builder: _Builder | None = None
_bare: Lark | None = None


def _get_parser() -> tuple[Lark, _Builder]:
    global _parser, _builder
    if _parser is None:
        builder = _Builder()
        _parser = Lark(grammar_text(), transformer=builder, **_LARK_OPTIONS)
        _builder = builder
    return _parser, _builder


def bare_parse(text: str):
    """Parse *text* with the same grammar and lexer through a plain LALR Lark
    (no transformer): returns lark's tree.  For benchmarks only."""
    global _bare
    if _bare is None:
        _bare = Lark(grammar_text(), **_LARK_OPTIONS)
    return _bare.parse(text)


def parse(text: str, filename: str, sources: SourceCache | None = None) -> list[Statement]:
    """Parse lasm source *text* (named *filename* in spans) into statements.

    Raises :class:`LpuError` with every syntax error of the file (up to
    :data:`MAX_ERRORS`).  The text is added to *sources*, if given, so that
    diagnostics can quote it."""
    if sources is not None:
        sources.add(filename, text)
    with _lock:
        parser, builder = _get_parser()
        # The parse allocates many small objects that all survive it; the
        # cyclic GC would rescan them over and over (quadratic in file size)
        # and there are no cycles to find.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        builder.file = filename
        builder.out = out = []
        builder.errors = errors = []
        syntax: list[Diagnostic] = []
        current = text
        try:
            while True:
                try:
                    parser.parse(current)
                    break
                except UnexpectedInput as e:
                    diag, line, resume = _diagnose(e, current, filename)
                    syntax.append(diag)
                    # drop what the bad line produced before the error (a label)
                    while out and out[-1].span.line >= line:
                        out.pop()
                    if len(syntax) >= MAX_ERRORS:
                        syntax.append(Diagnostic(
                            "error", f"too many errors ({MAX_ERRORS}); stopping"))
                        break
                    if resume < 0:
                        break
                    # go on at the next line; the newlines keep line numbers right
                    current = "\n" * line + current[resume:]
        finally:
            builder.out = []
            builder.errors = []
            if gc_was_enabled:
                gc.enable()
    if syntax or errors:
        diags = sorted(errors + syntax, key=_diag_key)
        raise LpuError(diags, sources)
    return out


def _diag_key(d: Diagnostic):
    if d.span is None:
        return (1 << 62, 0)
    return (d.span.line, d.span.col)


# ---- syntax errors ------------------------------------------------------------------------
# What an expected terminal means, for "expected ..." messages.  Operators and
# openers are not listed: after an expression any operator could follow.
_CLOSERS = (("COMMA", "','"), ("RPAR", "')'"), ("RSQB", "']'"))
_END = {"_NL", "$END"}


def _expected(accepts: set[str]) -> str:
    if "DIRECTIVE" in accepts:
        return "expected an instruction or directive"
    parts = []
    if "DEC" in accepts:
        parts.append("an operand" if "STRING" in accepts else "an expression")
    parts += [text for term, text in _CLOSERS if term in accepts]
    if accepts & _END:
        parts.append("end of line")
    if not parts and "LSQB" in accepts:
        parts.append("'['")  # after a dotted name
    if not parts:
        return ""
    if len(parts) == 1:
        return f"expected {parts[0]}"
    return f"expected {', '.join(parts[:-1])} or {parts[-1]}"


def _diagnose(e: UnexpectedInput, text: str, filename: str) -> tuple[Diagnostic, int, int]:
    """A diagnostic for *e*, the line it is on, and the offset in *text* where
    parsing can resume (the start of the next line; -1 at the end of input)."""
    if isinstance(e, UnexpectedCharacters):
        pos, line, col = e.pos_in_stream, e.line, e.column
        eol = text.find("\n", pos)
        end = len(text) if eol < 0 else eol
        char = text[pos]
        if char == '"':
            message = "unterminated string"
            end_col = col + len(text[pos:end].rstrip("\r"))
        else:
            message = f"unexpected character {_quote(char)}"
            end_col = col + 1
        resume = -1 if eol < 0 else eol + 1
        return Diagnostic("error", message, Span(filename, line, col, end_col)), line, resume

    assert isinstance(e, UnexpectedToken)
    tok = e.token
    accepts = e.accepts if e.interactive_parser is not None else None
    if accepts is None:
        accepts = set(e.expected or ())
    expected = _expected(accepts)
    if tok.type in _END:
        # the line ends inside a statement: point just past its last token
        line = tok.line if tok.type == "_NL" else text.count("\n") + 1
        start = text.rfind("\n", 0, tok.start_pos if tok.type == "_NL" else len(text)) + 1
        eol = text.find("\n", start)
        col = _code_end(text[start:len(text) if eol < 0 else eol]) + 1
        span = Span(filename, line, col, col + 1)
        what = "end of line" if tok.type == "_NL" else "end of input"
        resume = -1 if eol < 0 else eol + 1
    else:
        line = tok.line
        what = _quote(str(tok))
        span = Span(filename, line, tok.column, tok.end_column)
        eol = text.find("\n", tok.start_pos)
        resume = -1 if eol < 0 else eol + 1
    message = f"unexpected {what}" + (f"; {expected}" if expected else "")
    return Diagnostic("error", message, span), line, resume


def _code_end(line: str) -> int:
    """The length of *line* without its comment and trailing blanks."""
    in_string = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == ";":
            n = i
            break
        i += 1
    return len(line[:n].rstrip(" \t\f\r"))


def _quote(s: str) -> str:
    if s.isprintable():
        return f"'{s}'"
    return repr(s)
