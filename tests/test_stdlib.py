"""The macro library under stdlib/: each macro, called from a small program on the
``tiny`` chip, runs on the reference interpreter and both fast engines (which must
agree bit for bit, as in tests/test_examples.py), computes what docs/stdlib.md says
(bit for bit against a numpy float32 model in the macro's operation order), and
takes the pinned number of cycles (a change of the timing model or of a macro's
schedule shows up here; update docs/stdlib.md with it).  The reductions and the
macros built on them (rmsnorm, softmax) also run on ``tsp-v1``, whose 320 lanes
are not a power of two (5 x 2^6), and on a 48-lane custom chip (3 x 2^4).

The programs are written to a temporary directory, so every ``.include`` of a
stdlib file is found by name in the installed stdlib folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lpuasm.analysis import analyse
from lpuasm.assembler import assemble_file, stdlib_dir
from lpuasm.diagnostics import LpuError
from lpuasm.interp import run as run_fast
from lpuasm.levels import supported as levels_supported
from lpuasm.program import load_program
from lpuasm.refinterp import run_reference

F32 = np.float32
LANES = 32  # tiny
ROOT = Path(__file__).resolve().parent.parent


def run_everywhere(src: str, tmp_path: Path, name: str = "k.lasm", reference: bool = True):
    """Run on both fast engines and (unless *reference* is False) the reference
    interpreter; all must agree bit for bit.  Returns the first run."""
    path = tmp_path / name
    path.write_text(src)
    asm = assemble_file(path)
    prog = load_program(asm.image, asm.config)
    assert levels_supported(analyse(prog))
    runs = [run_reference(prog)] if reference else []
    for engine in ("levels", "cycles"):
        runs.append(run_fast(prog, engine_name=engine))
    first = runs[0]
    for other in runs[1:]:
        assert other.stats.cycles == first.stats.cycles
        if not np.array_equal(other.sram, first.sram):  # one pass (tsp-v1's SRAM is 230 MB)
            np.testing.assert_array_equal(other.sram, first.sram)
        for key in ("instructions", "per_unit", "sram_bytes_read", "sram_bytes_written", "macs", "nan_inf"):
            assert getattr(other.stats, key) == getattr(first.stats, key), key
    return first


def same_bits(got: np.ndarray, want: np.ndarray, name: str = "") -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype, got.shape, want.shape)
    bits = np.dtype(f"u{got.dtype.itemsize}")
    diff = np.argwhere(got.view(bits) != want.view(bits))
    if len(diff):
        first = tuple(diff[0])
        raise AssertionError(f"{name}: {len(diff)} elements differ, first at {list(first)}: "
                             f"got {got[first]!r}, want {want[first]!r}")


def lit(a: np.ndarray) -> str:
    """A 2-D array as a .data list (float32 values print exactly as Python floats)."""
    return "[" + ", ".join("[" + ", ".join(repr(float(v)) if a.dtype.kind == "f" else str(int(v)) for v in row)
                           + "]" for row in a) + "]"


def rng_f32(rows, cols=LANES, scale=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal((rows, cols)) * scale).astype(F32)


def roll_tree(v: np.ndarray, op) -> np.ndarray:
    """reduce.lasm's all-reduce over the v.shape[1] lanes, in its operation order:
    while the period p is even, p //= 2 and v = op(v, rotate(v, p)); then, with p
    odd, a = v and p - 1 times a = op(v, rotate(a, 1)).  rotate(v, n) = np.roll(v, n)."""
    p = v.shape[1]
    while p % 2 == 0:
        p //= 2
        v = op(v, np.roll(v, p, axis=1))
    a = v
    for _ in range(p - 1):
        a = op(v, np.roll(a, 1, axis=1))
    return a


HEAD = ".chip tiny\n"
CHIP_LANES = {"tiny": 32, "tsp-v1": 320}

# ---- vector.lasm ----------------------------------------------------------------------------------
R = 4
X = rng_f32(R, seed=1)
Y = rng_f32(R, seed=2)
VEC_DATA = f"""\
.equ R, {R}
.data  x, W0.b0[0], f32, {lit(X)}
.data  y, W4.b0[0], f32, {lit(Y)}
.space o, E0.b0[0], f32, R
.space ow, W0.b1[0], f32, R
"""


def model_silu(x):
    a = x * F32(0.5)
    t = np.tanh(a)
    return x * ((t + F32(1)) * F32(0.5))


def model_gelu(x):
    a = x * x
    b = a * F32(0.044715)
    c = b + F32(1)
    d = c * x
    e = d * F32(0.7978845608028654)
    t = np.tanh(e)
    return x * ((t + F32(1)) * F32(0.5))


VECTOR_F32 = {
    # name: (call, model of o, cycles)
    "residual_add": ("residual_add_f32 x, y, o, R", lambda x, y: x + y, 22),
    "sub": ("vec_binary_f32 VOP_SUB, x, y, o, R", lambda x, y: x - y, 22),
    "max": ("vec_binary_f32 VOP_MAX, x, y, o, R", lambda x, y: np.maximum(x, y), 22),
    "scale": ("scale_f32 x, 0.1, o, R", lambda x, y: x * F32(0.1), 18),
    "square": ("square_f32 x, o, R", lambda x, y: x * x, 18),
    "relu": ("relu_f32 x, o, R", lambda x, y: np.maximum(x, F32(0)), 18),
    "tanh": ("vec_unary_f32 VOP_TANH, x, o, R", lambda x, y: np.tanh(x), 22),
    "silu": ("silu_f32 x, o, R", lambda x, y: model_silu(x), 66),
    "gelu": ("gelu_f32 x, o, R", lambda x, y: model_gelu(x), 98),
}


@pytest.mark.parametrize("name", list(VECTOR_F32))
def test_vector_f32(name, tmp_path):
    call, model, cycles = VECTOR_F32[name]
    src = HEAD + '.include "vector.lasm"\n' + VEC_DATA + f"    {call}\n    halt\n"
    r = run_everywhere(src, tmp_path)
    same_bits(r.tensor("o"), model(X, Y).astype(F32), name)
    assert r.stats.cycles == cycles


def test_vector_f32_west_output_and_in_place(tmp_path):
    src = HEAD + '.include "vector.lasm"\n' + VEC_DATA + """\
    residual_add_f32 x, y, ow, R, east=0
    gelu_f32 ow, ow, R, east=0
    halt
