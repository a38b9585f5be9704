"""The macro language: .macro/.endm, .rept/.endr, .for/.endfor, .if/.elif/.else/.endif,
%-local names, expansion chains in diagnostics and in the image's source map, `lpuasm expand`."""

import numpy as np
import pytest

from lpuasm import imagefile
from lpuasm.assembler import assemble
from lpuasm.cli import main
from lpuasm.diagnostics import LpuError
from lpuasm.disasm import disassemble
from lpuasm.lower import Lowerer


def image(src, name="m.lasm"):
    return assemble(src, name).image


def same_program(a, b):
    """Same instruction words and data (the source maps differ)."""
    ia, ib = image(a), image(b)
    assert list(ia.text) == list(ib.text)
    for q in ia.text:
        assert ia.text[q].tolist() == ib.text[q].tolist(), q
    assert [(d.name, d.addr) for d in ia.data] == [(d.name, d.addr) for d in ib.data]
    return ia, ib


def errors(src, name="m.lasm"):
    with pytest.raises(LpuError) as info:
        assemble(src, name)
    return info.value.diagnostics


def rendered(d):
    """(message, [(note message, line)]) of a diagnostic."""
    return d.message, [(n.message, n.span.line if n.span else None) for n in d.notes]


HEAD = ".chip tiny\n.space buf, W0.b0[0], i8, 16\n"


def test_positional_keyword_and_default_arguments():
    macro = HEAD + """\
.macro rd addr, s, off=0, n=off+1
    read addr[off], s
    read addr[n], s
.endm
    rd buf, s0e
    rd buf, s1e, 4
    rd buf, s2e, n=9, off=2
    rd s=s3e, addr=W1.b0[4]
"""
    flat = HEAD + """\
    read buf[0], s0e
    read buf[1], s0e
    read buf[4], s1e
    read buf[5], s1e
    read buf[2], s2e
    read buf[9], s2e
    read W1.b0[4], s3e
    read W1.b0[5], s3e
"""
    same_program(macro, flat)


def test_parameters_substitute_syntax_nodes_streams_units_addresses():
    macro = HEAD + """\
.macro op dst, src, alu, k
    vadd.i8 src, k, dst, alu
.endm
.data w, W4.b0[0], i8, [1]
    read w, s4e @0
    op s8e, s4e, alu2, 3 * 2
"""
    flat = macro.split(".macro")[0] + macro.split(".endm\n")[1].replace("op s8e, s4e, alu2, 3 * 2",
                                                                          "vadd.i8 s4e, 6, s8e, alu2")
    same_program(macro, flat)
    macro2 = HEAD + """\
.macro two a, s
    read a, s
    read a[1], s
.endm
    two W1.b0[4], s0e
    two buf, s1e
"""
    flat2 = HEAD + """\
    read W1.b0[4], s0e
    read W1.b0[5], s0e
    read buf, s1e
    read buf[1], s1e
"""
    same_program(macro2, flat2)


def test_nested_calls_rept_for_if():
    macro = HEAD + """\
.equ N, 3
.macro rd addr, s, off=0
    read addr[off], s
.endm
.macro rows a, n
.for i, 0, n
.if i == 1
    rd a, s1e, off=i
.elif i >= 2
    rd a, s2e, off=i * 2
.else
    rd a, s0e
.endif
.endfor
.endm
    rows buf, N
.rept 2
    read buf[15], s3e
.endr
.for j, 10, 4, -3
    read buf[j], s4e
.endfor
"""
    flat = HEAD + """\
.equ N, 3
    read buf[0], s0e
    read buf[1], s1e
    read buf[4], s2e
    read buf[15], s3e
    read buf[15], s3e
    read buf[10], s4e
    read buf[7], s4e
"""
    same_program(macro, flat)


def test_loop_index_in_set_and_nested_loops():
    macro = HEAD + """\
.set k, 0
.for r, 0, 2
.for c, 0, 3
    read buf[r * 3 + c], s0e
.set k, k + 1
.endfor
.endfor
.equ K, k
"""
    asm = assemble(macro, "m.lasm")
    assert asm.ir.consts["K"] == 6
    assert [int(w) >> 8 & 0xFFF for w in asm.ir.word] == list(range(6))


def test_local_labels_and_symbols_are_unique_per_expansion():
    src = HEAD + """\
.macro blk a
%top:
.equ %k, a + 1
    read buf[%k], s0e
.endm
    blk 1
    blk 2
"""
    asm = assemble(src, "m.lasm")
    assert sorted(asm.ir.labels) == ["%top$1", "%top$2"]
    assert asm.ir.consts["%k$1"] == 2 and asm.ir.consts["%k$2"] == 3
    # without the % the second expansion collides
    msgs = [rendered(d) for d in errors(src.replace("%top", "top"))]
    assert msgs == [("'top' is already defined as a label", [("previously defined here", 4),
                                                           ("in expansion of macro 'blk'", 9)])]


