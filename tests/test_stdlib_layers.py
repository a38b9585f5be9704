"""Layer macros of stdlib/ (matmul_tiled.lasm, mlp.lasm) on the ``tiny`` chip: each
program runs on the reference interpreter and both fast engines (bit-identical,
tests/test_stdlib.run_everywhere), its result is compared bit for bit with a numpy
model doing the same operations in the same order with the same f16 rounding
points, and close to lpuasm.model.reference's float32 math; cycle counts are
pinned (docs/stdlib.md lists them)."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.assembler import stdlib_dir
from lpuasm.config import TINY
from lpuasm.model import blocks
from lpuasm.model import reference as ref

from test_stdlib import assemble_error, lit, run_everywhere, same_bits

F16, F32, F64 = np.float16, np.float32, np.float64
LANES = 32          # tiny
H = LANES // 2      # the f16 K limit: columns per word of the tiled layout


def tile_act(a):
    return blocks.tile_act(a, LANES)


def untile_act(a, m, c):
    return blocks.untile_act(a, m, c, LANES)


def tile_weights(w):
    return blocks.tile_weights(w, LANES)


def model_matmul_tiled(x16, w16):
    return blocks.model_matmul_tiled(x16, w16, LANES)


ceil_div = blocks.ceil_div
model_silu = blocks.model_silu


# ---- matmul_tiled_f16 --------------------------------------------------------------------------
@pytest.mark.parametrize("m, k, n, cycles", [(3, 16, 32, 76), (2, 40, 24, 152), (4, 8, 8, 44)])
def test_matmul_tiled_f16(m, k, n, cycles, tmp_path):
    g = np.random.default_rng(20)
    w = g.standard_normal((k, n)).astype(F16)
    x = g.standard_normal((m, k)).astype(F16)
    src = f""".chip tiny
.include "matmul_tiled.lasm"
.data  w, W1.b0[0], f16, {lit(tile_weights(w))}
.data  x, W3.b0[0], f16, {lit(tile_act(x))}
.space y, W3.b1[0], f32, {ceil_div(n, H) * m}
    matmul_tiled_f16 w, x, y, {m}, {k}, {n}
    halt
"""
    r = run_everywhere(src, tmp_path)
    want = model_matmul_tiled(x, w)
    same_bits(r.tensor("y"), tile_act(want), "y")
    np.testing.assert_allclose(untile_act(r.tensor("y"), m, n), x.astype(F64) @ w.astype(F64), rtol=1e-5, atol=1e-5)
    assert r.stats.cycles == cycles


# ---- mlp_swiglu_f16 ----------------------------------------------------------------------------
def model_mlp(x16, wg, wu, wd, residual):
    """The chip's order and rounding points (mlp.lasm)."""
    return blocks.model_mlp(x16, wg, wu, wd, residual, LANES)


def mlp_program(x16, wg, wu, wd, residual):
    return blocks.mlp_source(x16, wg, wu, wd, residual, TINY)


@pytest.mark.parametrize("m, hidden, ffn, residual, cycles", [
    (3, 16, 40, True, 578), (2, 24, 32, False, 408),
])
def test_mlp_swiglu_f16(m, hidden, ffn, residual, cycles, tmp_path):
    g = np.random.default_rng(21)
    x = g.standard_normal((m, hidden)).astype(F16)
    wg = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)   # (out, in), as HF stores them
    wu = (g.standard_normal((ffn, hidden)) / np.sqrt(hidden)).astype(F16)
    wd = (g.standard_normal((hidden, ffn)) / np.sqrt(ffn)).astype(F16)
    r = run_everywhere(mlp_program(x, wg, wu, wd, residual), tmp_path)
    y, gate, up, p, h16 = model_mlp(x, wg, wu, wd, residual)
    same_bits(r.tensor("h"), tile_act(h16), "h")
    same_bits(r.tensor("gate"), tile_act(gate), "gate")
    same_bits(r.tensor("up"), tile_act(up), "up")
    same_bits(r.tensor("y"), tile_act(y), "y")
    # and close to the reference's float32 math (down(silu(gate(x)) * up(x)) [+ x])
    xf = x.astype(F32)
    want = ref.linear(ref.silu(ref.linear(xf, wg)) * ref.linear(xf, wu), wd)
    if residual:
        want = want + xf
    np.testing.assert_allclose(untile_act(r.tensor("y"), m, hidden), want, rtol=2e-3, atol=2e-3)
    assert r.stats.cycles == cycles


