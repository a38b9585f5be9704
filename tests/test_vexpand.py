"""The vectorised loop fast path (lpuasm.vexpand) against the per-instruction
path: identical IR columns, symbols, source maps (files, macro frames and
chains), images and diagnostics.  Loops that call macros (arguments, defaults,
nested macros, macros with loops, recursion) and hold .if blocks on loop
variables, random ones (hypothesis), and every program of the stdlib tests,
examples/, tests/corpus/ and the model builder, assembled both ways."""

import importlib
import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpuasm import assembler, imagefile, vexpand
from lpuasm.assembler import assemble, assemble_file
from lpuasm.diagnostics import LpuError

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("op", "word", "queue", "pin_kind", "pin", "loc_file", "loc_line", "loc_col", "loc_width", "loc_chain")

HEAD = """\
.chip tiny
.equ K, 3
.equ NEG, -2
.equ F, 2.5
.space buf, W0.b0[0], i8, 16
.space h16, W2.b1[0], i16, 8
.space big, E3.b0[0], f32, 40, 64
"""


@pytest.fixture(autouse=True)
def _strict(monkeypatch):
    monkeypatch.setattr(vexpand, "STRICT", True)
    monkeypatch.setattr(vexpand, "MIN_ROWS", 0)
    monkeypatch.setattr(vexpand, "MIN_ROWS_PER_STATEMENT", 0)


def run(src, fast, stop_after="lower"):
    """(assembly or None, diagnostics or None, fast loops used)."""
    old = vexpand.ENABLED
    vexpand.ENABLED = fast
    before = vexpand.stats["fast_loops"]
    try:
        return assemble(src, "v.lasm", stop_after=stop_after), None, vexpand.stats["fast_loops"] - before
    except LpuError as e:
        return None, e.diagnostics, vexpand.stats["fast_loops"] - before
    finally:
        vexpand.ENABLED = old


def key(d):
    return (d.severity, d.message, d.span, d.hint, [(n.message, n.span) for n in d.notes])


def same(src, stop_after="lower"):
    """Assemble *src* both ways; assert identical results; return (slow asm, fast loops used)."""
    slow, slow_err, _ = run(src, False, stop_after)
    fast, fast_err, used = run(src, True, stop_after)
    compare(slow, slow_err, fast, fast_err, stop_after)
    return (None if slow_err is not None else slow), used


def compare(slow, slow_err, fast, fast_err, stop_after):
    """Two assemblies (or their diagnostics) are the same, IR and image byte for byte."""
    if slow_err is not None or fast_err is not None:
        assert slow_err is not None and fast_err is not None, (slow_err, fast_err)
        assert [key(d) for d in slow_err] == [key(d) for d in fast_err]
        return
    a, b = slow.ir, fast.ir
    for col in COLUMNS:
        x, y = getattr(a, col), getattr(b, col)
        assert x.dtype == y.dtype, col
        assert np.array_equal(x, y), col
    assert a.files == b.files and a.frames == b.frames
    assert a.labels == b.labels and a.consts == b.consts
    assert [(d.name, d.addr) for d in a.data] == [(d.name, d.addr) for d in b.data]
    assert [key(d) for d in slow.warnings] == [key(d) for d in fast.warnings]
    if stop_after == "encode":
        assert imagefile.to_bytes(slow.image) == imagefile.to_bytes(fast.image)


def run_file(path, fast, **kwargs):
    """(assembly or None, LpuError or None)."""
    old = vexpand.ENABLED
    vexpand.ENABLED = fast
    try:
        return assembler_assemble_file(path, **kwargs), None
    except LpuError as e:
        return None, e
    finally:
        vexpand.ENABLED = old


assembler_assemble_file = assemble_file  # (the tests below patch lpuasm.assembler's)


def same_file(path, stop_after="encode", **kwargs):
    """Assemble file *path* both ways; assert identical; the fast result (or raise its error)."""
    slow, slow_err = run_file(path, False, stop_after=stop_after, **kwargs)
    before = vexpand.stats["fast_loops"]
    fast, fast_err = run_file(path, True, stop_after=stop_after, **kwargs)
    compare(slow, slow_err and slow_err.diagnostics, fast, fast_err and fast_err.diagnostics, stop_after)
    if fast_err is not None:
        raise fast_err
    return fast, vexpand.stats["fast_loops"] - before


