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
    assert sorted(words("print ")) == [("a", 0), ("b", 0), *((f"mxm{i}", 0) for i in range(4)), ("y", 0)]
    assert words("watch n") == [("nan", -1)]
    assert words("info w") == [("watchpoints", -1)]
    assert words("until cyc") == [("cycle", -3)]
    assert words("vsu") == [("vsub", -3)]
    assert sorted(words("write s2e, ")) == [("a", 0), ("b", 0), ("y", 0)]
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


# ---- watchpoints, display, until, disasm, trace, typed instructions, MXM -------------------------
FLOAT_SOURCE = """\
.chip tiny
.data  a, W0.b0[0], f32, [1.0, 2.0, 3.0, 4.0]
.space y, E0.b1[0], f32, 1
    read     W0.b0[0], s0e        @3
    read     W1.b0[0], s1e        @2
    read     W2.b0[0], s2e        @1
    read     W3.b0[0], s3e        @0
    vrcp.f32 s0e, s4e             @6
    write    s4e, E0.b1[0]        @13
    write    s5e, E1.b1[0]        @14
    write    s6e, E2.b1[0]        @15
    write    s7e, E3.b1[0]        @16
    halt
"""


def test_watchpoint_on_a_symbol_slice_reports_old_and_new():
    d = add_debugger()
    assert d.add_watchpoint("y[0, 0:4]") == "watchpoint 1: y[0, 0:4] (1 writing instruction)"
    assert d.add_breakpoint("vadd") == "breakpoint 2: opcode vadd (1 instruction)"
    assert d.cont().startswith("breakpoint 2: vadd\ncycle 6")
    assert d.cont() == ("watchpoint 1: y[0, 0:4] (i8, 4) changed at cycle 12, written by row 3 (cycle 11): "
                        "write s2e, E2.b1[0]\nold: [0 0 0 0]\nnew: [11 22 33 44]\n"
                        "cycle 12, row 4/5: icu   halt  ; add.lasm:9:5")
    assert d.stop_reason == "watchpoint 1 (y[0, 0:4])"
    assert d.cont().startswith("cycle 14: end of program")
    # a condition that never holds: no stop; shared numbering with delete/disable
    d.reset()
    assert d.add_watchpoint("y[0, 0:4]", "any(y[0, 0:4] > 100)").endswith("if any(y[0, 0:4] > 100)")
    d.enable([1], False)
    assert d.cont().startswith("breakpoint 2")
    assert d.cont().startswith("cycle 14: end of program")
    assert d.delete([1, 3]) == "deleted 2 watchpoints"
    assert d.info_watchpoints() == "no watchpoints"
    assert d.delete([]) == "deleted 1 breakpoint"
    with pytest.raises(DebugError, match="no data symbol 'yy'"):
        d.add_watchpoint("yy")
    with pytest.raises(DebugError, match="cannot hold NaN"):
        d.add_watchpoint("nan y")


def test_watchpoint_checks_only_the_writes_to_its_words(monkeypatch):
    d, k, image = kernel_debugger(rows=8)
    out = image.data[-1]
    w_text = d.add_watchpoint(f"{out.name}[0]")
    w = d.watchpoints[0]
    assert len(w.events) >= 1 and len(w.events) < len(np.unique(d.program.cycle))
    checks = []
    real = Debugger._check_watch
    monkeypatch.setattr(Debugger, "_check_watch", lambda self, wp: checks.append(self.cycle) or real(self, wp))
    text = d.cont()
    assert text.startswith(f"watchpoint 1: {out.name}[0]"), (w_text, text)
    assert checks == [int(w.events[0])]  # the first write to the watched words changed them
    # the values reported are those of a fresh run at the same point
    fresh, _, _ = kernel_debugger(rows=8)
    fresh.goto(d.cycle)
    assert "\nnew:" in text and fresh.examine(f"{out.name}[0]").split(":\n", 1)[1] in text


