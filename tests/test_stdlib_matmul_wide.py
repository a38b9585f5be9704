"""matmul_wide_f16 (stdlib/matmul_tiled.lasm): the product of matmul_tiled_f16, same
x and y layouts and the same bits, with installs LANES columns wide (half the weight
loads); each product row split into two half-width tiles on the west SXM.  Bit for
bit against matmul_tiled_f16's result and blocks.model_matmul_tiled, lanes H.. of y
zero, cycles pinned (docs/stdlib.md)."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.model import blocks

from test_stdlib import assemble_error, run_everywhere, same_bits

F16, F32, F64 = np.float16, np.float32, np.float64
LANES = {"tiny": 32, "tsp-v1": 320}
# w, wb, x, y: y near the west SXM (its rows make a round trip through it)
LAYOUT = {"tiny": ("W1.b0", "W1.b1", "W3.b0", "W4.b1"), "tsp-v1": ("W40.b0", "W42.b0", "W4.b0", "W36.b0")}


def program(tmp_path, chip, w, x, call, wide=True, split=False):
    """.npy files for the tensors (literals this size would slow the assembler)."""
    lanes = LANES[chip]
    m, n = x.shape[0], w.shape[1]
    t = blocks.tile_weights_wide(w, lanes) if wide else blocks.tile_weights(w, lanes)
    if split:
        t, tb = blocks.split_wide(t, n, lanes)
        np.save(tmp_path / "wb.npy", tb)
    np.save(tmp_path / "w.npy", t)
    np.save(tmp_path / "x.npy", blocks.tile_act(x, lanes))
    lw, lwb, lx, ly = LAYOUT[chip]
    wb = f'.npy   wb, {lwb}[0], "wb.npy", f16\n' if split else ""
    return f""".chip {chip}