PROGRAMS = [
    # flat loops over the operand kinds
    """
start:
.for i, 0, 12
    read buf[i], stream(i % 4, e)
    vadd.i8 stream(i % 4, e), i * 3 - 10, stream(4 + i % 4, e), alu(i % 4)
    write stream(4 + i % 4, e), W1.b0[100 + 2 * i]
.endfor
    halt
""",
    """
.for i, 7, -5, -3
    read h16.p1[(i + 8) % 8], s2w
    vmul.f16 s0e, i * 64, s2e, alu(3 - (i & 3))
    vsub.f32 s4e, -i, s8e
    nop alu(min(max(i, 0), 3)), ((i + 8) << 2) >> 1
    shift s0e, i ^ 5, s1e, sxm(i % 2)
    lw.i8 stream(i + 8, w), mxm(abs(i) % 4)
    acc.i32 mxm(i % 4), s4e, (i * i) // 2, i > 0
    nop queue(big, 2), i + 5
    send stream(i + 8, e), c2c((i + 9) % 2)
    receive c2c(i % 2), s5e
.endfor
""",
    # pins, relative and absolute, from the loop variable
    """
.rept 5
    read buf[3], s0e @+1
    vadd.i8 s0e, K, s1e, alu1 @+2
.endr
.for j, 0, 4
    read buf[j], s1e @40 + 5 * j
.endfor
""",
    # nested loops, the inner one hiding the outer variable once
    """
.for r, 0, 3
    read buf[r], s0e
.for c, 0, 4
    read W5.b1[r * 4 + c], stream(c, e)
.rept 2
    vadd.i8 stream(c, e), r - c, stream(c + 4, e), alu(c)
.endr
.endfor
.for r, 0, 2
    write s1e, W6.b0[r]
.endfor
.endfor
""",
    # inner bounds use i: the outer loop goes row by row, the inner ones fast
    ".for i, 0, 3\n.for j, 0, i\n    read buf[j], s0e\n.endfor\n.endfor\n",
    # loops in macros: parameters, %-names, chains
    """
.macro tile a, s, n=4
.for i, 0, n
    read a[i], s
    vadd.i8 s, i, s1e
.endfor
.endm
.macro twice a
    tile a, s0e
    tile a, s2e, n=2
.endm
    twice buf
    twice W4.b0[8]
""",
    # zero and one repetitions, empty inner loops
    """
.for i, 0, 0
    read buf[i], s0e
.endfor
.for i, 0, 1
    read buf[i], s0e
.for k, 0, 0
    read buf[k], s0e
.endfor
.endfor
    halt
""",
    # things the fast path does not take (FALLBACKS): it falls back, same result
    """
.for i, 0, 4
    read buf[i], s0e
    nop alu0, F * 2
    vadd.f16 s0e, i / 2, s2e
    vadd.i8 s0e, i / 1, s2e
.endfor
.for i, 0, 3
    read buf[i], s0e
    repeat w0, 2, 1
.endfor
""",
]

ERRORS = [
    ".for i, 0, 20\n    read buf[i], s0e\n.endfor\n",                     # word 16 out of range
    ".for i, 0, 5\n    vadd.i16 stream(i, e), 1, s2e\n.endfor\n",          # misaligned group
    ".for i, 0, 5\n    vadd.i8 s0e, 100 + i * 10, s2e\n.endfor\n",        # immediate does not fit
    ".for i, 0, 5\n    read buf[i // (i - 2)], s0e\n.endfor\n",            # division by zero
    ".for i, 0, 5\n    read nosuch[i], s0e\n    read buf[undefined + i], s0e\n.endfor\n",
    ".for i, 0, 5\n    vadd.i8 s0e, 1, s1e, alu(i)\n.endfor\n",             # alu4 does not exist
    ".for i, 0, 3\n    read buf[i], s0e @-1 + i\n.endfor\n",                # negative pin
    ".for i, 0, 3\n    read i[2], s0e\n.endfor\n",                          # cannot be indexed
    ".for i, 0, 3\n    read buf[i], stream(i + 14, e)\n.endfor\n",          # stream s16e does not exist
    ".for i, 0, 3\n    lw.i8 s0e, mxm(i + 2)\n.endfor\n",                    # mxm4
    ".for i, 0, 3\n    shift s0e, 1, s1e, sxm(i)\n.endfor\n",                # direction 2
]


FALLBACKS = PROGRAMS[-1:]


