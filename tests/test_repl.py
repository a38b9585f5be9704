"""The REPL: the debugger core without a terminal, the command registry,
completion, scripted mode through main(argv), and one prompt_toolkit session."""

from pathlib import Path

import numpy as np
import pytest

from lpuasm import config, kernels
from lpuasm.cli import main
from lpuasm.interp import run
from lpuasm.program import load_program
from lpuasm.repl import commands
from lpuasm.repl.core import DebugError, Debugger
from lpuasm.sim import read_symbol

ADD_SOURCE = """\
.chip tiny
.data  a, W3.b0[0], i8, [1, 2, 3, 4, 5, 6, 7, 8]
.data  b, W1.b0[0], i8, [10, 20, 30, 40, 50, 60, 70, 80]
.space y, E2.b1[0], i8, 1
    read    a, s0e               @0
    read    b, s1e               @2
    vadd.i8 s0e, s1e, s2e        @6
    write   s2e, y               @11
    halt
"""
ADD = Path("add.lasm")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ADD.write_text(ADD_SOURCE)


def add_debugger() -> Debugger:
    d = Debugger()
    d.load(str(ADD))
    return d


def kernel_debugger(kernel="stream", snapshot_every=64, history_bytes=256 << 20, **params):
    k = kernels.build(kernel, config.TINY, **params)
    image = kernels.assemble_ir(k.ir)
    d = Debugger(snapshot_every=snapshot_every, history_bytes=history_bytes)
    d.load_image(image, config.TINY, name=kernel)
    return d, k, image


def state(d: Debugger):
    sram, valid = d.sram_state()
    return sram.tobytes(), valid.tobytes(), d.row, d.cycle, d.engine.nan_inf


# ---- core --------------------------------------------------------------------------------------
def test_step_cycle_and_print():
    d = add_debugger()
    assert d.where() == "cycle 0, row 0/5: w3    read W3.b0[0], s0e  ; add.lasm:5:5"
    assert d.step(3).startswith("cycle 11, row 3/5: e2    write s2e, E2.b1[0]")
    assert "[11 22 33 44 55 66 77 88  0" in d.examine("s2e@e2")
    assert "from row 0: read W3.b0[0], s0e" in d.examine("s0e@alu0:6")
    assert d.examine("y[0, 0:4]").endswith("[0 0 0 0]")  # the write has not issued
    d.tick(2)  # the write commits at cycle 12
    assert d.examine("y[0, 0:4]").endswith("[11 22 33 44]")
    assert d.tick(5) == "cycle 14: end of program (5 instructions issued)"
    with pytest.raises(DebugError, match="finished"):
        d.step()


def test_examine_formats_and_errors():
    d = add_debugger()
    assert d.examine("W3.b0[0:1]", "x").splitlines()[1].startswith("[[0x01 0x02 0x03")
    assert d.examine("a", "i16") == "a (i16, 1x8) at cycle 0:\n[[1 2 3 4 5 6 7 8]]"
    with pytest.raises(DebugError, match="no data symbol 'yy'; did you mean 'y'"):
        d.examine("yy")
    with pytest.raises(DebugError, match="in the future"):
        d.examine("s0e@alu0:6")
    with pytest.raises(DebugError, match="unknown format"):
        d.examine("y", "f64")


def test_breakpoints_kinds_conditions_and_continue():
    d = add_debugger()
    assert d.add_breakpoint("vadd") == "breakpoint 1: opcode vadd (1 instruction)"
    assert d.add_breakpoint("e2", "cycle > 100").startswith("breakpoint 2: queue e2")
    assert d.add_breakpoint("add.lasm:9") == "breakpoint 3: add.lasm:9 (1 instruction)"
    assert d.add_breakpoint("@3") == "breakpoint 4: at cycle 3"
    assert d.cont().startswith("breakpoint 4: @3\ncycle 3, row 2/5")
    assert d.cont().startswith("breakpoint 1: vadd\ncycle 6, row 2/5")
    assert d.cont().startswith("breakpoint 3:")  # e2's condition never holds
    assert d.row == 4
    d.enable([3], False)
    assert d.cont() == "cycle 14: end of program (5 instructions issued)"
    info = d.info_breakpoints().splitlines()
    assert info[0] == "Num  Enb  Hits  What"
    assert info[3].startswith("3    n    1")
    assert d.delete([]) == "deleted 4 breakpoints"
    with pytest.raises(DebugError, match="did you mean 'vadd'"):
        d.add_breakpoint("vaddd")
    with pytest.raises(DebugError, match="only"):
        d.add_breakpoint("vadd", "__import__('os')")


def test_condition_on_tensor():
    d = add_debugger()
    d.add_breakpoint("halt", "y[0, 0] == 11")
    assert d.cont().startswith("breakpoint 1: halt")