"""
    r = run_everywhere(src, tmp_path)
    same_bits(r.tensor("ow"), model_gelu(X + Y), "ow")
    np.testing.assert_allclose(r.tensor("ow"), 0.5 * (X + Y) * (1 + np.tanh(
        np.sqrt(2 / np.pi) * ((X + Y) + 0.044715 * (X + Y) ** 3))), rtol=1e-5, atol=1e-6)
    assert r.stats.cycles == 183


def test_silu_matches_the_definition():
    x = X.astype(np.float64)
    np.testing.assert_allclose(model_silu(X), x / (1 + np.exp(-x)), rtol=1e-5, atol=1e-6)


XI = np.random.default_rng(3).integers(-128, 128, (R, LANES)).astype(np.int8)
YI = np.random.default_rng(4).integers(-128, 128, (R, LANES)).astype(np.int8)
VEC_I8_DATA = f"""\
.equ R, {R}
.data  x, W0.b0[0], i8, {lit(XI)}
.data  y, W1.b0[0], i8, {lit(YI)}
.space o, E0.b0[0], i8, R
"""
VECTOR_I8 = {
    "residual_add": ("residual_add_i8 x, y, o, R", lambda x, y: (x.astype(np.int16) + y).astype(np.int8), 13),
    "relu": ("relu_i8 x, o, R", lambda x, y: np.maximum(x, np.int8(0)), 12),
    "add_imm": ("vec_scalar_i8 VOP_ADD, x, -100, o, R", lambda x, y: (x.astype(np.int16) - 100).astype(np.int8), 12),
    "min": ("vec_binary_i8 VOP_MIN, x, y, o, R", lambda x, y: np.minimum(x, y), 13),
}


@pytest.mark.parametrize("name", list(VECTOR_I8))
def test_vector_i8(name, tmp_path):
    call, model, cycles = VECTOR_I8[name]
    src = HEAD + '.include "vector.lasm"\n' + VEC_I8_DATA + f"    {call}\n    halt\n"
    r = run_everywhere(src, tmp_path)
    same_bits(r.tensor("o"), model(XI, YI), name)
    assert r.stats.cycles == cycles


# ---- reduce.lasm ----------------------------------------------------------------------------------
RED_DATA = """\
.data  x, W0.b0[0], f32, {x}
.space t, W0.b1[0], f32, {rows}
.space y, W4.b0[0], f32, {rows}
.space scr, E0.b0[0], f32, {rows}
"""


# chip, op, rows, cycles, reference interpreter too (on tsp-v1 only the smallest case:
# the reference interpreter is the slowest of the three; the fast engines run everything)
REDUCE_CASES = [
    ("tiny", "sum", 3, 254, True), ("tiny", "max", 3, 254, True), ("tiny", "sum", 1, 216, True),
    ("tiny", "max", 5, 304, True),
    ("tsp-v1", "sum", 1, 1181, True), ("tsp-v1", "max", 2, 1204, False), ("tsp-v1", "sum", 3, 1254, False),
]


@pytest.mark.parametrize("chip, op, rows, cycles, reference", REDUCE_CASES)
def test_reduce(chip, op, rows, cycles, reference, tmp_path):
    lanes = CHIP_LANES[chip]
    x = rng_f32(rows, lanes, seed=5)
    if op == "max":
        x[0, lanes * 5 // 8:] = -np.inf  # padding of a short row
    src = f".chip {chip}\n" + '.include "reduce.lasm"\n' + RED_DATA.format(x=lit(x), rows=rows) + \
        f"    reduce_{op}_f32 x, y, {rows}, t, scr\n    halt\n"
    r = run_everywhere(src, tmp_path, reference=reference)
    want = roll_tree(x, np.add if op == "sum" else np.maximum)
    same_bits(r.tensor("y"), want, "y")
    # the result is broadcast: every lane holds the row's total (the max bit for
    # bit; the sum too when LANES is a power of two, else the lanes of a row may
    # differ in the last bits: each lane of the odd chain adds in its own order)
    assert (want == want[:, :1]).all() or (op == "sum" and chip == "tsp-v1")
    ref = x.astype(np.float64).sum(axis=1) if op == "sum" else x.max(axis=1)
    np.testing.assert_allclose(r.tensor("y"), np.repeat(ref[:, None], lanes, 1), rtol=1e-5, atol=1e-5)
    assert r.stats.cycles == cycles


LANES48_TOML = """\
name = "lanes48"
base = "tiny"
superlanes = 3
"""


@pytest.mark.parametrize("op", ["sum", "max"])
def test_reduce_on_48_lanes(op, tmp_path):
    """LANES = 48 = 3 x 2^4: four halving steps (24, 12, 6, 3), then a chain of two."""
    (tmp_path / "lanes48.toml").write_text(LANES48_TOML)
    rows = 2
    x = rng_f32(rows, 48, seed=12)
    src = '.chip "lanes48.toml"\n.include "reduce.lasm"\n' + RED_DATA.format(x=lit(x), rows=rows) + f"""\
    reduce_{op}_f32 x, y, {rows}, t, scr
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = roll_tree(x, np.add if op == "sum" else np.maximum)
    same_bits(r.tensor("y"), want, "y")
    ref = x.astype(np.float64).sum(axis=1) if op == "sum" else x.max(axis=1)
    np.testing.assert_allclose(r.tensor("y"), np.repeat(ref[:, None], 48, 1), rtol=1e-5, atol=1e-5)


