"""The timing-aware scheduler (lpuasm/schedule.py; docs/language.md, "Pins and scheduling").

The property test builds random straight-line chains read -> VXM ops -> write
without pins and checks, from positions and delays recomputed here (not with
lpuasm.chip), that every consumer issues exactly when its inputs pass it.
"""

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpuasm.assembler import assemble, assemble_file
from lpuasm.config import TSP_V1
from lpuasm.diagnostics import LpuError

ROOT = Path(__file__).resolve().parent.parent


def cycles_of(src: str, chip: str = "tiny") -> list[int]:
    """Issue cycle of every instruction line of *src*, in source order."""
    asm = assemble(f".chip {chip}\n{src}", "t.lasm")
    return [int(c) for c in asm.cycles]


def errors_of(src: str, chip: str = "tiny") -> list[tuple[int, str]]:
    with pytest.raises(LpuError) as info:
        assemble(f".chip {chip}\n{src}", "t.lasm")
    return [(d.span.line - 1, d.message) for d in info.value.diagnostics if d.severity == "error"]


# ---- positions and delays, written out from docs/timing-model.md -----------------------------
def position(cfg, unit: str) -> int:
    """'VXM', 'W3', 'E0' -> position on a superlane row (MXM(W) 0, SXM(W) 1, W(n-1)..W0, VXM, E0..)."""
    n = cfg.mem_slices_per_hemisphere
    if unit == "VXM":
        return n + 2
    k = int(unit[1:])
    return n + 1 - k if unit[0] == "W" else n + 3 + k


def delay(cfg, key: str) -> int:
    return cfg.latencies[key].delay


UNARY = ("vneg", "vabs", "vrelu", "vmov")
BINARY = ("vadd", "vsub", "vmul", "vmax", "vmin")


@st.composite
def chains(draw):
    """Up to 4 independent chains on tsp-v1 (44 slices, 32 streams, 16 ALUs a side).
    Each: one or two reads -> 1..4 VXM ops (the first binary on both reads when
    there are two) -> one write where the last value passes.  Chains share no
    slice, stream or ALU, so none can block another; their lines are interleaved
    at random (each chain stays in order)."""
    cfg = TSP_V1
    n = cfg.mem_slices_per_hemisphere
    slices = list(draw(st.permutations([f"{h}{k}" for h in "WE" for k in range(n)])))
    alus = list(draw(st.permutations(range(cfg.vxm_alus_per_lane))))
    pools = {d: list(draw(st.permutations(range(cfg.streams_per_direction)))) for d in "ew"}
    nchains = draw(st.integers(1, 4))
    data, lines_per_chain, facts = [], [], []
    for c in range(nchains):
        lines = []  # (text, id)
        chain_alus = [alus.pop() for _ in range(draw(st.integers(1, 3)))]
        reads = draw(st.integers(1, 2))
        values = []  # (stream name, producer id)
        for r in range(reads):
            sl = slices.pop()
            d = "e" if sl[0] == "W" else "w"  # towards the VXM
            s = f"s{pools[d].pop()}{d}"
            name = f"x{c}_{r}"
            data.append(f".data {name}, {sl}.b0[0], i8, [{c + r}]")
            rid = f"c{c}r{r}"
            lines.append((f"    read {name}, {s}", rid))
            facts.append((rid, "read", sl, [], s))
            values.append((s, rid))
        nops = draw(st.integers(1, 4))
        for k in range(nops):
            alu = draw(st.sampled_from(chain_alus))
            d = draw(st.sampled_from("ew"))
            out = f"s{pools[d].pop()}{d}"
            oid = f"c{c}o{k}"
            if k == 0 and len(values) == 2:
                op = draw(st.sampled_from(BINARY))
                ins = [values[0], values[1]]
                lines.append((f"    {op}.i8 {ins[0][0]}, {ins[1][0]}, {out}, alu{alu}", oid))
            elif draw(st.booleans()):
                op = draw(st.sampled_from(BINARY))
                ins = [values[-1]]
                lines.append((f"    {op}.i8 {ins[0][0]}, {draw(st.integers(-5, 5))}, {out}, alu{alu}", oid))
            else:
                op = draw(st.sampled_from(UNARY))
                ins = [values[-1]]
                lines.append((f"    {op}.i8 {ins[0][0]}, {out}, alu{alu}", oid))
            facts.append((oid, "vxm", "VXM", ins, out))
            values = [(out, oid)]
        s, pid = values[-1]
        # a slice the result passes: east of the VXM for an eastward stream
        side = "E" if s.endswith("e") else "W"
        sl = next(x for x in reversed(slices) if x[0] == side)
        slices.remove(sl)
        name = f"y{c}"
        data.append(f".space {name}, {sl}.b1[0], i8, 1")
        wid = f"c{c}w"
        lines.append((f"    write {s}, {name}", wid))
        facts.append((wid, "write", sl, [values[-1]], None))
        lines_per_chain.append(lines)
    order = []
    pending = [list(ls) for ls in lines_per_chain]
    while any(pending):
        k = draw(st.sampled_from([i for i, p in enumerate(pending) if p]))
        order.append(pending[k].pop(0))
    return data, order, facts