def test_watch_nan_and_value_condition(tmp_path):
    f = tmp_path / "nan.lasm"
    f.write_text(FLOAT_SOURCE.replace("[1.0, 2.0, 3.0, 4.0]", "[1.0, 0.0, 3.0, 4.0]"))
    d = Debugger()
    d.load(str(f))
    assert d.add_watchpoint("nan y").startswith("watchpoint 1: NaN/Inf in y (4 writing instructions)")
    text = d.cont()
    # the last byte plane makes 1/0 an Inf: byte planes are written by their own slices
    assert text.startswith("watchpoint 1: NaN/Inf in y (f32, 1x32) changed at cycle 17, written by row 8 "
                           "(cycle 16): write s7e, E3.b1[0]\nold:\n[[1.1754944e-38")
    assert "\nnew:\n[[1.                inf 0.33333334 0.25" in text
    assert d.cont().startswith("cycle ")  # no new NaN/Inf after that
    d.reset()
    d.delete([])
    d.add_watchpoint("y[0, 0:2]", "value[1] > 0 and old[1] == 0")
    assert d.cont().startswith("watchpoint 2: y[0, 0:2] (f32, 2) changed at cycle 16")


def test_stream_watchpoint():
    d = add_debugger()
    assert d.add_watchpoint("s2e@e2") == "watchpoint 1: stream s2e@e2 (1 value pass)"
    assert d.cont().startswith("watchpoint 1: s2e@e2 at cycle 11 (i8, from row 2: vadd.i8 s0e, s1e, s2e):\n"
                               "[11 22 33 44 55")
    assert d.cycle == 11 and d.row == 3
    d.reset()
    d.add_watchpoint("s0e@alu0", "value[0] == 99")
    d.enable([1], False)
    assert d.cont().startswith("cycle 14: end of program")
    with pytest.raises(DebugError, match="no position 'zz'"):
        d.add_watchpoint("s0e@zz")


def test_display_until_disasm_and_trace(tmp_path):
    import json

    d = add_debugger()
    assert d.add_display("y[0, 0:2]") == "1: y[0, 0:2] (i8, 2) at cycle 0:\n[0 0]"
    assert commands.execute(d, "until y[0, 0] == 11") == (
        "cycle 12, row 4/5: icu   halt  ; add.lasm:9:5\n1: y[0, 0:2] (i8, 2) at cycle 12:\n[11 22]")
    with pytest.raises(DebugError, match="holds already"):
        d.until("y[0, 0] == 11")
    assert d.undisplay([1]) == "deleted 1 display"
    d.reset()
    assert d.until("cycle >= 5").startswith("cycle 6, row 2/5")  # checked where instructions issue
    assert d.disasm(None, 3) == (
        "         1  @2      w1    read W1.b0[0], s1e  ; add.lasm:6:5\n"
        "=>       2  @6      alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5\n"
        "         3  @11     e2    write s2e, E2.b1[0]  ; add.lasm:8:5")
    d.add_breakpoint("write")
    assert d.disasm("@11", 1) == "  b      3  @11     e2    write s2e, E2.b1[0]  ; add.lasm:8:5"
    with pytest.raises(DebugError, match="outside the program"):
        d.disasm("9")
    assert d.trace(str(tmp_path / "t.json")) == f"wrote {tmp_path / 't.json'}: 2 instructions issued up to cycle 6"
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert [e["name"] for e in events if e["ph"] == "X"] == ["read", "read"]
    assert d.until("y[0, 0] == 99") == (  # until honours breakpoints
        "breakpoint 1: write\nuntil: stopped before 'y[0, 0] == 99' held\n"
        "cycle 11, row 3/5: e2    write s2e, E2.b1[0]  ; add.lasm:8:5")
    with pytest.raises(DebugError, match="never held"):
        d.until("y[0, 0] == 99")
    assert d.cycle == 14 and d.row == 5