def test_roll_tree_model():
    """The model is an all-reduce for any lane count; a power of two gives every lane the same bits."""
    g = np.random.default_rng(13)
    for lanes in (16, 32, 48, 80, 320, 1008):
        x = g.standard_normal((2, lanes)).astype(F32)
        s = roll_tree(x, np.add)
        np.testing.assert_allclose(s, np.repeat(x.astype(np.float64).sum(1)[:, None], lanes, 1), rtol=1e-4, atol=1e-5)
        same_bits(roll_tree(x, np.maximum), np.repeat(x.max(1)[:, None], lanes, 1), str(lanes))
        if lanes & (lanes - 1) == 0:
            assert (s == s[:, :1]).all()


# ---- norm.lasm --------------------------------------------------------------------------------------
@pytest.mark.parametrize("chip, rows, cols, cycles, reference", [
    ("tiny", 3, 24, 327, True), ("tsp-v1", 3, 300, 1303, False),
])
def test_rmsnorm(chip, rows, cols, cycles, reference, tmp_path):
    lanes, eps = CHIP_LANES[chip], 1e-5
    x = np.zeros((rows, cols), F32)
    x[:] = rng_f32(rows, cols, seed=6)
    x[2] *= F32(1e-3)                       # eps matters here
    g = (1 + 0.1 * np.random.default_rng(7).standard_normal((1, cols))).astype(F32)
    # norm.lasm includes vector.lasm and reduce.lasm itself: on tiny the program
    # includes it alone; on tsp-v1 all three, dependencies after it (skipped by .once)
    incl = '.include "norm.lasm"\n' + ('' if chip == "tiny" else '.include "reduce.lasm"\n.include "vector.lasm"\n')
    src = f"""\
.chip {chip}
{incl}.equ R, {rows}
.data  x, W0.b0[0], f32, {lit(x)}
.space s, W0.b1[0], f32, R
.space q, W4.b0[0], f32, R
.data  g, W4.b0[R], f32, {lit(g)}
.space t, W4.b1[0], f32, R
.space scr, E0.b0[0], f32, R
.space y, E4.b0[0], f32, R
    rmsnorm_f32 x, g, y, R, {cols}, {eps}, q, s, t, scr
    halt
"""
    r = run_everywhere(src, tmp_path, reference=reference)
    xp, gp = np.zeros((rows, lanes), F32), np.zeros((1, lanes), F32)
    xp[:, :cols], gp[:, :cols] = x, g
    s = roll_tree(xp * xp, np.add)
    rs = F32(1) / np.sqrt(s * F32(1 / cols) + F32(eps))
    same_bits(r.tensor("y"), (xp * rs) * gp, "y")
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64 ** 2).mean(axis=1, keepdims=True) + eps) * g
    np.testing.assert_allclose(r.tensor("y")[:, :cols], want, rtol=1e-5)
    assert r.stats.cycles == cycles


