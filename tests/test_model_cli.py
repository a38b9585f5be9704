"""``lpuasm model capacity`` through ``lpuasm.cli.main(argv) -> int``: the
capacity table and one-line verdict of lpuasm.model.capacity; exit 0 whether
the model fits or not, 1 on bad input, 2 on bad usage."""

import json
import re
from pathlib import Path

import pytest

from lpuasm import config as chipconfig
from lpuasm.cli import build_parser, main
from lpuasm.model import capacity
from lpuasm.model.config import ARCHS, PRESETS, parse_shapes, preset, save_hf_config


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def fails(capsys, *argv) -> str:
    rc, out, err = run(capsys, *argv)
    assert rc == 1, (out, err)
    assert out == "" and "Traceback" not in err
    assert err.startswith("lpuasm: error: ") and err.count("\n") == 1, err
    return err


def usage_error(capsys, *argv) -> str:
    rc, out, err = run(capsys, *argv)
    assert rc == 2, (out, err)
    assert out == "" and "Traceback" not in err
    assert err.startswith("usage: lpuasm")  # unrecognized arguments are the top parser's
    return err


def _model_subcommands():
    top = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    model = top.choices["model"]
    return dict(next(a for a in model._actions if a.__class__.__name__ == "_SubParsersAction").choices)


# ---- help ------------------------------------------------------------------------
def test_model_help_lists_capacity(capsys):
    rc, out, err = run(capsys, "model", "--help")
    assert (rc, err) == (0, "")
    assert out.startswith("usage: lpuasm model ")
    assert re.search(r"^\s+capacity\s", out, re.M)


