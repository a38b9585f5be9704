"""The pygments lexer for lasm (lpuasm.highlight)."""

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pygments.token import (Comment, Error, Keyword, Name, Number, Operator, Punctuation,
                            String)

from lpuasm import isa
from lpuasm.highlight import DIRECTIVES, MNEMONICS, UNIT_NAMES, LasmLexer

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = textwrap.dedent("""\
    ; vector add on the tiny chip
    .chip tiny
    .equ N, 4
    .data a, W0.b0[0], i8, [1, 2, 3, 4]
    .space c, E0.b1[0], i8, 1, 32
    start:
        read    a[0], s0e            @0
        vadd.i8 s0e, 5, s2e, alu1    @+3
        write   s2e, c               @+4
        repeat  w0, 3, 1, 1
        halt
    """)


def lex(text: str) -> list[tuple]:
    """Non-whitespace tokens of *text* as (tokentype, value)."""
    return [(t, v) for t, v in LasmLexer().get_tokens(text) if v.strip()]


def types_of(text: str) -> dict[str, object]:
    """value -> token type of its first occurrence."""
    out: dict[str, object] = {}
    for t, v in lex(text):
        out.setdefault(v, t)
    return out


def test_sample_has_no_error_tokens():
    assert not [v for t, v in lex(SAMPLE) if t in Error]


def test_sample_token_types():
    toks = lex(SAMPLE)
    assert toks[0] == (Comment.Single, "; vector add on the tiny chip")
    t = types_of(SAMPLE)
    for d in (".chip", ".equ", ".data", ".space"):
        assert t[d] is Name.Decorator, d
    for m in ("read", "vadd", "write", "repeat", "halt"):
        assert t[m] is Keyword, m
    assert t["i8"] is Keyword.Type  # both as a suffix and as an operand
    assert t["start"] is Name.Label
    for b in ("s0e", "s2e", "alu1", "w0", "W0.b0", "E0.b1"):
        assert t[b] is Name.Builtin, b
    for n in ("4", "0", "32", "3", "5"):
        assert t[n] is Number.Integer, n
    assert t["@"] is Operator and t["@+"] is Operator
    for name in ("tiny", "N", "a", "c"):
        assert t[name] is Name, name
    for p in (",", "[", "]", ":", "."):
        assert t[p] is Punctuation, p


def test_sample_sequence_of_an_instruction_line():
    line = "    vadd.i8 s0e, 5, s2e, alu1    @+3\n"
    assert lex(line) == [
        (Keyword, "vadd"), (Punctuation, "."), (Keyword.Type, "i8"),
        (Name.Builtin, "s0e"), (Punctuation, ","), (Number.Integer, "5"), (Punctuation, ","),
        (Name.Builtin, "s2e"), (Punctuation, ","), (Name.Builtin, "alu1"),
        (Operator, "@+"), (Number.Integer, "3"),
    ]


def test_sram_address_with_index():
    assert lex(".data x, W10.b0[16], f32, [1.5]\n")[3:7] == [
        (Name.Builtin, "W10.b0"), (Punctuation, "["), (Number.Integer, "16"), (Punctuation, "]")]


@pytest.mark.parametrize("mnemonic", sorted(isa.TABLE))
def test_every_mnemonic_is_a_keyword(mnemonic):
    for spelled, text in ((mnemonic, f"{mnemonic} s0e\n"),
                          (mnemonic.upper(), f"  {mnemonic.upper()}\n"),
                          (mnemonic, f"lbl: {mnemonic} s0e @+1\n")):
        assert [v for t, v in lex(text) if t is Keyword] == [spelled], text


def test_mnemonic_lists_match_the_table():
    assert set(MNEMONICS) == set(isa.TABLE)
    assert set(DIRECTIVES) >= {".equ", ".set", ".include", ".data", ".npy", ".space", ".loc",
                               ".chip", ".macro", ".endm", ".rept", ".for", ".if", ".elif",
                               ".else", ".endif"}
    for q in ("icu", "w0", "w63", "e0", "e63", "alu0", "alu15", "mxm0", "mxm3", "sxmw",
              "sxme", "c2c0", "c2c15"):
        assert q in UNIT_NAMES, q
    assert "w64" not in UNIT_NAMES and "alu16" not in UNIT_NAMES


def test_mnemonic_only_in_statement_position():
    # 'abc' and 'acc' are mnemonics, but as operands they are ordinary symbols
    t = types_of("read abc[0], s1e\n")
    assert t["read"] is Keyword and t["abc"] is Name
    # a longer word that starts with a mnemonic is not one: a macro call
    t = types_of("vaddx s0e\n")
    assert t["vaddx"] is Name.Function


@pytest.mark.parametrize("directive", ["." + d for d in (
    "equ", "set", "include", "data", "npy", "space", "loc", "chip", "macro", "endm",
    "rept", "for", "if", "elif", "else", "endif")])