@pytest.mark.parametrize("body", PROGRAMS)
def test_programs_identical(body):
    asm, used = same(HEAD + body)
    assert asm is not None
    assert (used == 0) == (body in FALLBACKS)


@pytest.mark.parametrize("body", ERRORS)
def test_errors_identical(body):
    asm, _ = same(HEAD + body)
    assert asm is None


def test_images_identical_after_scheduling():
    src = HEAD + """
.for i, 0, 16
    read buf[i], s0e
    vadd.i8 s0e, i - 8, s1e, alu(i % 4)
    write s1e, E1.b0[i]
.endfor
    halt
"""
    asm, used = same(src, stop_after="encode")
    assert asm is not None and used == 1


def test_fast_path_is_taken_and_flag_forces_slow_path():
    src = HEAD + ".for i, 0, 16\n    read buf[i], s0e\n.endfor\n"
    _, _, used = run(src, True)
    assert used == 1
    _, _, used = run(src, False)
    assert used == 0


def test_labels_before_the_loop_and_last_row_of_queue():
    # the label names the loop's first row; 'repeat' after the loop sees its last read
    src = HEAD + """
top:
.for i, 0, 6
    read buf[i], s0e
.endfor
    repeat w0, 2, 1, 1
"""
    asm, used = same(src)
    assert asm.ir.labels["top"] == 0 and used == 1


def test_instruction_limit_falls_back(monkeypatch):
    from lpuasm.lower import Lowerer
    monkeypatch.setattr(Lowerer, "max_instructions", 10)
    asm, _ = same(HEAD + ".for i, 0, 16\n    read buf[i % 16], s0e\n.endfor\n")
    assert asm is None


# ---- hypothesis: random loop bodies over a safe operand subset -------------------
_OPS = ["+", "-", "*", "//", "%", "<<", ">>", "&", "|", "^", "==", "<", ">="]


def _expr(depth):
    atom = st.one_of(st.sampled_from(["i", "i", "j", "K", "NEG"]), st.integers(-6, 20).map(str))
    if depth == 0:
        return atom
    sub = _expr(depth - 1)
    return st.one_of(
        atom,
        st.tuples(sub, st.sampled_from(_OPS), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda e: f"-{e}"),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        sub.map(lambda e: f"abs({e})"),
    )


EXPR = _expr(2)


def _in(n):
    """An expression, usually folded into 0..n-1 (sometimes raw: may be out of range)."""
    return st.tuples(EXPR, st.integers(0, 9)).map(lambda t: t[0] if t[1] == 0 else f"({t[0]}) % {n}")


def _pin():
    return st.one_of(st.just(""), _in(8).map(lambda e: f" @+{e}"), _in(200).map(lambda e: f" @{e}"))


INSTR = st.one_of(
    st.tuples(_in(16), _in(16), st.sampled_from("ew"), _pin()).map(
        lambda t: f"read buf[{t[0]}], stream({t[1]}, {t[2]}){t[3]}"),
    st.tuples(_in(16), _in(8), _pin()).map(lambda t: f"write stream({t[0]}, w), h16.p1[{t[1]}]{t[2]}"),
    st.tuples(_in(16), _in(256)).map(lambda t: f"write s3e, W7.b1[{t[0]} * 16 + {t[1]} % 16]"),
    st.tuples(st.sampled_from(["vadd", "vmul", "vmax", "vlt"]), st.sampled_from(["i8", "i16", "i32", "f16", "f32"]),
              _in(8), EXPR, _in(4), _pin()).map(
        lambda t: f"{t[0]}.{t[1]} stream(2 * ({t[2]}), e), {t[3]}, s4e, alu({t[4]}){t[5]}"),
    st.tuples(_in(4), _in(16)).map(lambda t: f"nop alu({t[0]}), {t[1]}"),
    st.tuples(_in(4), _in(32)).map(lambda t: f"acc.f32 mxm({t[0]}), s8e, {t[1]}"),
    st.tuples(EXPR, _in(2)).map(lambda t: f"shift s0e, {t[0]}, s1e, sxm({t[1]})"),
    st.tuples(st.integers(0, 3), _in(40)).map(lambda t: f"nop queue(big, {t[0]}), {t[1]}"),
)


