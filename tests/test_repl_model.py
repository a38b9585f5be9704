"""The REPL on programs made of layers of macro calls, as `lpuasm model build`
writes them: info layers, info calls, breakpoints on a call site or a layer."""

import re
import shutil
from pathlib import Path

import pytest

from lpuasm import imagefile
from lpuasm.cli import main
from lpuasm.repl import commands
from lpuasm.repl.core import DebugError, Debugger

LIB = """\
.once
; two small macros
.macro addk src, dst, k, i, o
    read    src, i
    vadd.i8 i, k, o
    write   o, dst
.endm
.macro twice src, mid, dst
    addk src, mid, 1, s0e, s2e
    addk mid, dst, 2, s0w, s2w
.endm
"""
MODEL = """\
.chip tiny
.include "lib.lasm"
.data  x0, W3.b0[0], i8, [1, 2, 3, 4]
.space h0, E2.b1[0], i8, 1
.space x1, W5.b0[0], i8, 1
.space y0, E4.b1[0], i8, 1
.space h1, E2.b1[1], i8, 1
.space x2, W5.b0[1], i8, 1
.space y1, E4.b1[1], i8, 1
.include "layer0.lasm"
.include "layer1.lasm"
    halt
"""
LAYER = """\
; layer {i}
    twice x{i}, h{i}, x{j}
    addk x{j}, y{i}, {k}, s0e, s2e
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("lib.lasm").write_text(LIB)
    Path("model.lasm").write_text(MODEL)
    for i in range(2):
        Path(f"layer{i}.lasm").write_text(LAYER.format(i=i, j=i + 1, k=3 + i))


def model_debugger() -> Debugger:
    d = Debugger()
    d.load("model.lasm")
    return d


def run_script(tmp_path, capsys, text: str, program: str = "model.lasm") -> tuple[int, str]:
    script = tmp_path / "s.txt"
    script.write_text(text)
    rc = main(["repl", program, "--script", str(script)])
    out, err = capsys.readouterr()
    assert err == ""
    return rc, out


def test_info_layers_and_calls(tmp_path, capsys):
    rc, out = run_script(tmp_path, capsys, "info layers\ninfo calls\ninfo calls 1\ngoto 29\ninfo layers\n"
                                           "info calls layer1.lasm\ninfo calls model.lasm\ninfo calls 7\n"
                                           "info calls lyer1.lasm\ncontinue\ninfo layers\n")
    assert rc == 1
    assert out == """\
model.lasm: 19 instructions on 6 queues, 77 cycles, chip tiny
(lpu) info layers
layers at cycle 0: each source file's outermost calls (adds: cycles its last issue adds to those above)
   layer  file         calls  instructions  issued   first    last    adds
=> 0      layer0.lasm      2             9       0       0      43      44
   1      layer1.lasm      2             9       0      29      74      31
   -      model.lasm       1             1       0      75      75       1
next: row 0 (cycle 0) in layer 0 (layer0.lasm), call layer0.lasm:2 twice (0 of its 6 instructions issued)
(lpu) info calls
calls of layer 0 (layer0.lasm) at cycle 0: 2 calls, 9 instructions, issue cycles 0..43, adds 44
   line  call   instructions  issued   first    last    span    adds  source
=> 2     twice             6       0       0      26      27      27  twice x0, h0, x1
   3     addk              3       0      28      43      16      17  addk x1, y0, 3, s0e, s2e
next: row 0 (cycle 0) in layer 0 (layer0.lasm), call layer0.lasm:2 twice (0 of its 6 instructions issued)
(lpu) info calls 1
calls of layer 1 (layer1.lasm) at cycle 0: 2 calls, 9 instructions, issue cycles 29..74, adds 31
   line  call   instructions  issued   first    last    span    adds  source
   2     twice             6       0      29      57      29      14  twice x1, h1, x2
   3     addk              3       0      59      74      16      17  addk x2, y1, 4, s0e, s2e
next: row 0 (cycle 0) in layer 0 (layer0.lasm), call layer0.lasm:2 twice (0 of its 6 instructions issued)
(lpu) goto 29
cycle 29, row 7/19: w5    read W5.b0[0], s0e  ; lib.lasm:4:5
(lpu) info layers
layers at cycle 29: each source file's outermost calls (adds: cycles its last issue adds to those above)
   layer  file         calls  instructions  issued   first    last    adds
   0      layer0.lasm      2             9       7       0      43      44
=> 1      layer1.lasm      2             9       0      29      74      31
   -      model.lasm       1             1       0      75      75       1
next: row 7 (cycle 29) in layer 1 (layer1.lasm), call layer1.lasm:2 twice (0 of its 6 instructions issued)
(lpu) info calls layer1.lasm
calls of layer 1 (layer1.lasm) at cycle 29: 2 calls, 9 instructions, issue cycles 29..74, adds 31
   line  call   instructions  issued   first    last    span    adds  source