@given(chains())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_unpinned_chains_issue_when_their_inputs_pass(case):
    data, order, facts = case
    src = "\n".join(["; random chains"] + data + [text for text, _ in order]) + "\n"
    asm = assemble(".chip tsp-v1\n" + src, "chains.lasm")
    cfg = TSP_V1
    cycle = {ident: int(asm.cycles[row]) for row, (_, ident) in enumerate(order)}
    by_id = {f[0]: f for f in facts}
    for ident, kind, unit, inputs, _ in facts:
        if not inputs:
            continue
        x = position(cfg, unit)
        for stream, pid in inputs:
            _, pkind, punit, _, _ = by_id[pid]
            p = position(cfg, punit)
            appear = cycle[pid] + delay(cfg, "mem.read" if pkind == "read" else "vxm.alu")
            east = stream.endswith("e")
            assert (x >= p) if east else (x <= p), (stream, punit, unit)
            assert cycle[ident] == appear + abs(x - p), (ident, stream, src)
    # every queue issues in source order, one instruction per cycle
    per_queue = {}
    for row in range(len(asm.ir)):
        per_queue.setdefault(int(asm.ir.queue[row]), []).append(int(asm.cycles[row]))
    for cs in per_queue.values():
        assert all(a < b for a, b in zip(cs, cs[1:]))
    # halt-less programs end after the last effect: nothing to check; a halt would be last
    final = assemble(".chip tsp-v1\n" + src + "    halt\n", "chains.lasm")
    write_ends = [cycle[f[0]] + delay(cfg, "mem.write") for f in facts if f[1] == "write"]
    assert int(final.cycles[-1]) == max(write_ends + [max(cycle.values()) + 1])


# ---- unit tests ---------------------------------------------------------------------------
def test_read_vxm_write_chain():
    # W3 at 6, VXM at 10, E2 at 13 on tiny
    src = """\
.data x, W3.b0[0], i8, [1]
.space y, E2.b1[0], i8, 1
    read x, s0e
    vadd.i8 s0e, 1, s1e
    write s1e, y
    halt
"""
    assert cycles_of(src) == [0, 6, 11, 12]


def test_producer_is_delayed_to_line_inputs_up():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [2]
    read a, s0e
    read b, s1e
    vadd.i8 s0e, s1e, s2e
"""
    # a passes the VXM at 0 + 2 + 6, b would at 0 + 2 + 1: b's read moves to 5
    assert cycles_of(src) == [0, 5, 8]


def test_producer_is_delayed_until_the_queue_is_free():
    src = """\