def test_recursion_with_a_guard():
    src = HEAD + """\
.macro down n
.if n > 0
    read buf[n], s0e
    down n - 1
.endif
.endm
    down 4
"""
    asm = assemble(src, "m.lasm")
    assert len(asm.ir) == 4
    assert [asm.ir.depth(int(c)) for c in asm.ir.loc_chain] == [1, 2, 3, 4]


def test_comparison_operators():
    src = HEAD + ".equ A, (3 < 4) + (4 <= 4) * 2 + (5 > 6) * 4 + (1 == 1) * 8 + (1 != 1) * 16 + (2 >= 3) * 32\n"
    assert assemble(src, "m.lasm").ir.consts["A"] == 11
    assert assemble(HEAD + ".equ B, 1 + 2 == 3\n", "m.lasm").ir.consts["B"] == 1


# ---- errors -----------------------------------------------------------------------
def test_error_inside_nested_expansion_has_the_chain():
    src = """\
.chip tiny
.macro rd addr, s
    read addr, s
.endm
.macro two a
.for i, 0, 2
    rd a, s9x
.endfor
.endm
    two W0.b0[0]
"""
    ds = errors(src)
    assert [rendered(d) for d in ds] == [
        ("expected a stream (s0e, s3w, ...)", [("in expansion of macro 'rd'", 7),
                                              ("in repetition i = 0 of .for", 6),
                                              ("in expansion of macro 'two'", 10)]),
        ("expected a stream (s0e, s3w, ...)", [("in expansion of macro 'rd'", 7),
                                              ("in repetition i = 1 of .for", 6),
                                              ("in expansion of macro 'two'", 10)]),
    ]
    assert ds[0].span.line == 7 and ds[0].span.col == 11
    text = LpuError(ds[:1], assemble.__globals__["SourceCache"]()).render()
    assert "m.lasm:7:5: note: in expansion of macro 'rd'" in text


def test_error_in_an_argument_points_at_the_call():
    ds = errors(HEAD + ".macro rd a\n    read buf[a], s0e\n.endm\n.rept 3\n    rd 99 // 0\n.endr\n")
    assert [rendered(d) for d in ds][0] == ("division by zero", [("in expansion of macro 'rd'", 7),
                                                                 ("in repetition 0 of .rept", 6)])
    assert ds[0].span.line == 7


def test_schedule_errors_carry_the_chain():
    src = ".chip tiny\n.macro v\n    vadd.i32 s8e, s4e, 1, alu0\n.endm\n    v\n"
    (d,) = errors(src)
    assert d.span.line == 3
    assert ("in expansion of macro 'v'", 5) in rendered(d)[1]


@pytest.mark.parametrize("src, expected", [
    (".macro m\n    nop 1\n", [(1, "'.macro' is not closed")]),
    (".rept 2\n.for i, 0, 2\n.endr\n", [(2, "'.for' is not closed")]),
    (".endm\n", [(1, "'.endm' without '.macro'")]),
    (".endif\n", [(1, "'.endif' without '.if'")]),
    (".else\n", [(1, "'.else' without '.if'")]),
    (".if 1\n.else\n.elif 2\n.endif\n", [(3, "'.elif' after '.else'")]),
    (".macro vadd a\n.endm\n", [(1, "'vadd' is an instruction mnemonic and cannot name a macro")]),
    (".macro m\n.endm\n.macro m\n.endm\n", [(3, "macro 'm' is already defined")]),
    (".macro m s3e\n.endm\n", [(1, "'s3e' is a register, unit or dtype name and cannot name a parameter")]),
    (".macro m a, a\n.endm\n", [(1, "parameter 'a' is given twice")]),
    (".macro m a\n.endm\n    m\n", [(3, "macro 'm' needs argument 'a'")]),
    (".macro m a\n.endm\n    m 1, 2\n", [(3, "macro 'm' takes 1 argument, got 2")]),
    (".macro m a\n.endm\n    m b=1\n", [(3, "macro 'm' has no parameter 'b'")]),
    (".macro m a\n.endm\n    m 1, a=2\n", [(3, "argument 'a' is given twice")]),
    (".macro m a, b\n.endm\n    m a=1, 2\n", [(3, "positional arguments must come before keyword arguments")]),
    (".macro m\n.endm\n    m @4\n", [(3, "a macro call cannot be pinned (pin the instructions in its body)")]),
    (".macro m\n.macro n\n.endm\n.endm\n    m\n", [(2, "a macro cannot be defined inside a macro")]),
    (".rept -1\n.endr\n", [(1, "repetition count -1 is out of range (0..20000000)")]),
    (".for i, 0, 4, 0\n.endfor\n", [(1, "the loop step must not be 0")]),
    (".for 3, 0, 4\n.endfor\n", [(1, "expected a loop variable name")]),
    (".if\n.endif\n", [(1, "'.if' expects a condition")]),
    (".if nope\n.endif\n", [(1, "undefined symbol 'nope'")]),
])
def test_block_and_call_errors(src, expected):
    got = [(d.span.line, d.message) for d in errors(".chip tiny\n" + src) if d.severity == "error"]
    assert got == [(line + 1, msg) for line, msg in expected]


