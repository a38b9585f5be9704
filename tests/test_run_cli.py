"""`lpuasm run` through main(argv): results, statistics, traces and errors."""

import json

import numpy as np
import pytest

from lpuasm import imagefile
from lpuasm.assembler import assemble
from lpuasm.cli import main

ADD = """\
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
EXPECTED_Y = [11, 22, 33, 44, 55, 66, 77, 88] + [0] * 24


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(name, text):
    with open(name, "w") as f:
        f.write(text)
    return name


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_run_source_prints_cycles(capsys):
    write("add.lasm", ADD)
    rc, out, err = run(capsys, "run", "add.lasm")
    assert (rc, err) == (0, "")
    # halt at 12 -> 13 cycles, + SUPERLANES - 1 = 1 stagger cycle
    assert out == "add.lasm: 14 cycles (15.6 ns at 900 MHz), 5 instructions\n"


def test_run_image_and_json(capsys):
    write("add.lasm", ADD)
    asm = assemble(ADD, "add.lasm")
    imagefile.save(asm.image, "add.lpu", asm.config)
    rc, out, err = run(capsys, "run", "add.lpu", "--json")
    assert rc == 0
    d = json.loads(out)
    for key in ("cycles", "seconds_at_clock", "instructions", "units", "sram_bytes_read", "sram_bytes_written",
                "macs", "wall_seconds", "sim_instructions_per_second"):
        assert key in d
    assert d["cycles"] == 14 and d["instructions"] == 5
    assert d["sram_bytes_read"] == 64 and d["sram_bytes_written"] == 32
    assert d["units"]["mem"]["busy_cycles"] == 3 and d["units"]["vxm"]["busy_cycles"] == 1
    assert d["units"]["mem"]["utilisation"] == pytest.approx(3 / (14 * 16))


def test_run_stats_table(capsys):
    write("add.lasm", ADD)
    rc, out, _ = run(capsys, "run", "add.lasm", "--stats")
    assert rc == 0
    assert "  cycles              14" in out
    assert "  mem        16             3            3        1.34%" in out


def test_dump_prints_and_saves(capsys):
    write("add.lasm", ADD)
    rc, out, _ = run(capsys, "run", "add.lasm", "--dump", "y", "--dump", "y:y.npy")
    assert rc == 0
    assert "y (int8, 1x32):" in out and "[[11 22 33 44 55 66 77 88" in out
    assert np.load("y.npy").tolist() == [EXPECTED_Y]


def test_dump_unknown_symbol(capsys):
    write("add.lasm", ADD)
    rc, _, err = run(capsys, "run", "add.lasm", "--dump", "yy")
    assert rc == 1
    assert err.strip() == "lpuasm: error: --dump yy: no data symbol 'yy'; did you mean 'y'?"


def test_timing_only_gives_the_same_cycles(capsys):
    write("add.lasm", ADD)
    _, numeric, _ = run(capsys, "run", "add.lasm", "--json")
    rc, timing, _ = run(capsys, "run", "add.lasm", "--json", "--timing-only")
    assert rc == 0
    assert json.loads(timing)["cycles"] == json.loads(numeric)["cycles"]
    assert json.loads(timing)["timing_only"] is True


def test_trace_is_chrome_trace_json(capsys):
    write("add.lasm", ADD)
    rc, _, _ = run(capsys, "run", "add.lasm", "--trace", "t.json")
    assert rc == 0
    trace = json.load(open("t.json"))
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(events) == 5
    vadd = next(e for e in events if e["name"] == "vadd")
    assert vadd["args"]["cycle"] == 6
    assert vadd["ts"] == pytest.approx(6 / 900e6 * 1e6)
    assert vadd["args"]["source"] == "add.lasm:7:5"
    names = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
    assert {"mem w3", "mem w1", "vxm alu0", "mem e2", "icu icu"} == names


def test_schedule_violation_is_located(capsys):
    # the add one cycle early: b has not reached the VXM
    write("bad.lasm", ADD.replace("@6", "@5").replace("@11", "@10"))
    rc, out, err = run(capsys, "run", "bad.lasm")
    assert rc == 1 and out == ""
    first = err.splitlines()[0]
    assert first == ("bad.lasm:7:5: error: cycle 5, queue alu0 (vxm): vadd.i8 s0e, s1e, s2e: "
                     "no value passes VXM on stream s0e at cycle 5; nothing has passed there yet")
    assert " 7 |     vadd.i8 s0e, s1e, s2e        @5" in err


def test_max_cycles(capsys):
    write("add.lasm", ADD)
    rc, _, err = run(capsys, "run", "add.lasm", "--max-cycles", "10", "--stats")
    assert rc == 1
    assert "the program needs 14 cycles, more than --max-cycles 10" in err
    assert "statistics of the schedule up to the error:" in err and "cycles              14" in err


def test_uninitialised_read_and_allow(capsys):
    src = ".chip tiny\n.space x, W0.b0[0], i8, 1\n.space y, E0.b0[0], i8, 1\n    read x, s0e @0\n" \
          "    write s0e, y @4\n"
    write("u.lasm", src)
    rc, _, err = run(capsys, "run", "u.lasm")
    assert rc == 1
    assert "uninitialised SRAM read of W0.b0[0]" in err and "--allow-uninit" in err
    rc, out, _ = run(capsys, "run", "u.lasm", "--allow-uninit", "--dump", "y")
    assert rc == 0 and "[[0 0 0" in out


def test_strict_fp(capsys):
    src = (".chip tiny\n.data x, W0.b0[0], f32, [0.0, 1.0]\n.space y, E0.b0[0], f32, 1\n"
           "    read x, s0e @3\n    read x.p1[0], s1e @2\n    read x.p2[0], s2e @1\n    read x.p3[0], s3e @0\n"
           "    vrcp.f32 s0e, s4e @6\n"
           "    write s4e, y @13\n    write s5e, y.p1[0] @14\n    write s6e, y.p2[0] @15\n    write s7e, y.p3[0] @16\n")
    write("fp.lasm", src)
    rc, out, _ = run(capsys, "run", "fp.lasm", "--json")
    assert rc == 0
    assert json.loads(out)["nan_inf"] == 31  # 1/0 = inf in lane 0 and the 30 zero-padded lanes; 1/1 in lane 1
    rc, _, err = run(capsys, "run", "fp.lasm", "--strict-fp")
    assert rc == 1 and "non-finite result (strict fp)" in err


def test_ctrl_c_stops_with_stats(capsys, monkeypatch):
    import lpuasm.levels

    def interrupt(self, rows, row):
        raise KeyboardInterrupt

    write("add.lasm", ADD)
    monkeypatch.setattr(lpuasm.levels.LevelEngine, "_vxm", interrupt)
    rc, _, err = run(capsys, "run", "add.lasm")
    assert rc == 130
    assert err.startswith("lpuasm: interrupted") and "cycles              14" in err


def test_trace_limit(capsys):
    write("add.lasm", ADD)
    rc, _, err = run(capsys, "run", "add.lasm", "--trace", "t.json", "--trace-limit", "2")
    assert rc == 0
    assert err == "lpuasm: the trace holds the first 2 of 5 instructions (--trace-limit)\n"
    trace = json.load(open("t.json"))
    assert len([e for e in trace["traceEvents"] if e["ph"] == "X"]) == 2
    assert trace["otherData"]["events_truncated"] is True


def test_public_api(tmp_path):
    import lpuasm

    src = tmp_path / "add.lasm"
    src.write_text(ADD)
    asm = lpuasm.assemble_file(src)
    lpuasm.save_image(asm.image, tmp_path / "add.lpu", asm.config)
    image = lpuasm.load_image(tmp_path / "add.lpu", lpuasm.TINY)
    result = lpuasm.run(image)
    assert result.stats.cycles == 14
    assert result.tensor("y").tolist() == [EXPECTED_Y]
    with pytest.raises(AttributeError):
        lpuasm.no_such_thing