.data a, W0.b0[0], i8, [1]
    nop alu0, 10
    read a, s0e
    vneg.i8 s0e, s1e
"""
    assert cycles_of(src) == [0, 7, 10]


def test_a_repeated_producer_moves_with_its_repeat():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [[1], [2], [3]]
    read a, s0e
    repeat w5, 2, 1
    read b, s1e
    repeat w0, 2, 1, 1
    vadd.i8 s0e, s1e, s2e
    repeat alu0, 2, 1
    halt
"""
    # b's read and its two repetitions shift by 5; the repeat row issues after it
    assert cycles_of(src) == [0, 1, 5, 6, 8, 9, 12]


def test_a_producer_used_by_another_consumer_does_not_move():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [2]
    read a, s0e
    read b, s1e
    vneg.i8 s1e, s3e, alu1
    vadd.i8 s0e, s1e, s2e
"""
    errs = errors_of(src)
    assert errs == [(6, "inputs arrive at different cycles: s0e at cycle 8, s1e at cycle 3")]


def test_a_producer_with_a_later_instruction_on_its_queue_does_not_move():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [[2], [3]]
    read a, s0e
    read b, s1e
    read b[1], s3e
    vadd.i8 s0e, s1e, s2e
"""
    assert errors_of(src)[0][1] == "inputs arrive at different cycles: s0e at cycle 8, s1e at cycle 3"


def test_a_producer_whose_new_slot_is_in_use_does_not_move():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [2]
.data c, W3.b0[0], i8, [3]
    read c, s1e @2
    write s1e, E0.b1[0]
    read a, s0e @0
    read b, s1e
    vadd.i8 s0e, s1e, s2e
"""
    # b's read would have to move to 5, putting s1e at W0 at 7, where c's value
    # passes on its way to E0 (at 9); a is pinned, so the add cannot wait either
    assert errors_of(src) == [(8, "inputs arrive at different cycles: s0e at cycle 8, s1e at cycle 3")]


def test_a_consumer_waits_until_its_producers_can_line_up():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [2]
.data c, W3.b0[0], i8, [3]
    read c, s1e @2
    write s1e, E0.b1[0]
    read a, s0e
    read b, s1e
    vadd.i8 s0e, s1e, s2e
"""
    # as above, but a may move too: both reads move one cycle further, the add issues at 9
    assert cycles_of(src) == [2, 9, 1, 6, 9]


def test_a_consumer_waits_until_its_output_slot_is_free():
    src = """\
.data a, W3.b0[0], i8, [1]
.data b, W0.b0[0], i8, [2]
.space y, E1.b1[0], i8, 1
    read a, s5e @0
    write s5e, y
    nop w0, 1
    read b, s0e
    vneg.i8 s0e, s5e, alu1
"""
    # a's value passes the VXM at 6 and E1 at 8; b passes the VXM at 1 + 2 + 1 = 4,
    # but a vneg at 4 would put its result on s5e at the VXM at 6, on a's way:
    # b's read waits one more cycle
    assert cycles_of(src) == [0, 8, 0, 2, 5]


def test_a_relative_pin_anchors_its_reference():
    src = """\
.data a, W5.b0[0], i8, [1]
.data b, W0.b0[0], i8, [2]
    read a, s0e
    read b, s1e
    nop e0, 1 @+1
    vadd.i8 s0e, s1e, s2e
"""
    assert errors_of(src)[0][1] == "inputs arrive at different cycles: s0e at cycle 8, s1e at cycle 3"


def test_pinned_producers_are_not_moved_and_pins_win():
    src = """\
.data a, W0.b0[0], i8, [1]
    read a, s0e @4
    vneg.i8 s0e, s1e @20
    vneg.i8 s0e, s2e, alu1
"""
    # the second consumer still takes a's value when it passes (cycle 7)
    assert cycles_of(src) == [4, 20, 7]