def test_unknown_mnemonic_suggests_a_macro():
    (d,) = errors(".chip tiny\n.macro load_tile a\n.endm\n    load_tiel 1\n")
    assert d.hint == "did you mean 'load_tile'?"


def test_depth_limit():
    ds = errors(".chip tiny\n.macro r n\n    r n + 1\n.endm\n    r 0\n")
    assert ds[0].message == "macro expansion nested deeper than 64 levels"
    assert ds[0].hint == "a macro that calls itself needs an '.if' that ends the recursion"
    assert len(ds[0].notes) == 64 and ds[0].notes[-1].span.line == 5


def test_instruction_limit(monkeypatch):
    monkeypatch.setattr(Lowerer, "max_instructions", 100)
    ds = errors(HEAD + ".macro m\n.rept 30\n    read buf, s0e\n.endr\n.endm\n.rept 10\n    m\n.endr\n")
    assert [d.message for d in ds] == ["the expanded program exceeds 100 instructions"]
    assert ds[0].hint == "is a .rept, .for or recursive macro running away?"


def test_repeat_limit(monkeypatch):
    monkeypatch.setattr(Lowerer, "max_repeat", 10)
    (d,) = errors(".chip tiny\n.for i, 0, 100\n.endfor\n")
    assert d.message == "'.for' runs 100 times, more than the limit of 10"


# ---- the image's source map, disassembly ----------------------------------------------
MACRO_SRC = HEAD + """\
.macro rd addr, s, off=0
    read addr[off], s
.endm
.macro two a
.for i, 0, 2
    rd a, s0e, off=i
.endfor
.endm
    two buf
.rept 2
    two W2.b0[4]
.endr
    read buf[9], s3e
"""


def test_source_map_records_the_chain():
    img = image(MACRO_SRC)
    sm = img.srcmap
    assert [(f.macro, f.line, f.parent) for f in sm.frames] == [
        ("two", 11, -1), ("rd", 8, 0), ("two", 13, -1), ("rd", 8, 2)]
    assert sorted(sm.chain.tolist()) == [-1, 1, 1, 3, 3, 3, 3]
    back = imagefile.from_bytes(imagefile.to_bytes(img))
    assert back.srcmap.frames == sm.frames and back.equals(img)


def test_disassembly_with_chains_reassembles_byte_identically():
    img = image(MACRO_SRC)
    text = disassemble(img)
    assert '.loc "m.lasm", 4, 5, "rd", "m.lasm", 8, 5, "two", "m.lasm", 11, 5' in text
    again = assemble(text, "d.lasm").image
    assert imagefile.to_bytes(again) == imagefile.to_bytes(img)


def test_loc_chain_errors():
    ds = errors('.chip tiny\n    .loc "f", 1, 1, "m"\n    .loc "f", 1, 1, 3, "g", 1, 1\n')
    assert [d.message for d in ds] == [
        """'.loc' expects "FILE", LINE, COL [, "MACRO", "FILE", LINE, COL]...""",
        "expected a macro name string"]


def test_listing_shows_expansion_depth(tmp_path, capsys):
    src = tmp_path / "m.lasm"
    src.write_text(MACRO_SRC)
    assert main(["asm", str(src), "-q", "--listing", "-"]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if "read" in x]
    assert any("    read       buf, s0e" in x for x in lines)          # depth 2
    assert any(" read       buf[9], s3e" in x and "  read       buf[9]" not in x for x in lines)


# ---- lpuasm expand --------------------------------------------------------------------
def test_cli_expand(tmp_path, capsys):
    src = tmp_path / "m.lasm"
    src.write_text(MACRO_SRC + "%end:\n")
    out = tmp_path / "e.lasm"
    assert main(["expand", str(src), "-o", str(out)]) == 0
    text = out.read_text()
    assert "    read       buf[9], s3e" in text
    assert "        read       buf, s0e" in text and "in rd (" in text and "< two (" in text
    assert text.rstrip().endswith("%end:")
    ia, ib = same_program(MACRO_SRC, text)
    assert main(["expand", str(src)]) == 0
    assert capsys.readouterr().out == text


def test_cli_expand_errors(tmp_path, capsys):
    src = tmp_path / "bad.lasm"
    src.write_text(".chip tiny\n.macro m\n    nop 1\n")
    assert main(["expand", str(src)]) == 1
    err = capsys.readouterr().err
    assert "bad.lasm:2:1: error: '.macro' is not closed" in err
    assert "hint: add '.endm' at the end of its body" in err


def test_expansion_speed_smoke():
    """A macro-heavy program expands (not a timing assertion: bench/ measures speed)."""
    src = HEAD + ".macro rd a, s, off\n    read a[off], s\n.endm\n" \
        ".rept 50\n.for i, 0, 16\n    rd buf, s0e, off=i\n.endfor\n.endr\n"
    asm = assemble(src, "m.lasm", stop_after="lower")
    assert len(asm.ir) == 800
    assert np.all(asm.ir.loc_chain >= 0)