=> 2     twice             6       0      29      57      29      14  twice x1, h1, x2
   3     addk              3       0      59      74      16      17  addk x2, y1, 4, s0e, s2e
next: row 7 (cycle 29) in layer 1 (layer1.lasm), call layer1.lasm:2 twice (0 of its 6 instructions issued)
(lpu) info calls model.lasm
calls of model.lasm at cycle 29: 1 call, 1 instruction, issue cycles 75..75, adds 1
   line  call  instructions  issued   first    last    span    adds  source
   12    halt             1       0      75      75       1       1  halt
next: row 7 (cycle 29) in layer 1 (layer1.lasm), call layer1.lasm:2 twice (0 of its 6 instructions issued)
(lpu) info calls 7
error: info calls: no layer 7 (layers 0..1)
(lpu) info calls lyer1.lasm
error: info calls: no layer or file 'lyer1.lasm' with outermost calls; did you mean 'layer1.lasm'?
(lpu) continue
cycle 77: end of program (19 instructions issued)
(lpu) info layers
layers at cycle 77: each source file's outermost calls (adds: cycles its last issue adds to those above)
   layer  file         calls  instructions  issued   first    last    adds
   0      layer0.lasm      2             9       9       0      43      44
   1      layer1.lasm      2             9       9      29      74      31
   -      model.lasm       1             1       1      75      75       1
end of program: all 19 instructions issued
"""


def test_breakpoints_on_call_sites_and_layers(tmp_path, capsys):
    rc, out = run_script(tmp_path, capsys, "break layer 1\nbreak layer1.lasm:3\nbreak lib.lasm:9\nbreak lib.lasm:4\n"
                                           "info breakpoints\ncontinue\ndelete 4\ncontinue\ncontinue\ncontinue\n"
                                           "continue\nbreak layer 2\nbreak layer1.lasm:1\n"
                                           "break layer 1 if x1[0, 0] > 5\n")
    assert rc == 1
    assert out == """\
