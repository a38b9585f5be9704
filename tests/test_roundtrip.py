"""Round trips: encode/decode, format/parse, assemble/disassemble/assemble."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpuasm import chip, imagefile, isa
from lpuasm.assembler import assemble
from lpuasm.config import TINY
from lpuasm.disasm import disassemble, format_instruction
from lpuasm.layout import tensor_to_words, words_to_tensor

CFG = TINY
ROWS = sorted(isa.TABLE.values(), key=lambda r: r.opcode)
PLAIN_ROWS = [r for r in ROWS if r.mnemonic not in ("repeat", "halt", "nop")]
BODY_ROWS = [r for r in PLAIN_ROWS if r.mnemonic not in ("sync", "notify")]  # those only start a queue


@st.composite
def fields_for(draw, row, aligned=True):
    """Random valid field values of *row* on the tiny chip."""
    values = {}
    dts = [draw(st.sampled_from(allowed)) for allowed in row.dtypes]
    for i, dt in enumerate(dts):
        values["dt" if i == 0 else "dt2"] = isa.DTYPES[dt]
    for spec in row.operands:
        kind = spec.kind
        if kind == "stream" or (kind == "src" and draw(st.booleans())):
            if row.mnemonic == "transpose":
                index = 0
            elif aligned:
                index = draw(st.sampled_from(range(0, CFG.streams_per_direction, 4)))
            else:
                index = draw(st.integers(0, CFG.streams_per_direction - 1))
            v = isa.stream_code(index, draw(st.booleans()))
        elif kind == "src":
            dt = dts[0]
            if dt in isa.FLOAT_DTYPES:
                f = draw(st.floats(width=16 if dt == "f16" else 32, allow_nan=False))
                v = isa.SRC_IMMEDIATE | isa.f32_bits(f)
            else:
                lo, hi = {"i8": (-128, 127), "i16": (-32768, 32767), "i32": (-(1 << 31), (1 << 31) - 1)}[dt]
                v = isa.SRC_IMMEDIATE | (draw(st.integers(lo, hi)) & 0xFFFFFFFF)
        elif kind == "addr":
            v = isa.addr_code(draw(st.booleans()), draw(st.integers(0, CFG.mem_slices_per_hemisphere - 1)),
                              draw(st.integers(0, CFG.banks_per_slice - 1)), draw(st.integers(0, CFG.words_per_bank - 1)))
        elif kind == "queue":
            v = draw(st.integers(0, len(CFG.queues) - 1))
        elif kind == "alu":
            v = draw(st.integers(0, CFG.vxm_alus_per_lane - 1))
        elif kind == "plane":
            v = draw(st.integers(0, CFG.mxm_planes - 1))
        elif kind == "sxm":
            v = draw(st.integers(0, 1))
        elif kind == "link":
            v = draw(st.integers(0, CFG.c2c_links - 1))
        elif spec.signed:
            v = draw(st.integers(-(1 << (spec.width - 1)), (1 << (spec.width - 1)) - 1))
        else:
            v = draw(st.integers(0, (1 << spec.width) - 1))
        values[spec.name] = v
    return values


@st.composite
def instructions(draw, rows=ROWS, aligned=True):
    row = draw(st.sampled_from(rows))
    return row, draw(fields_for(row, aligned))


@given(instructions(aligned=False))
def test_pack_unpack_inverse(instr):
    row, values = instr
    word = isa.pack(row, values)
    assert 0 <= word < 1 << 64
    back_row, back = isa.unpack(word)
    assert back_row is row
    assert back.pop(isa.PAIR, 0) == 0  # MEM words carry a co-issue bit, zero unless paired
    assert back == values


@given(instructions(rows=PLAIN_ROWS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_format_then_assemble_gives_the_same_word(instr):
    row, values = instr
    text = format_instruction(row, values, CFG)
    asm = assemble(f".chip tiny\n{text}\n", "<t>", stop_after="lower")
    assert int(asm.ir.word[0]) == isa.pack(row, values), text


def queue_of(row, values):
    i = row.queue_operand
    if i is None:
        return "icu"
    spec = row.operands[i]
    v = values[spec.name]
    if spec.kind == "addr":
        east, slice_, _, _ = isa.addr_parts(v)
        return f"{'e' if east else 'w'}{slice_}"
    return {"queue": lambda: CFG.queues[v], "alu": lambda: f"alu{v}", "plane": lambda: f"mxm{v}",
            "sxm": lambda: "sxme" if v else "sxmw", "link": lambda: f"c2c{v}"}[spec.kind]()


def _blob():
    import base64
    values = np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32)
    values[1, 7] = np.frombuffer(np.uint32(0x7FC00123).tobytes(), np.float32)[0]  # a NaN with a payload
    return base64.b64encode(values.tobytes()).decode()


BLOB = _blob()


@st.composite
def programs(draw):
    lines = [".chip tiny", ".equ N, 7", ".equ HALF, 0.5", f'.blob big, W0.b1[0], f32, 3, 100, "{BLOB}"',
             ".data a, W0.b0[0], f16, [[1.5, -2], [0.25, 65504]]",
             ".data b, E1.b1[10], i32, [-5, 7, 2147483647]",
             ".space c, W4.b0[0], f32, 2, 40"]
    n = draw(st.integers(1, 25))
    cycle = 0
    for i in range(n):
        row, values = draw(instructions(rows=BODY_ROWS))
        if row.mnemonic == "ifetch":
            values["n"] %= 100
        text = format_instruction(row, values, CFG)
        # an unpinned consumer would need a producer (and an acc a product) to be placed
        needs_pin = bool(chip.stream_inputs(row, values)) or row.mnemonic == "acc"
        if needs_pin or draw(st.booleans()):
            cycle += 100_000
            text += f" @{cycle}"
        if draw(st.integers(0, 5)) == 0:
            lines.append(f"lab{i}:")
        lines.append(text)
        if row.unit != "icu" and draw(st.integers(0, 4)) == 0:
            lines.append(f"    repeat {queue_of(row, values)}, {draw(st.integers(1, 9))}, {draw(st.integers(1, 9))}")
        if draw(st.integers(0, 6)) == 0:
            lines.append(f"    nop {draw(st.sampled_from(CFG.queues))}, {draw(st.integers(0, 999))}")
    if draw(st.booleans()):
        lines.append("    halt")
    lines.append("end:")
    return "\n".join(lines) + "\n"


@given(programs())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_assemble_disassemble_assemble_is_byte_identical(source):
    first = imagefile.to_bytes(assemble(source, "prog.lasm").image)
    text = disassemble(imagefile.from_bytes(first, CFG), CFG)
    second = imagefile.to_bytes(assemble(text, "prog.dis.lasm").image)
    assert second == first, text


@given(st.sampled_from(list(isa.DTYPES)), st.integers(1, 5), st.integers(1, 80), st.integers(0, 2**32 - 1))
def test_tensor_layout_round_trip(dtype, rows, cols, seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(-100, 100, size=(rows, cols)).astype(
        {"i8": np.int8, "i16": np.int16, "i32": np.int32, "f16": np.float16, "f32": np.float32}[dtype])
    words = tensor_to_words(values, dtype, 32)
    assert words.shape == (-(-cols // 32) * rows * isa.DTYPE_BYTES[dtype], 32)
    np.testing.assert_array_equal(words_to_tensor(words, dtype, rows, cols), values)


def test_tensor_layout_is_byte_planes():
    """Plane k (byte k of each element) fills words k*tiles*rows ..; within a
    plane, word t*rows + r holds row r, column tile t."""
    values = (np.arange(2 * 40, dtype=np.int16).reshape(2, 40) + 0x100 * 7)
    words = tensor_to_words(values, "i16", 32)
    assert words.shape == (2 * 2 * 2, 32)
    # plane 0, tile 1, row 1 -> word 1*2 + 1 = 3 holds the low bytes of columns 32..39 of row 1
    np.testing.assert_array_equal(words[3, :8], (values[1, 32:40] & 0xFF).astype(np.uint8))
    assert not words[3, 8:].any()
    # plane 1 starts at word 4: high bytes
    np.testing.assert_array_equal(words[4, :32], np.full(32, 7, np.uint8))