@st.composite
def loops(draw):
    body = draw(st.lists(INSTR, min_size=1, max_size=4))
    start = draw(st.integers(-3, 3))
    stop = start + draw(st.integers(1, 12))
    step = draw(st.sampled_from(["", ", 1", ", 2", ", 3"]))
    lines = ["    " + x.replace("j", "i") for x in body]
    if draw(st.booleans()):
        inner = draw(st.lists(INSTR, min_size=1, max_size=3))
        n = draw(st.integers(0, 4))
        kind = draw(st.sampled_from(["for", "rept"]))
        if kind == "for":
            inner_lines = [".for j, 0, %d" % n] + ["    " + x for x in inner] + [".endfor"]
        else:
            inner_lines = [".rept %d" % n] + ["    " + x.replace("j", "K") for x in inner] + [".endr"]
        pos = draw(st.integers(0, len(lines)))
        lines[pos:pos] = inner_lines
    return f".for i, {start}, {stop}{step}\n" + "\n".join(lines) + "\n.endfor\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loops())
def test_random_loops_identical(body):
    same(HEAD + body)


# ---- loops that call macros and hold .if blocks -----------------------------------------
MACROS = """
.macro rd a, s, off=0, n=off + 1
    read a[off], s
    nop alu(n % 4), n
.endm
.macro inner x, k
.for j, 0, k
    read x[j + k], stream(j, e)
.endfor
.endm
.macro outer x, k
    inner x, k
    vadd.i8 s0e, k, s1e, alu(k % 4)
    inner x, 1
.endm
.macro pick c, v
.if c == 0
    nop alu0, v
.elif c == 1
    vadd.i8 s0e, v, s1e, alu(v % 4)
.elif c == 5
.error "never taken"
.else
    read buf[v], s2e
.endif
.endm
.macro down n
.if n > 0
    read buf[n], s0e
    down n - 1
.endif
.endm
.macro none x
.if x > 100
    nop alu0, 1
.endif
.endm
.macro one x
    nop alu1, x
.endm
"""

MACRO_PROGRAMS = [
    # arguments: positional, keyword (any order), defaults using earlier parameters, addresses
    """
.for i, 0, 10
    rd buf, s0e
    rd buf, stream(i % 4, e), i
    rd W1.b0[3], s1e, off=i, n=2
    rd h16.p1[1], s2w, n=i % 3, off=i % 6
    rd a=buf, s=s3e, off=15 - i
.endfor
""",
    # nested macros, loops in macros whose bounds use the caller's loop variable
    """
.for i, 0, 6
    outer buf, i
.rept 2
    outer W2.b0[4], i % 3
.endr
.endfor
""",
    # .if/.elif/.else on loop variables, nested, empty branches, .error not taken
    """
.for i, 0, 12
.if i % 3 == 0
    read buf[i], s0e
.if i > 5
    nop alu1, i
.else
    nop alu2, i
.endif
.elif i % 3 == 1
    pick i % 2, i
.else
.endif
    pick (i + 1) % 3, 15 - i
.if K == 3
    nop alu3, i
.elif i == 2
.error "not reached: the scalar branch before is taken"
.endif
.endfor
""",
    # recursion ended by a condition on the loop variable, and by a constant one
    """
.for i, 0, 8
    down i % 4
    down 2
.endfor
""",
    # frames and files first met in later repetitions; expansions without rows
    """
.for i, 0, 6
.if i == 2
    none i
    one i
.endif
    none 1
.if i > 3
    one 7
    outer buf, 1
.endif
    one i
.endfor
    one 3
""",
    # .rept counts and .for bounds from an outer variable, negative steps, empty ones
    """
.for i, 5, -1, -2
.rept i
    nop alu(i % 4), i
.endr
.for j, i, 0, -1
    read buf[i + j], s0e
.endfor
.for k, 0, i * 2, 3
    nop alu3, k
.endfor
.rept max(3 - i, 0)
    nop alu0, 0
.endr
.endfor
""",
    # a byte plane per repetition: queue(x, p) with p a loop variable
    """
.macro settle x
.for p_, 0, 4
    nop queue(x, p_), 1
.endfor
.endm
.for i, 0, 3
    settle big
    nop queue(big, i + 1), 2
.endfor
""",
    # %-names of the macro around the loop; a loop inside a macro called in a loop
    """
.macro ign x
    nop alu1, 1
.endm
.macro m2 k
.equ %n, k
.for i, 0, %n
    nop alu0, i + %n
    ign %n
    outer buf, i % 2
.endfor
.endm
    m2 4
    m2 5
.for q, 0, 3
    m2 3
.endfor
""",
    # things the fast path does not take: it falls back, same result (MACRO_FALLBACKS)
    """
.macro loc x
.equ %n, x
    nop alu0, %n
.endm
.for i, 0, 4
    loc i
.endfor
""",
    """
.macro chk
.if defined(%x)
    nop alu0, 1
.else
    nop alu0, 2
.endif
.endm
.for i, 0, 4
    chk
.endfor
""",
    """
.macro lbl v
%here:
    nop alu0, v
.endm
.for i, 0, 4
    lbl i
.endfor
""",
    """
.macro warn v
.if v == 2
.warning "v is {}", v
.endif
    nop alu0, v
.endm
.for i, 0, 4
    warn i
.endfor
""",
    """
.for i, 1 << 70, (1 << 70) + 9
    nop alu0, 1
.endfor
.for i, 0, 3
.for j, 1 << 70, (1 << 70) + 3
    nop alu0, i
.endfor
    one i
.endfor
""",
]
MACRO_FALLBACKS = MACRO_PROGRAMS[-5:]

