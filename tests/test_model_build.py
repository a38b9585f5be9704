"""The model builder (lpuasm/model/build.py, runner.py): whole Llama layers as one
program from the stdlib macros, run on the simulated tsp-v1 and checked layer by
layer against the independent numpy reference (lpuasm/model/reference.py); the
SRAM plan, the image's metadata, a new input, per-layer cycles, timing-only
builds, and the CLI (lpuasm model build/run/verify, lpuasm demo)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lpuasm.cli import main
from lpuasm.config import TINY, TSP_V1
from lpuasm.diagnostics import LpuError
from lpuasm.model import runner
from lpuasm.model.layouts import attention_mask, from_heads, kt_cache, to_heads, v_cache
from lpuasm.model.checkpoint import random_weights, save_checkpoint
from lpuasm.model.config import parse_shapes, preset

# small enough to build and run in a second or two, big enough to have GQA,
# several hidden tiles (hidden 200 > H = 160) and padding in every tile
SMALL = "hidden=200,heads=4,kv_heads=2,head_dim=32,ffn=360,layers=2,vocab=50"
# the numerics: fp16 activations into the products; a wrong step gives O(1)
CLOSE = 5e-3


def small():
    cfg = parse_shapes("llama", SMALL)
    return cfg, random_weights(cfg, seed=1)


def build_run(cfg, weights, mode, seq, seed=0):
    inputs = runner.prepare(cfg, weights, mode, seq, seed=seed)
    built = runner.build(cfg, weights, TSP_V1, mode, seq, inputs)
    res = runner.run_image(built.image, TSP_V1)
    errors = runner.compare(res.hidden, runner.reference_layers(cfg, weights, inputs, mode))
    return inputs, built, res, errors


@pytest.mark.parametrize("mode, seq", [("decode", 1), ("decode", 7), ("prefill", 5)])
def test_layers_match_the_reference(mode, seq):
    cfg, w = small()
    inputs, built, res, errors = build_run(cfg, w, mode, seq)
    assert len(errors) == cfg.num_hidden_layers
    for e in errors:
        assert e.max_rel < CLOSE, e
    assert res.hidden[0].shape == (seq if mode == "prefill" else 1, cfg.hidden_size)
    # every layer's instructions are attributed and the per-layer cycles add up
    per = res.layer_cycles()
    assert all(c > 0 for c in per) and sum(per) <= res.result.stats.cycles


def test_int8_weights_with_scales(capsys):
    """--dtype int8: per-channel int8 weights, activations quantised per row on
    the chip (stdlib/matmul_q8.lasm); within the int8 tolerance, and timing-only
    builds count the same cycles."""
    cfg, w = small()
    inputs = runner.prepare(cfg, w, "decode", 4)
    built = runner.build(cfg, w, TSP_V1, "decode", 4, inputs, dtype="int8")
    assert any(d.dtype == "i8" for d in built.image.data if d.name.startswith("l0_wq"))
    res = runner.run_image(built.image, TSP_V1)
    errors = runner.compare(res.hidden, runner.reference_layers(cfg, w, inputs, "decode"))
    assert all(e.max_rel < runner.TOLERANCES["int8"] for e in errors), errors
    assert all(e.max_rel > 1e-3 for e in errors)          # really 8-bit, not the fp16 path
    timed = runner.build(cfg, None, TSP_V1, "decode", 4, timing_only=True, dtype="int8")
    assert runner.run_image(timed.image, TSP_V1).result.stats.cycles == res.result.stats.cycles
    rc, out, err = run(capsys, "model", "verify", "--shapes", SMALL, "--arch", "llama", "--seq", "2",
                       "--dtype", "int8")
    assert rc == 0, err
    assert "int8; program / weights" in out and "tolerance 0.06" in out


def test_long_cache_splits_the_kv_heads_into_chunks():
    """2000 cached tokens: two kv heads' caches fill a bank, so the four kv
    heads go in two cache tensors and two calls (appends first, then attends)."""
    cfg = parse_shapes("llama", "hidden=128,heads=4,kv_heads=4,head_dim=32,ffn=200,layers=1,vocab=30,max_pos=4096")
    inputs, built, res, errors = build_run(cfg, random_weights(cfg, seed=6), "decode", 2000)
    assert errors[0].max_rel < CLOSE
    names = {d.name for d in built.image.data}
    assert {"l0_kt0", "l0_kt1", "l0_vc0", "l0_vc1"} <= names and "l0_kt2" not in names
    src = built.program.files["layer0.lasm"]
    assert src.count("kv_append_f16") == 2 and src.count("attend_f16") == 2
    assert src.index("kv_append_f16") < src.index("attend_f16")


def test_weight_slices_grow_with_the_padded_weights():
    """Eight 16-dim heads pad to eight 160-column tiles: the weights need more
    than the 12 slices at the MXM edge, and the plan takes more (not "does not fit")."""
    cfg = parse_shapes("bert", "hidden=480,heads=8,head_dim=16,ffn=256,layers=2,vocab=40,max_pos=64")
    w = random_weights(cfg, seed=8)
    inputs, built, res, errors = build_run(cfg, w, "prefill", 3)
    assert all(e.max_rel < CLOSE for e in errors)
    assert built.program.plan.pools["weights"].count > 12


def test_head_dim_128_does_not_divide_the_lanes():
    """Llama-2's head_dim 128 on tsp-v1's 320 lanes: RoPE's tables map the lanes
    past the head to themselves."""
    cfg = parse_shapes("llama", "hidden=256,heads=2,head_dim=128,ffn=300,layers=1,vocab=30")
    _, _, _, errors = build_run(cfg, random_weights(cfg, seed=4), "decode", 3)
    assert errors[0].max_rel < CLOSE


def test_decode_across_token_tiles_appends_to_the_cache():
    """Position 170 is in the second 160-token tile: the scores, the softmax
    and P @ V span two tiles; the new key and value land in the caches, the
    old ones stay as laid in."""
    cfg = parse_shapes("llama", SMALL.replace("layers=2", "layers=1"))
    w = random_weights(cfg, seed=2)
    inputs, built, res, errors = build_run(cfg, w, "decode", 171)
    assert errors[0].max_rel < CLOSE
    from lpuasm.model import reference as ref

    lanes, h, d = TSP_V1.lanes, TSP_V1.lanes // 2, cfg.head_dim
    full = ref.llama_forward(cfg, w, inputs.ids, lm_head=False).cache     # k, v of all 171 positions
    kt, vc = res.result.tensor("l0_kt0"), res.result.tensor("l0_vc0")   # both kv heads in one chunk
    laid_k = kt_cache(inputs.cache.k[0].astype(np.float16), 2, lanes)
    laid_v = v_cache(inputs.cache.v[0].astype(np.float16), 2, lanes)[:len(vc)]
    new_k = np.zeros(kt.shape, bool)
    for g in range(cfg.num_key_value_heads):
        new_k[(g * 2 + 1) * d:(g * 2 + 2) * d, 170 - h] = True          # tile 1, lane 10
    new_v = np.zeros(vc.shape, bool)
    new_v[[g * 2 * h + 170 for g in range(cfg.num_key_value_heads)]] = True
    assert np.array_equal(kt[~new_k], laid_k[~new_k]) and np.array_equal(vc[~new_v], laid_v[~new_v])
    want_k = kt_cache(full.k[0].astype(np.float16), 2, lanes)
    want_v = v_cache(full.v[0].astype(np.float16), 2, lanes)[:len(vc)]
    np.testing.assert_allclose(kt[new_k].astype(np.float32), want_k[new_k].astype(np.float32), atol=2e-2)
    np.testing.assert_allclose(vc[new_v].astype(np.float32), want_v[new_v].astype(np.float32), atol=2e-2)
    assert np.abs(kt[new_k].astype(np.float32)).max() > 0.1                # really written


BERT = "hidden=96,heads=3,ffn=200,layers=2,vocab=40,max_pos=64"


@pytest.mark.parametrize("seq", [1, 6])
def test_bert_layers_match_the_reference(seq):
    """Encoder layers: biases, bidirectional attention, LayerNorm, GELU (tanh on
    the chip, erf in the reference: within the tolerance)."""
    cfg = parse_shapes("bert", BERT)
    w = random_weights(cfg, seed=3)
    inputs, built, res, errors = build_run(cfg, w, "prefill", seq)
    assert len(errors) == 2
    for e in errors:
        assert e.max_rel < CLOSE, e
    timed = runner.build(cfg, None, TSP_V1, "prefill", seq, timing_only=True)
    assert runner.run_image(timed.image, TSP_V1).result.stats.cycles == res.result.stats.cycles


def test_mask_and_cache_layouts():
    m = attention_mask(pos=3, m=2, ctx_tiles=1, lanes=TINY.lanes)
    assert m.shape == (2, 32)
    assert (m[0, :4] == 0).all() and np.isneginf(m[0, 4:]).all()      # row 0 sees tokens 0..3
    assert (m[1, :5] == 0).all() and np.isneginf(m[1, 5:]).all()      # row 1 sees tokens 0..4
    k = np.arange(2 * 3 * 4, dtype=np.float16).reshape(2, 3, 4)        # kvh 2, 3 tokens, d 4
    kt = kt_cache(k, 1, TINY.lanes)
    assert kt.shape == (2 * 4, 32) and kt[4 + 2, 1] == k[1, 1, 2]      # kv head 1, dim 2, token 1
    vc = v_cache(k, 1, TINY.lanes)
    assert vc.shape == (2 * 16, 32) and (vc[16 + 2, :4] == k[1, 2]).all()
    a = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)                # 3 rows, 2 heads of 4
    hl = to_heads(a, 2, 4, TINY.lanes)
    assert hl.shape == (6, 32) and (hl[3 + 1, :4] == a[1, 4:]).all() and not hl[:, 4:].any()
    assert np.array_equal(from_heads(hl, 2, 3, 4), a)


def test_a_new_input_changes_the_output_like_the_reference():
    cfg, w = small()
    inputs, built, res, _ = build_run(cfg, w, "decode", 4)
    x = np.random.default_rng(5).standard_normal((1, cfg.hidden_size)).astype(np.float32)
    again = runner.run_image(built.image, TSP_V1, x=x)
    assert not np.allclose(again.hidden[-1], res.hidden[-1])
    from lpuasm.model import reference as ref

    want = ref.llama_forward(cfg, w, inputs_embeds=x, cache=inputs.cache, lm_head=False).layers
    for got, exp in zip(again.hidden, want):
        assert np.abs(got - exp).max() / np.abs(exp).max() < CLOSE
    with pytest.raises(LpuError, match=r"expected an array of shape \(1, 200\)"):
        runner.run_image(built.image, TSP_V1, x=np.zeros((2, 200), np.float32))


def test_timing_only_build_counts_the_same_cycles():
    cfg, w = small()
    _, built, res, _ = build_run(cfg, w, "decode", 4)
    timed = runner.build(cfg, None, TSP_V1, "decode", 4, timing_only=True)
    tres = runner.run_image(timed.image, TSP_V1)
    assert tres.hidden == [] and tres.result.stats.cycles == res.result.stats.cycles
    assert timed.image.instruction_count() == built.image.instruction_count()
    assert all(d.init is None for d in timed.image.data if d.name.startswith("l0_w"))


def test_builder_refuses_what_it_cannot_build():
    cfg, w = small()
    with pytest.raises(LpuError, match="exceeds the fp16 MXM's 16 rows on chip 'tiny'"):
        runner.build(cfg, w, TINY, "decode", 4)
    with pytest.raises(LpuError, match="at least 24"):
        runner.build(parse_shapes("llama", "hidden=32,heads=4,ffn=64"), None, TINY, "decode", 4, timing_only=True)
    with pytest.raises(LpuError, match="head_dim 192 exceeds"):
        runner.build(parse_shapes("llama", "hidden=384,heads=2"), None, TSP_V1, "decode", 4, timing_only=True)
    with pytest.raises(LpuError, match="only prefill"):
        runner.build(preset("tiny-bert"), None, TSP_V1, "decode", 4, timing_only=True)
    with pytest.raises(LpuError, match="not a model image"):
        from lpuasm.assembler import assemble

        runner.run_image(assemble(".chip tsp-v1\n    halt\n").image, TSP_V1)


# ---- the CLI ------------------------------------------------------------------------------------

def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_build_run_verify(capsys, tmp_path):
    img = tmp_path / "m.lpu"
    rc, out, err = run(capsys, "model", "build", "--shapes", SMALL, "--arch", "llama", "--seq", "6",
                       "-o", str(img), "--source", str(tmp_path / "src"))
    assert rc == 0, err
    assert "decode at position 5" in out and "instructions" in out and "weights" in out
    assert (tmp_path / "src" / "model.lasm").exists() and (tmp_path / "src" / "layer1.lasm").exists()
    # the kept source assembles to the same image
    from lpuasm import imagefile
    from lpuasm.assembler import assemble_file

    again = assemble_file(tmp_path / "src" / "model.lasm")
    assert imagefile.to_bytes(again.image, TSP_V1) == img.read_bytes()
    rc, out, err = run(capsys, "model", "run", str(img), "-o", str(tmp_path / "y.npy"), "--profile", "1")
    assert rc == 0, err
    assert "per layer" in out and "tokens/s" in out
    prof = out[out.index("profile of layer 1"):].splitlines()[2:]
    assert [row.split()[1] for row in prof][:3] == ["rmsnorm_tiled_f32", "cvt_f32_f16", "matmul_tiled_f16"]
    assert any(row.split()[1] == "attention_f16" for row in prof)
    cols = [[int(v.replace(",", "")) for v in row.split()[2:]] for row in prof]   # instructions first last adds
    assert sum(c[3] for c in cols) == max(c[2] for c in cols) - min(c[1] for c in cols)   # adds telescope
    rc, _, err = run(capsys, "model", "run", str(img), "--profile", "2")
    assert rc == 1 and "the model has layers 0..1" in err
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (1, 200)
    np.save(tmp_path / "x.npy", np.ones((1, 200), np.float32))
    rc, out, err = run(capsys, "model", "run", str(img), "--input", str(tmp_path / "x.npy"), "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["meta"]["MODEL_HIDDEN"] == 200 and len(rep["layer_cycles"]) == 2 and rep["cycles"] > 0
    rc, out, err = run(capsys, "model", "verify", "--shapes", SMALL, "--arch", "llama", "--seq", "3",
                       "--mode", "prefill")
    assert rc == 0, err
    assert "verification OK" in out and out.count("  layer ") == 2
    rc, out, err = run(capsys, "model", "verify", "--shapes", SMALL, "--arch", "llama", "--seq", "3",
                       "--tolerance", "1e-9")
    assert rc == 1 and "verification FAILED" in out


def test_cli_checkpoint_round_trip(capsys, tmp_path):
    cfg, w = small()
    save_checkpoint(tmp_path / "ckpt", cfg, w)
    rc, out, err = run(capsys, "model", "verify", "--checkpoint", str(tmp_path / "ckpt"), "--seq", "3",
                       "--layers", "1", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["ok"] and len(rep["errors"]) == 1 and rep["errors"][0]["max_rel"] < CLOSE


def test_cli_model_errors(capsys, tmp_path):
    rc, out, err = run(capsys, "model", "build", "--preset", "llama2-7b", "--layers", "1", "-o",
                       str(tmp_path / "x.lpu"))
    assert rc == 1 and "one tsp-v1 chip holds 220 MiB" in err and "--timing-only" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    rc, out, err = run(capsys, "model", "build", "--preset", "tiny-bert", "--dtype", "int8")
    assert rc == 1 and "int8 weights are built for llama models only" in err
    rc, out, err = run(capsys, "model", "build", "--preset", "tiny-bert", "--mode", "decode")
    assert rc == 1 and "only prefill" in err
    rc, out, err = run(capsys, "model", "verify", "--preset", "tiny-llama", "--seq", "100000")
    assert rc == 1 and "takes 1 .. 512 positions" in err and "Traceback" not in err
    rc, out, err = run(capsys, "model", "run", str(tmp_path / "missing.lpu"))
    assert rc == 1 and "Traceback" not in err
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    rc, _, err = run(capsys, "model", "build", "--shapes", SMALL, "--arch", "llama", "--seq", "2",
                     "-o", str(tmp_path / "m.lpu"))
    assert rc == 0, err
    rc, out, err = run(capsys, "model", "run", str(tmp_path / "m.lpu"), "--input", str(tmp_path / "bad.npy"))
    assert rc == 1 and "--input" in err and err.count("\n") == 1


def test_demo(capsys, tmp_path):
    rc, out, err = run(capsys, "demo", "--layers", "1", "--seq", "4", "--keep", str(tmp_path / "kept"))
    assert rc == 0, err
    assert "[5/5]" in out and "verification OK" in out and "tokens/s" in out and "per layer" in out
    assert (tmp_path / "kept" / "model.lpu").exists() and (tmp_path / "kept" / "layer0.lasm").exists()