def test_top_level_help_lists_model(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0 and re.search(r"^\s+model\s", out, re.M)


@pytest.mark.parametrize("command", sorted(_model_subcommands()))
def test_model_subcommand_help_mentions_every_option(capsys, command):
    rc, out, err = run(capsys, "model", command, "--help")
    assert (rc, err) == (0, "")
    assert out.startswith(f"usage: lpuasm model {command} ")
    sub = _model_subcommands()[command]
    for option in [s for a in sub._actions for s in a.option_strings]:
        assert re.search(rf"(^|[\s\[(]){re.escape(option)}([\s\],)]|$)", out), option


def test_choices_match_the_library():
    sub = _model_subcommands()["capacity"]
    choices = {a.dest: tuple(a.choices) for a in sub._actions if a.choices}
    assert set(choices["arch"]) == set(ARCHS)
    assert set(choices["mode"]) == set(capacity.MODES)
    assert set(choices["dtype"]) == set(capacity.DTYPES)


def test_model_without_subcommand_is_usage_error(capsys):
    err = usage_error(capsys, "model")
    assert "capacity" in err


# ---- reports (exit 0) -------------------------------------------------------------------
def test_fits(capsys):
    rc, out, err = run(capsys, "model", "capacity", "--preset", "tiny-llama", "--mode", "prefill", "--seq", "128")
    assert (rc, err) == (0, "")
    cap = capacity.estimate(preset("tiny-llama"), mode="prefill", seq=128)
    lines = out.splitlines()
    assert lines[0] == "tiny-llama: prefill, seq 128, fp16, 2 layers, chip tsp-v1"
    assert out.endswith(cap.table() + "\n" + cap.message() + "\n")
    assert lines[-1].endswith(": fits")


def test_does_not_fit_still_exits_0(capsys):
    rc, out, err = run(capsys, "model", "capacity", "--preset", "llama2-7b", "--seq", "4096")
    assert (rc, err) == (0, "")
    assert out.splitlines()[-1] == (
        "Llama-2-7B needs 12.3 GiB of fp16 weights (embedding table on the host); "
        "one tsp-v1 chip holds 220 MiB: ~58 chips just for the weights")
    assert "  total on chip " in out and "  one tsp-v1 chip " in out


def test_defaults_decode_at_full_context_for_llama_prefill_for_bert(capsys):
    rc, out, _ = run(capsys, "model", "capacity", "--preset", "llama2-7b")
    assert rc == 0 and out.startswith("Llama-2-7B: decode, seq 4096, fp16, 32 layers, chip tsp-v1\n")
    rc, out, _ = run(capsys, "model", "capacity", "--preset", "bert-base")
    assert rc == 0 and out.startswith("BERT-base: prefill, seq 512, fp16, 12 layers, chip tsp-v1\n")


def test_layers_dtype_and_config(capsys):
    rc, out, err = run(capsys, "model", "capacity", "--preset", "llama2-70b", "--layers", "1", "--seq", "64",
                       "--dtype", "int8", "--config", "tiny", "--json")
    assert (rc, err) == (0, "")
    data = json.loads(out)
    cap = capacity.estimate(preset("llama2-70b"), chip="tiny", mode="decode", dtype="int8", seq=64, layers=1)
    assert data["layers"] == 1 and data["dtype"] == "int8" and data["chip"] == "tiny"
    assert data["sram_bytes"] == chipconfig.load("tiny").sram_bytes
    assert data["total_bytes"] == cap.total_bytes and data["fits"] is False
    assert data["chips_total"] == cap.chips_total and data["message"] == cap.message()


def test_json_fits(capsys):
    rc, out, _ = run(capsys, "model", "capacity", "--preset", "tiny-bert", "--json")
    data = json.loads(out)
    assert rc == 0 and data["fits"] is True and data["chips_total"] == 1
    assert data["arch"] == "bert" and data["mode"] == "prefill" and data["seq"] == 128
    assert data["kv_cache_bytes"] == 0
    assert data["total_bytes"] == (data["weight_bytes"] + data["kv_cache_bytes"] + data["activation_bytes"])


def test_shapes(capsys):
    rc, out, _ = run(capsys, "model", "capacity", "--shapes", "hidden=256,heads=4,kv_heads=2,layers=3",
                     "--arch", "llama", "--seq", "32", "--json")
    cfg = parse_shapes("llama", "hidden=256,heads=4,kv_heads=2,layers=3")
    assert rc == 0 and json.loads(out)["total_bytes"] == capacity.estimate(cfg, seq=32).total_bytes


def test_shapes_with_preset_prefix(capsys):
    rc, out, _ = run(capsys, "model", "capacity", "--shapes", "llama2-7b,layers=2", "--arch", "llama", "--json")
    assert rc == 0 and json.loads(out)["layers"] == 2


def test_checkpoint_dir_and_file(capsys):
    cfg = preset("tiny-llama")
    Path("ck").mkdir()
    save_hf_config("ck/config.json", cfg)
    want = capacity.estimate(cfg, seq=cfg.max_position_embeddings).total_bytes
    for where in ("ck", "ck/config.json"):
        rc, out, err = run(capsys, "model", "capacity", "--checkpoint", where, "--json")
        assert (rc, err) == (0, "") and json.loads(out)["total_bytes"] == want


def test_preset_is_case_insensitive(capsys):
    rc, out, _ = run(capsys, "model", "capacity", "--preset", "TINY-LLAMA")
    assert rc == 0 and out.startswith("tiny-llama: ")


# ---- bad input (exit 1) -------------------------------------------------------------------
def test_unknown_preset_did_you_mean(capsys):
    err = fails(capsys, "model", "capacity", "--preset", "llama2-7")
    assert "unknown model preset 'llama2-7'; did you mean 'llama2-7b'?" in err
    for name in PRESETS:
        assert name in err


def test_unknown_preset_without_close_match(capsys):
    err = fails(capsys, "model", "capacity", "--preset", "gpt-zzz")
    assert "did you mean" not in err and "known: tiny-llama" in err


def test_unreadable_checkpoint(capsys):
    assert "cannot read model config 'missing/config.json'" in fails(
        capsys, "model", "capacity", "--checkpoint", "missing/config.json")
    Path("empty").mkdir()
    assert "cannot read model config 'empty/config.json'" in fails(capsys, "model", "capacity", "--checkpoint", "empty")


def test_bad_checkpoint_config(capsys):
    Path("bad").mkdir()
    Path("bad/config.json").write_text("{not json")
    assert "not valid JSON" in fails(capsys, "model", "capacity", "--checkpoint", "bad")
    Path("bad/config.json").write_text(json.dumps({"model_type": "gpt2"}))
    assert "unknown architecture" in fails(capsys, "model", "capacity", "--checkpoint", "bad")


def test_checkpoint_arch_mismatch(capsys):
    Path("ck").mkdir()
    save_hf_config("ck/config.json", preset("tiny-bert"))
    assert "describes a bert model, but --arch llama" in fails(
        capsys, "model", "capacity", "--checkpoint", "ck", "--arch", "llama")


def test_preset_arch_mismatch(capsys):
    assert "is a bert model, not llama" in fails(capsys, "model", "capacity", "--preset", "bert-base",
                                                 "--arch", "llama")


@pytest.mark.parametrize("spec, message", [
    ("hidden=256", "missing 'heads'"),
    ("hidden=256,heads=3", "not a multiple"),
    ("hidden=256,heads=4,bogus=1", "unknown key 'bogus'"),
    ("hidden=x,heads=4", "'hidden' must be an integer"),
])
def test_bad_shapes(capsys, spec, message):
    assert message in fails(capsys, "model", "capacity", "--shapes", spec, "--arch", "llama")


def test_unreadable_chip_config(capsys):
    assert "cannot read chip config nope.toml" in fails(capsys, "model", "capacity", "--preset", "tiny-llama",
                                                        "--config", "nope.toml")
    assert "unknown chip config 'nope'" in fails(capsys, "model", "capacity", "--preset", "tiny-llama",
                                                 "--config", "nope")


@pytest.mark.parametrize("argv, message", [
    (["--layers", "0"], "--layers must be at least 1, got 0"),
    (["--seq", "0"], "--seq must be at least 1, got 0"),
])
def test_bad_numbers(capsys, argv, message):
    assert message in fails(capsys, "model", "capacity", "--preset", "tiny-llama", *argv)


def test_bert_decode(capsys):
    assert "bert is an encoder" in fails(capsys, "model", "capacity", "--preset", "bert-base", "--mode", "decode")


# ---- bad usage (exit 2) -------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    ([], "one of the arguments --preset --checkpoint --shapes is required"),
    (["--preset", "tiny-llama", "--shapes", "hidden=8,heads=1"], "not allowed with argument"),
    (["--shapes", "hidden=256,heads=4"], "--shapes needs --arch llama|bert"),
    (["--preset", "tiny-llama", "--mode", "train"], "argument --mode: invalid choice: 'train'"),
    (["--preset", "tiny-llama", "--dtype", "bf16"], "argument --dtype: invalid choice: 'bf16'"),
    (["--preset", "tiny-llama", "--seq", "x"], "argument --seq: invalid int value: 'x'"),
    (["--preset", "tiny-llama", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_usage_errors(capsys, argv, message):
    assert message in usage_error(capsys, "model", "capacity", *argv)


def test_unknown_model_subcommand(capsys):
    assert "invalid choice: 'frobnicate'" in usage_error(capsys, "model", "frobnicate")