MACRO_ERRORS = [
    ".macro chk v\n.if v > 3\n.error \"too big: {}\", v\n.endif\n    nop alu0, v\n.endm\n"
    ".for i, 0, 6\n    chk i\n.endfor\n",                                  # .error in a taken branch
    ".for i, 0, 6\n    rd\n    one i, 2\n    rd buf, s0e, nosuch=1\n.endfor\n",  # bad calls
    ".macro inf n\n    nop alu0, 1\n    inf n + 1\n.endm\n.for i, 0, 3\n    inf i\n.endfor\n",  # too deep
    ".macro l2\nhere:\n    nop alu0, 1\n.endm\n.for i, 0, 3\n    l2\n.endfor\n",   # label defined twice
    ".for i, 0, 12\n.if i > 8\n    read buf[i + 8], s0e\n.endif\n.endfor\n",  # out of range in some branches
    ".for i, 0, 5\n.for j, 0, 3 - i\n    read buf[j], s0e\n.endfor\n"
    ".for j, 0, 2, i - 2\n    nop alu0, j\n.endfor\n.endfor\n",                # a step 0 in one repetition
    ".for i, 0, 5\n    one buf @3\n.endfor\n",                                # a pinned call
    ".for i, 0, 5\n.if buf\n    nop alu0, 1\n.endif\n.endfor\n",            # a data symbol as a condition
    ".for i, 0, 5\n.if i, 2\n    nop alu0, 1\n.elif\n.else 3\n.endif\n.endfor\n",
    ".for i, 0, 5\n    pick 0, i[2]\n.endfor\n",                            # a loop variable indexed
    ".equ X, 1\n.equ X, 2\n.for i, 0, 5\n    one i\n.endfor\n",               # an error before the loop
]


@pytest.mark.parametrize("body", MACRO_PROGRAMS)
def test_macro_loops_identical(body):
    asm, used = same(HEAD + MACROS + body)
    assert asm is not None
    assert (used == 0) == (body in MACRO_FALLBACKS)


@pytest.mark.parametrize("body", MACRO_ERRORS)
def test_macro_loop_errors_identical(body):
    asm, _ = same(HEAD + MACROS + body)
    assert asm is None


def test_macro_loops_images_identical():
    src = HEAD + """
.macro step a, i, k=0
    read a[i], s0e
.if i % 2 == 0
    vadd.i8 s0e, i - 8, s1e, alu(i % 4)
.else
    vsub.i8 s0e, k, s1e, alu(i % 4)
.endif
    write s1e, E1.b0[i]
.endm
.macro pair a, i
    step a, i
    step a, 15 - i, k=i
.endm
.for i, 0, 8
    pair buf, i
.if i > 5
    nop alu(i % 4), 3
.endif
.endfor
    halt
"""
    asm, used = same(src, stop_after="encode")
    assert asm is not None and used == 1
    # and the programs above, all in one (scheduling errors, the same ones)
    same(HEAD + MACROS + "".join(MACRO_PROGRAMS[:-5]) + "    halt\n", stop_after="encode")