def test_the_latest_writer_is_the_producer():
    src = """\
.data a, W3.b0[0], i8, [1]
.data b, W1.b0[0], i8, [2]
    read a, s0e
    vneg.i8 s0e, s1e
    read b, s0e
    vneg.i8 s0e, s2e, alu1
"""
    c = cycles_of(src)
    assert c[1] == 6  # a: 0 + 2 + 4
    assert c[3] == c[2] + 2 + 2  # b, from W1


def test_unpinned_read_avoids_a_bank_port_conflict():
    src = """\
.data a, W0.b0[0], i8, [1]
.data t, E0.b0[0], i8, [[0], [0]]
    read a, s0e
    write s0e, t
    read t[1], s1e
"""
    # the write issues at 4 and writes bank 0 at 5, so the read of bank 0 cannot
    # be at 5; it co-issues with the write at 4 instead (one read and one write
    # per slice per cycle: the read uses the port at 4, the write at 5)
    assert cycles_of(src) == [0, 4, 4]


def test_mem_read_and_write_co_issue_and_round_trip():
    from lpuasm import imagefile, isa
    from lpuasm.disasm import disassemble
    from lpuasm.interp import run
    from lpuasm.program import load_program
    from lpuasm.refinterp import run_reference

    src = """\
.chip tiny
.data a, W0.b0[0], i8, [[1], [2]]
.space t, E0.b1[0], i8, 1
.data u, E0.b0[0], i8, [7]
.space v, W0.b1[0], i8, 1
    read a, s0e
    write s0e, t
    read u, s1w
    write s1w, v
"""
    asm = assemble(src, "pair.lasm")
    e0 = asm.image.text[asm.config.queue_id("e0")]
    assert len(e0) == 3 and int(e0[1]) & isa.PAIR_BIT and not int(e0[2]) & isa.PAIR_BIT  # NOP, write+pair, read
    blob = imagefile.to_bytes(asm.image, asm.config)
    image = imagefile.from_bytes(blob, asm.config)
    again = assemble(disassemble(image, asm.config), "pair.dis.lasm")
    assert imagefile.to_bytes(again.image, asm.config) == blob
    prog = load_program(image, asm.config)
    assert prog.cycle[prog.queue == asm.config.queue_id("e0")].tolist() == [4, 4]
    ref, fast = run_reference(prog), run(prog)
    assert ref.tensor("t").tolist()[0][0] == 1 and ref.tensor("v").tolist()[0][0] == 7
    assert (fast.sram == ref.sram).all() and fast.stats.cycles == ref.stats.cycles


def test_unpinned_read_waits_until_its_stream_is_free():
    src = """\
.data a, W4.b0[0], i8, [1]
.data b, W1.b0[0], i8, [2]
.space y, E0.b1[0], i8, 1
    read a, s0e @0
    write s0e, y
    nop w1, 3
    read b, s0e
"""
    # a's value passes W1 at 5 on its way to E0 (at 8): b's read may not put a
    # value there then, so it cannot issue at 3
    assert cycles_of(src) == [0, 8, 0, 4]


def test_repetitions_take_their_slots():
    src = """\
.data a, W0.b0[0], i8, [1]
.data t, W0.b1[0], i8, [[0], [0], [0], [0]]
    scatter s5e, s6e, t[2] @3
    read t, s1e
    repeat w0, 3, 1
"""
    # the scatter writes bank 1 of W0 at 6: the read and its repetitions (+1..+3)
    # must all miss cycle 6, so the read cannot issue at 4, 5 or 6
    assert cycles_of(src) == [3, 7, 8]