def test_back_is_bit_identical_to_a_fresh_run():
    d, _, image = kernel_debugger(rows=8)  # 320 instructions, snapshots every 64 rows
    n = len(d.program)
    assert n >= 300
    for N, M in ((n - 5, 1), (n - 5, 100), (200, 137), (n, n)):
        d.reset()
        d.step(N)
        d.back(M)
        fresh, _, _ = kernel_debugger(rows=8)
        if N - M:
            fresh.step(N - M)
        assert state(d) == state(fresh), (N, M)
    # going back and forth, then to the end, gives the interpreter's final SRAM
    d.goto(50)
    d.goto(20)
    d.cont()
    expected = run(load_program(image, config.TINY), engine_name="cycles").sram
    assert d.sram_state()[0].tobytes() == expected.tobytes()


def test_back_within_a_tiny_history_budget():
    d, _, _ = kernel_debugger(rows=8, snapshot_every=32, history_bytes=1)
    d.step(300)
    assert len(d.snaps) == 1  # all older history dropped
    d.back(250)  # before the oldest snapshot: replays from the image
    fresh, _, _ = kernel_debugger(rows=8)
    fresh.step(50)
    assert state(d) == state(fresh)


def test_back_over_mxm_state():
    d, k, image = kernel_debugger("gemm", snapshot_every=16, M=8, K=32, N=32)
    n = len(d.program)
    d.step(n // 2)
    d.back(n // 3)
    d.cont()
    for name, want in k.expected.items():
        got = read_symbol(d.sram_state()[0], next(s for s in image.data if s.name == name), config.TINY)
        assert got.tobytes() == np.ascontiguousarray(want).tobytes()


def test_violation_stops_before_the_failing_instruction(tmp_path):
    src = ADD_SOURCE.replace("@11", "@12")
    f = tmp_path / "late.lasm"
    f.write_text(src)
    d = Debugger()
    assert "warning: the schedule has a violation" in d.load(str(f))
    with pytest.raises(DebugError, match="stopped before the violation: .*no value passes E2"):
        d.cont()
    assert d.row == 3 and d.cycle == 12 and d.stop_reason == "violation"
    assert d.back().startswith("cycle 6, row 2/5")  # the state is intact


# ---- registry and completion -----------------------------------------------------------------
def test_help_is_generated_from_the_registry():
    text = commands.help_text()
    for c in commands.COMMANDS:
        assert c.syntax in text and c.summary in text
    assert commands.help_text("s").startswith("step [N]\n")
    with pytest.raises(DebugError, match="unknown command 'stpe'; did you mean 'step'"):
        commands.execute(add_debugger(), "stpe")


def test_completion_on_documents():
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from lpuasm.repl.session import make_completer

    comp = make_completer(add_debugger())

    def words(text):
        return [(c.text, c.start_position) for c in comp.get_completions(Document(text), CompleteEvent())]

    assert words("st") == [("step", -2), ("stats", -2)]
    assert ("vadd", -3) in words("break vad")
    assert ("alu0", -2) in words("break al")
    assert sorted(words("print ")) == [("a", 0), ("b", 0), ("y", 0)]
    assert words("print s0e@al")[:2] == [("alu0", -2), ("alu1", -2)]
    assert words("x/f1") == [("f16", -2)]
    assert words("help con") == [("continue", -3)]
    assert words("info b") == [("breakpoints", -1)]


# ---- front ends ---------------------------------------------------------------------------------
def test_scripted_mode_through_main(tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("break write\ncontinue\n\n# a comment\nstep\nprint y[0, 0:4]\nback\nstpe\n")
    rc = main(["repl", str(ADD), "--script", str(script)])
    out, err = capsys.readouterr()
    assert err == ""
    assert rc == 1  # a command failed
    assert out == f"""\
{ADD}: 5 instructions on 5 queues, 14 cycles, chip tiny
(lpu) break write
breakpoint 1: opcode write (1 instruction)
(lpu) continue
breakpoint 1: write
cycle 11, row 3/5: e2    write s2e, E2.b1[0]  ; add.lasm:8:5
(lpu) step
cycle 12, row 4/5: icu   halt  ; add.lasm:9:5
(lpu) print y[0, 0:4]
y[0, 0:4] (i8, 4) at cycle 12:
[11 22 33 44]
(lpu) back
cycle 11, row 3/5: e2    write s2e, E2.b1[0]  ; add.lasm:8:5
(lpu) stpe
error: unknown command 'stpe'; did you mean 'step'? (help lists them)
"""


def test_prompt_toolkit_session(tmp_path):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from lpuasm.repl.session import interactive, make_session

    d = add_debugger()
    printed = []
    with create_pipe_input() as inp:
        inp.send_text("step 2\n\nprint y\nquit\n")
        session = make_session(d, input=inp, output=DummyOutput(), history_file=tmp_path / "history")
        assert interactive(d, session, printed.append) == 0
    assert printed[0].startswith("cycle 6, row 2/5")
    assert printed[1].startswith("cycle 12, row 4/5")  # Enter repeated step 2
    assert printed[2].startswith("y (i8, 1x32) at cycle 12:")
    assert "step 2" in (tmp_path / "history").read_text()