def test_directives(directive):
    assert lex(f"{directive} x\n")[0] == (Name.Decorator, directive)
    assert lex(f"  {directive.upper()}\n")[0] == (Name.Decorator, directive.upper())


def test_dtype_suffixes():
    assert lex("vcvt.f16.f32 s0e, s4e\n")[:5] == [
        (Keyword, "vcvt"), (Punctuation, "."), (Keyword.Type, "f16"),
        (Punctuation, "."), (Keyword.Type, "f32")]
    for dt in isa.DTYPES:
        assert (Keyword.Type, dt) in lex(f"vmov.{dt} s0e, s1e\n")


@pytest.mark.parametrize("name", ["s12e", "s3w", "s31w", "S0E", "icu", "ICU", "w0", "E63",
                                  "alu15", "mxm3", "sxmw", "SXME", "c2c15"])
def test_streams_and_units(name):
    assert lex(f"nop {name}, 1\n")[1] == (Name.Builtin, name)


@pytest.mark.parametrize("name", ["s32e", "s3x", "alu16", "mxm4", "w64", "c2c16", "sxm"])
def test_out_of_range_names_are_plain(name):
    assert lex(f"nop {name}\n")[1] == (Name, name)


def test_labels():
    assert lex("start:\n") == [(Name.Label, "start"), (Punctuation, ":")]
    assert lex("  loop_1: halt\n") == [(Name.Label, "loop_1"), (Punctuation, ":"), (Keyword, "halt")]


def test_pins():
    assert lex("halt @120\n")[1:] == [(Operator, "@"), (Number.Integer, "120")]
    assert lex("halt @+4\n")[1:] == [(Operator, "@+"), (Number.Integer, "4")]
    assert lex("halt @T0 + 2\n")[1:] == [(Operator, "@"), (Name, "T0"), (Operator, "+"),
                                         (Number.Integer, "2")]


@pytest.mark.parametrize("text, token", [
    ("0x1F", Number.Hex), ("0XFF", Number.Hex), ("0b1010", Number.Bin), ("42", Number.Integer),
    ("1.5", Number.Float), ("2.5e-3", Number.Float), ("1e6", Number.Float),
    ("1_000", Number.Integer), ("0xff_ff", Number.Hex), ("1_0.2_5", Number.Float),
    ("inf", Name.Constant), ("nan", Name.Constant), ("pi", Name.Constant),
])
def test_numbers(text, token):
    assert lex(f".equ X, {text}\n")[3] == (token, text)


def test_strings_and_escapes():
    toks = lex('.npy w, W1.b0[0], "dir/w\\"1\\".npy"\n')
    assert (String.Escape, '\\"') in toks
    assert all(t in String for t, v in toks[toks.index((String.Double, '"')):])


def test_unterminated_string_ends_at_the_line():
    toks = lex('.include "abc\nhalt\n')
    assert toks[-1] == (Keyword, "halt")


def test_comments():
    assert lex("halt ; the end\n")[-1] == (Comment.Single, "; the end")
    assert lex("   ; only a comment\n") == [(Comment.Single, "; only a comment")]
    assert lex("vadd.f32 s0e, s1e, s2e;tight\n")[-1] == (Comment.Single, ";tight")


def test_operators_and_calls():
    toks = lex(".equ X, (N * 2 + 1) << 3 // 4 % 5 & 6 | ~7 ^ -8 >> 1 / 2, max(1, 2)\n")
    ops = [v for t, v in toks if t is Operator]
    assert ops == ["*", "+", "<<", "//", "%", "&", "|", "~", "^", "-", ">>", "/"]
    assert (Name.Function, "max") in toks
    assert not [v for t, v in toks if t in Error]


def test_macro_call_and_kwargs():
    toks = lex("matmul.f16 a=W0.b0[0], n=4\n")
    assert toks[:3] == [(Name.Function, "matmul"), (Punctuation, "."), (Keyword.Type, "f16")]
    assert (Name, "a") in toks and (Operator, "=") in toks


def test_lexer_registered_as_entry_point():
    eps = importlib.metadata.entry_points(group="pygments.lexers")
    if not any(ep.name == "lasm" and ep.value.startswith("lpuasm.highlight") for ep in eps):
        pytest.skip("lpuasm is not installed (pip install -e .): the pygments entry point is not registered")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
    assert get_lexer_by_name("lasm").__class__.__name__ == "LasmLexer"
    assert get_lexer_for_filename("kernel.lasm").__class__.__name__ == "LasmLexer"


def test_import_is_light():
    code = ("import sys, lpuasm.highlight\n"
            "heavy = sorted(m for m in ('numpy', 'lark') if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing lpuasm.highlight loaded {out.stdout.strip()}"