.include "matmul_tiled.lasm"
.npy   w, {lw}[0], "w.npy", f16
{wb}.npy   x, {lx}[0], "x.npy", f16
.space y, {ly}[0], f32, {blocks.ceil_div(n, lanes // 2) * m}
    {call}
    halt
"""


def data(m, k, n, seed=40):
    g = np.random.default_rng(seed)
    return g.standard_normal((k, n)).astype(F16), g.standard_normal((m, k)).astype(F16)


def check(r, w, x, lanes):
    m, n = x.shape[0], w.shape[1]
    y = r.tensor("y")
    same_bits(y, blocks.tile_act(blocks.model_matmul_tiled(x, w, lanes), lanes), "y")
    assert not y[:, lanes // 2:].view(np.uint32).any()          # lanes H.. exactly +0
    np.testing.assert_allclose(blocks.untile_act(y, m, n, lanes), x.astype(F64) @ w.astype(F64), rtol=1e-5, atol=1e-4)


# (chip, m, k, n, wide cycles, matmul_tiled_f16 cycles)
CASES = [
    ("tiny", 1, 16, 32, 71, 69),        # one pair of tiles
    ("tiny", 3, 40, 40, 223, 233),        # NT = 3 (odd), n not a multiple of H, K tiles 16, 16, 8
    ("tiny", 2, 24, 80, 226, 223),        # NT = 5, NU = 3
    ("tiny", 2, 7, 16, 40, 40),         # one tile (NT = 1): no SXM work
    ("tsp-v1", 1, 300, 600, 730, 1290),    # decode: about half the cycles
    ("tsp-v1", 1, 320, 500, 770, 1370),
    ("tsp-v1", 2, 160, 330, 440, 546),    # NT = 3
    ("tsp-v1", 3, 500, 170, 669, 1122),
]


@pytest.mark.parametrize("chip, m, k, n, cycles, narrow", CASES)
def test_wide_matches_matmul_tiled(chip, m, k, n, cycles, narrow, tmp_path):
    lanes = LANES[chip]
    w, x = data(m, k, n)
    wide = run_everywhere(program(tmp_path, chip, w, x, f"matmul_wide_f16 w, x, y, {m}, {k}, {n}"), tmp_path, "wide.lasm",
                          reference=chip == "tiny")
    one = run_everywhere(program(tmp_path, chip, w, x, f"matmul_tiled_f16 w, x, y, {m}, {k}, {n}", wide=False), tmp_path,
                         "narrow.lasm", reference=chip == "tiny")
    same_bits(wide.tensor("y"), one.tensor("y"), "y")
    check(wide, w, x, lanes)
    print(chip, m, k, n, "wide", wide.stats.cycles, "matmul_tiled_f16", one.stats.cycles)
    assert (wide.stats.cycles, one.stats.cycles) == (cycles, narrow)
    if chip == "tsp-v1" and m == 1:
        assert wide.stats.cycles < one.stats.cycles


@pytest.mark.parametrize("m, k, n, cycles", [(1, 300, 600, 422), (1, 200, 1000, 569), (2, 330, 700, 869)])
def test_wide_split(m, k, n, cycles, tmp_path):
    w, x = data(m, k, n, seed=41)
    r = run_everywhere(program(tmp_path, "tsp-v1", w, x, f"matmul_wide_f16 w, x, y, {m}, {k}, {n}, split=1, wb=wb",
                               split=True), tmp_path, reference=False)
    check(r, w, x, LANES["tsp-v1"])
    print("split", m, k, n, r.stats.cycles)
    assert r.stats.cycles == cycles


def test_wide_wrap_keeps_the_cycles(tmp_path):
    """wrap=1: every wide tile read from tile 0 (timing-only builds): the same cycles."""
    m, k, n = 1, 300, 600
    w, x = data(m, k, n)
    full = run_everywhere(program(tmp_path, "tsp-v1", w, x, f"matmul_wide_f16 w, x, y, {m}, {k}, {n}"), tmp_path,
                          reference=False)
    wrapped = run_everywhere(program(tmp_path, "tsp-v1", w, x, f"matmul_wide_f16 w, x, y, {m}, {k}, {n}, wrap=1"),
                             tmp_path, "wrap.lasm", reference=False)
    assert wrapped.stats.cycles == full.stats.cycles


def test_tile_weights_wide():
    g = np.random.default_rng(3)
    w = g.standard_normal((40, 70)).astype(F16)       # tiny: H = 16, KT = 3, NU = 3
    t = blocks.tile_weights_wide(w, 32)
    assert t.shape == (3 * 3 * 16, 32)
    assert np.array_equal(t[(1 * 3 + 2) * 16 + 3], w[35, 32:64])
    assert np.array_equal(t[(2 * 3 + 0) * 16][:6], w[0, 64:70]) and not t[(2 * 3 + 0) * 16][6:].any()
    assert not t[(0 * 3 + 2) * 16 + 8:(0 * 3 + 3) * 16].any()       # rows past k
    a, b = blocks.split_wide(t, 70, 32)
    assert len(a) == 2 * 3 * 16 and len(b) == 3 * 16


SPACES = """\
.space w, W0.b0[0], f16, 64
.space x, W2.b0[0], f16, 4
.space y, W4.b1[0], f32, 4
"""
GUARDS = [
    ("matmul_wide_f16 w, x, y, 2, 0, 8", "matmul_wide_f16: k = 0; at least 1"),
    ("matmul_wide_f16 w, x, y, 2, 8, 0", "matmul_wide_f16: n = 0; at least 1"),
    ("matmul_wide_f16 w, x, y, 0, 8, 8", "matmul_wide_f16: m = 0 rows of x; at least 1"),
    ("matmul_wide_f16 w, x, y, 1, 8, 8, split=2",
     "matmul_wide_f16: split = 2; 0 (one plane) or 1 (wide tiles split over plane and plane2)"),
    ("matmul_wide_f16 w, x, y, 1, 8, 8, s=8", "matmul_wide_f16: needs 12 streams from s = 8 (STREAMS = 16)"),
    ("matmul_wide_f16 w, x, y, 1, 8, 8, split=1",
     "matmul_wide_f16: split needs two sets of 12 streams (s = 0, s2 = 16; STREAMS = 16)"),
]


@pytest.mark.parametrize("call, message", GUARDS)
def test_wide_guards(call, message, tmp_path):
    src = '.chip tiny\n.include "matmul_tiled.lasm"\n' + SPACES + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.message == message