# ---- softmax.lasm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("chip, rows, cycles, reference", [
    ("tiny", 3, 593, True), ("tsp-v1", 3, 2575, False),
])
def test_softmax(chip, rows, cycles, reference, tmp_path):
    lanes = CHIP_LANES[chip]
    short = lanes * 5 // 8                  # row 2's entries
    x = rng_f32(rows, lanes, seed=8)
    x[1] += F32(1000)                       # exp(x) alone would overflow
    x[2, short:] = -np.inf                  # a short row, padded
    incl = '.include "softmax.lasm"\n' + ('' if chip == "tiny" else '.include "vector.lasm"\n.include "softmax.lasm"\n')
    src = f"""\
.chip {chip}
{incl}.equ R, {rows}
.data  x, W0.b0[0], f32, {lit(x)}
.space e, W0.b1[0], f32, R
.space t, W0.b1[R], f32, R
.space m, W4.b0[0], f32, R
.space s, W4.b1[0], f32, R
.space scr, E0.b0[0], f32, R
.space y, E4.b0[0], f32, R
    softmax_f32 x, y, R, m, e, s, t, scr
    halt
"""
    r = run_everywhere(src, tmp_path, reference=reference)
    with np.errstate(all="ignore"):
        m = roll_tree(x, np.maximum)
        e = np.exp(x - m)
        s = roll_tree(e, np.add)
        y = e * (F32(1) / s)
    same_bits(r.tensor("y"), y, "y")
    assert (r.tensor("y")[2, short:] == 0).all()
    want = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(r.tensor("y"), want / want.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-12)
    assert r.stats.cycles == cycles