def test_mxm_sequence():
    src = """\
.data w, W1.b0[0], i8, [[1], [2]]
.data x, W2.b0[0], i8, [[1, 1]]
    read w, s0w
    repeat w1, 1, 1, 1
    lw.i8 s0w, mxm0
    repeat mxm0, 1, 1
    iw mxm0
    read x, s1w
    abc.i8 s1w, mxm0
    acc.i32 mxm0, s0e, 0, 0
    halt
"""
    # lw at 10 (0 + 2 + 8), iw after the last lw (11 + 1), x delayed so that abc
    # comes when the weights are in (12 + 4), acc when the product is ready (+4)
    assert cycles_of(src) == [0, 1, 10, 11, 12, 7, 16, 20, 26]


def test_acc_takes_the_kth_product():
    src = """\
.data x, W7.b0[0], i8, [[1], [2]]
    iw mxm0
    read x, s0w @2
    abc.i8 s0w, mxm0
    read x[1], s0w @20
    abc.i8 s0w, mxm0
    acc.i32 mxm0, s0e, 0, 0
    acc.i32 mxm0, s4e, 1, 0
"""
    c = cycles_of(src)
    assert c[2] == 6 and c[4] == 24
    # products ready at 10 and 28; the first acc waits for its queue (after the second abc)
    assert c[5] == 25 and c[6] == 28


def test_halt_waits_for_the_last_effect():
    src = """\
.data a, W0.b0[0], i8, [1]
    read a, s0e @10
    halt
"""
    assert cycles_of(src) == [10, 12]
    src = """\
    nop w0, 10
    halt
"""
    assert cycles_of(src) == [0, 10]


def test_halt_pinned_before_an_effect():
    src = """\
.data a, W0.b0[0], i8, [1]
    read a, s0e @10
    halt @11
"""
    assert errors_of(src) == [(3, "cannot issue at @11: the instruction at line 3 takes effect at cycle 12")]