def test_files_and_frames_in_order_of_first_use(tmp_path):
    # macros of two included files, first used in the opposite order of their
    # calls in the body: the file and frame numbers follow the first use
    (tmp_path / "a.lasm").write_text(".macro ma x\n    nop alu0, x\n.endm\n")
    (tmp_path / "b.lasm").write_text(".macro mb x\n    ma x + 1\n    nop alu1, x\n.endm\n")
    main = tmp_path / "main.lasm"
    main.write_text(HEAD + """.include "a.lasm"
.include "b.lasm"
.for i, 0, 8
.if i == 3
    ma i
.endif
.if i > 1
    mb i
.endif
.if i == 0
.rept 0
    ma 1
.endr
.endif
.endfor
    halt
""")
    asm, used = same_file(main)
    assert used == 1
    assert [Path(f).name for f in asm.ir.files] == ["main.lasm", "b.lasm", "a.lasm"]
    assert [(f.macro, f.line) for f in asm.ir.frames] == [("mb", 15), ("ma", 2), ("ma", 12)]


def test_frames_are_merged_by_content():
    # one frame per call site and parent, however often a loop makes the call
    asm, _ = same(HEAD + MACROS + ".for i, 0, 40\n    outer buf, i % 3\n.endfor\n")
    assert len(asm.ir) == 40 + 39 + 40 and len(asm.ir.frames) == 3


def test_an_earlier_error_keeps_the_fast_path():
    src = HEAD + ".equ X, 1\n.equ X, 2\n.for i, 0, 16\n    read buf[i], s0e\n.endfor\n"
    _, err, used = run(src, True)
    assert err and used == 1


# ---- hypothesis: loops over macro calls and .if blocks ------------------------------------
_COND = st.one_of(
    st.tuples(EXPR, st.sampled_from(["<", "==", ">=", "!="]), EXPR).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.tuples(EXPR, st.integers(2, 4)).map(lambda t: f"({t[0]}) % {t[1]} == 0"),
    st.sampled_from(["K > 2", "K == 0", "1", "0"]),
)
_CALL = st.one_of(
    st.tuples(_in(4), _in(16)).map(lambda t: f"rd buf, stream({t[0]}, e), off={t[1]}"),
    st.tuples(_in(16), _in(3)).map(lambda t: f"rd W3.b1[{t[0]}], s2w, n={t[1]}"),
    st.tuples(_in(3), _in(16)).map(lambda t: f"pick {t[0]}, {t[1]}"),
    _in(4).map(lambda e: f"down {e}"),
    _in(5).map(lambda e: f"outer buf, {e}"),
    _in(4).map(lambda e: f"inner W5.b0[2], {e}"),
    EXPR.map(lambda e: f"none {e}"),
    _in(16).map(lambda e: f"one {e}"),
)


def _block(depth):
    leaf = st.one_of(INSTR, _CALL, _CALL).map(lambda x: ["    " + x])
    if depth == 0:
        return leaf
    items = st.lists(_block(depth - 1), min_size=0, max_size=3).map(lambda ls: [x for b in ls for x in b])
    if_ = st.tuples(_COND, items, st.lists(st.tuples(_COND, items), max_size=2), st.one_of(st.none(), items)).map(
        lambda t: [f".if {t[0]}", *t[1], *[x for c, b in t[2] for x in (f".elif {c}", *b)],
                   *([".else", *t[3]] if t[3] is not None else []), ".endif"])
    loop = st.tuples(st.sampled_from(["for", "rept"]), _in(4), items).map(
        lambda t: ([f".for j, 0, {t[1]}"] if t[0] == "for" else [f".rept {t[1]}"]) + t[2]
        + [".endfor" if t[0] == "for" else ".endr"])
    return st.integers(0, 2).flatmap(lambda k: (leaf, if_, loop)[k])


@st.composite
def macro_loops(draw):
    body = [x for b in draw(st.lists(_block(2), min_size=1, max_size=4)) for x in b]
    # j is only bound inside an inner .for; elsewhere it means i
    lines, inner = [], []
    for x in body:
        if x in (".endfor", ".endr"):
            inner.pop()
        if "for" not in inner:
            x = x.replace(".for j", ".for J").replace("j", "i").replace(".for J", ".for j")
        if x.startswith(".for j"):
            inner.append("for")
        elif x.startswith(".rept"):
            inner.append("rept")
        lines.append(x)
    start = draw(st.integers(-2, 3))
    stop = start + draw(st.integers(1, 10))
    return f".for i, {start}, {stop}\n" + "\n".join(lines) + "\n.endfor\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(macro_loops())
def test_random_macro_loops_identical(body):
    same(HEAD + MACROS + body)