# ---- matmul.lasm ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("m, k, n, cycles", [(3, 32, 32, 67), (5, 20, 24, 58)])
def test_matmul_i8(m, k, n, cycles, tmp_path):
    g = np.random.default_rng(9)
    w = g.integers(-128, 128, (k, n)).astype(np.int8)
    x = g.integers(-128, 128, (m, k)).astype(np.int8)
    src = HEAD + f"""\
.include "matmul.lasm"
.data  w, W1.b0[0], i8, {lit(w)}
.data  x, W2.b0[0], i8, {lit(x)}
.space y, W3.b1[0], i32, {m}
    matmul_i8 w, x, y, {m}, {k}
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = np.zeros((m, LANES), np.int32)
    want[:, :n] = x.astype(np.int32) @ w.astype(np.int32)
    same_bits(r.tensor("y"), want, "y")
    assert r.stats.macs == m * LANES * LANES
    assert r.stats.cycles == cycles


@pytest.mark.parametrize("m, k, cycles", [(3, 16, 51), (4, 11, 47)])
def test_matmul_f16(m, k, cycles, tmp_path):
    g = np.random.default_rng(10)
    w = g.standard_normal((k, LANES)).astype(np.float16)
    x = g.standard_normal((m, k)).astype(np.float16)
    src = HEAD + f"""\
.include "matmul.lasm"
.data  w, W1.b0[0], f16, {lit(w)}
.data  x, W3.b0[0], f16, {lit(x)}
.space y, W3.b1[0], f32, {m}
    matmul_f16 w, x, y, {m}, {k}, plane=mxm1
    halt
"""
    r = run_everywhere(src, tmp_path)
    same_bits(r.tensor("y"), (x.astype(np.float64) @ w.astype(np.float64)).astype(F32), "y")
    assert r.stats.cycles == cycles


@pytest.mark.parametrize("m, k, cycles", [(3, 64, 108), (2, 80, 128)])
def test_matmul_tiled_i8(m, k, cycles, tmp_path):
    g = np.random.default_rng(11)
    w = g.integers(-128, 128, (k, LANES)).astype(np.int8)
    x = g.integers(-128, 128, (m, k)).astype(np.int8)
    src = HEAD + f"""\
.include "matmul.lasm"
.data  w, W1.b0[0], i8, {lit(w)}
.data  x, W2.b0[0], i8, {lit(x)}
.space y, W3.b1[0], i32, {m}
    matmul_tiled_i8 w, x, y, {m}, {k}
    halt
"""
    r = run_everywhere(src, tmp_path)
    same_bits(r.tensor("y"), x.astype(np.int32) @ w.astype(np.int32), "y")
    assert r.stats.cycles == cycles


# ---- include guards, lookup by name ---------------------------------------------------------------
STDLIB_FILES = ["lpu.lasm", "vector.lasm", "reduce.lasm", "norm.lasm", "softmax.lasm", "matmul.lasm"]


def test_stdlib_files_are_installed_and_found_by_name(tmp_path):
    for f in STDLIB_FILES:
        assert (stdlib_dir() / f).is_file(), f
    # a program in a directory of its own: the includes can only come from the stdlib folder
    src = HEAD + "".join(f'.include "{f}"\n' for f in STDLIB_FILES) + """\
.data  x, W0.b0[0], i8, [1, -2, 3]
.space o, E0.b0[0], i8, 1
    relu_i8 x, o, 1
    halt
"""
    r = run_everywhere(src, tmp_path)
    assert r.tensor("o")[0, :4].tolist() == [1, 0, 3, 0]


def test_every_stdlib_file_included_twice_in_any_order(tmp_path):
    """Every file starts with .once: each may be included any number of times, in any
    order (norm.lasm and softmax.lasm before their dependencies), and is assembled once."""
    order = STDLIB_FILES[::-1] + STDLIB_FILES + ["norm.lasm", "softmax.lasm"]
    src = HEAD + "".join(f'.include "{f}"\n' for f in order) + """\