def test_error_messages_name_other_files_by_path(tmp_path):
    (tmp_path / "inc.lasm").write_text(".data a, W0.b0[0], i8, [1]\n    read a, s0e @4\n")
    main = tmp_path / "main.lasm"
    main.write_text('.chip tiny\n.include "inc.lasm"\n    nop alu2, 20\n    vneg.i8 s0e, s3e, alu2\n')
    with pytest.raises(LpuError) as info:
        assemble_file(main)
    (d,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert d.message == "the value on s0e passes the VXM at cycle 7, but queue alu2 is busy until cycle 19"
    assert d.hint.startswith(f"delay the producer of s0e ({tmp_path / 'inc.lasm'}:2) by 13 cycles (pin it at @17)")
    assert d.notes[0].span.file == str(tmp_path / "inc.lasm")


# ---- the examples: their hand-derived pins are what the scheduler finds by itself -------------
EXAMPLES = sorted((ROOT / "examples").glob("*.lasm"))
PIN = re.compile(r"^(\s+[A-Za-z][^;@]*?)\s+@[^;]*(;.*)?$")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_schedule_the_same_without_pins(path, tmp_path):
    pinned = assemble_file(path)
    text = "\n".join(PIN.sub(lambda m: m.group(1) + (" " + m.group(2) if m.group(2) else ""), line)
                     for line in path.read_text().splitlines())
    assert "@" not in "".join(line.split(";")[0] for line in text.splitlines())
    free = assemble(text, str(path))
    assert free.cycles.tolist() == pinned.cycles.tolist()


def test_a_generated_streaming_kernel_schedules_without_pins():
    """Reads, VXM ops sharing ALUs and writes, every row reusing its slice's stream:
    the reads are delayed until their ALU is free (speed is measured in bench/)."""
    lines = [".chip tiny"]
    for k in range(8):
        lines.append(f".space x{k}, W{k}.b0[0], i8, 64")
        lines.append(f".space y{k}, E{k}.b1[0], i8, 64")
    for r in range(64):
        for k in range(8):
            lines += [f"    read x{k}[{r}], s{k}e", f"    vmul.i8 s{k}e, 3, s{k}e, alu{k % 4}",
                      f"    vrelu.i8 s{k}e, s{k}e, alu{k % 4}", f"    write s{k}e, y{k}[{r}]"]
    lines.append("    halt")
    asm = assemble("\n".join(lines) + "\n", "gen.lasm")
    assert len(asm.cycles) == 64 * 8 * 4 + 1


def test_a_read_does_not_co_issue_with_the_write_of_its_word():
    src = """\
.data  a,   W0.b0[0], i8, [1, 2, 3]
.space tmp, E0.b0[0], i8, 1
    read  a, s0e
    write s0e, tmp
    read  tmp, s1e
"""
    # the write issues at 4 and stores at 5; the read must see the new value,
    # and a read of bank 0 at 5 would clash with the store: 6
    assert cycles_of(src) == [0, 4, 6]


# ---- delaying whole chains ----------------------------------------------------------------------
CHAIN = """\
.data a, W0.b0[0], i8, [3]
.data b, W5.b0[0], i8, [4]
.space y, E2.b1[0], i8, 1
    read a, s0e{pin_read}
    vmul.i8 s0e, 2, s1e, alu0{pin_mul}
{between}    read b, s2e
    vadd.i8 s1e, s2e, s3e, alu1
    write s3e, y
    halt
"""


def run_both(asm):
    """Both interpreters on an assembled program (either raises SimError on a violation)."""
    from lpuasm.interp import run
    from lpuasm.program import load_program
    from lpuasm.refinterp import run_reference

    prog = load_program(asm.image, asm.config)
    ref, fast = run_reference(prog), run(prog)
    assert (fast.sram == ref.sram).all() and fast.stats.cycles == ref.stats.cycles
    return ref


def test_a_chain_is_delayed_whole_to_line_inputs_up():
    # a's product passes the VXM at 0 + 2 + 1 + 2 = 5, b at 0 + 2 + 6 = 8: the vmul
    # has a stream input, so it moves 3 cycles with its producer (the read of a).
    # (Before chains were delayed: "inputs arrive at different cycles: s1e at cycle 5, s2e at cycle 8".)
    src = ".chip tiny\n" + CHAIN.format(pin_read="", pin_mul="", between="")
    asm = assemble(src, "chain.lasm")
    assert asm.cycles.tolist() == [3, 6, 0, 8, 13, 14]
    assert run_both(asm).tensor("y").tolist()[0][0] == 3 * 2 + 4


def test_a_repeated_chain_moves_with_its_repeats():
    asm = assemble_file(ROOT / "tests" / "corpus" / "schedule_chains.lasm")
    y = run_both(asm).tensor("y").tolist()
    assert [row[0] for row in y] == [max(3 * 2, 0) + 4, max(-5 * 2, 0) + 5, max(7 * 2, 0) + 6]


@pytest.mark.parametrize("pins", [dict(pin_read=" @0", pin_mul=""), dict(pin_read="", pin_mul=" @3")],
                         ids=["pinned-read", "pinned-vmul"])
def test_a_chain_with_a_pinned_row_does_not_move(pins):
    with pytest.raises(LpuError) as info:
        assemble(".chip tiny\n" + CHAIN.format(between="", **pins), "t.lasm")
    (d,) = [d for d in info.value.diagnostics if d.severity == "error"]
    assert (d.span.line - 1, d.message) == (7, "inputs arrive at different cycles: s1e at cycle 5, s2e at cycle 8")
    assert d.hint == ("delay the producer of s1e (line 6) by 3 cycles (pin it at @6), or issue the producer of s2e "
                      "(line 7) 3 cycles earlier")


def test_a_chain_whose_value_has_another_consumer_does_not_move():
    # the read of a is also used by the vneg: the vmul's cone cannot move
    src = CHAIN.format(pin_read="", pin_mul="", between="    vneg.i8 s0e, s5e, alu2\n")
    assert errors_of(src) == [(8, "inputs arrive at different cycles: s1e at cycle 5, s2e at cycle 8")]