def test_typed_instructions_run_on_the_live_state():
    d = add_debugger()
    d.goto(6)
    run = lambda line: commands.execute(d, line)  # noqa: E731
    assert run("vadd.i8 s0e, 1, s2e @+0") == ("vadd.i8 s0e, 1, s2e  at cycle 6 on alu0:\n"
                                              "s2e (i8) = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 "
                                              "1 1 1 1 1 1]")
    assert run(".equ K, 2 * 5") == "K = 10"
    assert run("vmul.i8 s2e, K, s3e").endswith("s3e (i8) = [20 30 40 50 60 70 80 90 10 10 10 10 10 10 10 10 10 "
                                               "10 10 10 10 10 10 10 10 10 10 10 10 10 10 10]")
    assert run("write s3e, y").startswith("write s3e, E2.b1[0]  at cycle 6 on e2:\nE2.b1[0] = [20 30 40")
    assert d.examine("y[0, 0:3]").endswith("[20 30 40]")
    assert run("print s3e").startswith("s3e (i8, typed) at cycle 6:\n[20 30")
    with pytest.raises(DebugError, match=r"^undefined symbol 'Q' \(column 14\)$"):
        run("vadd.i8 s0e, Q, s2e")
    with pytest.raises(DebugError, match="'halt' cannot run at the prompt: it ends the program"):
        run("halt")
    with pytest.raises(DebugError, match="no value passes MXM"):  # MXM instructions run (typed_model tests)
        run("lw.i8 s0e, mxm0")
    with pytest.raises(DebugError, match="no value passes VXM on stream s9e at cycle 6"):
        run("vneg.i8 s9e, s10e")
    assert d.add_breakpoint("halt", "y[0, 1] == 22 and K == 10").startswith("breakpoint 1")
    d.step()  # a move clears the typed streams; the typed SRAM write stays going forward
    with pytest.raises(DebugError, match="no typed instruction has written s3e"):
        d.examine("s3e")
    assert d.examine("y[0, 0:3]").endswith("[20 30 40]")
    assert d.cont().startswith("breakpoint 1: halt")  # the program's write replaced it; K works in conditions
    d.back(3)  # going back to before the typed write drops it
    assert d.examine("y[0, 0:3]").endswith("[0 0 0]")


def test_mxm_and_vxm_state():
    d, k, image = kernel_debugger("gemm", snapshot_every=16, M=8, K=32, N=32)
    d.add_breakpoint("acc")
    d.cont()
    info = d.info_mxm("mxm2")
    assert info.splitlines() == [f"mxm2 at cycle {d.cycle}:", "  weights     f16 16x32 (install 1)",
                                 "  buffer      16 f16 rows of 16",
                                 "  products    8 (ready at cycle 36, 37, 38, 39, 40, 41, ...)",
                                 "  accumulator rows in use: none"]
    assert commands.execute(d, "info mxm0").splitlines()[1] == "  weights     none installed"
    w = d.engine.planes[2].weights
    text = commands.execute(d, "x/f16 mxm2.weights[0:2, 0:8]")
    assert text.startswith(f"mxm2.weights[0:2, 0:8] (f16, 2x8) at cycle {d.cycle}:\n")
    with np.printoptions(threshold=4000, linewidth=110):
        assert text.endswith(str(w[0:2, 0:8]))
    assert commands.execute(d, "x/x mxm2.weights[0, 0:1]").endswith(f"[0x{int(w[0, 0].view(np.uint16)):04x}]")
    with pytest.raises(DebugError, match="holds f16 values; /f32 needs the same element size"):
        d.examine("mxm2.weights", "f32")
    with pytest.raises(DebugError, match="no MXM plane 'mxm9'"):
        d.examine("mxm9")
    assert d.step(60).startswith("breakpoint 1: acc\nstep: stopped after 3 of 60 instructions\n")
    d.enable([], False)
    d.step(60)
    assert "accumulator rows in use: 0-" in d.info_mxm("mxm2")
    assert d.examine("mxm2.acc[0, 0:2]").startswith("mxm2.acc[0, 0:2] (f32, 2)")
    assert commands.execute(d, "info vxm").startswith(f"VXM ALUs at cycle {d.cycle}:\n  alu0")


