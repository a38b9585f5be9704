"""stdlib/matmul_q8.lasm: int8 weights with per-channel scales, activations quantised
per row on the chip (matmul_tiled_q8, quant_act_q8, matmul_xq_q8).  Each program runs
on both fast engines and, on ``tiny`` and the smallest ``tsp-v1`` case, on the
reference interpreter (bit-identical, tests/test_stdlib.run_everywhere); xq, sx and y
are compared bit for bit with lpuasm.model.quant's numpy model (the macros' order),
y also with the float matmul x @ W^T (about 1e-2); cycle counts are pinned."""

from __future__ import annotations

import numpy as np
import pytest

from lpuasm.model import blocks, quant

from test_stdlib import assemble_error, run_everywhere, same_bits

F32, F64 = np.float32, np.float64
LANES = {"tiny": 32, "tsp-v1": 320}
ceil_div = blocks.ceil_div


def data(m, k, n, seed, extremes=True):
    """x (m x k f32) and W (n x k, (out, in)).  With extremes: row 1 all zero, row 2 one
    large outlier, row 3 tiny (1e-30: above Q8_FLOOR), row 4 below the floor (1e-35)."""
    g = np.random.default_rng(seed)
    x = (g.standard_normal((m, k)) * 2).astype(F32)
    if extremes:
        if m > 1:
            x[1] = 0
        if m > 2:
            x[2, k // 2] = 50
        if m > 3:
            x[3] *= F32(1e-30)
        if m > 4:
            x[4] *= F32(1e-35)
    w = (g.standard_normal((n, k)) / np.sqrt(k)).astype(F32)
    w[n // 2, :] = 0                                   # an all-zero output channel: ws = 0
    return x, w


def rel_err(got, want):
    """(rms, max) error relative to the rms and max of want (float64)."""
    d = got.astype(F64) - want
    return float(np.sqrt((d ** 2).mean() / (want ** 2).mean())), float(np.abs(d).max() / np.abs(want).max())


def layout(chip, m, k, n):
    lanes = LANES[chip]
    h = lanes // 2
    kt = ceil_div(k, h)
    if chip == "tiny":
        return dict(x="W4.b0[0]", am="W4.b1[0]", y=f"W4.b0[{kt * m}]", ss="W0.b0[0]", tmp="W0.b1[0]",
                    w=f"W0.b0[{m}]", xq=f"W1.b0[{m}]", xo=f"W2.b0[{m}]",
                    scr="E0.b0[0]", ws="E0.b1[0]", sx="E4.b0[0]")
    return dict(x="W0.b0[0]", ss="W4.b0[0]", tmp="W4.b1[0]", am="W8.b0[0]", xq="W12.b0[0]", xo="W13.b0[0]",
                w="W14.b0[0]", y="W16.b0[0]", scr="E0.b0[0]", sx="E4.b0[0]", ws="E8.b0[0]")


def q8_program(chip, x, w, tmp_path, variant="", extra=""):
    """matmul_tiled_q8 on x and W; variant "tmp=ss" passes ss as tmp, "y=x" writes y over x,
    "split" splits the output tiles over mxm0 and mxm1 (weights w and wb)."""
    lanes = LANES[chip]
    h = lanes // 2
    m, k = x.shape
    n = w.shape[0]
    kt, kp, nt = ceil_div(k, h), ceil_div(k, lanes), ceil_div(n, h)
    tw, tws = quant.quantise_weights(w, lanes)
    wb = ""
    if variant == "split":
        tw, twb = quant.split_tiles(tw, n, k, lanes)
        np.save(tmp_path / "wb.npy", twb)
        wb = '.npy   wb, W15.b0[0], "wb.npy"\n'
        extra += ", split=1, wb=wb"
    np.save(tmp_path / "w.npy", tw)
    np.save(tmp_path / "ws.npy", tws)
    np.save(tmp_path / "x.npy", blocks.tile_act(x, lanes))
    L = layout(chip, m, k, n)
    y = "x" if variant == "y=x" else "y"
    tmp = "ss" if variant == "tmp=ss" else "tmp"
    return f""".chip {chip}
.include "matmul_q8.lasm"
.npy   x, {L['x']}, "x.npy"
.space y, {L['y']}, f32, {nt * m}
.space am, {L['am']}, f32, {m}
.space ss, {L['ss']}, f32, {m}
.space tmp, {L['tmp']}, f32, {m}
.npy   w, {L['w']}, "w.npy"
.space xq, {L['xq']}, i8, {kp * m}
.space xo, {L['xo']}, i8, {max(1, kt // 2 * m)}
.space scr, {L['scr']}, f32, {m}
.space sx, {L['sx']}, f32, {m}
.npy   ws, {L['ws']}, "ws.npy"
{wb}    matmul_tiled_q8 w, ws, x, {y}, {m}, {k}, {n}, xq, xo, sx, ss, am, {tmp}, scr{extra}
    halt
"""


def check_q8(r, x, w, lanes, yname="y"):
    m, k = x.shape
    n = w.shape[0]
    wq, ws = quant.quantise_per_channel(w)
    xq, sx, _ = quant.quantise_act(x)
    same_bits(r.tensor("xq"), quant.tile_xq(xq, lanes), "xq")
    same_bits(r.tensor("sx"), np.repeat(sx[:, None], lanes, axis=1), "sx")
    y = quant.model_matmul_q8(x, wq, ws)
    got = r.tensor(yname)[:ceil_div(n, lanes // 2) * m]
    same_bits(got, blocks.tile_act(y, lanes), "y")
    assert np.isfinite(y).all() and r.stats.nan_inf == 0
    return y


# chip, m, k, n, cycles, reference interpreter too
CASES = [
    ("tiny", 1, 16, 16, 319, True),      # one tile of everything
    ("tiny", 2, 40, 24, 439, True),      # KT = 3 (odd: the last even tile alone)
    ("tiny", 3, 70, 20, 575, True),
    ("tiny", 4, 64, 48, 664, True),
    ("tiny", 5, 7, 33, 464, True),       # k, n below and past H
    ("tiny", 1, 100, 16, 448, True),     # KT = 7, KP = 4
    ("tiny", 32, 64, 16, 1566, True),    # m = MXM_ACC_ROWS
    ("tsp-v1", 1, 320, 160, 1555, True),
    ("tsp-v1", 2, 600, 300, 2490, False),
    ("tsp-v1", 5, 1000, 300, 3584, False),
]


def case_id(c):
    return f"{c[0]}-m{c[1]}-k{c[2]}-n{c[3]}"


@pytest.mark.parametrize("chip, m, k, n, cycles, reference", CASES, ids=[case_id(c) for c in CASES])
def test_matmul_tiled_q8(chip, m, k, n, cycles, reference, tmp_path):
    lanes = LANES[chip]
    x, w = data(m, k, n, seed=m * 1000 + k + n)
    r = run_everywhere(q8_program(chip, x, w, tmp_path), tmp_path, reference=reference)
    y = check_q8(r, x, w, lanes)
    # close to the float product on the ordinary rows (not the zero, outlier or tiny ones)
    rows = [i for i in range(m) if i == 0 or i > 4]
    want = x[rows].astype(F64) @ w.T.astype(F64)
    rms, mx = rel_err(y[rows], want)
    assert rms < 1.5e-2 and mx < 3e-2, (rms, mx)
    assert not y[1:2].any() and not y[4:5].any()       # the zero row, the row below the floor
    assert not y[:, n // 2].any()                       # the zero channel
    assert r.stats.cycles == cycles


@pytest.mark.parametrize("variant, cycles", [("tmp=ss", 664), ("y=x", 664)])
def test_matmul_tiled_q8_variants(variant, cycles, tmp_path):
    """tmp may be ss (reduce.lasm reads its input only in its first step); y may be x
    when x has NT*m words (y is written after x is read)."""
    x, w = data(4, 64, 48, seed=4000 + 64 + 48)
    r = run_everywhere(q8_program("tiny", x, w, tmp_path, variant), tmp_path)
    check_q8(r, x, w, 32, "x" if variant == "y=x" else "y")
    assert r.stats.cycles == cycles


@pytest.mark.parametrize("m, k, n, cycles", [(2, 600, 300, 1876), (5, 1000, 300, 2533)])
def test_matmul_tiled_q8_split_on_tsp_v1(m, k, n, cycles, tmp_path):
    """split=1: the output tiles over mxm0 and mxm1 (about half the product's cycles)."""
    x, w = data(m, k, n, seed=m * 1000 + k + n)
    r = run_everywhere(q8_program("tsp-v1", x, w, tmp_path, "split"), tmp_path, reference=False)
    check_q8(r, x, w, 320)
    assert r.stats.cycles == cycles


def test_wrap_keeps_the_cycles(tmp_path):
    """wrap=1 (timing-only weights) reads every weight tile from tile 0: the cycles of
    the full layout, not its values."""
    x, w = data(4, 64, 48, seed=4000 + 64 + 48)
    r = run_everywhere(q8_program("tiny", x, w, tmp_path, extra=", wrap=1"), tmp_path, reference=False)
    assert r.stats.cycles == 664
    wq, ws = quant.quantise_per_channel(w)
    assert not np.array_equal(r.tensor("y"), blocks.tile_act(quant.model_matmul_q8(x, wq, ws), 32))


def xq_program(chip, xq, sx, products, tmp_path):
    """matmul_xq_q8 on given xq (m x k i8) and sx; products: (name, w, call options,
    w address, ws address, y address) each, in that order in the program."""
    lanes = LANES[chip]
    m, k = xq.shape
    sxt = np.repeat(sx[:, None], lanes, axis=1).astype(F32)
    np.save(tmp_path / "xq.npy", quant.tile_xq(xq, lanes))
    np.save(tmp_path / "sx.npy", sxt)
    xa, sa = ("W1.b0[0]", "E4.b0[0]") if chip == "tiny" else ("W12.b0[0]", "E4.b0[0]")
    src = f""".chip {chip}
.include "matmul_q8.lasm"
.npy   xq, {xa}, "xq.npy"
.npy   sx, {sa}, "sx.npy"
"""
    calls = ""
    for name, w, opts, wa, wsa, ya in products:
        n = w.shape[0]
        tw, tws = quant.quantise_weights(w, lanes)
        np.save(tmp_path / f"w{name}.npy", tw)
        np.save(tmp_path / f"ws{name}.npy", tws)
        src += f""".npy   w{name}, {wa}, "w{name}.npy"
.npy   ws{name}, {wsa}, "ws{name}.npy"
.space y{name}, {ya}, f32, {ceil_div(n, lanes // 2) * m}
"""
        calls += f"    matmul_xq_q8 w{name}, ws{name}, xq, sx, y{name}, {m}, {k}, {n}{opts}\n"
    return src + calls + "    halt\n"


def xq_data(m, k, seed):
    x, _ = data(m, k, 1, seed)
    xq, sx, _ = quant.quantise_act(x)
    return xq, sx


def test_matmul_xq_q8_on_tiny_with_row0(tmp_path):
    xq, sx = xq_data(4, 40, seed=7)
    _, w = data(1, 40, 40, seed=8)
    src = xq_program("tiny", xq, sx, [("a", w, ", row0=3", "W0.b0[0]", "E0.b0[0]", "W4.b0[0]")], tmp_path)
    r = run_everywhere(src, tmp_path)
    wq, ws = quant.quantise_per_channel(w)
    same_bits(r.tensor("ya"), blocks.tile_act(quant.model_matmul_q8_xq(xq, sx, wq, ws), 32), "y")
    assert r.stats.cycles == 233


def test_two_products_at_once_on_tsp_v1(tmp_path):
    """The q and k projections of one quantised x side by side: mxm0 with s=0, alus=0 and
    mxm1 with s=16, alus=4 (disjoint streams and ALUs); each alone for comparison."""
    xq, sx = xq_data(2, 600, seed=9)
    _, wa = data(1, 600, 300, seed=10)
    _, wb = data(1, 600, 200, seed=11)
    pa = ("a", wa, "", "W14.b0[0]", "E8.b0[0]", "W16.b0[0]")
    pb = ("b", wb, ", plane=mxm1, s=16, alus=4", "W15.b0[0]", "E12.b0[0]", "W20.b0[0]")
    cycles = []
    for products in ([pa], [pb], [pa, pb]):
        r = run_everywhere(xq_program("tsp-v1", xq, sx, products, tmp_path), tmp_path, reference=False)
        for name, w, *_ in products:
            wq, ws = quant.quantise_per_channel(w)
            same_bits(r.tensor(f"y{name}"), blocks.tile_act(quant.model_matmul_q8_xq(xq, sx, wq, ws), 320), name)
        cycles.append(r.stats.cycles)
    # the second call's reads of xq queue behind all of the first's (one slice, in
    # source order): they overlap only in part; split=1 interleaves them (below)
    assert cycles == [1361, 1364, 2265]


@pytest.mark.parametrize("n", [160, 300, 500, 700])
def test_split_over_two_planes_on_tsp_v1(n, tmp_path):
    """split=1: output tiles 0 .. C-1 on mxm0 (weights w), C .. NT-1 on mxm1 (wb),
    C = ceil(NT / 2), interleaved tile by tile: the two planes stream their weights
    at once (NT = 1, 2, 4, 5)."""
    lanes, h, m, k = 320, 160, 2, 600
    xq, sx = xq_data(m, k, seed=12)
    _, w = data(1, k, n, seed=13)
    nt = ceil_div(n, h)
    c = ceil_div(nt, 2)
    wq, ws = quant.quantise_per_channel(w)
    tw = quant.tile_weights_q8(wq, lanes)
    tw_a, tw_b = quant.split_tiles(tw, n, k, lanes)
    assert len(tw_a) == c * ceil_div(k, lanes) * lanes
    np.save(tmp_path / "w.npy", tw_a)
    np.save(tmp_path / "wb.npy", tw[:lanes] if tw_b is None else tw_b)
    np.save(tmp_path / "ws.npy", quant.tile_scales(ws, lanes))
    np.save(tmp_path / "xq.npy", quant.tile_xq(xq, lanes))
    np.save(tmp_path / "sx.npy", np.repeat(sx[:, None], lanes, axis=1).astype(F32))
    head = f""".chip tsp-v1
.include "matmul_q8.lasm"
.npy   xq, W12.b0[0], "xq.npy"
.npy   sx, E4.b0[0], "sx.npy"
.npy   w, W14.b0[0], "w.npy"
.npy   wb, W15.b0[0], "wb.npy"
.npy   ws, E8.b0[0], "ws.npy"
.space y, W16.b0[0], f32, {nt * m}
"""
    want = blocks.tile_act(quant.model_matmul_q8_xq(xq, sx, wq, ws), lanes)
    cycles = []
    for call in (f"matmul_xq_q8 w, ws, xq, sx, y, {m}, {k}, {n}, split=1, wb=wb",
                 f"matmul_xq_q8 w, ws, xq, sx, y, {m}, {k}, {n}" if nt == 1 else None):
        if call is None:
            continue
        if "split" not in call:
            np.save(tmp_path / "w.npy", tw)
        r = run_everywhere(head + f"    {call}\n    halt\n", tmp_path, reference=False)
        same_bits(r.tensor("y"), want, "y")
        cycles.append(r.stats.cycles)
    assert cycles == {160: [745, 745], 300: [747], 500: [1363], 700: [1977]}[n]


def test_quant_model():
    """The numpy models: per-channel weights within half a step of W, xq within
    -127..127 with a 127 in every nonzero row, the tiles laid out as documented, and
    model_matmul_q8 = the dequantised product up to f32 rounding."""
    x, w = data(5, 70, 40, seed=1)
    wq, ws = quant.quantise_per_channel(w)
    assert wq.dtype == np.int8 and ws.dtype == F32 and np.abs(wq).max() == 127
    assert (np.abs(wq.astype(F64) * ws[:, None] - w) <= ws[:, None] * 0.5 + 1e-9).all()
    assert not wq[20].any() and ws[20] == 0
    xq, sx, inv = quant.quantise_act(x)
    assert np.abs(xq).max() == 127 and xq.min() >= -127
    assert (np.abs(xq[[0, 2, 3]]).max(axis=1) == 127).all() and not xq[1].any() and not xq[4].any()
    assert sx[1] == quant.FLOOR * quant.INV127 and np.isfinite(inv).all()
    # tiles: word (u*KP + p)*LANES + j, lane i = wq[u*H + i][p*LANES + j]
    tw = quant.tile_weights_q8(wq, 32)
    assert tw.shape == (3 * 3 * 32, 32)
    assert tw[(1 * 3 + 2) * 32 + 5, 7] == wq[16 + 7, 64 + 5] and not tw[(2 * 3 + 2) * 32 + 6:].any()
    txq = quant.tile_xq(xq, 32)
    assert txq.shape == (3 * 5, 32) and txq[2 * 5 + 3, 4] == xq[3, 68]
    y = quant.model_matmul_q8(x, wq, ws)
    deq = (xq.astype(F64) * sx[:, None].astype(F64)) @ (wq.astype(F64) * ws[:, None].astype(F64)).T
    np.testing.assert_allclose(y, deq, rtol=1e-5, atol=1e-30)


SPACES = """\
.space x, W4.b0[0], f32, 4
.space am, W4.b1[0], f32, 2
.space ss, W0.b0[0], f32, 2
.space tmp, W0.b1[0], f32, 2
.space w, W0.b0[8], i8, 64
.space xq, W1.b0[8], i8, 4
.space xo, W2.b0[8], i8, 4
.space y, W4.b0[8], f32, 4
.space scr, E0.b0[0], f32, 2
.space ws, E0.b1[0], f32, 2
.space sx, E4.b0[0], f32, 2
"""
GUARDS = [
    ("matmul_tiled_q8 w, ws, x, y, 2, 0, 8, xq, xo, sx, ss, am, tmp, scr", "matmul_tiled_q8: k = 0; at least 1"),
    ("matmul_tiled_q8 w, ws, x, y, 2, 8, 0, xq, xo, sx, ss, am, tmp, scr", "matmul_tiled_q8: n = 0; at least 1"),
    ("matmul_tiled_q8 w, ws, x, y, 0, 8, 8, xq, xo, sx, ss, am, tmp, scr",
     "matmul_tiled_q8: m = 0 rows of x; at least 1"),
    ("matmul_tiled_q8 w, ws, x, y, 2, 8, 8, xq, xo, sx, ss, am, tmp, scr, row0=31",
     "matmul_tiled_q8: m + row0 = 33 accumulator rows; the plane has 32 (MXM_ACC_ROWS)"),
    ("matmul_tiled_q8 w, ws, x, y, 2, 8, 8, xq, xo, sx, ss, am, tmp, scr, split=2",
     "matmul_tiled_q8: split = 2; 0 (one plane) or 1 (output tiles split over plane and plane2)"),
    ("matmul_xq_q8 w, ws, xq, sx, y, 2, -1, 8", "matmul_xq_q8: k = -1; at least 1"),
    ("matmul_xq_q8 w, ws, xq, sx, y, 33, 8, 8", "matmul_xq_q8: m + row0 = 33 accumulator rows; the plane has 32 (MXM_ACC_ROWS)"),
    ("matmul_xq_q8 w, ws, xq, sx, y, 2, 8, 8, split=3",
     "matmul_xq_q8: split = 3; 0 (one plane) or 1 (output tiles split over plane and plane2)"),
    ("matmul_xq_q8 w, ws, xq, sx, y, 2, 8, 8, s=4", "matmul_xq_q8: s = 4: streams s .. s+15; the chip has 16 a direction (STREAMS)"),
    ("matmul_tiled_q8 w, ws, x, y, 2, 8, 8, xq, xo, sx, ss, am, tmp, scr, split=1, wb=w",
     "matmul_tiled_q8: s2 = 16: streams s2 .. s2+15; the chip has 16 a direction (STREAMS)"),
    ("quant_act_q8 x, xq, sx, 2, 0, xo, ss, am, tmp, scr", "quant_act_q8: k = 0; at least 1"),
    ("quant_act_q8 x, xq, sx, 0, 8, xo, ss, am, tmp, scr", "quant_act_q8: m = 0 rows of x; at least 1"),
]


@pytest.mark.parametrize("call, message", GUARDS, ids=[f"{g[0].split()[0]}-{i}" for i, g in enumerate(GUARDS)])
def test_error_guards(call, message, tmp_path):
    src = '.chip tiny\n.include "matmul_q8.lasm"\n' + SPACES + f"    {call}\n    halt\n"
    (d,) = assemble_error(src, tmp_path)
    assert d.severity == "error"
    assert d.message == message
    assert d.notes and d.notes[-1].message.startswith("in expansion of macro")
    assert d.notes[-1].span.line == src.splitlines().index(f"    {call}") + 1
