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
    src = f"""\
.chip {chip}
.include "vector.lasm"
.include "reduce.lasm"
.include "norm.lasm"
.equ R, {rows}
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
    src = f"""\
.chip {chip}
.include "vector.lasm"
.include "reduce.lasm"
.include "softmax.lasm"
.equ R, {rows}
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


# ---- lookup by name --------------------------------------------------------------------------------
STDLIB_FILES = ["vector.lasm", "reduce.lasm", "norm.lasm", "softmax.lasm", "matmul.lasm"]


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


def test_include_norm_by_name_alone(tmp_path):
    """norm.lasm alone assembles (its macros are checked when called)."""
    (tmp_path / "k.lasm").write_text(HEAD + '.include "norm.lasm"\n    halt\n')
    assemble_file(tmp_path / "k.lasm")


def test_every_stdlib_file_has_a_documented_header():
    doc = (ROOT / "docs" / "stdlib.md").read_text()
    for f in STDLIB_FILES:
        text = (stdlib_dir() / f).read_text()
        assert text.startswith(f"; {f}:"), f
        assert f"## {f}" in doc, f
