"""The command line, through ``lpuasm.cli.main(argv) -> int``.

Every test runs in its own empty folder (``tmp_path`` as the working
directory), so file names in messages are short and exact.  Exit codes:
0 success, 1 bad input (one diagnostic, first line ``file:line:col: error:``
or ``lpuasm: error:``), 2 bad usage (argparse).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import lpuasm
from lpuasm import config as chipconfig
from lpuasm import imagefile, isadoc
from lpuasm.assembler import assemble_file
from lpuasm.cli import build_parser, main
from lpuasm.listing import listing, symbol_map

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.lasm"))

# A small kernel on the tiny chip: three instructions on three queues.
KERNEL = """\
.chip tiny
.data x, W0.b0[0], i8, [[1, 2, 3]]
    read  x, s0e @0
    write s0e, E0.b0[0] @3
    halt
"""
# The same without `.chip`, for --config.
PLAIN = KERNEL.replace(".chip tiny\n", "")
# Uses -D constants N (an int) and SCALE (a float).
DEFINES = """\
.chip tiny
.data x, W0.b0[0], i8, [[1], [2], [3], [4]]
    read  x[N], s0e @0
    vmul.f32 s4e, SCALE, s8e @5
    halt
"""
SLOW_TOML = """\
base = "tiny"
name = "slowread"