model.lasm: 19 instructions on 6 queues, 77 cycles, chip tiny
(lpu) break layer 1
breakpoint 1: layer 1 (layer1.lasm): its first instruction of 9 (row 7, cycle 29, call layer1.lasm:2 twice)
(lpu) break layer1.lasm:3
breakpoint 2: layer1.lasm:3 (call of addk: its first instruction of 3, row 15 at cycle 59)
(lpu) break lib.lasm:9
breakpoint 3: lib.lasm:9 (call of addk, 2 expansions: the first instruction of each, 6 instructions in all)
(lpu) break lib.lasm:4
breakpoint 4: lib.lasm:4 (6 instructions)
(lpu) info breakpoints
Num  Enb  Hits  What
1    y    0     layer 1 (layer1.lasm): its first instruction of 9 (row 7, cycle 29, call layer1.lasm:2 twice)
2    y    0     layer1.lasm:3 (call of addk: its first instruction of 3, row 15 at cycle 59)
3    y    0     lib.lasm:9 (call of addk, 2 expansions: the first instruction of each, 6 instructions in all)
4    y    0     lib.lasm:4 (6 instructions)
(lpu) continue
breakpoint 3: lib.lasm:9
breakpoint 4: lib.lasm:4
cycle 0, row 0/19: w3    read W3.b0[0], s0e  ; lib.lasm:4:5
(lpu) delete 4
deleted 1 breakpoint
(lpu) continue
breakpoint 1: layer 1
breakpoint 3: lib.lasm:9
cycle 29, row 7/19: w5    read W5.b0[0], s0e  ; lib.lasm:4:5
(lpu) continue
breakpoint 2: layer1.lasm:3
cycle 59, row 15/19: w5    read W5.b0[1], s0e  ; lib.lasm:4:5
(lpu) continue
cycle 77: end of program (19 instructions issued)
(lpu) continue
error: the program has finished (use: reset, back, goto)
(lpu) break layer 2
error: break: no layer 2 (layers 0..1)
(lpu) break layer1.lasm:1
error: break: no instruction at layer1.lasm:1
(lpu) break layer 1 if x1[0, 0] > 5
breakpoint 5: layer 1 (layer1.lasm): its first instruction of 9 (row 7, cycle 29, call layer1.lasm:2 twice) \
if x1[0, 0] > 5
"""


def test_without_sources_on_disk_and_without_layer_files(tmp_path):
    d = model_debugger()
    imagefile.save(d.program.image, tmp_path / "m.lpu")
    for f in ("lib.lasm", "model.lasm", "layer0.lasm", "layer1.lasm"):
        Path(f).unlink()
    d = Debugger()
    d.load(str(tmp_path / "m.lpu"))
    assert d.info_calls("0").splitlines()[1:4] == [
        "   line  call   instructions  issued   first    last    span    adds",
        "=> 2     twice             6       0       0      26      27      27",
        "   3     addk              3       0      28      43      16      17"]
    assert d.add_breakpoint("layer1.lasm:2").startswith("breakpoint 1: layer1.lasm:2 (call of twice")
    assert d.cont().startswith("breakpoint 1: layer1.lasm:2\ncycle 29, row 7/19")
    assert commands.execute(d, "info l").splitlines()[3].startswith("=> 1      layer1.lasm")
    # a program without layer<N>.lasm files: one "layer" per file of outermost calls
    Path("add.lasm").write_text(".chip tiny\n.data a, W3.b0[0], i8, [1]\n    read a, s0e\n    vadd.i8 s0e, 1, s2e\n"
                                "    write s2e, E2.b1[0]\n    halt\n")
    d.load("add.lasm")
    text = commands.execute(d, "info layers")
    assert text.splitlines()[2] == "=> -      add.lasm      4             4       0       0      12      13"
    assert commands.execute(d, "info calls").splitlines()[2:4] == [
        "=> 3     read              1       0       0       0       1       1  read a, s0e",
        "   4     vadd              1       0       6       6       1       6  vadd.i8 s0e, 1, s2e"]
    with pytest.raises(DebugError, match=r"no layer 1 \(no source file of the program is named layer<N>.lasm; "
                                         r"give a file: add.lasm\)"):
        d.add_breakpoint("layer 1")
    assert d.add_breakpoint("layer add.lasm").startswith("breakpoint 2: add.lasm: its first instruction of 4")


def test_completion_and_help_name_the_new_words():
    d = model_debugger()
    assert commands.complete(d, "info la") == [("layers", -2)]
    assert commands.complete(d, "info ca") == [("calls", -2)]
    assert ("layer", -3) in commands.complete(d, "break lay")
    assert "info calls [LAYER]" in commands.help_text("info")
    assert "'layer N'" in commands.help_text("break")


def test_a_built_model(tmp_path, capsys):
    """`lpuasm model build`: the layers and the calls of a transformer layer,
    breakpoints on a call line of layer<i>.lasm, with and without the sources."""
    src = tmp_path / "src"
    try:
        main(["model", "build", "--preset", "tiny-llama", "--layers", "2", "--seq", "8", "-o",
              str(tmp_path / "m.lpu"), "--source", str(src)])
    except Exception as e:  # the builder's own tests cover it; this one is about the debugger
        pytest.skip(f"lpuasm model build failed: {type(e).__name__}: {e}")
    capsys.readouterr()
    d = Debugger()
    d.load(str(tmp_path / "m.lpu"))
    layers = d.info_layers().splitlines()
    assert [line[3:].split()[:2] for line in layers[2:4]] == [["0", "layer0.lasm"], ["1", "layer1.lasm"]]
    lines = (src / "layer1.lasm").read_text().splitlines()
    calls = [(n, line.split()[0]) for n, line in enumerate(lines, 1) if line.startswith("    ")]
    table = d.info_calls("1").splitlines()
    assert [(int(t[3:].split()[0]), t[3:].split()[1]) for t in table[2:-1]] == calls
    assert table[1].endswith("adds  source")
    assert all(f"  {lines[n - 1].strip()[:40]}" in t for t, (n, _) in zip(table[2:-1], calls))
    # the adds of a layer's calls sum to the layer's
    assert sum(int(t[3:].split()[7]) for t in table[2:-1]) == int(layers[3].split()[-1])
    n, macro = next(c for c in calls if c[1].startswith("attention"))
    assert re.match(rf"breakpoint 1: \S*layer1.lasm:{n} \(call of {macro}: its first instruction of \d+, row \d+ "
                    rf"at cycle \d+\)$", d.add_breakpoint(f"layer1.lasm:{n}"))
    first = int(d.breakpoints[0].rows[0])
    text = d.cont()
    assert d.row == first and text.startswith(f"breakpoint 1: layer1.lasm:{n}\n")
    assert f"=> {n:<4}  {macro}" in d.info_calls()
    shutil.rmtree(src)
    d2 = Debugger()
    d2.load(str(tmp_path / "m.lpu"))
    table2 = d2.info_calls("layer1.lasm").splitlines()
    assert "source" not in table2[1]
    assert [(int(t[3:].split()[0]), t[3:].split()[1]) for t in table2[2:-1]] == calls
    assert re.match(r"next: row 0 \(cycle 0\) in layer 0 \(layer0.lasm\), call layer0.lasm:\d+ \w+", table2[-1])
