"""The tutorial kernels under examples/ run, and compute what they say.

Every ``examples/*.lasm`` is assembled and run on the reference interpreter
(lpuasm/refinterp.py) and on both engines of the fast interpreter ("levels"
and "cycles"), which must agree bit for bit on the final SRAM, the cycle count
and the statistics (the style of tests/test_refinterp.py).  Its outputs are
then checked against a numpy model written here, and its cycle count against
the ``; cycles: N`` line in its header comment, so that a change of the timing
model shows up as a diff of the examples.

The float kernels are checked bit for bit: each model does what the chip does,
in the kernel's order, in float32 (numpy's float32 add, multiply, exp, and
1/sqrt and 1/x as ``float32(1) / ...``; fp16 matrix products summed in float64
and rounded once to float32).  The rotate trees of softmax.lasm and
rmsnorm.lasm are modelled with the same rotations (``np.roll``) in the same
order, so every lane sums the same values in the same order as on the chip.
A few looser checks against float64 (tolerance 1e-5) confirm that the models
themselves compute softmax and RMSNorm.  The models take their inputs from the
final SRAM (no kernel overwrites its inputs), i.e. the values the image holds.

The documentation's ``lasm`` blocks (docs/language.md) must assemble too.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from lpuasm.analysis import analyse
from lpuasm.assembler import assemble, assemble_file
from lpuasm.interp import run as run_fast
from lpuasm.levels import supported as levels_supported
from lpuasm.program import load_program
from lpuasm.refinterp import run_reference
from lpuasm.sim import RunResult

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.lasm"))
CYCLES = re.compile(r"^; cycles: (\d+)$", re.M)
F32 = np.float32


def run_everywhere(path: Path) -> RunResult:
    """Run on the reference interpreter and both fast engines; they must agree."""
    asm = assemble_file(path)
    prog = load_program(asm.image, asm.config)
    ref = run_reference(prog)
    assert levels_supported(analyse(prog)), "every example should run on the level engine"
    for engine in ("levels", "cycles"):
        fast = run_fast(prog, engine_name=engine)
        assert fast.stats.cycles == ref.stats.cycles, engine
        np.testing.assert_array_equal(fast.sram, ref.sram, err_msg=engine)
        for key in ("instructions", "per_unit", "sram_bytes_read", "sram_bytes_written", "macs", "nan_inf"):
            assert getattr(fast.stats, key) == getattr(ref.stats, key), (engine, key)
    return ref


def same_bits(got: np.ndarray, want: np.ndarray, name: str = "") -> None:
    """Equal dtype, shape and bytes (so -0.0 != 0.0 and NaN payloads count)."""
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype, got.shape, want.shape)
    bits = np.dtype(f"u{got.dtype.itemsize}")
    diff = np.argwhere(got.view(bits) != want.view(bits))
    if len(diff):
        first = tuple(diff[0])
        raise AssertionError(f"{name}: {len(diff)} elements differ, first at {list(first)}: "
                             f"got {got[first]!r}, want {want[first]!r}")


def pad(t: np.ndarray, cols: int = 32) -> np.ndarray:
    """A tensor given with fewer columns than lanes, as its words hold it: zeros beyond."""
    out = np.zeros((t.shape[0], cols), t.dtype)
    out[:, :t.shape[1]] = t
    return out


def rotate_tree(v: np.ndarray, op) -> np.ndarray:
    """include/rotate_f32.lasm five times: v = op(v, rotate(v, k)) for k = 1, 2, 4, 8, 16.
    ``rotate s, k`` gives d[i] = s[(i - k) mod lanes] = np.roll(s, k); the kernel's op
    takes y first (s8w) and the rotated rows second (s4w)."""
    for k in (1, 2, 4, 8, 16):
        v = op(v, np.roll(v, k, axis=1))
    return v


# ---- the numpy model of each example ------------------------------------------------------------
def check_vector_add(r: RunResult) -> None:
    a, b = pad(r.tensor("a")), pad(r.tensor("b"))
    same_bits(r.tensor("y"), (a.astype(np.int16) + b).astype(np.int8), "y")
    assert r.tensor("y")[0, :8].tolist() == [11, 22, 33, 44, 55, 66, 77, 88]


def check_scale_relu(r: RunResult) -> None:
    x = pad(r.tensor("x"))
    v = np.maximum(x * F32(0.25) - F32(1.0), F32(0))
    same_bits(r.tensor("y"), np.clip(np.rint(v), -128, 127).astype(np.int8), "y")
    assert r.tensor("y")[:, :8].tolist() == [[0, 0, 0, 0, 1, 2, 24, 31], [0, 0, 2, 2, 4, 0, 0, 1],
                                             [125, 126, 127, 127, 127, 0, 0, 0]]  # the header's comment


def check_tiled_read(r: RunResult) -> None:
    x, big = pad(r.tensor("x")), r.tensor("big")
    same_bits(r.tensor("copy"), x, "copy")
    same_bits(r.tensor("odd_rev"), x[[7, 5, 3, 1]], "odd_rev")
    row = np.zeros(96, np.int8)
    row[:80] = big[1]
    same_bits(r.tensor("row1"), row.reshape(3, 32), "row1")
    assert big[1].tolist() == list(range(80))


def check_gemm_int8(r: RunResult) -> None:
    w = pad(np.concatenate([r.tensor(f"wt{k}") for k in range(4)])).astype(np.int32)
    y = pad(r.tensor("x")).astype(np.int32) @ w
    same_bits(r.tensor("y"), y.astype(np.int32), "y")
    assert y[:, :4].tolist() == [[4, 6, 1, 0], [28, 140, 0, -4]]  # the comment's expectation


def check_transpose(r: RunResult) -> None:
    block = np.stack([r.tensor(f"r{k}")[0, :16] for k in range(16)])
    for k in range(16):
        want = np.zeros((1, 320), np.int8)
        want[0, :16] = block[:, k]
        same_bits(r.tensor(f"t{k}"), want, f"t{k}")
    assert (block.T == -block).all()  # antisymmetric: the transpose is the negation


def check_fma_chain(r: RunResult) -> None:
    x, w, b = pad(r.tensor("x")), pad(r.tensor("w")), pad(r.tensor("b"))
    y = np.maximum(x * w + b, F32(0)) * F32(0.5) + F32(0.25)
    same_bits(r.tensor("y"), y, "y")


def check_gemm_fp16(r: RunResult) -> None:
    k = r.config.lanes // 2
    w = np.concatenate([r.tensor(f"wr{i}") for i in range(k)])            # K x LANES f16
    x = pad(r.tensor("x"))[:, :k]
    same_bits(r.tensor("y"), (x.astype(np.float64) @ w.astype(np.float64)).astype(F32), "y")
    y = r.tensor("y")
    assert (y[:, :k] == x.astype(F32)).all()                                  # columns 0..15 copy x
    np.testing.assert_allclose(y[:, k:], np.cumsum(x.astype(np.float64), axis=1), rtol=1e-7)


def check_gemm_tiled(r: RunResult) -> None:
    w = np.load(ROOT / "examples" / "gemm_tiled_w.npy")
    same_bits(r.tensor("w"), w, "w")
    x = r.tensor("x")
    assert x.shape == (3, 64)
    same_bits(r.tensor("y"), (x.astype(np.int32) @ w.astype(np.int32)).astype(np.int32), "y")


def check_softmax(r: RunResult) -> None:
    x = r.tensor("x")
    with np.errstate(all="ignore"):  # the -inf padding
        m = rotate_tree(x, np.maximum)
        e = np.exp(x - m)
        s = rotate_tree(e, np.add)
        y = e * (F32(1) / s)
    same_bits(r.tensor("y"), y, "y")
    same_bits(r.tensor("e"), e, "e")
    assert np.isneginf(x[2, 20:]).all() and (r.tensor("y")[2, 20:] == 0).all()
    np.testing.assert_allclose(r.tensor("y").sum(axis=1), 1, rtol=1e-6)
    want = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(r.tensor("y"), want / want.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-12)


def check_rmsnorm(r: RunResult) -> None:
    x, g = pad(r.tensor("x")), pad(r.tensor("g"))
    s = rotate_tree(x * x, np.add)
    v = s * F32(1 / 24) + F32(1e-5)
    rs = F32(1) / np.sqrt(v)
    same_bits(r.tensor("y"), (x * rs) * g, "y")
    x64 = x.astype(np.float64)[:, :24]
    want = x64 / np.sqrt((x64 ** 2).mean(axis=1, keepdims=True) + 1e-5) * g.astype(np.float64)[:, :24]
    np.testing.assert_allclose(r.tensor("y")[:, :24], want, rtol=1e-5)


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


# ---- the tests ------------------------------------------------------------------------------------
def test_every_example_has_a_model_and_a_readme_entry():
    stems = {p.stem for p in EXAMPLES}
    assert stems == set(CHECKS), "write a check_<name> for each example (and drop those of removed ones)"
    readme = (ROOT / "examples" / "README.md").read_text()
    for path in EXAMPLES:
        row = re.search(rf"^\| \[{path.name}\]\({path.name}\) \| [\w-]+ \| (\d+) \|", readme, re.M)
        assert row, f"examples/README.md does not list {path.name} in its table"
        assert row.group(1) == CYCLES.findall(path.read_text())[0], f"README and header cycles of {path.name}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example(path):
    header = CYCLES.findall(path.read_text())
    assert len(header) == 1, f"{path.name} needs one '; cycles: N' line in its header comment"
    res = run_everywhere(path)
    CHECKS[path.stem](res)
    assert res.stats.cycles == int(header[0]), (
        f"{path.name} runs {res.stats.cycles} cycles, its header says {header[0]}: update the header "
        f"(and the comments that derive the schedule) if the timing model changed on purpose")


# ---- the documentation's examples ---------------------------------------------------------------------
def lasm_blocks(doc: Path) -> list[tuple[int, str]]:
    """(first line, text) of every ```lasm block of a markdown file."""
    lines = doc.read_text().splitlines()
    blocks, start = [], None
    for i, line in enumerate(lines):
        if line.strip() == "```lasm":
            start = i + 1
        elif line.strip() == "```" and start is not None:
            blocks.append((start + 1, "\n".join(lines[start:i]) + "\n"))
            start = None
    return blocks


DOC_BLOCKS = [(doc, line, text) for doc in ("docs/language.md", "docs/architecture.md", "examples/README.md")
              for line, text in lasm_blocks(ROOT / doc)]


@pytest.mark.parametrize("doc, line, text", DOC_BLOCKS, ids=[f"{d.split('/')[-1]}:{n}" for d, n, _ in DOC_BLOCKS])
def test_documentation_blocks_assemble(doc, line, text):
    assemble(text, f"{doc}:{line}")


def test_language_doc_has_its_blocks():
    assert len([b for b in DOC_BLOCKS if b[0] == "docs/language.md"]) >= 11
