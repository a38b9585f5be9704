"""The vectorised loop fast path (lpuasm.vexpand) against the per-instruction
path: identical IR columns, symbols, source maps, images and diagnostics."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpuasm import imagefile, vexpand
from lpuasm.assembler import assemble
from lpuasm.diagnostics import LpuError

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
    if slow_err is not None or fast_err is not None:
        assert slow_err is not None and fast_err is not None, (slow_err, fast_err)
        assert [key(d) for d in slow_err] == [key(d) for d in fast_err]
        return None, used
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
    return slow, used


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
