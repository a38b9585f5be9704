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


def same_lowered(a, b):
    """Same instruction words, queues and pins after lowering (not scheduled)."""
    ia, ib = (assemble(x, "m.lasm", stop_after="lower").ir for x in (a, b))
    for col in ("word", "queue", "pin_kind", "pin"):
        assert getattr(ia, col).tolist() == getattr(ib, col).tolist(), col


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


# ---- defined(), .once -------------------------------------------------------------------
def test_defined_names_constants_symbols_labels_macros():
    src = HEAD + """\
.equ C, 3
here:
.macro mac
.endm
.equ D, defined(C) + 2*defined(buf) + 4*defined(here) + 8*defined(mac) + 16*defined(LANES) + 32*defined(nope)
.equ E, defined(s3e) + defined(alu1) + defined(E)
    read buf, s0e
"""
    consts = assemble(src, "m.lasm").ir.consts
    assert consts["D"] == 31 and consts["E"] == 0


def test_defined_in_if_and_macros():
    src = HEAD + """\
.macro once_only name
.if defined(name) == 0
.equ name, 1
    read buf[1], s0e
.else
    read buf[2], s0e
.endif
.endm
    once_only FOO
    once_only FOO
.if defined(%t) == 0
.equ %t, 5
.endif
"""
    flat = HEAD + ".equ FOO, 1\n    read buf[1], s0e\n    read buf[2], s0e\n.equ %t, 5\n"
    same_program(src, flat)


@pytest.mark.parametrize("src, message", [
    (".equ A, defined(3)\n", "defined() takes a name"),
    (".equ A, defined(a, b)\n", "defined() takes 1 argument, got 2"),
    (".equ A, defined()\n", "defined() takes 1 argument, got 0"),
    (".macro m n\n.equ A, defined(n)\n.endm\n    m 4\n", "defined() takes a name"),
    (".equ A, defind(A)\n", "unknown function 'defind'"),
])
def test_defined_errors(src, message):
    (d,) = errors(".chip tiny\n" + src)
    assert d.message == message