[latencies]
"mem.read" = 5
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv):
    """(exit code, stdout, stderr) of ``lpuasm ARGV``."""
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def fails(capsys, *argv) -> str:
    """Run a command that must fail with bad input; return its stderr."""
    rc, out, err = run(capsys, *argv)
    assert rc == 1, (out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n")
    first = err.splitlines()[0]
    assert re.match(r"(lpuasm|[^:\n]+:\d+:\d+): error: \S", first), first
    return err


def usage_error(capsys, *argv) -> str:
    rc, out, err = run(capsys, *argv)
    assert rc == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("usage: lpuasm")
    return err


def write(name: str, text: str) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def squeezed(text: str) -> list[str]:
    """Lines with runs of spaces collapsed, for column-independent checks."""
    return [" ".join(line.split()) for line in text.splitlines()]


# ==================================================================== asm
def test_asm_writes_default_image_and_summary(capsys):
    write("k.lasm", KERNEL)
    rc, out, err = run(capsys, "asm", "k.lasm")
    assert (rc, err) == (0, "")
    blob = Path("k.lpu").read_bytes()
    assert out == f"k.lpu: 3 instructions on 3 queues, issue ends at cycle 5, {len(blob)} bytes, chip tiny\n"
    # the file is the image the library builds, and it loads back with every check
    asm = assemble_file("k.lasm")
    assert blob == imagefile.to_bytes(asm.image, asm.config)
    image = imagefile.load("k.lpu", chipconfig.TINY)
    assert image.instruction_count() == 3
    assert image.config_name == "tiny"


def test_asm_default_name_replaces_suffix(capsys):
    write("sub/kernel.v2.asm", KERNEL)
    rc, out, _ = run(capsys, "asm", "sub/kernel.v2.asm", "-q")
    assert rc == 0
    assert Path("sub/kernel.v2.lpu").is_file()


def test_asm_output_option(capsys):
    write("k.lasm", KERNEL)
    for flag in ("-o", "--output"):
        rc, out, err = run(capsys, "asm", "k.lasm", flag, f"img{flag}.bin")
        assert (rc, err) == (0, "")
        assert out.startswith(f"img{flag}.bin: 3 instructions on 3 queues, ")
        assert Path(f"img{flag}.bin").read_bytes()[:4] == imagefile.MAGIC
    assert not Path("k.lpu").exists()


def test_asm_quiet_prints_nothing(capsys):
    write("k.lasm", KERNEL)
    for flag in ("-q", "--quiet"):
        assert run(capsys, "asm", "k.lasm", flag) == (0, "", "")
        assert Path("k.lpu").is_file()


def test_asm_listing_and_symbols_to_files(capsys):
    write("k.lasm", KERNEL)
    rc, out, err = run(capsys, "asm", "k.lasm", "--listing", "k.lst", "--symbols", "k.sym")
    assert (rc, err) == (0, "")
    assert out.startswith("k.lpu: ") and out.count("\n") == 1
    asm = assemble_file("k.lasm")
    lst, sym = Path("k.lst").read_text(), Path("k.sym").read_text()
    assert lst == listing(asm.image, asm.config, asm.sources)
    assert sym == symbol_map(asm.image, asm.config)
    assert squeezed(lst)[0] == "; listing: chip tiny, 3 instructions, 5 words"
    assert "3 e0 0x0000000200000011 k.lasm:4 write s0e, E0.b0[0] write s0e, E0.b0[0] @3" in squeezed(lst)
    assert "4 icu 0x0000000000000006 k.lasm:5 halt halt" in squeezed(lst)
    assert squeezed(sym) == ["; symbols: chip tiny", "; name kind value",
                             "x data W0.b0[0] i8 1x3 1 word, initialised"]


def test_asm_listing_and_symbols_to_stdout(capsys):
    write("k.lasm", KERNEL)
    asm = assemble_file("k.lasm")
    lst, sym = listing(asm.image, asm.config, asm.sources), symbol_map(asm.image, asm.config)
    assert run(capsys, "asm", "k.lasm", "-q", "--listing", "-") == (0, lst, "")
    assert run(capsys, "asm", "k.lasm", "-q", "--symbols", "-") == (0, sym, "")
    rc, out, err = run(capsys, "asm", "k.lasm", "--listing", "-", "--symbols", "-")
    assert (rc, err) == (0, "")
    assert out.startswith(lst + sym)
    assert out[len(lst + sym):].startswith("k.lpu: 3 instructions")


def test_asm_include_dirs(capsys):
    write("inc/defs.lasm", ".equ ROW, 2\n")
    write("other/more.lasm", ".equ COL, 1\n")
    write("m.lasm", '.chip tiny\n.include "defs.lasm"\n.include "more.lasm"\n'
                    ".data x, W0.b0[0], i8, [[1], [2], [3]]\n    read x[ROW + COL - 1], s0e\n    halt\n")
    err = fails(capsys, "asm", "m.lasm")
    assert err.splitlines()[:3] == [
        "m.lasm:2:10: error: cannot find 'defs.lasm'",
        ' 2 | .include "defs.lasm"',
        "   |          ^~~~~~~~~~~",
    ]
    assert err.splitlines()[3].startswith("  hint: searched ")
    assert err.splitlines()[3].endswith("; add a directory with -I")
    assert not Path("m.lpu").exists()
    rc, out, err = run(capsys, "asm", "m.lasm", "-I", "inc", "-I", "other", "-q", "--listing", "-")
    assert (rc, err) == (0, "")
    assert any(line.startswith("0 w0 0x") and "read x[2], s0e" in line for line in squeezed(out))


def test_asm_include_dir_must_exist(capsys):
    write("k.lasm", KERNEL)
    assert fails(capsys, "asm", "k.lasm", "-I", "nodir") == "lpuasm: error: -I nodir: not a directory\n"
    write("afile", "")
    assert fails(capsys, "asm", "k.lasm", "-I", "afile") == "lpuasm: error: -I afile: not a directory\n"


@pytest.mark.parametrize("n, scale, word, shown, const", [
    ("2", "0.25", "x[2]", "0.25", "0.25"),
    ("0x3", "-1.5e0", "x[3]", "-1.5", "-1.5"),
    ("1", "2", "x[1]", "2.0", "2"),  # an int constant, used as an f32 immediate
])
def test_asm_defines(capsys, n, scale, word, shown, const):
    write("d.lasm", DEFINES)
    rc, out, err = run(capsys, "asm", "d.lasm", "-q", "-D", f"N={n}", "-D", f"SCALE={scale}",
                       "--listing", "-", "--symbols", "-")
    assert (rc, err) == (0, "")
    lines = squeezed(out)
    assert any(f"read {word}, s0e read x[N], s0e @0" in line for line in lines), out
    assert any(f"vmul.f32 s4e, {shown}, s8e vmul.f32 s4e, SCALE, s8e @5" in line for line in lines), out
    assert f"N const {int(n, 0)}" in lines
    assert f"SCALE const {const}" in lines


def test_asm_define_without_value_is_one(capsys):
    write("d.lasm", DEFINES)
    rc, out, _ = run(capsys, "asm", "d.lasm", "-q", "-D", "N", "-D", "SCALE=1.0", "--symbols", "-")
    assert rc == 0
    assert "N const 1" in squeezed(out)


def test_asm_define_missing_is_undefined(capsys):
    write("d.lasm", DEFINES)
    err = fails(capsys, "asm", "d.lasm", "-D", "N=1")
    assert err == ("d.lasm:4:19: error: undefined symbol 'SCALE'\n"
                   " 4 |     vmul.f32 s4e, SCALE, s8e @5\n"
                   "   |                   ^~~~~\n")


@pytest.mark.parametrize("define, message", [
    ("N=abc", "-D N=abc: 'abc' is not a number"),
    ("N=1.2.3", "-D N=1.2.3: '1.2.3' is not a number"),
    ("1N=2", "-D 1N=2: '1N' is not a valid name"),
    ("=2", "-D =2: '' is not a valid name"),
    ("N=nan", "-D N=nan: the value must be finite"),
    ("LANES=3", "-D LANES: 'LANES' is a predefined or register name and cannot be defined"),
])
def test_asm_bad_define(capsys, define, message):
    write("k.lasm", KERNEL)
    assert fails(capsys, "asm", "k.lasm", "-D", define) == f"lpuasm: error: {message}\n"
    assert not Path("k.lpu").exists()


def test_asm_define_of_wrong_kind_is_reported_at_its_use(capsys):
    write("d.lasm", DEFINES)
    err = fails(capsys, "asm", "d.lasm", "-D", "N=2.5", "-D", "SCALE=1")
    assert err.splitlines() == ["d.lasm:3:13: error: expected word index, got 2.5",
                                " 3 |     read  x[N], s0e @0",
                                "   |             ^"]


# ---- chip configs --------------------------------------------------------------
def test_asm_config_matching_chip_directive(capsys):
    write("k.lasm", KERNEL)
    rc, out, _ = run(capsys, "asm", "k.lasm", "--config", "tiny")
    assert rc == 0 and out.endswith(", chip tiny\n")


def test_asm_config_default_is_tsp_v1(capsys):
    write("p.lasm", PLAIN)
    rc, out, _ = run(capsys, "asm", "p.lasm")
    assert rc == 0 and out.endswith(", chip tsp-v1\n")
    rc, out, _ = run(capsys, "asm", "p.lasm", "--config", "tiny", "-o", "t.lpu")
    assert rc == 0 and out.endswith(", chip tiny\n")
    assert imagefile.load("t.lpu").config_hash == chipconfig.TINY.hash
    assert imagefile.load("p.lpu").config_hash == chipconfig.TSP_V1.hash


def test_asm_config_mismatching_chip_directive(capsys):
    write("k.lasm", KERNEL)
    err = fails(capsys, "asm", "k.lasm", "--config", "tsp-v1")
    assert err == ("k.lasm:1:7: error: this file is for chip 'tiny', but the chip config in use is 'tsp-v1'\n"
                   " 1 | .chip tiny\n"
                   "   |       ^~~~\n"
                   "  hint: drop --config, or assemble with --config tiny\n")
    write("v1.lasm", ".chip tsp-v1\n    halt\n")
    err = fails(capsys, "asm", "v1.lasm", "--config", "tiny")
    assert err.splitlines()[0] == ("v1.lasm:1:7: error: this file is for chip 'tsp-v1', "
                                   "but the chip config in use is 'tiny'")
    assert err.splitlines()[2] == "   |       ^~~~~~"
    assert not Path("k.lpu").exists() and not Path("v1.lpu").exists()


def test_asm_unknown_config_name(capsys):
    write("k.lasm", KERNEL)
    assert fails(capsys, "asm", "k.lasm", "--config", "huge") == (
        "lpuasm: error: unknown chip config 'huge'; choose one of tsp-v1, tiny or give a .toml/.json file\n")


def test_config_file_changes_the_chip(capsys):
    """A TOML config based on tiny with a slower read: another chip (hash), and
    images for it need the file to be disassembled."""
    write("slow.toml", SLOW_TOML)
    slow = chipconfig.load("slow.toml")
    assert slow.latency("mem.read").delay == 5
    assert slow.hash != chipconfig.TINY.hash
    write("p.lasm", PLAIN)
    rc, out, err = run(capsys, "asm", "p.lasm", "--config", "slow.toml")
    assert (rc, err) == (0, "")
    assert out.endswith(", chip slowread\n")
    assert imagefile.load("p.lpu").config_hash == slow.hash

    # disasm needs the file: without it, and with the wrong chip, one clear error
    assert fails(capsys, "disasm", "p.lpu") == (
        "lpuasm: error: p.lpu: built for chip config 'slowread', which is not built in; "
        "give its file with --config\n")
    assert fails(capsys, "disasm", "p.lpu", "--config", "tiny") == (
        f"lpuasm: error: p.lpu: built for chip config 'slowread' (hash {slow.hash.hex()[:8]}..), not 'tiny' "
        f"(hash {chipconfig.TINY.hash.hex()[:8]}..); assemble it again with --config tiny\n")
    rc, out, err = run(capsys, "disasm", "p.lpu", "--config", "slow.toml", "-o", "p.dis.lasm")
    assert (rc, out, err) == (0, "", "")
    text = Path("p.dis.lasm").read_text()
    assert ".chip" not in text
    assert "slowread" in text.splitlines()[0]
    assert run(capsys, "asm", "p.dis.lasm", "--config", "slow.toml", "-q", "-o", "again.lpu") == (0, "", "")
    assert Path("again.lpu").read_bytes() == Path("p.lpu").read_bytes()

    # a file for the built-in tiny chip is not for this one
    write("k.lasm", KERNEL)
    err = fails(capsys, "asm", "k.lasm", "--config", "slow.toml")
    assert err.splitlines()[0] == ("k.lasm:1:7: error: this file is for chip 'tiny', "
                                   "but the chip config in use is 'slowread'")


def test_config_json_file_named_after_the_file(capsys):
    write("small.json", '{"base": "tiny", "words_per_bank": 128}')
    write("p.lasm", PLAIN)
    rc, out, _ = run(capsys, "asm", "p.lasm", "--config", "small.json")
    assert rc == 0 and out.endswith(", chip small\n")


def test_config_file_changing_only_latencies_is_named_after_the_file(capsys):
    write("slow.toml", 'base = "tiny"\n[latencies]\n"mem.read" = 5\n')
    write("p.lasm", PLAIN)
    rc, out, _ = run(capsys, "asm", "p.lasm", "--config", "slow.toml")
    assert rc == 0 and out.endswith(", chip slow\n")


@pytest.mark.parametrize("text, message", [
    ("base = [\n", "bad.toml: not valid TOML: "),
    ('base = "tiny"\nfoo = 1\n', "unknown chip config key(s): foo"),
    ('base = "huge"\n', "unknown base config; choose one of tsp-v1, tiny"),
    ('base = "tiny"\n[latencies]\n"mem.read" = "fast"\n',
     "latency 'mem.read' must be an integer or {delay = N, skew = M}"),
    ('base = "tiny"\n[latencies]\n"mem.reed" = 3\n', "unknown latency class 'mem.reed'"),
    ('base = "tiny"\nname = "neg"\n[latencies]\n"mem.read" = -1\n',
     "chip config 'neg': latency 'mem.read' must not be negative"),
    ('base = "tiny"\nname = "big"\nstreams_per_direction = 64\n',
     "chip config 'big': streams_per_direction = 64 exceeds the encoding limit 32"),
])
def test_config_bad_file(capsys, text, message):
    write("bad.toml", text)
    write("p.lasm", PLAIN)
    err = fails(capsys, "asm", "p.lasm", "--config", "bad.toml")
    assert err.startswith("lpuasm: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert not Path("p.lpu").exists()


def test_config_missing_file(capsys):
    write("p.lasm", PLAIN)
    assert fails(capsys, "asm", "p.lasm", "--config", "nope.toml") == (
        "lpuasm: error: cannot read chip config nope.toml: No such file or directory\n")


# ==================================================================== disasm
@pytest.mark.parametrize("source", EXAMPLES + ["kernel"], ids=[p.stem for p in EXAMPLES] + ["kernel"])
def test_disasm_reassembles_to_identical_bytes(capsys, source):
    if source == "kernel":
        source = write("k.lasm", KERNEL)
    assert run(capsys, "asm", source, "-q", "-o", "a.lpu") == (0, "", "")
    rc, text, err = run(capsys, "disasm", "a.lpu")
    assert (rc, err) == (0, "")
    assert text.startswith("; disassembly of a.lpu: chip ")
    write("b.lasm", text)
    assert run(capsys, "asm", "b.lasm", "-q", "-o", "b.lpu") == (0, "", "")
    assert Path("b.lpu").read_bytes() == Path("a.lpu").read_bytes()


def test_disasm_output_option(capsys):
    write("k.lasm", KERNEL)
    run(capsys, "asm", "k.lasm", "-q")
    rc, printed, _ = run(capsys, "disasm", "k.lpu")
    assert rc == 0
    assert run(capsys, "disasm", "k.lpu", "-o", "k.dis.lasm") == (0, "", "")
    assert Path("k.dis.lasm").read_text() == printed
    assert run(capsys, "disasm", "k.lpu", "--output", "-") == (0, printed, "")
    lines = printed.splitlines()
    assert lines[0] == "; disassembly of k.lpu: chip tiny, 3 instructions"
    assert ".chip tiny" in lines
    assert [" ".join(l.split()) for l in lines if l.startswith("    ") and not l.strip().startswith(".")] == [
        "read x, s0e @0", "write s0e, E0.b0[0] @3", "halt @4"]


def test_disasm_built_in_config_matching(capsys):
    write("k.lasm", KERNEL)
    run(capsys, "asm", "k.lasm", "-q")
    rc, out, _ = run(capsys, "disasm", "k.lpu", "--config", "tiny")
    assert rc == 0 and out.startswith("; disassembly of k.lpu: chip tiny")


def test_disasm_image_for_another_chip(capsys):
    write("k.lasm", KERNEL)
    run(capsys, "asm", "k.lasm", "-q")
    tiny, v1 = chipconfig.TINY.hash.hex()[:8], chipconfig.TSP_V1.hash.hex()[:8]
    assert fails(capsys, "disasm", "k.lpu", "--config", "tsp-v1") == (
        f"lpuasm: error: k.lpu: built for chip config 'tiny' (hash {tiny}..), not 'tsp-v1' (hash {v1}..); "
        f"assemble it again with --config tsp-v1\n")


def test_disasm_missing_file(capsys):
    assert fails(capsys, "disasm", "nope.lpu") == "lpuasm: error: nope.lpu: cannot read: No such file or directory\n"


def test_disasm_directory(capsys):
    Path("d.lpu").mkdir()
    assert fails(capsys, "disasm", "d.lpu") == "lpuasm: error: d.lpu: cannot read: Is a directory\n"


def test_disasm_source_file(capsys):
    write("k.lasm", KERNEL)
    assert fails(capsys, "disasm", "k.lasm") == "lpuasm: error: k.lasm: bad magic (not an lpuasm image)\n"


def _image_bytes(capsys) -> bytes:
    write("k.lasm", KERNEL)
    assert run(capsys, "asm", "k.lasm", "-q")[0] == 0
    return Path("k.lpu").read_bytes()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:imagefile.TABLE_END] + bytes([b[imagefile.TABLE_END] ^ 0xFF]) + b[imagefile.TABLE_END + 1:],
     "CRC mismatch in section TEXT (file corrupt)"),
    (lambda b: b[:8] + bytes([b[8] ^ 1]) + b[9:], "CRC mismatch in header (file corrupt)"),
    (lambda b: b[:len(b) // 2], "truncated: the header says {n} bytes, the file has {half}"),
    (lambda b: b[:10], "truncated: 10 bytes, shorter than the 56-byte header"),
    (lambda b: b"", "truncated: 0 bytes, shorter than the 56-byte header"),
    (lambda b: b + bytes(8), "8 bytes of trailing data after the image"),
    (lambda b: b"XXXX" + b[4:], "bad magic (not an lpuasm image)"),
], ids=["corrupt-text", "corrupt-header", "truncated-half", "truncated-10", "empty", "trailing", "magic"])
def test_disasm_damaged_image(capsys, damage, message):
    blob = _image_bytes(capsys)
    Path("bad.lpu").write_bytes(damage(blob))
    message = message.format(n=len(blob), half=len(blob) // 2)
    assert fails(capsys, "disasm", "bad.lpu") == f"lpuasm: error: bad.lpu: {message}\n"
    assert fails(capsys, "disasm", "bad.lpu", "--config", "tiny") == f"lpuasm: error: bad.lpu: {message}\n"


# ==================================================================== isa
def test_isa_all(capsys):
    rc, out, err = run(capsys, "isa")
    assert (rc, err) == (0, "")
    assert out == isadoc.text()
    assert out.startswith("ICU: ")
    for mnemonic in ("vadd", "read", "transpose", "acc", "halt"):
        assert re.search(rf"^  {mnemonic}\b", out, re.M), mnemonic


def test_isa_one_mnemonic(capsys):
    rc, out, err = run(capsys, "isa", "vadd")
    assert (rc, err) == (0, "")
    assert out == isadoc.text("vadd")
    assert out.splitlines()[0] == "vadd.<dt> a, b, d [, alu]"
    assert "  opcode    0x20" in out.splitlines()
    assert run(capsys, "isa", "VADD.f32") == (0, out, "")


@pytest.mark.parametrize("name, message", [
    ("vadd2", "unknown mnemonic 'vadd2'; did you mean 'vadd'?"),
    ("trnspose", "unknown mnemonic 'trnspose'; did you mean 'transpose'?"),
    ("qqqqqq", "unknown mnemonic 'qqqqqq'"),
])
def test_isa_unknown(capsys, name, message):
    assert fails(capsys, "isa", name) == f"lpuasm: error: {message}\n"


def test_isa_markdown_is_docs_isa_md(capsys):
    rc, out, err = run(capsys, "isa", "--markdown")
    assert (rc, err) == (0, "")
    assert out == (ROOT / "docs" / "isa.md").read_text()


# ==================================================================== demo
def test_demo(capsys, in_tmp):
    rc, out, err = run(capsys, "demo", "--layers", "1", "--seq", "5")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("[1/5] tiny-llama (1 layer): random weights (1 layer, hidden 256, 4 heads / 2 KV")
    assert any(l.startswith("[4/5] simulated ") and "cycles on tsp-v1" in l for l in lines)
    assert any(l.startswith("[5/5] numpy reference forward pass: max relative error") for l in lines)
    for head in ("  program ", "  image ", "  weights ", "  cycles ", "  per layer ", "  latency ", "  utilisation ",
                 "  layer 0 "):
        assert any(l.startswith(head) for l in lines), head
    assert any(l.startswith("  verification OK") for l in lines)
    assert "decode at position 4" in out and "tokens/s" in out and "mxm" in out
    assert list(in_tmp.iterdir()) == []  # without --keep it leaves nothing behind


def test_demo_keep_and_roundtrip(capsys, in_tmp):
    rc, out, _ = run(capsys, "demo", "--layers", "1", "--seq", "2", "--mode", "prefill", "--keep", "kept",
                     "--roundtrip")
    assert rc == 0 and any(l.startswith("  verification OK") for l in out.splitlines())
    assert any(l.startswith("[6/6] ") and "byte-identical" in l for l in out.splitlines())
    assert "prefill of 2 tokens" in out
    kept = {p.name for p in (in_tmp / "kept").iterdir()}
    assert {"model.lpu", "model.lasm", "layer0.lasm", "x0.npy"} <= kept


def test_demo_encoder(capsys):
    rc, out, err = run(capsys, "demo", "--preset", "tiny-bert", "--layers", "1", "--seq", "3")
    assert (rc, err) == (0, "")
    assert "prefill of 3 tokens" in out and any(l.startswith("  verification OK") for l in out.splitlines())


def test_demo_bad_arguments(capsys):
    assert fails(capsys, "demo", "--seq", "0") == "lpuasm: error: --seq must be at least 1, got 0\n"
    assert "did you mean 'tiny-llama'" in fails(capsys, "demo", "--preset", "tiny-lama")
    assert "~57 chips just for the weights" in fails(capsys, "demo", "--preset", "llama2-7b")
    assert "MEM slices per hemisphere" in fails(capsys, "demo", "--config", "tiny")


# ==================================================================== version and help
def test_version(capsys):
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert lpuasm.__version__ == version
    assert run(capsys, "--version") == (0, f"lpuasm {version}\n", "")


def _subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return dict(action.choices)


SUBCOMMANDS = sorted(_subcommands())

# Options the help of these subcommands must mention, at least; every subcommand's
# help must also mention every option its parser declares.
HELP_OPTIONS = {
    "asm": ["FILE.lasm", "-o", "--output", "--listing", "--symbols", "-I", "-D", "--config", "-q", "--quiet"],
    "disasm": ["FILE.lpu", "-o", "--output", "--config"],
    "isa": ["MNEMONIC", "--markdown"],
    "demo": ["--config", "--seq", "--mode", "--preset", "--layers", "--keep", "--roundtrip"],
}


def test_help_top_level(capsys):
    for flag in ("-h", "--help"):
        rc, out, err = run(capsys, flag)
        assert (rc, err) == (0, "")
        assert out.startswith("usage: lpuasm ")
        for word in ["--version", *HELP_OPTIONS, *SUBCOMMANDS]:
            assert re.search(rf"(^|\s){re.escape(word)}\s", out), word


def test_known_subcommands_exist():
    assert set(HELP_OPTIONS) <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_subcommand(capsys, command):
    rc, out, err = run(capsys, command, "--help")
    assert (rc, err) == (0, "")
    assert out.startswith(f"usage: lpuasm {command} ")
    sub = _subcommands()[command]
    declared = [s for a in sub._actions for s in a.option_strings]
    declared += [a.metavar or a.dest for a in sub._actions if not a.option_strings]
    assert "-h" in declared and "--help" in declared
    for option in set(HELP_OPTIONS.get(command, [])) | set(declared):
        assert re.search(rf"(^|[\s\[]){re.escape(option)}([\s\],]|$)", out), option


# ==================================================================== usage errors (exit 2)
def test_no_command(capsys):
    err = usage_error(capsys)
    for word in ("asm", "disasm", "isa", "demo"):
        assert word in err


@pytest.mark.parametrize("argv, message", [
    (["asm", "--bogus", "k.lasm"], "lpuasm: error: unrecognized arguments: --bogus"),
    (["--bogus"], "lpuasm: error: unrecognized arguments: --bogus"),
    (["frobnicate"], "lpuasm: error: argument COMMAND: invalid choice: 'frobnicate'"),
    (["asm"], "lpuasm asm: error: the following arguments are required: FILE.lasm"),
    (["disasm"], "lpuasm disasm: error: the following arguments are required: FILE.lpu"),
    (["asm", "k.lasm", "-o"], "lpuasm asm: error: argument -o/--output: expected one argument"),
    (["asm", "k.lasm", "-D"], "lpuasm asm: error: argument -D: expected one argument"),
    (["demo", "--seq", "x"], "lpuasm demo: error: argument --seq: invalid int value: 'x'"),
    (["isa", "vadd", "vsub"], "lpuasm: error: unrecognized arguments: vsub"),
])
def test_usage_errors(capsys, argv, message):
    err = usage_error(capsys, *argv)
    assert err.splitlines()[-1].startswith(message), err
    assert not list(Path().iterdir())  # nothing written


# ==================================================================== bad input (exit 1)
def test_missing_source(capsys):
    assert fails(capsys, "asm", "nope.lasm") == "lpuasm: error: cannot read nope.lasm: No such file or directory\n"


def test_directory_as_source(capsys):
    Path("dir.lasm").mkdir()
    assert fails(capsys, "asm", "dir.lasm") == "lpuasm: error: cannot read dir.lasm: Is a directory\n"


def test_image_as_source(capsys):
    _image_bytes(capsys)
    assert fails(capsys, "asm", "k.lpu") == "lpuasm: error: k.lpu: not a text file (is it an .lpu image?)\n"


def test_binary_as_source(capsys):
    Path("noise.lasm").write_bytes(bytes(range(256)) * 4)
    assert fails(capsys, "asm", "noise.lasm") == (
        "lpuasm: error: noise.lasm: not a text file (is it an .lpu image?)\n")
    assert not Path("noise.lpu").exists()


def test_nul_bytes_in_source(capsys):
    """Valid UTF-8 but not source: still one positioned error."""
    Path("nul.lasm").write_bytes(b"\x00\x01\x02\n")
    err = fails(capsys, "asm", "nul.lasm")
    assert err.splitlines()[0] == "nul.lasm:1:1: error: unexpected character '\\x00'"


def test_syntax_error_rendering(capsys):
    write("bad.lasm", ".chip tiny\n    read x s0e\n    halt\n  vadd.i8 s0e,, s1e\n")
    err = fails(capsys, "asm", "bad.lasm")
    # every syntax error of the file, in order, each with its line and a caret
    assert err == ("bad.lasm:2:12: error: unexpected 's0e'; expected ',' or end of line\n"
                   " 2 |     read x s0e\n"
                   "   |            ^~~\n"
                   "bad.lasm:4:15: error: unexpected ','; expected an operand\n"
                   " 4 |   vadd.i8 s0e,, s1e\n"
                   "   |               ^\n")
    assert not Path("bad.lpu").exists()


def test_semantic_error_in_include_names_the_chain(capsys):
    write("inc/broken.lasm", "    vadd2.i8 s0e, s1e, s2e\n")
    write("m.lasm", '.chip tiny\n.include "broken.lasm"\n    halt\n')
    err = fails(capsys, "asm", "m.lasm", "-I", "inc")
    assert err == ("inc/broken.lasm:1:5: error: unknown mnemonic 'vadd2'\n"
                   " 1 |     vadd2.i8 s0e, s1e, s2e\n"
                   "   |     ^~~~~~~~\n"
                   "  hint: did you mean 'vadd'?\n"
                   "m.lasm:2:1: note: in file included from here\n"
                   ' 2 | .include "broken.lasm"\n'
                   "   | ^~~~~~~~\n")


@pytest.mark.parametrize("option", ["-o", "--listing", "--symbols"])
@pytest.mark.parametrize("path, reason", [("nodir/out", "No such file or directory"),
                                          ("k.lasm/out", "Not a directory")])
def test_unwritable_output(capsys, option, path, reason):
    write("k.lasm", KERNEL)
    argv = ["asm", "k.lasm", option, path]
    if option != "-o":
        argv += ["-o", "k.lpu"]
    assert fails(capsys, *argv) == f"lpuasm: error: cannot write {path}: {reason}\n"


def test_output_is_a_directory(capsys):
    write("k.lasm", KERNEL)
    Path("out").mkdir()
    assert fails(capsys, "asm", "k.lasm", "-o", "out") == "lpuasm: error: cannot write out: Is a directory\n"
    _image_bytes(capsys)
    assert fails(capsys, "disasm", "k.lpu", "-o", "out") == "lpuasm: error: cannot write out: Is a directory\n"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_output_permission_denied(capsys):
    write("k.lasm", KERNEL)
    Path("ro").mkdir()
    Path("ro").chmod(0o500)
    try:
        assert fails(capsys, "asm", "k.lasm", "-o", "ro/k.lpu") == (
            "lpuasm: error: cannot write ro/k.lpu: Permission denied\n")
    finally:
        Path("ro").chmod(0o700)


# ==================================================================== the real process
def _lpuasm(*argv, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "lpuasm", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_process_exit_codes(in_tmp):
    """``python -m lpuasm`` exits with main()'s code and never shows a traceback."""
    write("bad.lasm", ".chip tiny\n    read x s0e\n")
    write("k.lasm", KERNEL)
    cases = [((), 2), (("asm", "nope.lasm"), 1), (("asm", "bad.lasm"), 1), (("disasm", "bad.lasm"), 1),
             (("asm", "k.lasm", "-q"), 0)]
    for argv, code in cases:
        p = _lpuasm(*argv, cwd=in_tmp)
        assert p.returncode == code, (argv, p.stderr)
        assert "Traceback" not in p.stdout + p.stderr, argv
    assert Path("k.lpu").is_file()
    p = _lpuasm("asm", "bad.lasm", cwd=in_tmp)
    assert p.stderr.splitlines()[0] == "bad.lasm:2:12: error: unexpected 's0e'; expected ',' or end of line"