def test_scripted_watch_display_and_typed_session(tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("watch y[0, 0:4]\ndisplay/x y[0, 0:2]\ncontinue\ninfo breakpoints\ngoto 6\n"
                      "vadd.i8 s0e, 1, s2e\nvadd.i8 s0e, Q, s2e\nundisplay\n")
    rc = main(["repl", str(ADD), "--script", str(script)])
    out, err = capsys.readouterr()
    assert rc == 1 and err == ""
    assert out == f"""\
{ADD}: 5 instructions on 5 queues, 14 cycles, chip tiny
(lpu) watch y[0, 0:4]
watchpoint 1: y[0, 0:4] (1 writing instruction)
(lpu) display/x y[0, 0:2]
1: y[0, 0:2] (i8, 2) at cycle 0:
[0x00 0x00]
(lpu) continue
watchpoint 1: y[0, 0:4] (i8, 4) changed at cycle 12, written by row 3 (cycle 11): write s2e, E2.b1[0]
old: [0 0 0 0]
new: [11 22 33 44]
cycle 12, row 4/5: icu   halt  ; add.lasm:9:5
1: y[0, 0:2] (i8, 2) at cycle 12:
[0x0b 0x16]
(lpu) info breakpoints
Num  Enb  Hits  What
1    y    1     watch y[0, 0:4] (1 writing instruction)
(lpu) goto 6
cycle 6, row 2/5: alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5
1: y[0, 0:2] (i8, 2) at cycle 6:
[0x00 0x00]
(lpu) vadd.i8 s0e, 1, s2e
vadd.i8 s0e, 1, s2e  at cycle 6 on alu0:
s2e (i8) = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]
(lpu) vadd.i8 s0e, Q, s2e
error: undefined symbol 'Q' (column 14)
(lpu) undisplay
deleted 1 display
"""


# ---- stops during step/cycle/until, break on a pc, data directives, info units ----------------------
def test_step_and_cycle_stop_early_at_breakpoints_and_watchpoints(tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("break *2\nbreak pc 3 if cycle > 100\nwatch y[0, 0:2]\nstep 5\nstep 5\nreset\n"
                      "cycle 20\ncycle 20\ninfo breakpoints\nbreak pc 7\n")
    rc = main(["repl", str(ADD), "--script", str(script)])
    out, err = capsys.readouterr()
    assert rc == 1 and err == ""
    assert out == f"""\
{ADD}: 5 instructions on 5 queues, 14 cycles, chip tiny
(lpu) break *2
breakpoint 1: pc 2 (cycle 6, alu0: vadd.i8 s0e, s1e, s2e)
(lpu) break pc 3 if cycle > 100
breakpoint 2: pc 3 (cycle 11, e2: write s2e, E2.b1[0]) if cycle > 100
(lpu) watch y[0, 0:2]
watchpoint 3: y[0, 0:2] (1 writing instruction)
(lpu) step 5
breakpoint 1: *2
step: stopped after 2 of 5 instructions
cycle 6, row 2/5: alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5
(lpu) step 5
watchpoint 3: y[0, 0:2] (i8, 2) changed at cycle 12, written by row 3 (cycle 11): write s2e, E2.b1[0]
old: [0 0]
new: [11 22]
step: stopped after 2 of 5 instructions
cycle 12, row 4/5: icu   halt  ; add.lasm:9:5
(lpu) reset
cycle 0, row 0/5: w3    read W3.b0[0], s0e  ; add.lasm:5:5
(lpu) cycle 20
breakpoint 1: *2
cycle: stopped after 6 of 20 cycles
cycle 6, row 2/5: alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5
(lpu) cycle 20
watchpoint 3: y[0, 0:2] (i8, 2) changed at cycle 12, written by row 3 (cycle 11): write s2e, E2.b1[0]
old: [0 0]
new: [11 22]
cycle: stopped after 6 of 20 cycles
cycle 12, row 4/5: icu   halt  ; add.lasm:9:5
(lpu) info breakpoints
Num  Enb  Hits  What
1    y    2     pc 2 (cycle 6, alu0: vadd.i8 s0e, s1e, s2e)
2    y    0     pc 3 (cycle 11, e2: write s2e, E2.b1[0]) if cycle > 100
3    y    2     watch y[0, 0:2] (1 writing instruction)
(lpu) break pc 7
error: break: pc 7 is outside the program (rows 0..4 in issue order)
"""
    # without stops on the way, step and cycle go the whole way
    d = add_debugger()
    d.add_breakpoint("pc 1", "cycle > 100")
    assert d.step(3).startswith("cycle 11, row 3/5") and d.stop_reason == "step"
    assert d.tick(2).startswith("cycle 13, row 5/5") is False and d.cycle == 13


def test_enter_repeats_a_step_that_stopped_early(tmp_path):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from lpuasm.repl.session import interactive, make_session

    d = add_debugger()
    d.add_breakpoint("*1")
    d.add_breakpoint("*3")
    printed = []
    with create_pipe_input() as inp:
        inp.send_text("step 9\n\n\nquit\n")
        session = make_session(d, input=inp, output=DummyOutput(), history_file=tmp_path / "history")
        assert interactive(d, session, printed.append) == 0
    assert printed[0].startswith("breakpoint 1: *1\nstep: stopped after 1 of 9 instructions\ncycle 2, row 1/5")
    assert printed[1].startswith("breakpoint 2: *3\nstep: stopped after 2 of 9 instructions\ncycle 11, row 3/5")
    assert printed[2].startswith("cycle 14: end of program")


def test_data_directives_at_the_prompt(tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("goto 6\n.data t, W3.b0[4], i8, [[1, 2], [3, 4]]\n.data u, W3.b0[0], i8, [1]\n"
                      ".data t, W5.b0[0], i8, [1]\n.space s, W0.b1[0], i16, 2\n"
                      ".blob bb, W0.b0[8], i16, 1, 2, \"AQACAA==\"\nprint bb\n.data q, W3.b0[9], i8, [300]\n"
                      "vadd.i8 s0e, 1, s2e\nwrite s2e, t\nstep\nprint t[0:2, 0:2]\nback\nprint t\nback\nprint t\n")
    rc = main(["repl", str(ADD), "--script", str(script)])
    out, err = capsys.readouterr()
    assert rc == 1 and err == ""
    assert out == f"""\
{ADD}: 5 instructions on 5 queues, 14 cycles, chip tiny
(lpu) goto 6
cycle 6, row 2/5: alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5
(lpu) .data t, W3.b0[4], i8, [[1, 2], [3, 4]]
t (i8, 2x2) at W3.b0[4:6]: placed at cycle 6
(lpu) .data u, W3.b0[0], i8, [1]
error: 'u' (words 0..0) overlaps 'a' (words 0..0) in W3.b0 (column 10)
(lpu) .data t, W5.b0[0], i8, [1]
error: 't' is already defined as a data symbol (column 7)
(lpu) .space s, W0.b1[0], i16, 2
s (i16, 2x32) at W0.b1[0:2] and the next 1 slice (its byte planes): reserved (its words keep what they hold)
(lpu) .blob bb, W0.b0[8], i16, 1, 2, "AQACAA=="
bb (i16, 1x2) at W0.b0[8:9] and the next 1 slice (its byte planes): placed at cycle 6
(lpu) print bb
bb (i16, 1x2) at cycle 6:
[[1 2]]
(lpu) .data q, W3.b0[9], i8, [300]
error: value out of range for i8 (-128..127) (column 24)
(lpu) vadd.i8 s0e, 1, s2e
vadd.i8 s0e, 1, s2e  at cycle 6 on alu0:
s2e (i8) = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]
(lpu) write s2e, t
write s2e, W3.b0[4]  at cycle 6 on w3:
W3.b0[4] = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]
(lpu) step
cycle 11, row 3/5: e2    write s2e, E2.b1[0]  ; add.lasm:8:5
(lpu) print t[0:2, 0:2]
t[0:2, 0:2] (i8, 2x2) at cycle 11:
[[2 3]
 [3 4]]
(lpu) back
cycle 6, row 2/5: alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5
(lpu) print t
t (i8, 2x2) at cycle 6:
[[2 3]
 [3 4]]
(lpu) back
cycle 2, row 1/5: w1    read W1.b0[0], s1e  ; add.lasm:6:5
(lpu) print t
error: no data symbol 't'
"""


def test_typed_data_survives_replays_and_is_bit_identical():
    d, _, _ = kernel_debugger(rows=8, snapshot_every=16)
    d.step(40)
    line = ".data t, E7.b1[200], i8, [[5, 6, 7], [8, 9, 10]]"
    assert commands.execute(d, line).startswith("t (i8, 2x3) at E7.b1[200:202]: placed at cycle")
    assert d.add_breakpoint("@80", "t[1, 2] == 10").startswith("breakpoint 1")  # usable in conditions
    d.step(50)
    d.back(30)  # from a snapshot after the directive
    d.back(15)  # from a snapshot before it: the replay places it again
    fresh, _, _ = kernel_debugger(rows=8)
    fresh.step(40)
    commands.execute(fresh, line)
    fresh.step(5)
    assert state(d) == state(fresh)
    assert d.examine("t").endswith("[[ 5  6  7]\n [ 8  9 10]]")
    assert d.cont().startswith("breakpoint 1: @80\ncycle 80")
    d.goto(0)  # going back before it drops tensor and symbol
    with pytest.raises(DebugError, match="no data symbol 't'"):
        d.examine("t")
    blank, _, _ = kernel_debugger(rows=8)
    assert state(d)[:3] == state(blank)[:3]  # SRAM, valid mask and row (goto 0 stands before cycle 7)


def test_info_units_busy_idle_history():
    d = add_debugger()
    d.goto(12)
    assert commands.execute(d, "info units") == """\
units at cycle 12: busy = cycles with an issue; timeline of cycles 0..11 (1 cycle a mark; █ all busy, · idle)
queue  unit  issued/total  busy  idle   util  timeline      next
icu    icu            0/1     0    12   0.0%  ············  @12 halt
w1     mem            1/1     1    11   8.3%  ··█·········  done
w3     mem            1/1     1    11   8.3%  █···········  done
e2     mem            1/1     1    11   8.3%  ···········█  done
alu0   vxm            1/1     1    11   8.3%  ······█·····  done"""
    assert commands.execute(d, "info units 4").splitlines()[5] == (
        "e2     mem            1/1     1    11   8.3%  ···█      done")
    d, _, _ = kernel_debugger(rows=8)
    d.cont()
    lines = d.info_units(1000).splitlines()
    assert "(" in lines[0] and "cycles a mark" in lines[0]
    assert all(len(line.split()[5]) <= 32 for line in lines[2:])
    with pytest.raises(DebugError, match="takes no argument"):
        commands.execute(d, "info breakpoints 3")


# ---- conditions short-circuit, typed MXM instructions, watchpoints on typed writes -------------------
def test_conditions_short_circuit_elementwise_and_c_style(tmp_path, capsys, monkeypatch):
    from lpuasm.repl import conditions

    script = tmp_path / "s.txt"
    script.write_text(".equ Z, 0\nbreak halt if Z != 0 && 1/Z > 2\nbreak halt if 1/Z > 2\ncontinue\n"
                      "delete 2\nreset\nuntil any(y[0, 6:10] != 0 && 100/y[0, 6:10] < 2)\nreset\n"
                      "until 0 < y[0, 0] < 20 || zz > 1\n"
                      "reset\nuntil !(y[0, 0] == 0) && yy > 1\nuntil y[0, 0:4] != 0 and y[0, 4:8] > 50\n"
                      "until cycle > 8 and y[0, 40] > 0\n")
    rc = main(["repl", str(ADD), "--script", str(script)])
    out, err = capsys.readouterr()
    assert rc == 1 and err == ""  # no numpy warning either (100/0 inside a tensor)
    assert out == f"""\
{ADD}: 5 instructions on 5 queues, 14 cycles, chip tiny
(lpu) .equ Z, 0
Z = 0
(lpu) break halt if Z != 0 && 1/Z > 2
breakpoint 1: opcode halt (1 instruction) if Z != 0 && 1/Z > 2
(lpu) break halt if 1/Z > 2
breakpoint 2: opcode halt (1 instruction) if 1/Z > 2
(lpu) continue
error: breakpoint 2: condition '1/Z > 2' failed: division by zero
(lpu) delete 2
deleted 1 breakpoint
(lpu) reset
cycle 0, row 0/5: w3    read W3.b0[0], s0e  ; add.lasm:5:5
(lpu) until any(y[0, 6:10] != 0 && 100/y[0, 6:10] < 2)
cycle 12, row 4/5: icu   halt  ; add.lasm:9:5
(lpu) reset
cycle 0, row 0/5: w3    read W3.b0[0], s0e  ; add.lasm:5:5
(lpu) until 0 < y[0, 0] < 20 || zz > 1
error: until: condition '0 < y[0, 0] < 20 || zz > 1' failed: unknown name 'zz'
(lpu) reset
cycle 0, row 0/5: w3    read W3.b0[0], s0e  ; add.lasm:5:5
(lpu) until !(y[0, 0] == 0) && yy > 1
error: until: condition '!(y[0, 0] == 0) && yy > 1' failed: unknown name 'yy'; did you mean 'y'?
(lpu) until y[0, 0:4] != 0 and y[0, 4:8] > 50
error: 'y[0, 0:4] != 0 and y[0, 4:8] > 50' holds already at cycle 12
(lpu) until cycle > 8 and y[0, 40] > 0
error: until: condition 'cycle > 8 and y[0, 40] > 0' failed: index 40 is out of bounds for axis 1 with size 32
"""
    # and/or/not and chained comparisons work elementwise; a symbol is read only when reached
    d = add_debugger()
    d.goto(12)
    assert d._eval("y[0, 0:4] > 20 or y[0, 0:4] == 11")
    assert not d._eval("not (y[0, 0:4] > 20)")
    assert d._eval("10 < y[0, 0:4] < 50")
    assert not d._eval("10 < y[0, 0:4] < 40")
    assert d._eval("y[0, 0:2] != 0 && 22 / y[0, 0:2] >= 1")  # with Python's eval, an ambiguous truth value
    reads = []
    real = conditions.read_symbol
    monkeypatch.setattr(conditions, "read_symbol", lambda *a: reads.append(a[1].name) or real(*a))
    assert not d._eval("cycle > 100 && any(y > 0)") and reads == []
    assert d._eval("cycle > 10 && any(y > 0)") and reads == ["y"]


def test_typed_mxm_instructions_change_the_plane_and_survive_replays():
    d = add_debugger()
    d.goto(6)
    run = lambda line: commands.execute(d, line)  # noqa: E731
    run("read a, s0e")
    assert run("lw.i8 s0e, mxm0") == "lw.i8 s0e, mxm0  at cycle 6 on mxm0:\nmxm0 weight buffer: 1 i8 row"
    assert run("iw mxm0") == "iw mxm0  at cycle 6 on mxm0:\nmxm0 weights: i8 32x32 (install 1)"
    assert run("abc.i8 s0e, mxm0") == "abc.i8 s0e, mxm0  at cycle 6 on mxm0:\nmxm0 products: 1 queued, the typed " \
                                      "one ready now"
    assert run("acc.i32 mxm0, s4e, 3, 0") == (
        "acc.i32 mxm0, s4e, 3, 0  at cycle 6 on mxm0:\nmxm0 accumulator row 3 -> s4e (i32) = "
        "[1 2 3 4 5 6 7 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0]")  # a . a row by row: only W[0] is a
    assert run("x/i32 s4e").startswith("s4e (i32, typed) at cycle 6:\n[1 2 3 4")
    with pytest.raises(DebugError, match="^no product ready on mxm0$"):
        run("acc.i32 mxm0, s4e, 3, 1")  # the state is intact after an error
    with pytest.raises(DebugError, match="^'nop' cannot run at the prompt: it only delays its queue"):
        run("nop alu0, 3")
    with pytest.raises(DebugError, match="^'send' cannot run at the prompt: C2C instructions carry no data"):
        run("send")

    def planes(dbg):
        dbg._plane("mxm0")
        return [(p.installed, p.version, p.dtype, None if p.weights is None else p.weights.tobytes(), len(p.buffer),
                 len(p.pending), {k: v.tobytes() for k, v in p.acc.items()}) for p in dbg.engine.planes]

    here = planes(d)
    assert here[0][:3] == (True, 1, "i8") and list(here[0][6]) == [3]
    d.step(2)
    d.back(2)  # replays from the start snapshot and re-applies the typed instructions at their position
    assert planes(d) == here
    assert "accumulator rows in use: 3 (1 of 32)" in d.info_mxm("mxm0")
    d.goto(2)  # before them: dropped
    assert d.info_mxm("mxm0").splitlines()[1] == "  weights     none installed"
    d.goto(6)
    assert planes(d) != here


def test_typed_writes_and_data_directives_report_watchpoints(tmp_path, capsys):
    script = tmp_path / "s.txt"
    script.write_text("watch y[0, 0:4]\nwatch y[0, 0:2] if value[0] > 100\nwatch E2.b1[1]\ngoto 6\n"
                      "vadd.i8 s0e, 1, s2e\nwrite s2e, y\nwrite s2e, y\n.data t, E2.b1[1], i8, [7]\n"
                      "info breakpoints\ncontinue\n")
    rc = main(["repl", str(ADD), "--script", str(script)])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert out == f"""\
{ADD}: 5 instructions on 5 queues, 14 cycles, chip tiny
(lpu) watch y[0, 0:4]
watchpoint 1: y[0, 0:4] (1 writing instruction)
(lpu) watch y[0, 0:2] if value[0] > 100
watchpoint 2: y[0, 0:2] (1 writing instruction) if value[0] > 100
(lpu) watch E2.b1[1]
watchpoint 3: E2.b1[1] (0 writing instructions)
(lpu) goto 6
cycle 6, row 2/5: alu0  vadd.i8 s0e, s1e, s2e  ; add.lasm:7:5
(lpu) vadd.i8 s0e, 1, s2e
vadd.i8 s0e, 1, s2e  at cycle 6 on alu0:
s2e (i8) = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]
(lpu) write s2e, y
write s2e, E2.b1[0]  at cycle 6 on e2:
E2.b1[0] = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]
watchpoint 1: y[0, 0:4] (i8, 4) changed at cycle 6, written at the prompt by write s2e, E2.b1[0]
old: [0 0 0 0]
new: [2 3 4 5]
(lpu) write s2e, y
write s2e, E2.b1[0]  at cycle 6 on e2:
E2.b1[0] = [2 3 4 5 6 7 8 9 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1]
(lpu) .data t, E2.b1[1], i8, [7]
t (i8, 1x1) at E2.b1[1:2]: placed at cycle 6
watchpoint 3: E2.b1[1] (i8, 1x32) changed at cycle 6, written at the prompt by .data t
old: [[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0]]
new: [[7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0]]
(lpu) info breakpoints
Num  Enb  Hits  What
1    y    1     watch y[0, 0:4] (1 writing instruction)
2    y    0     watch y[0, 0:2] (1 writing instruction) if value[0] > 100
3    y    1     watch E2.b1[1] (0 writing instructions)
(lpu) continue
watchpoint 1: y[0, 0:4] (i8, 4) changed at cycle 12, written by row 3 (cycle 11): write s2e, E2.b1[0]
old: [2 3 4 5]
new: [11 22 33 44]
cycle 12, row 4/5: icu   halt  ; add.lasm:9:5
"""