.data  x, W0.b0[0], i8, [1, -2, 3]
.space o, E0.b0[0], i8, 1
    relu_i8 x, o, 1
    halt
"""
    r = run_everywhere(src, tmp_path)
    assert r.tensor("o")[0, :4].tolist() == [1, 0, 3, 0]


def test_include_norm_by_name_alone(tmp_path):
    """norm.lasm alone assembles (its dependencies come with it) and defines their macros."""
    (tmp_path / "k.lasm").write_text(HEAD + '.include "norm.lasm"\n.equ A, VOP_MUL + RED_MAX\n    halt\n')
    asm = assemble_file(tmp_path / "k.lasm")
    assert asm.ir.consts["A"] == 3


def test_every_stdlib_file_has_a_documented_header():
    doc = (ROOT / "docs" / "stdlib.md").read_text()
    for f in STDLIB_FILES:
        lines = (stdlib_dir() / f).read_text().splitlines()
        assert lines[0] == ".once", f
        assert lines[1].startswith(f"; {f}:"), f
        if f != "lpu.lasm":
            assert f"## {f}" in doc, f


# ---- stream parameters -----------------------------------------------------------------------------
def test_vector_i8_on_other_streams(tmp_path):
    """s=4: x on s4e, y on s5e, the result on s6e (or s6w): the same values, the same cycles."""
    for s in (0, 4):
        src = HEAD + '.include "vector.lasm"\n' + VEC_I8_DATA + f"""\
.space ow, W2.b0[0], i8, R
    residual_add_i8 x, y, o, R, s={s}
    relu_i8 x, ow, R, east=0, s={s}
    halt
"""
        r = run_everywhere(src, tmp_path)
        same_bits(r.tensor("o"), (XI.astype(np.int16) + YI).astype(np.int8), "o")
        same_bits(r.tensor("ow"), np.maximum(XI, np.int8(0)), "ow")
        assert r.stats.cycles == 19


def test_vector_f32_on_the_upper_streams_of_tsp_v1(tmp_path):
    """tsp-v1 has 32 streams per direction: with s=16 the f32 macros use s16..s31."""
    x, y = rng_f32(2, 320, seed=14), rng_f32(2, 320, seed=15)
    cycles = []
    for s in (0, 16):
        src = f""".chip tsp-v1
.include "vector.lasm"
.data  x, W0.b0[0], f32, {lit(x)}
.data  y, W4.b0[0], f32, {lit(y)}
.space o, E0.b0[0], f32, 2
.space g, E4.b0[0], f32, 2
    residual_add_f32 x, y, o, 2, s={s}
    gelu_f32 x, g, 2, s={s}
    halt