def test_one_tile_is_matmul_f16(tmp_path):
    """k, n <= H: one tile, the same bits as matmul.lasm's matmul_f16 (y's lanes H.. zero)."""
    g = np.random.default_rng(22)
    w = g.standard_normal((H, H)).astype(F16)
    x = g.standard_normal((2, H)).astype(F16)
    want = (x.astype(F64) @ w.astype(F64)).astype(F32)
    same_bits(model_matmul_tiled(x, w), want, "model")


LAYER_FILES = ("matmul_tiled.lasm", "mlp.lasm", "norm.lasm", "rope.lasm", "attention.lasm")


def test_layer_files_have_a_documented_header():
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "stdlib.md").read_text()
    for f in LAYER_FILES:
        lines = (stdlib_dir() / f).read_text().splitlines()
        assert lines[0] == ".once", f
        assert lines[1].startswith(f"; {f}:"), f
        assert f"## {f}" in doc, f


def test_docs_list_every_stdlib_file_and_public_macro():
    """docs/stdlib.md's file table has a row for every stdlib/*.lasm file naming each of
    its public macros (names not starting with "_"), and a line of the doc gives every
    public macro with its exact parameter list, as its .macro line has it."""
    import re
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "stdlib.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z0-9_]+\.lasm)` \| (.*?) \|", doc, re.M)}
    lines = [" ".join(line.replace("`", " ` ").split()) for line in doc.splitlines()]
    files = sorted(p.name for p in stdlib_dir().glob("*.lasm"))
    assert set(LAYER_FILES) <= set(files)
    for f in files:
        assert f in rows, f"docs/stdlib.md: no file-table row for {f}"
        for name, params in re.findall(r"^\.macro\s+([A-Za-z]\w*)(.*)$", (stdlib_dir() / f).read_text(), re.M):
            assert f"`{name}`" in rows[f], f"docs/stdlib.md: {name} missing from the row of {f}"
            sig = re.compile(re.escape(" ".join(f"{name} {params}".split())) + r"(?= `|$)")
            assert any(sig.search(line) for line in lines), f"docs/stdlib.md: no line gives `{name}{params}`"


LAYER_SPACES = """\
.space w, W0.b0[0], f16, 64
.space x, W2.b0[0], f16, 4
.space y, W4.b1[0], f32, 4
"""
LAYER_GUARDS = [
    ("matmul_tiled.lasm", "matmul_tiled_f16 w, x, y, 2, 0, 8", "matmul_tiled_f16: k = 0; at least 1"),
    ("matmul_tiled.lasm", "matmul_tiled_f16 w, x, y, 2, 8, 0", "matmul_tiled_f16: n = 0; at least 1"),
    ("matmul_tiled.lasm", "matmul_tiled_f16 w, x, y, 0, 8, 8", "matmul_tiled_f16: m = 0 rows of x; at least 1"),
    ("mlp.lasm", "mlp_swiglu_f16 x, w, w, w, y, 2, 0, 8, y, y, x",
     "mlp_swiglu_f16: hidden = 0, ffn = 8; each at least 1"),
    ("mlp.lasm", "mlp_swiglu_f16 x, w, w, w, y, 0, 8, 8, y, y, x", "mlp_swiglu_f16: m = 0 rows of x; at least 1"),
]


@pytest.mark.parametrize("file, call, message", LAYER_GUARDS)
def test_layer_error_guards(file, call, message, tmp_path):
    src = ".chip tiny\n" + f'.include "{file}"\n' + LAYER_SPACES + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.message == message
    assert d.notes and d.notes[-1].message.startswith("in expansion of macro")


def test_a_program_named_like_a_stdlib_file_includes_the_stdlib_one(tmp_path):
    from lpuasm.assembler import assemble_file

    prog = tmp_path / "mlp.lasm"
    prog.write_text('.chip tiny\n.include "mlp.lasm"\n.equ HAS, defined(mlp_swiglu_f16)\n')
    asm = assemble_file(prog, stop_after="lower")
    assert asm.ir.consts["HAS"] == 1
