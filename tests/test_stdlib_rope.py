"""stdlib/rope.lasm's rope_f32 on the ``tiny`` chip: each program runs on the
reference interpreter and both fast engines (bit-identical,
tests/test_stdlib.run_everywhere); the result is compared bit for bit with a numpy
float32 model in the macro's operation order and with
lpuasm.model.reference.apply_rope (Hugging Face's rotate_half convention); cycle
counts are pinned (docs/stdlib.md lists them)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lpuasm.assembler import stdlib_dir
from lpuasm.model import reference as ref

from test_stdlib import assemble_error, lit, run_everywhere, same_bits

F32 = np.float32
LANES = 32  # tiny


def rope_map(head_dim: int) -> np.ndarray:
    """The permute map: lane i takes lane i + half (first half of its head) or i - half."""
    i = np.arange(LANES)
    half = head_dim // 2
    return np.where(i % head_dim < half, i + half, i - half).astype(np.int16)[None]


def rope_mask(head_dim: int) -> np.ndarray:
    """1.0 in the lanes of the first half of every head (where rotate_half negates)."""
    return (np.arange(LANES) % head_dim < head_dim // 2).astype(F32)[None]


def tables(head_dim: int, positions: np.ndarray):
    """reference.rope_cos_sin's (T, head_dim) tables, tiled over the LANES // head_dim heads."""
    cfg = SimpleNamespace(head_dim=head_dim, rope_theta=10000.0, rope_scaling=None)
    cos, sin = ref.rope_cos_sin(cfg, positions)
    reps = LANES // head_dim
    return np.tile(cos, (1, reps)), np.tile(sin, (1, reps))


def model_rope(q, cos, sin, head_dim):
    """rope.lasm's order: a = q*cos; p = permute(q); n = -p; rh = mask ? n : p;
    b = rh*sin; out = a + b."""
    a = q * cos
    p = q[:, rope_map(head_dim)[0]]
    rh = np.where(rope_mask(head_dim)[0] != 0, -p, p)
    b = rh * sin
    return a + b


def program(q, cos, sin, head_dim, in_place=False):
    rows = len(q)
    out = "q" if in_place else "out"
    tmp = f"W4.b1[{rows}]" if in_place else "W0.b1[0]"   # in place: tmp not in q's slices
    east = ", east=0" if in_place else ""
    return f""".chip tiny
.include "rope.lasm"
.data  q,    W0.b0[0], f32, {lit(q)}
.data  cos,  W4.b0[0], f32, {lit(cos)}
.data  sin,  W4.b1[0], f32, {lit(sin)}
.space tmp,  {tmp}, f32, {rows}
.space scr,  E0.b0[0], f32, {rows}
.data  mask, E4.b0[0], f32, {lit(rope_mask(head_dim))}
.data  map,  E4.b1[0], i16, {lit(rope_map(head_dim))}
.space out,  E0.b1[0], f32, {rows}
    rope_f32 q, cos, sin, {out}, {rows}, {head_dim}, map, mask, scr, tmp{east}
    halt
"""


CASES = [  # head_dim, rows, first position, in place, cycles
    (8, 3, 0, False, 129),
    (16, 4, 5, False, 163),
    (32, 1, 7, False, 64),
    (2, 2, 3, False, 95),
    (8, 5, 11, True, 164),
]


@pytest.mark.parametrize("head_dim, rows, pos0, in_place, cycles", CASES)
def test_rope_f32(head_dim, rows, pos0, in_place, cycles, tmp_path):
    g = np.random.default_rng(30 + head_dim + rows)
    q = (g.standard_normal((rows, LANES)) * 2).astype(F32)
    positions = np.arange(pos0, pos0 + rows)
    cos, sin = tables(head_dim, positions)
    r = run_everywhere(program(q, cos, sin, head_dim, in_place), tmp_path)
    got = r.tensor("q" if in_place else "out")
    want = model_rope(q, cos, sin, head_dim)
    same_bits(got, want, "out")
    same_bits(r.tensor("tmp"), q * cos, "tmp")
    # the reference on (heads, T, head_dim) with its own (T, head_dim) tables
    heads = q.reshape(rows, LANES // head_dim, head_dim).transpose(1, 0, 2)
    c, s = ref.rope_cos_sin(SimpleNamespace(head_dim=head_dim, rope_theta=10000.0, rope_scaling=None), positions)
    expect = ref.apply_rope(heads, c, s).transpose(1, 0, 2).reshape(rows, LANES)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)
    assert r.stats.cycles == cycles


def test_rope_file_has_a_documented_header():
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "stdlib.md").read_text()
    lines = (stdlib_dir() / "rope.lasm").read_text().splitlines()
    assert lines[0] == ".once"
    assert lines[1].startswith("; rope.lasm:")
    assert "## rope.lasm" in doc


SPACES = """\
.space q,    W0.b0[0], f32, 2
.space cos,  W4.b0[0], f32, 2
.space sin,  W4.b1[0], f32, 2
.space tmp,  W0.b1[0], f32, 2
.space scr,  E0.b0[0], f32, 2
.space mask, E4.b0[0], f32, 1
.space map,  E4.b1[0], i16, 1
.space out,  E0.b1[0], f32, 2
"""


@pytest.mark.parametrize("call, message", [
    ("rope_f32 q, cos, sin, out, 2, 34, map, mask, scr, tmp",
     "rope_f32: head_dim = 34; even, 2 .. LANES (32)"),
    ("rope_f32 q, cos, sin, out, 2, 7, map, mask, scr, tmp",
     "rope_f32: head_dim = 7; even, 2 .. LANES (32)"),
    ("rope_f32 q, cos, sin, out, 2, 0, map, mask, scr, tmp",
     "rope_f32: head_dim = 0; even, 2 .. LANES (32)"),
    ("rope_f32 q, cos, sin, out, 0, 8, map, mask, scr, tmp", "rope_f32: rows = 0; at least 1"),
])
def test_rope_error_guards(call, message, tmp_path):
    src = '.chip tiny\n.include "rope.lasm"\n' + SPACES + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.message == message
    assert d.notes and d.notes[-1].message.startswith("in expansion of macro")
