"""matmul_tiled_f16 with split=1 on tsp-v1: output tiles over two west planes,
K tiles interleaved; the same bits as on one plane, in fewer cycles."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.model import blocks

from test_stdlib import assemble_error, run_everywhere, same_bits

F16, F64 = np.float16, np.float64
LANES = 320
H = LANES // 2


def program(tmp_path, w, x, m, n, call):
    """.npy files for the tensors (literals this size would dominate the run)."""
    t = blocks.tile_weights(w, LANES)
    cut = blocks.ceil_div(blocks.ceil_div(n, H), 2) * (len(t) // blocks.ceil_div(n, H))
    for name, a in (("w", t), ("wa", t[:cut]), ("wb", t[cut:]), ("x", blocks.tile_act(x, LANES))):
        np.save(tmp_path / f"{name}.npy", a)
    return f""".chip tsp-v1
.include "matmul_tiled.lasm"
.npy   w,  W40.b0[0], "w.npy", f16
.npy   wa, W36.b0[0], "wa.npy", f16
.npy   wb, W42.b0[0], "wb.npy", f16
.npy   x,  W4.b0[0], "x.npy", f16
.space y,  W8.b0[0], f32, {blocks.ceil_div(n, H) * x.shape[0]}
    {call}
    halt
"""


@pytest.mark.parametrize("m, k, n, split_cycles, one_cycles", [(1, 300, 600, 699, 1318), (2, 160, 330, 412, 574)])
def test_split_matches_one_plane(m, k, n, split_cycles, one_cycles, tmp_path):
    g = np.random.default_rng(31)
    w = g.standard_normal((k, n)).astype(F16)
    x = g.standard_normal((m, k)).astype(F16)
    want = blocks.tile_act(blocks.model_matmul_tiled(x, w, LANES), LANES)
    split = run_everywhere(program(tmp_path, w, x, m, n, f"matmul_tiled_f16 wa, x, y, {m}, {k}, {n}, split=1, wb=wb"),
                           tmp_path, "split.lasm", reference=False)
    one = run_everywhere(program(tmp_path, w, x, m, n, f"matmul_tiled_f16 w, x, y, {m}, {k}, {n}"), tmp_path, "one.lasm",
                         reference=False)
    same_bits(split.tensor("y"), want, "y")
    same_bits(one.tensor("y"), want, "y")
    np.testing.assert_allclose(blocks.untile_act(split.tensor("y"), m, n, LANES), x.astype(F64) @ w.astype(F64),
                               rtol=1e-5, atol=1e-4)
    assert (split.stats.cycles, one.stats.cycles) == (split_cycles, one_cycles)
    assert split.stats.cycles < one.stats.cycles


def test_split_guards(tmp_path):
    src = ('.chip tiny\n.include "matmul_tiled.lasm"\n.space w, W1.b0[0], f16, 16\n.space x, W3.b0[0], f16, 1\n'
           '.space y, W4.b1[0], f32, 1\n    matmul_tiled_f16 w, x, y, 1, 16, 32, split={}\n    halt\n')
    (d,) = assemble_error(src.format(2), tmp_path)
    assert d.message == "matmul_tiled_f16: split = 2; 0 (one plane) or 1 (output tiles split over plane and plane2)"
    (d,) = assemble_error(src.format(1), tmp_path)
    assert d.message == "matmul_tiled_f16: split needs two sets of 12 streams (s = 0, s2 = 16; STREAMS = 16)"