# ---- whole programs: examples, corpus, stdlib tests, model builds ----------------------------
FILES = sorted((ROOT / "examples").glob("*.lasm")) + sorted((ROOT / "tests" / "corpus").glob("*.lasm"))


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_files_identical(path):
    try:
        same_file(path)
    except LpuError:
        pass  # (the same diagnostics both ways)


class _Compared(Exception):
    """A stdlib test's program was assembled both ways (its run is not needed here)."""


def _stdlib_cases():
    """(module, test, arguments) of every test of tests/test_stdlib*.py that takes
    tmp_path (they write and assemble programs), one per parametrization."""
    cases = []
    for path in sorted(Path(__file__).parent.glob("test_stdlib*.py")):
        mod = importlib.import_module(path.stem)
        for name, fn in vars(mod).items():
            if not name.startswith("test_") or not inspect.isfunction(fn):
                continue
            params = set(inspect.signature(fn).parameters)
            combos = [{}]
            for mark in getattr(fn, "pytestmark", []):
                if mark.name != "parametrize":
                    continue
                names = mark.args[0]
                names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
                values = [v.values if hasattr(v, "marks") and hasattr(v, "values") else v if len(names) > 1 else (v,)
                          for v in mark.args[1]]
                combos = [{**c, **dict(zip(names, v))} for c in combos for v in values]
            if "tmp_path" not in params or params - set(combos[0]) - {"tmp_path"}:
                continue
            cases += [pytest.param(path.stem, name, kw, id=f"{path.stem[5:]}.{name[5:]}-{i}")
                      for i, kw in enumerate(combos)]
    return cases


@pytest.mark.parametrize("module, test, kwargs", _stdlib_cases())
def test_stdlib_test_programs_identical(module, test, kwargs, tmp_path, monkeypatch):
    """Each stdlib test's first program (and any it assembles before running one),
    assembled both ways: images byte for byte, or the same diagnostics."""
    compared = []

    def assemble_both(path, **kwargs):
        compared.append(path)
        return same_file(path, **kwargs)[0]

    def run_everywhere(src, tmp_path, name="k.lasm", reference=True):
        path = tmp_path / name
        path.write_text(src)
        assemble_both(path)
        raise _Compared

    monkeypatch.setattr(assembler, "assemble_file", assemble_both)
    for path in Path(__file__).parent.glob("test_stdlib*.py"):
        mod = importlib.import_module(path.stem)
        for attr, fake in (("assemble_file", assemble_both), ("run_everywhere", run_everywhere)):
            if hasattr(mod, attr):
                monkeypatch.setattr(mod, attr, fake)
    try:
        getattr(importlib.import_module(module), test)(tmp_path=tmp_path, **kwargs)
    except _Compared:
        pass
    if not compared:
        pytest.skip("assembles no program")


MODELS = [("tiny-llama", "decode", 16), ("tiny-llama", "prefill", 16), ("tiny-bert", "prefill", 8)]


@pytest.mark.parametrize("preset, mode, seq", MODELS, ids=[f"{p}-{m}" for p, m, _ in MODELS])
def test_model_programs_identical(preset, mode, seq, tmp_path, monkeypatch):
    from lpuasm.config import TSP_V1
    monkeypatch.setattr(vexpand, "MIN_ROWS", 8)  # as shipped (the other tests take every loop they can)
    monkeypatch.setattr(vexpand, "MIN_ROWS_PER_STATEMENT", 4)
    from lpuasm.model import checkpoint, config, runner

    cfg = config.preset(preset)
    w = checkpoint.random_weights(cfg)
    built = runner.build(cfg, w, TSP_V1, mode, seq, runner.prepare(cfg, w, mode, seq), source_dir=tmp_path)
    asm, used = same_file(tmp_path / "model.lasm", config=TSP_V1)
    assert used and imagefile.to_bytes(asm.image) == imagefile.to_bytes(built.image)


def test_a_loop_that_never_qualifies_is_planned_once():
    # the label of lbl2 is met in every repetition: the loop is not planned again
    src = HEAD + """
.macro lbl2 v
%here:
    nop alu0, v
.endm
.macro many
.for i, 0, 4
    lbl2 i
.if i > 9
    lbl2 i
.endif
.endfor
.endm
    many
    many
    many
"""
    before = vexpand.stats["fallbacks"]
    asm, used = same(src)
    assert asm is not None and used == 0 and vexpand.stats["fallbacks"] - before == 1