"""
        r = run_everywhere(src, tmp_path, reference=False)
        same_bits(r.tensor("o"), x + y, "o")
        same_bits(r.tensor("g"), model_gelu(x), "g")
        cycles.append(r.stats.cycles)
    assert cycles[0] == cycles[1]


# ---- .error guards ---------------------------------------------------------------------------------
def assemble_error(src: str, tmp_path: Path):
    path = tmp_path / "k.lasm"
    path.write_text(src)
    with pytest.raises(LpuError) as info:
        assemble_file(path)
    return info.value.diagnostics


VEC_F32_SPACES = """\
.space x, W0.b0[0], f32, 2
.space y, W4.b0[0], f32, 2
.space o, E0.b0[0], f32, 2
"""
VEC_I8_SPACES = """\
.space x, W0.b0[0], i8, 2
.space y, W1.b0[0], i8, 2
.space o, E0.b0[0], i8, 2
"""
MM_SPACES = """\
.space w, W1.b0[0], i8, 64
.space wh, W1.b1[0], f16, 32
.space x, W2.b0[0], i8, 4
.space y, W3.b1[0], i32, 4
"""
NORM_SPACES = """\
.space x, W0.b0[0], f32, 2
.space s, W0.b1[0], f32, 2
.space q, W4.b0[0], f32, 2
.space g, W4.b0[2], f32, 1
.space t, W4.b1[0], f32, 2
.space scr, E0.b0[0], f32, 2
.space y, E4.b0[0], f32, 2
"""

GUARDS = [
    # file, data, call, message
    ("vector.lasm", VEC_F32_SPACES, "vec_binary_f32 VOP_RELU, x, y, o, 2",
     "vec_binary_f32: op 5 is not a binary op (VOP_ADD, VOP_SUB, VOP_MUL, VOP_MAX or VOP_MIN)"),
    ("vector.lasm", VEC_F32_SPACES, "vec_unary_f32 VOP_ADD, x, o, 2",
     "vec_unary_f32: op 0 is not a unary op (VOP_RELU .. VOP_MOV)"),
    ("vector.lasm", VEC_F32_SPACES, "vec_scalar_f32 13, x, 1.0, o, 2",
     "vec_scalar_f32: op 13 is not an op code (VOP_ADD .. VOP_MOV, 0 .. 12)"),
    ("vector.lasm", VEC_I8_SPACES, "vec_binary_i8 VOP_NEG, x, y, o, 2",
     "vec_binary_i8: op 8 is not a binary op (VOP_ADD, VOP_SUB, VOP_MUL, VOP_MAX or VOP_MIN)"),
    ("vector.lasm", VEC_I8_SPACES, "vec_scalar_i8 VOP_TANH, x, 0, o, 2",
     "vec_scalar_i8: op 6 has no i8 form (VOP_TANH, VOP_EXP, VOP_RCP and VOP_RSQRT are f32 only)"),
    ("vector.lasm", VEC_I8_SPACES, "vec_scalar_i8 -1, x, 0, o, 2",
     "vec_scalar_i8: op -1 is not an op code (VOP_ADD .. VOP_MOV, 0 .. 12)"),
    ("reduce.lasm", NORM_SPACES, "reduce_f32 2, q, s, 2, t, scr",
     "reduce_f32: op 2; expected RED_SUM (0) or RED_MAX (1)"),
    ("norm.lasm", NORM_SPACES, "rmsnorm_f32 x, g, y, 2, 40, 1e-5, q, s, t, scr",
     "rmsnorm_f32: cols = 40; a row holds 1 .. 32 (LANES) columns"),
    ("norm.lasm", NORM_SPACES, "rmsnorm_f32 x, g, y, 2, 0, 1e-5, q, s, t, scr",
     "rmsnorm_f32: cols = 0; a row holds 1 .. 32 (LANES) columns"),
    ("matmul.lasm", MM_SPACES, "matmul_i8 w, x, y, 3, 33",
     "matmul_i8: k = 33 rows of w; one weight tile holds 1 .. 32 (LANES; matmul_tiled_i8 takes any k)"),
    ("matmul.lasm", MM_SPACES, "matmul_i8 w, x, y, 0, 8",
     "matmul_i8: m = 0 rows of x; at least 1"),
    ("matmul.lasm", MM_SPACES, "matmul_f16 wh, x, y, 3, 17",
     "matmul_f16: k = 17 rows of w; one f16 weight tile holds 1 .. 16 (LANES / 2)"),
    ("matmul.lasm", MM_SPACES, "matmul_tiled_i8 w, x, y, 2, 0",
     "matmul_tiled_i8: k = 0 rows of w; at least 1"),
    ("matmul.lasm", MM_SPACES, "matmul_tiled_i8 w, x, y, 0, 40",
     "matmul_tiled_i8: m = 0 rows of x; at least 1"),
]


@pytest.mark.parametrize("file, data, call, message", GUARDS, ids=[g[2].split()[0] + "-" + str(i)
                                                                    for i, g in enumerate(GUARDS)])
def test_error_guards(file, data, call, message, tmp_path):
    src = HEAD + f'.include "{file}"\n' + data + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.severity == "error"
    assert d.message == message
    # reported in the library file, with the call in the expansion notes
    assert d.notes and d.notes[-1].message.startswith("in expansion of macro")
    assert d.notes[-1].span.line == src.splitlines().index(f"    {call}") + 1