def write(tmp_path, **files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


LIB = """\
; lib.lasm
.once
.equ LIB_K, 2
.macro lib_rd a, s
    read a[LIB_K], s
.endm
"""


def test_once_skips_a_second_include(tmp_path):
    write(tmp_path, **{"lib.lasm": LIB,
                       "user.lasm": '.once\n.include "lib.lasm"\n.macro user a\n    lib_rd a, s1e\n.endm\n',
                       "m.lasm": HEAD + '.include "lib.lasm"\n.include "user.lasm"\n.include "./lib.lasm"\n'
                                        '.include "user.lasm"\n    user buf\n    lib_rd buf, s0e\n'})
    src = (tmp_path / "m.lasm").read_text()
    asm = assemble(src, str(tmp_path / "m.lasm"))
    assert [int(w) >> 8 & 0xFFF for w in asm.ir.word] == [2, 2]
    # without .once the second include redefines everything
    (tmp_path / "lib.lasm").write_text(LIB.replace(".once", ""))
    ds = errors(src, str(tmp_path / "m.lasm"))
    assert rendered(ds[0]) == ("'LIB_K' is already defined as a constant",
                               [("previously defined here", 3), ("in file included from here", 2),
                                ("in file included from here", 4)])


def test_once_breaks_a_self_include(tmp_path):
    write(tmp_path, **{"a.lasm": '.once\n.include "a.lasm"\n.equ A, 1\n',
                       "b.lasm": '.include "b.lasm"\n'})
    asm = assemble('.chip tiny\n.include "a.lasm"\n.include "a.lasm"\n.equ B, A\n', str(tmp_path / "m.lasm"),
                   stop_after="lower")
    assert asm.ir.consts["B"] == 1
    (d,) = errors('.chip tiny\n.include "b.lasm"\n', str(tmp_path / "m.lasm"))
    assert d.message == "include cycle: m.lasm -> b.lasm -> b.lasm"


def test_once_errors():
    ds = errors(".chip tiny\n.macro m\n.once\n.endm\n    m\n.once 1\n")
    assert [(d.span.line, d.message) for d in ds] == [
        (3, "'.once' cannot be used in a macro (put it at the top of the file)"),
        (6, "'.once' expects no arguments")]


# ---- .error, .warning ---------------------------------------------------------------------
GUARD = HEAD + """\
.macro rd a, rows
.if rows > 8
.error "rd: {} rows of '{}' is more than 8 ({} lanes)", rows, a, LANES
.elif rows > 4
.warning "rd: {} rows is slow", rows
.endif
.for r, 0, min(rows, 8)
    read a[r], s0e
.endfor
.endm
.macro rd2 a, rows
    rd a, rows * 2
.endm
"""


def test_error_directive_reports_with_the_chain():
    ds = errors(GUARD + "    rd buf, 2\n    rd2 buf, 5\n")
    assert [rendered(d) for d in ds] == [
        ("rd: 10 rows of 'buf' is more than 8 (32 lanes)", [("in expansion of macro 'rd'", 14),
                                                            ("in expansion of macro 'rd2'", 17)])]
    assert ds[0].severity == "error" and ds[0].span.line == 5 and ds[0].span.col == 1
    text = LpuError(ds, assemble.__globals__["SourceCache"]()).render()
    assert text.startswith("m.lasm:5:1: error: rd: 10 rows of 'buf' is more than 8 (32 lanes)\n")


def test_warning_directive_is_kept_with_the_chain():
    asm = assemble(GUARD + "    rd2 buf, 3\n    rd buf, 1\n", "m.lasm")
    assert [rendered(w) for w in asm.warnings] == [
        ("rd: 6 rows is slow", [("in expansion of macro 'rd'", 14), ("in expansion of macro 'rd2'", 16)])]
    assert asm.warnings[0].severity == "warning" and asm.warnings[0].span.line == 7
    assert len(asm.ir) == 7


def test_error_directive_at_top_level_and_in_loops():
    ds = errors('.chip tiny\n.error "plain"\n.for i, 0, 2\n.error "i = {}", i * 1.5\n.endfor\n')
    assert [rendered(d) for d in ds] == [
        ("plain", []),
        ("i = 0.0", [("in repetition i = 0 of .for", 3)]),
        ("i = 1.5", [("in repetition i = 1 of .for", 3)])]


@pytest.mark.parametrize("src, message", [
    (".error\n", """'.error' expects "MESSAGE" [, VALUE]..."""),
    (".warning 3\n", """'.warning' expects "MESSAGE" [, VALUE]..."""),
    ('.error "a {}"\n', "the message has 1 '{}' placeholder but 0 values follow"),
    ('.error "a", 1\n', "the message has 0 '{}' placeholders but 1 value follows"),
    ('.error "a {}", x=1\n', "'.error' takes no keyword arguments"),
    ('.error "a {}", 1 // 0\n', "division by zero"),
])
def test_error_directive_usage(src, message):
    (d,) = errors(".chip tiny\n" + src)
    assert d.message == message


# ---- operands computed from compile-time values: stream(), queue(), alu()... ------------------
def test_stream_unit_and_queue_functions():
    src = HEAD + """\
.space f, W2.b0[0], f32, 4
.equ BASE, 4
.macro op k, d, x
    read    x, stream(BASE + 2 * k, d)
    repeat  queue(x), 3, 1, 1
    vadd.i8 stream(k, e), stream(1, w), stream(k + 1, d), alu(k) @0
    vcvt.i8.f32 stream(k, 1), stream(4 * k, 0), alu(k + 1) @0
    nop     mxm(k), 2
    nop     queue(f, 3), 1
    acc.i32 mxm(k + 1), stream(0, w), 0 @0
    shift   stream(0, e), 1, stream(1, e), sxm(d) @0
    send    stream(2, w), c2c(k - 1) @0
.endm
    op 1, e, buf
    op 2, 0, f.p1[2]
    op 1, w, W3.b1[4]
"""
    flat = HEAD + """\
.space f, W2.b0[0], f32, 4
.equ BASE, 4
    read    buf, s6e
    repeat  w0, 3, 1, 1
    vadd.i8 s1e, s1w, s2e, alu1 @0
    vcvt.i8.f32 s1e, s4w, alu2 @0
    nop     mxm1, 2
    nop     w5, 1
    acc.i32 mxm2, s0w, 0 @0
    shift   s0e, 1, s1e, sxme @0
    send    s2w, c2c0 @0
    read    f.p1[2], s8w
    repeat  w3, 3, 1, 1
    vadd.i8 s2e, s1w, s3w, alu2 @0
    vcvt.i8.f32 s2e, s8w, alu3 @0
    nop     mxm2, 2
    nop     w5, 1
    acc.i32 mxm3, s0w, 0 @0
    shift   s0e, 1, s1e, sxmw @0
    send    s2w, c2c1 @0
    read    W3.b1[4], s6w
    repeat  w3, 3, 1, 1
    vadd.i8 s1e, s1w, s2w, alu1 @0
    vcvt.i8.f32 s1e, s4w, alu2 @0
    nop     mxm1, 2
    nop     w5, 1
    acc.i32 mxm2, s0w, 0 @0
    shift   s0e, 1, s1e, sxmw @0
    send    s2w, c2c0 @0
"""
    same_lowered(src, flat)


def test_queue_function_planes():
    src = HEAD + """\
.space f, W2.b0[0], f32, 4
.macro q a
    nop queue(a), 1
    nop queue(a, 2), 1
.endm
    q f
    q f.p1[3]
    q W4.b1[0]
    q f[1]
"""
    flat = HEAD + ".space f, W2.b0[0], f32, 4\n" + "".join(
        f"    nop {a}, 1\n    nop {b}, 1\n" for a, b in [("w2", "w4"), ("w3", "w5"), ("w4", "w6"), ("w2", "w4")])
    same_program(src, flat)


@pytest.mark.parametrize("line, message", [
    ("read buf, stream(16, e)", "stream s16e does not exist on chip 'tiny' (streams are s0..s15, e or w)"),
    ("read buf, stream(-1, w)", "stream s-1w does not exist on chip 'tiny' (streams are s0..s15, e or w)"),
    ("read buf, stream(1.5, w)", "expected a stream index, got 1.5"),
    ("read buf, stream(1, 2)", "expected a direction: e or w, or 1 (east) or 0 (west), got 2"),
    ("read buf, stream(1, x)", "undefined symbol 'x'"),
    ("read buf, stream(1)", "stream() takes 2 arguments, got 1"),
    ("read buf, alu(1)", "expected a stream (s0e, s3w, ...)"),
    ("vadd.i8 s0e, 1, s1e, alu(4)", "expected an ALU (alu0..alu3), got alu(4)"),
    ("vadd.i8 s0e, 1, s1e, alu(-1)", "expected an ALU (alu0..alu3), got alu(-1)"),
    ("vadd.i8 s0e, 1, s1e, mxm(1)", "expected an ALU (alu0..alu3)"),
    ("vadd.i8 s0e, alu(1), s1e", "alu() names an ALU, not a number"),
    ("acc.i32 mxm(4), s0w, 0", "expected an MXM plane (mxm0..mxm3), got mxm(4)"),
    ("send s0w, c2c(2)", "expected a C2C link (c2c0..c2c1), got c2c(2)"),
    ("shift s0e, 1, s1e, sxm(3)", "expected a direction: e or w, or 1 (east) or 0 (west), got 3"),
    ("nop queue(3), 1", "queue() takes an SRAM address (a data symbol, or a parameter bound to an address)"),
    ("nop queue(nope), 1", "undefined data symbol 'nope'"),
    ("nop queue(buf, 1), 1", "'buf' (i8) has byte plane p0..p0"),
    ("nop queue(buf, -1), 1", "byte plane -1 is out of range (>= 0)"),
    ("nop queue(buf, 1, 2), 1", "queue() takes 1 or 2 arguments, got 3"),
    ("nop stream(1, e), 1", "stream() names a stream, not a queue"),
    ("nop alu(9), 1", "expected an ALU (alu0..alu3), got alu(9)"),
    (".equ X, stream(1, e)", "stream() names a stream, not a number"),
    (".if queue(buf)\n.endif", "queue() names a queue, not a number"),
])
def test_operand_function_errors(line, message):
    (d,) = errors(HEAD + "    " + line + "\n")
    assert (d.span.line, d.message) == (3, message)


def test_operand_function_error_in_a_macro_has_the_chain():
    src = HEAD + ".macro m a, k\n    nop queue(a, k), 1\n.endm\n    m W7.b0[0], 1\n"
    (d,) = errors(src)
    assert rendered(d) == ("slice W8 does not exist on chip 'tiny' (it has W0..W7)",
                           [("in expansion of macro 'm'", 6)])


def test_expand_prints_warnings(tmp_path, capsys):
    from lpuasm.cli import main

    f = tmp_path / "w.lasm"
    f.write_text('.chip tiny\n.warning "careful: {}", 3\nnop w0, 1\n')
    assert main(["expand", str(f)]) == 0
    err = capsys.readouterr().err
    assert "warning: careful: 3" in err


def test_a_word_argument_takes_byte_planes():
    """x[3] as an argument: a[i] is x[3 + i] and a.p1[i] is x.p1[3 + i] (the tree
    path and the vectorised .for path agree); an explicit address has no planes."""
    head = ".chip tiny\n.data x, W0.b0[0], f16, [[1], [2], [3], [4], [5], [6]]\n.space y, E0.b0[0], f16, 2\n"
    mac = (".macro cp a, b\n.for i, 0, 2\n    read a[i], s0e\n    write s0e, b[i]\n"
           "    read a.p1[i], s1e\n    write s1e, b.p1[i]\n.endfor\n.endm\n")
    same_lowered(head + mac + "    cp x[3], y\n",
                 head + "".join(f"    read x[{3 + i}], s0e\n    write s0e, y[{i}]\n"
                                f"    read x.p1[{3 + i}], s1e\n    write s1e, y.p1[{i}]\n" for i in range(2)))
    d = errors(head + mac + "    cp W0.b0[3], y\n")
    assert "'a' is bound to an argument that cannot be indexed" in d[0].message
