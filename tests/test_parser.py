"""The lasm parser: node shapes, spans, precedence, and syntax errors."""

import pytest
from hypothesis import given, settings, strategies as st

from lpuasm.diagnostics import LpuError, SourceCache
from lpuasm.parser import MAX_ERRORS, bare_parse, parse
from lpuasm.syntax import (
    Binary, Call, Directive, Indexed, Instruction, KwArg, Label, ListLit, Name, Num, Pin,
    Span, Str, Unary,
)


def sx(node):
    """A node as nested tuples, spans left out."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Str):
        return ("str", node.value)
    if isinstance(node, Unary):
        return (node.op, sx(node.operand))
    if isinstance(node, Binary):
        return (node.op, sx(node.left), sx(node.right))
    if isinstance(node, Call):
        return ("call", node.func, *map(sx, node.args))
    if isinstance(node, Indexed):
        return ("idx", node.base, sx(node.index))
    if isinstance(node, ListLit):
        return [sx(item) for item in node.items]
    if isinstance(node, KwArg):
        return ("kw", node.name, sx(node.value))
    if isinstance(node, Pin):
        return ("@+" if node.relative else "@", sx(node.expr))
    if isinstance(node, Label):
        return ("label", node.name)
    if isinstance(node, Instruction):
        return (node.mnemonic, *map(sx, node.operands)) + ((sx(node.pin),) if node.pin else ())
    if isinstance(node, Directive):
        return ("." + node.name, *map(sx, node.args))
    raise TypeError(node)


def one(text):
    stmts = parse(text, "t.lasm")
    assert len(stmts) == 1, stmts
    return stmts[0]


def expr(text):
    """The tree of one expression."""
    return sx(one(f".equ X, {text}").args[1])


def errors(text):
    with pytest.raises(LpuError) as info:
        parse(text, "e.lasm")
    return [(d.span.line, d.span.col, d.span.end_col, d.message) if d.span else (None, d.message)
            for d in info.value.diagnostics]


def S(line, col, end_col, file="t.lasm"):
    return Span(file, line, col, end_col)


# ---- statements ------------------------------------------------------------------------
def test_instruction_with_spans():
    ins = one("    read x[3], s0e @120")
    assert ins == Instruction(
        "read",
        (Indexed("x", Num(3, S(1, 12, 13)), S(1, 10, 14)), Name("s0e", S(1, 16, 19))),
        Pin(False, Num(120, S(1, 21, 24)), S(1, 20, 24)),
        S(1, 5, 9),
    )


def test_dotted_mnemonic_and_no_operands():
    assert sx(one("vcvt.f16.f32 s1e, s2w")) == ("vcvt.f16.f32", "s1e", "s2w")
    assert one("vcvt.f16.f32 s1e, s2w").span == S(1, 1, 13)
    assert one("nop") == Instruction("nop", (), None, S(1, 1, 4))
    assert sx(one("vadd.f32 s0e, s4e, s8w, alu2")) == ("vadd.f32", "s0e", "s4e", "s8w", "alu2")


def test_label_then_directive():
    stmts = parse("x: .equ N, 1", "t.lasm")
    assert [sx(s) for s in stmts] == [("label", "x"), (".equ", "N", 1)]


def test_labels():
    stmts = parse("start:\nloop:  vadd.i8 s0e, s1e, s2e\n  end :\n", "t.lasm")
    assert stmts[0] == Label("start", S(1, 1, 6))
    assert stmts[1] == Label("loop", S(2, 1, 5))
    assert sx(stmts[2]) == ("vadd.i8", "s0e", "s1e", "s2e")
    assert stmts[2].span == S(2, 8, 15)
    assert stmts[3] == Label("end", S(3, 3, 6))


@pytest.mark.parametrize("text, shape", [
    (".equ N, 4*8", (".equ", "N", ("*", 4, 8))),
    ('.include "lib.lasm"', (".include", ("str", "lib.lasm"))),
    (".data x, W3.b0[16], f16, [[1, 2.5], [3, -4]]",
     (".data", "x", ("idx", "W3.b0", 16), "f16", [[1, 2.5], [3, ("-", 4)]])),
    ('.npy w, E0.b1[0], "w.npy", f16', (".npy", "w", ("idx", "E0.b1", 0), ("str", "w.npy"), "f16")),
    (".space y, W0.b1[0], f32, 4, 64", (".space", "y", ("idx", "W0.b1", 0), "f32", 4, 64)),
    ('.loc "kernel.lasm", 12, 5', (".loc", ("str", "kernel.lasm"), 12, 5)),
    (".chip tiny", (".chip", "tiny")),
    (".macro name a, b=1", (".macro", "name", "a", ("kw", "b", 1))),
    (".macro name b = 1, c", (".macro", "name", ("kw", "b", 1), "c")),
    (".macro name, a, b=1", (".macro", "name", "a", ("kw", "b", 1))),
    (".macro name", (".macro", "name")),
    (".endm", (".endm",)),
    (".rept 4", (".rept", 4)),
    (".opt level = 2, mode = fast, tag = \"x\", at = W1.b0[2], v = [1]",
     (".opt", ("kw", "level", 2), ("kw", "mode", "fast"), ("kw", "tag", ("str", "x")),
      ("kw", "at", ("idx", "W1.b0", 2)), ("kw", "v", [1]))),
])
def test_directives(text, shape):
    assert sx(one(text)) == shape


def test_directive_spans():
    d = one("  .equ  N, 4*8")
    assert d.span == S(1, 3, 7)
    assert d.args == (Name("N", S(1, 9, 10)),
                      Binary("*", Num(4, S(1, 12, 13)), Num(8, S(1, 14, 15)), S(1, 12, 15)))
    kw = one(".macro m a, b=1").args[2]
    assert kw == KwArg("b", Num(1, S(1, 15, 16)), S(1, 13, 16))


@pytest.mark.parametrize("text, pin", [
    ("read x[3], s0e @120", ("@", 120)),
    ("write s2w, y @+4", ("@+", 4)),
    ("vadd.i8 s0e, s1e, s2e @(BASE+3)", ("@", ("+", "BASE", 3))),
    ("vadd.i8 s0e, s1e, s2e @+(BASE+3)*2", ("@+", ("*", ("+", "BASE", 3), 2))),
    ("nop @-1", ("@", ("-", 1))),
    ("nop @ 7", ("@", 7)),
    ("nop @+N", ("@+", "N")),
])
def test_pins(text, pin):
    assert sx(one(text))[-1] == pin


def test_pin_spans():
    ins = one("write s2w, y @+4")
    assert ins.pin == Pin(True, Num(4, S(1, 16, 17)), S(1, 14, 17))
    assert one("nop @(B+3)").pin.span == S(1, 5, 11)


def test_indexed_and_lists():
    assert sx(one("read W10.b0[0x10], E3.b1[N*2]")) == (
        "read", ("idx", "W10.b0", 16), ("idx", "E3.b1", ("*", "N", 2)))
    d = one(".data x, [[1, 2.5,], [], [3, -4],]")
    assert sx(d) == (".data", "x", [[1, 2.5], [], [3, ("-", 4)]])
    lst = d.args[1]
    assert lst.span == S(1, 10, 35)
    assert lst.items[0].span == S(1, 11, 20)
    assert one("read E3.b1[N*2]").operands[0].span == S(1, 6, 16)


def test_strings():
    s = one(r'.include "a\"b\\c\n\t\r\0;x"').args[0]
    assert s == Str('a"b\\c\n\t\r\0;x', S(1, 10, 29))
    assert sx(one('.s ""')) == (".s", ("str", ""))
    assert sx(one('.s "; not a comment" ; a comment')) == (".s", ("str", "; not a comment"))


def test_unknown_escape():
    assert errors('.s "a\\qb"\n.s "\\z"') == [
        (1, 6, 8, "unknown escape sequence '\\q'"),
        (2, 5, 7, "unknown escape sequence '\\z'"),
    ]


# ---- expressions ----------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("0", 0), ("42", 42), ("1_000_000", 1000000), ("007", 7),
    ("0x10", 16), ("0XfF", 255), ("0xdead_beef", 0xDEADBEEF),
    ("0b101", 5), ("0B1_0000", 16),
    ("1.5", 1.5), ("1e-3", 0.001), ("2.5e+3", 2500.0), ("1E3", 1000.0), ("1_0.2_5", 10.25),
])
def test_numbers(text, value):
    got = expr(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text, tree", [
    ("1 + 2 * 3", ("+", 1, ("*", 2, 3))),
    ("1 * 2 + 3", ("+", ("*", 1, 2), 3)),
    ("a - b - c", ("-", ("-", "a", "b"), "c")),
    ("a / b // c % d", ("%", ("//", ("/", "a", "b"), "c"), "d")),
    ("1 << 2 + 3", ("<<", 1, ("+", 2, 3))),
    ("a >> b << c", ("<<", (">>", "a", "b"), "c")),
    ("a & b << c", ("&", "a", ("<<", "b", "c"))),
    ("a ^ b & c", ("^", "a", ("&", "b", "c"))),
    ("a | b ^ c", ("|", "a", ("^", "b", "c"))),
    ("a | b & c ^ d", ("|", "a", ("^", ("&", "b", "c"), "d"))),
    ("a & b | c & d", ("|", ("&", "a", "b"), ("&", "c", "d"))),
    ("-a * b", ("*", ("-", "a"), "b")),
    ("~-a", ("~", ("-", "a"))),
    ("- - 1", ("-", ("-", 1))),
    ("a - -1", ("-", "a", ("-", 1))),
    ("(1 + 2) * 3", ("*", ("+", 1, 2), 3)),
    ("2 * (3 - (4 | 5))", ("*", 2, ("-", 3, ("|", 4, 5)))),
    ("f()", ("call", "f")),
    ("max(a, 2 * b) + 1", ("+", ("call", "max", "a", ("*", 2, "b")), 1)),
    ("-log2(N)", ("-", ("call", "log2", "N"))),
])
def test_precedence(text, tree):
    assert expr(text) == tree


def test_expression_spans():
    e = one(".equ X, -(a + 1) * f(b, 2)").args[1]
    assert e.span == S(1, 9, 27)
    assert e.left == Unary("-", Binary("+", Name("a", S(1, 11, 12)), Num(1, S(1, 15, 16)), S(1, 10, 17)),
                           S(1, 9, 17))
    assert e.right == Call("f", (Name("b", S(1, 22, 23)), Num(2, S(1, 25, 26))), S(1, 20, 27))


# ---- layout ---------------------------------------------------------------------------
def test_comments_blank_lines_and_crlf():
    text = ("; header\r\n\r\n   \r\nstart:   ; label\r\n    nop ; c\r\n\t; more\r\n"
            "    write s2w, y @+4\r\n.equ N, 1")
    stmts = parse(text, "t.lasm")
    assert [sx(s) for s in stmts] == [
        ("label", "start"), ("nop",), ("write", "s2w", "y", ("@+", 4)), (".equ", "N", 1)]
    assert [s.span.line for s in stmts] == [4, 5, 7, 8]
    assert stmts[2].span == S(7, 5, 10)


def test_empty_and_comment_only():
    assert parse("", "t.lasm") == []
    assert parse("\n\n", "t.lasm") == []
    assert parse("; only a comment", "t.lasm") == []
    assert parse("  ; a\n; b\n", "t.lasm") == []
    assert sx(parse("nop ; no newline at the end", "t.lasm")[0]) == ("nop",)


def test_sources_and_bare_parse():
    sources = SourceCache()
    parse("nop\nread x[1], s0e\n", "k.lasm", sources)
    assert sources.line("k.lasm", 2) == "read x[1], s0e"
    tree = bare_parse("loop: read x[1], s0e @+1\n")
    assert tree.data == "start"


# ---- syntax errors --------------------------------------------------------------------
def test_errors_collected():
    text = "\n".join([
        "vadd s0e s1e",          # 1
        "  foo: , x",            # 2
        ".equ N, 4*   ; comment",  # 3
        "read x[3 @4",           # 4
        "f $x",                  # 5
        '.include "abc',         # 6
        "ok: nop",               # 7
        "vadd ,",                # 8
        "mov (1 2), f(1 2",      # 9
        "nop @ +4",              # 10
        "a: b: nop",             # 11
        "x = 3",                 # 12
        "read x[1]]",            # 13
        ".data [1, 2",           # 14
        "end: vadd s0e,",        # 15 (no newline at the end)
    ])
    assert errors(text) == [
        (1, 10, 13, "unexpected 's1e'; expected ',' or end of line"),
        (2, 8, 9, "unexpected ','; expected an instruction or directive"),
        (3, 11, 12, "unexpected end of line; expected an expression"),
        (4, 10, 11, "unexpected '@'; expected ']'"),
        (5, 3, 4, "unexpected character '$'"),
        (6, 10, 14, "unterminated string"),
        (8, 6, 7, "unexpected ','; expected an operand or end of line"),
        (9, 8, 9, "unexpected '2'; expected ')'"),
        (10, 7, 8, "unexpected '+'; expected an expression"),
        (11, 5, 6, "unexpected ':'; expected an operand or end of line"),
        (12, 3, 4, "unexpected '='; expected an operand or end of line"),
        (13, 10, 11, "unexpected ']'; expected ',' or end of line"),
        (14, 12, 13, "unexpected end of line; expected ',' or ']'"),
        (15, 15, 16, "unexpected end of input; expected an operand"),
    ]


def test_errors_more():
    assert errors(".equ X, f(1, \n") == [(1, 13, 14, "unexpected end of line; expected an expression")]
    assert errors(".equ X, f(1, ; comment\n") == [(1, 13, 14, "unexpected end of line; expected an expression")]
    assert errors('.equ X, "a;b", ; comment\n') == [(1, 15, 16, "unexpected end of line; expected an operand")]
    assert errors("nop\n123\n") == [(2, 1, 4, "unexpected '123'; expected an instruction or directive")]
    assert errors("read x.y\n") == [(1, 9, 10, "unexpected end of line; expected '['")]
    assert errors(".equ X, (W3.b0)\n") == [(1, 12, 15, "unexpected '.b0'; expected ')'")]
    assert errors("nop é\n") == [(1, 5, 6, "unexpected character 'é'")]
    assert errors('.s "abc\r\nnop\n') == [(1, 4, 8, "unterminated string")]
    assert errors(".equ X, (1\n") == [(1, 11, 12, "unexpected end of line; expected ')'")]
    assert errors(".equ X, f(1\n") == [(1, 12, 13, "unexpected end of line; expected ',' or ')'")]
    assert errors('.equ X, "a" "b"\n') == [(1, 13, 16, "unexpected '\"b\"'; expected ',' or end of line")]


def test_good_lines_around_errors_still_parse():
    # the statements after an error are still parsed (and checked)
    text = "nop\nvadd ,\nread x[1], s0e\nbad bad bad\nwrite s2w, y @+4\n"
    assert [e[0] for e in errors(text)] == [2, 4]


def test_too_many_errors():
    diags = errors("x = 1\n" * (MAX_ERRORS + 10))
    assert len(diags) == MAX_ERRORS + 1
    assert diags[-1] == (None, f"too many errors ({MAX_ERRORS}); stopping")


def test_render_shows_line_and_caret():
    sources = SourceCache()
    with pytest.raises(LpuError) as info:
        parse("nop\n    vadd.f32 s0e s1e, s2e\n", "k.lasm", sources)
    assert info.value.render() == (
        "k.lasm:2:18: error: unexpected 's1e'; expected ',' or end of line\n"
        " 2 |     vadd.f32 s0e s1e, s2e\n"
        "   |                  ^~~"
    )


# ---- round trip ------------------------------------------------------------------------
PREC = {"*": 5, "/": 5, "//": 5, "%": 5, "+": 4, "-": 4, "<<": 3, ">>": 3,
        "&": 2, "^": 1, "|": 0}
NOSPAN = Span("", 0, 0, 0)

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}", fullmatch=True)
leaves = st.one_of(
    st.integers(0, 2**70).map(lambda v: Num(v, NOSPAN)),
    st.floats(0, 1e300, allow_nan=False, allow_infinity=False).map(lambda v: Num(v, NOSPAN)),
    names.map(lambda n: Name(n, NOSPAN)),
)


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(["-", "~"]), children).map(lambda t: Unary(t[0], t[1], NOSPAN)),
        st.tuples(st.sampled_from(sorted(PREC)), children, children).map(
            lambda t: Binary(t[0], t[1], t[2], NOSPAN)),
        st.tuples(names, st.lists(children, max_size=3)).map(
            lambda t: Call(t[0], tuple(t[1]), NOSPAN)),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


def show(e, min_prec=0, gap=" "):
    """Print with only the parentheses that precedence needs."""
    if isinstance(e, Num):
        text, prec = repr(e.value), 7
    elif isinstance(e, Name):
        text, prec = e.name, 7
    elif isinstance(e, Call):
        text, prec = f"{e.func}({', '.join(show(a, 0, gap) for a in e.args)})", 7
    elif isinstance(e, Unary):
        text, prec = e.op + show(e.operand, 6, gap), 6
    else:
        prec = PREC[e.op]
        text = f"{show(e.left, prec, gap)}{gap}{e.op}{gap}{show(e.right, prec + 1, gap)}"
    return f"({text})" if prec < min_prec else text


@settings(max_examples=300, deadline=None)
@given(trees, st.sampled_from([" ", ""]))
def test_expression_round_trip(tree, gap):
    text = show(tree, 0, gap)
    got = one(f".equ X, {text}").args[1]
    assert sx(got) == sx(tree)
    assert got.span == S(1, 9, 9 + len(text))
