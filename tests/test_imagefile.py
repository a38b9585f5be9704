"""The .lpu file format: round trips, canonical bytes, and a loader that rejects
every corrupt, truncated or foreign file with one ImageError."""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpuasm import imagecheck, imagefile, isa
from lpuasm.config import TINY, TSP_V1, from_dict
from lpuasm.image import ConstSymbol, DataSymbol, Image, LabelSymbol, MacroFrame, SourceMap
from lpuasm.imagecheck import check_image, check_text
from lpuasm.imagefile import ImageError, canonical, from_bytes, to_bytes

CFG = TINY
LANES = CFG.lanes
Q = CFG.queue_id
NS = CFG.streams_per_direction
NSL = CFG.mem_slices_per_hemisphere
assert NS < 32, "the tests need a config with unused stream indices"
T = isa.TABLE


def P(mnemonic: str, **values) -> int:
    return isa.pack(T[mnemonic], values)


def addr(hemi: str, slice_: int, bank: int, offset: int) -> int:
    return isa.addr_code(hemi == "e", slice_, bank, offset)


def s(index: int, west: bool = False) -> int:
    return isa.stream_code(index, west)


def words(*ws: int) -> np.ndarray:
    return np.array(ws, dtype=np.uint64)


def sample() -> Image:
    """Several queues, initialised and reserved data, consts, labels, a source map."""
    w3, e0, alu1, mxm2 = Q("w3"), Q("e0"), Q("alu1"), Q("mxm2")
    text = {
        alu1: words(P("vadd", dt=isa.DTYPES["f32"], a=s(1), b=isa.SRC_IMMEDIATE | isa.f32_bits(1.5), d=s(3), alu=1),
                    P("vcvt", dt=isa.DTYPES["f32"], dt2=isa.DTYPES["f16"], a=s(3), d=s(4, True), alu=1)),
        0: words(P("nop", q=0, n=5), P("notify", q=0), P("halt")),
        w3: words(P("read", a=addr("w", 3, 0, 4), d=s(2, True)), P("repeat", q=w3, n=3, d=1, stride=1),
                  P("nop", q=w3, n=2), P("write", s=s(1), a=addr("w", 3, 1, 0))),
        e0: words(P("gather", a=addr("e", 0, 1, 10), map=s(5), d=s(6))),
        mxm2: words(P("lw", dt=isa.DTYPES["i8"], s=s(7, True), p=2), P("iw", p=2),
                    P("acc", dt=isa.DTYPES["i32"], p=2, d=s(0), row=5, mode=1)),
    }
    init = np.arange(2 * 3 * 2 * LANES, dtype=np.uint8).reshape(-1, LANES)  # f16 3x40: 2 tiles x 3 rows x 2 bytes
    data = [
        DataSymbol("weights", addr("w", 3, 0, 4), "f16", 3, 40, init),
        DataSymbol("buf", addr("e", 0, 1, 0), "i32", 1, 10),
        DataSymbol("bias", addr("w", 3, 0, 100), "i8", 2, 32, np.full((2, LANES), 7, np.uint8)),
    ]
    consts = [ConstSymbol("N", 7), ConstSymbol("PI", 3.25), ConstSymbol("NEG", -(1 << 63)), ConstSymbol("µ", 1e-300)]
    labels = [LabelSymbol("loop", w3, 1), LabelSymbol("end", -1, 0), LabelSymbol("start", 0, 0),
              LabelSymbol("tail", mxm2, 3)]
    nrows = 2 + 2 + 3 + 1 + 3
    srcmap = SourceMap(
        files=["model.lasm", "stdlib/mm.lasm"],
        file=np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0], np.uint16),
        line=np.arange(1, nrows + 1, dtype=np.uint32),
        col=np.full(nrows, 5, np.uint16),
        chain=np.array([-1, -1, 0, 1, -1, -1, -1, 1, 1, 0, -1], np.int32),
        frames=[MacroFrame("matmul", 0, 12, 1), MacroFrame("tile", 1, 40, 9, 0)],
    )
    return Image(CFG.name, CFG.hash, text, data, consts, labels, srcmap)


def raw_bytes(img: Image, monkeypatch, keep_order: bool = False) -> bytes:
    """Bytes of *img* without the writer's checks, to feed the loader bad content."""
    with monkeypatch.context() as m:
        m.setattr(imagefile, "_check_image", lambda *a: None)
        if keep_order:
            m.setattr(imagefile, "canonical", lambda image: image)
        return to_bytes(img)


def load_error(blob: bytes, config=CFG, name: str = "model.lpu") -> str:
    with pytest.raises(ImageError) as info:
        from_bytes(blob, config, name)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{name}: ")
    return message[len(name) + 2:]


def entries(blob: bytes) -> list[tuple]:
    return [imagefile._ENTRY.unpack_from(blob, imagefile.HEADER_SIZE + i * 24) for i in range(4)]


def fix_crcs(blob: bytes | bytearray) -> bytes:
    """Recompute every section CRC and the header CRC (after a deliberate edit)."""
    b = bytearray(blob)
    for i in range(4):
        pos = imagefile.HEADER_SIZE + i * 24
        kind, _, off, size = imagefile._ENTRY.unpack_from(b, pos)
        struct.pack_into("<I", b, pos + 4, zlib.crc32(bytes(b[off:off + size])))
    crc = zlib.crc32(bytes(b[:52]) + bytes(b[imagefile.HEADER_SIZE:imagefile.TABLE_END]))
    struct.pack_into("<I", b, 52, crc)
    return bytes(b)


SAMPLE = to_bytes(sample())


# ---------------------------------------------------------------------------- round trips
def test_round_trip_sample():
    img = sample()
    blob = to_bytes(img)
    for config in (CFG, None):
        back = from_bytes(blob, config)
        assert back.equals(canonical(img))
        assert to_bytes(back) == blob
    assert back.instruction_count() == len(back.srcmap.file) == 11
    assert list(back.text) == sorted(img.text)
    assert back.text[0].dtype == np.uint64 and back.srcmap.chain.dtype == np.int32
    assert back.data[0].init.flags.writeable
    assert [c.name for c in back.consts] == ["N", "NEG", "PI", "µ"]
    assert back.consts[2].value == 3.25 and isinstance(back.consts[2].value, float)
    assert back.consts[1].value == -(1 << 63) and isinstance(back.consts[1].value, int)


def test_save_and_load(tmp_path):
    path = tmp_path / "model.lpu"
    imagefile.save(sample(), path, CFG)
    assert imagefile.load(path, CFG).equals(canonical(sample()))
    with pytest.raises(ImageError, match=r"^.*nope\.lpu: cannot read: "):
        imagefile.load(tmp_path / "nope.lpu")


def test_header_layout_is_as_documented():
    magic, version, flags, size, hash_, name, lanes, nsec, _ = imagefile._HEADER.unpack_from(SAMPLE)
    assert (magic, version, flags, size, hash_, lanes, nsec) == (b"\x7fLPU", 1, 0, len(SAMPLE), CFG.hash, LANES, 4)
    assert name == b"tiny" + bytes(12)
    offsets = [e[2] for e in entries(SAMPLE)]
    assert [e[0] for e in entries(SAMPLE)] == [b"TEXT", b"DATA", b"SYMS", b"SMAP"]
    assert offsets[0] == imagefile.TABLE_END == 152 and all(o % 8 == 0 for o in offsets)
    assert len(SAMPLE) % 8 == 0


def test_overhead_per_instruction():
    """One TEXT word (8 bytes) plus one source-map row (12 bytes) per instruction."""
    def image(n: int) -> Image:
        w = np.full(n, P("vmov", dt=1, a=s(0), d=s(1), alu=0), np.uint64)
        sm = SourceMap(["a.lasm"], np.zeros(n, np.uint16), np.ones(n, np.uint32), np.ones(n, np.uint16),
                       np.full(n, -1, np.int32))
        return Image(CFG.name, CFG.hash, {Q("alu0"): w}, srcmap=sm)
    assert len(to_bytes(image(1008))) - len(to_bytes(image(8))) == 1000 * 20


def test_empty_image_and_stripped_source_map():
    empty = Image(CFG.name, CFG.hash, {})
    assert from_bytes(to_bytes(empty), CFG).equals(empty)
    img = sample()
    img.srcmap = SourceMap()
    assert from_bytes(to_bytes(img), CFG).equals(canonical(img))


def test_custom_config_without_data_and_long_name():
    cfg = from_dict({"base": "tiny", "name": "a-rather-long-config-name", "c2c_links": 1})
    img = Image(cfg.name, cfg.hash, {0: words(P("halt"))})
    back = from_bytes(to_bytes(img), cfg)
    assert back.config_name == "a-rather-long-co"  # the name field holds 16 ASCII bytes; the hash is the identity
    img.data = [DataSymbol("x", 0, "i8", 1, 1)]
    with pytest.raises(ImageError, match="lane count is unknown"):
        to_bytes(img)
    assert from_bytes(to_bytes(img, cfg), cfg).data[0].name == "x"


# ---------------------------------------------------------------------------- canonical bytes
def test_writer_is_canonical():
    rng = random.Random(1)
    for _ in range(20):
        img = sample()
        rng.shuffle(img.consts)
        rng.shuffle(img.labels)
        rng.shuffle(img.data)
        keys = list(img.text)
        rng.shuffle(keys)
        img.text = {k: img.text[k] for k in keys}
        assert to_bytes(img) == SAMPLE
    assert to_bytes(sample()) == to_bytes(sample())  # no timestamps, nothing random


def test_empty_queue_streams_are_dropped():
    img = sample()
    img.text[Q("sxme")] = np.zeros(0, np.uint64)
    assert to_bytes(img) == SAMPLE


# ---------------------------------------------------------------------------- messages
def test_bad_magic():
    assert load_error(b"ELF\x7f" + SAMPLE[4:]) == "bad magic (not an lpuasm image)"
    assert load_error(b"hello") == "bad magic (not an lpuasm image)"


def test_unsupported_version():
    blob = SAMPLE[:4] + struct.pack("<H", 7) + SAMPLE[6:]
    assert load_error(blob) == "format version 7 is not supported (this lpuasm reads version 1)"


def test_section_crc_mismatch():
    data_offset = entries(SAMPLE)[1][2]
    blob = bytearray(SAMPLE)
    blob[data_offset + 5] ^= 0x40
    assert load_error(bytes(blob)) == "CRC mismatch in section DATA (file corrupt)"


def test_header_crc_mismatch():
    blob = bytearray(SAMPLE)
    blob[20] ^= 1  # inside the config hash
    assert load_error(bytes(blob)) == "CRC mismatch in header (file corrupt)"


def test_config_mismatch():
    assert load_error(SAMPLE, TSP_V1) == (
        f"built for chip config 'tiny' (hash {TINY.hash.hex()[:8]}..), not 'tsp-v1' "
        f"(hash {TSP_V1.hash.hex()[:8]}..); assemble it again with --config tsp-v1")
    custom = from_dict({"base": "tiny", "name": "mine", "c2c_links": 1})
    assert load_error(SAMPLE, custom).endswith("; assemble it again for chip config 'mine'")


def test_same_chip_under_another_name_loads():
    twin = from_dict({"base": "tiny", "name": "twin"})
    assert twin.hash == TINY.hash
    assert from_bytes(SAMPLE, twin).config_name == "tiny"


def test_truncated():
    assert load_error(SAMPLE[:100]) == "truncated: 100 bytes, shorter than the header and section table (152 bytes)"
    assert load_error(SAMPLE[:30]) == "truncated: 30 bytes, shorter than the 56-byte header"
    assert load_error(SAMPLE[:-8]) == f"truncated: the header says {len(SAMPLE)} bytes, the file has {len(SAMPLE) - 8}"
    assert load_error(SAMPLE + b"\0") == "1 bytes of trailing data after the image"


def test_truncation_at_every_length():
    for n in range(len(SAMPLE)):
        load_error(SAMPLE[:n])


def test_every_single_byte_flip_is_detected():
    """Every byte of the file is covered by a CRC, a zero-padding check, or is
    the magic/version/CRC itself: any change is rejected."""
    for pos in range(len(SAMPLE)):
        for xor in (0x01, 0x80, 0xFF):
            blob = bytearray(SAMPLE)
            blob[pos] ^= xor
            load_error(bytes(blob))


def test_section_overlap():
    blob = bytearray(SAMPLE)
    (_, _, text_off, _), (_, _, data_off, _) = entries(SAMPLE)[:2]
    struct.pack_into("<Q", blob, imagefile.HEADER_SIZE + 24 + 8, data_off - 8)  # DATA starts 8 bytes early
    assert load_error(fix_crcs(blob)) == "section TEXT overlaps section DATA"


def test_section_table_kinds():
    blob = bytearray(SAMPLE)
    blob[imagefile.HEADER_SIZE:imagefile.HEADER_SIZE + 4] = b"CODE"
    assert load_error(fix_crcs(blob)) == "section table lists CODE, DATA, SYMS, SMAP; expected TEXT, DATA, SYMS, SMAP"


# ---------------------------------------------------------------------------- content checks
def bad_image(change) -> Image:
    img = sample()
    change(img)
    return img


def expect(monkeypatch, change, message: str, config=CFG, structural: bool = True):
    """The loader rejects the changed image with *message*; so do the writer
    (when the check is structural) and check_image."""
    img = bad_image(change)
    assert load_error(raw_bytes(img, monkeypatch), config) == message
    if structural:
        assert load_error(raw_bytes(img, monkeypatch), None) == message
        with pytest.raises(ImageError, match=r"^cannot write image: "):
            to_bytes(img)
    with pytest.raises(ImageError) as info:
        check_image(canonical(img), config, "model.lpu")
    assert str(info.value) == f"model.lpu: {message}"


def set_words(q: str | int, *ws: int):
    def change(img):
        img.text[Q(q) if isinstance(q, str) else q] = words(*ws)
        img.srcmap = SourceMap()
        img.labels = []
    return change


READ = P("read", a=addr("w", 3, 0, 0), d=s(0))


def test_queue_not_on_config(monkeypatch):
    expect(monkeypatch, set_words(300, P("halt")), "TEXT queue 300 does not exist on chip config 'tiny'",
           structural=False)
    expect(monkeypatch, set_words(30, READ), "TEXT queue 30 does not exist on chip config 'tiny'", structural=False)


@pytest.mark.parametrize("word, message", [
    (0x9F, "unknown opcode 0x9f"),
    (READ | (1 << 40), f"read: reserved bits set in {READ | (1 << 40):#018x}"),
    (READ | (1 << 63), "the pair bit must join a MEM read and a MEM write issued in one cycle"),
    (P("nop", q=Q("w2"), n=1), "nop: operand q names queue w2, but the word is in queue w3"),
    (P("halt"), "halt outside queue icu"),
    (P("vadd", dt=0, a=0, b=0, d=0, alu=0), "vadd: dtype code 0 is not one of its dtypes (i8, i16, i32, f16, f32)"),
    (P("vexp", dt=1, a=0, d=0, alu=0), "vexp: dtype i8 is not one of its dtypes (f16, f32)"),
    (P("vadd", dt=1, a=0, b=1 << 6, d=0, alu=0), "vadd: operand b: stream operand 0x40 has stray bits above bit 5"),
])
def test_structural_word_checks(monkeypatch, word, message):
    expect(monkeypatch, set_words("w3", READ, word), f"TEXT queue w3 word 1: {message}")


def test_repeat_needs_an_earlier_instruction(monkeypatch):
    w3 = Q("w3")
    expect(monkeypatch, set_words("w3", P("nop", q=w3, n=4), P("repeat", q=w3, n=1, d=1, stride=0), READ),
           "TEXT queue w3 word 1: repeat with no earlier instruction in the queue to repeat")


@pytest.mark.parametrize("queue, word, message", [
    ("w3", P("read", a=addr("w", 2, 0, 0), d=s(0)),
     "read: operand a: address W2.b0[0] is in slice w2, whose queue is not w3"),
    ("w3", P("read", a=addr("w", NSL, 0, 0), d=s(0)),
     f"read: operand a: address W{NSL}.b0[0]: slice does not exist on chip config 'tiny' "
     f"({NSL} MEM slices per hemisphere)"),
    ("w3", P("read", a=addr("w", 3, 0, 300), d=s(0)),
     "read: operand a: address W3.b0[300]: offset past the bank end on chip config 'tiny' (256 words)"),
    ("w3", P("read", a=addr("w", 3, 0, 0), d=s(NS + 1, True)),
     f"read: operand d: stream s{NS + 1}w does not exist on chip config 'tiny' ({NS} streams per direction)"),
    ("alu1", P("vadd", dt=1, a=0, b=s(NS), d=0, alu=1),
     f"vadd: operand b: stream s{NS}e does not exist on chip config 'tiny' ({NS} streams per direction)"),
    ("alu1", P("vadd", dt=1, a=0, b=s(0), d=0, alu=2), "vadd: operand alu names alu2, but the word is in queue alu1"),
    ("alu1", P("vadd", dt=1, a=0, b=s(0), d=0, alu=9),
     "vadd: operand alu: alu9 does not exist on chip config 'tiny' (4 ALUs per lane)"),
    ("w3", P("iw", p=0), "iw: operand p names mxm0, but the word is in queue w3"),
    ("c2c0", P("deskew", l=5), "deskew: operand l: c2c5 does not exist on chip config 'tiny' (2 C2C links)"),
    ("sxmw", P("shift", s=0, n=-3, d=1, x=1), "shift: operand x names sxme, but the word is in queue sxmw"),
])
def test_operand_checks_need_the_config(monkeypatch, queue, word, message):
    img = bad_image(set_words(queue, word))
    blob = raw_bytes(img, monkeypatch)
    assert load_error(blob) == f"TEXT queue {queue} word 0: {message}"
    from_bytes(blob, None)  # structure alone is fine
    with pytest.raises(ImageError) as info:
        check_text(img, CFG, "k.lpu")
    assert str(info.value) == f"k.lpu: TEXT queue {queue} word 0: {message}"


def test_check_text_accepts_the_sample():
    check_text(sample(), CFG)
    check_image(sample(), CFG)


def test_words_must_be_uint64():
    img = sample()
    img.text[0] = np.array([P("halt")], np.int64)
    with pytest.raises(ImageError, match="words must be a 1-D uint64 array"):
        to_bytes(img)


def with_data(*symbols):
    def change(img):
        img.data = list(symbols)
    return change


def test_data_checks(monkeypatch):
    expect(monkeypatch, with_data(DataSymbol("x", addr("w", NSL, 0, 0), "i8", 1, 1)),
           f"SYMS data symbol 'x': slice W{NSL} does not exist on chip config 'tiny' ({NSL} MEM slices per hemisphere)",
           structural=False)
    expect(monkeypatch, with_data(DataSymbol("x", addr("w", NSL - 2, 0, 0), "f32", 1, 1)),
           f"SYMS data symbol 'x': byte plane 2 of its f32 elements would be in slice W{NSL}, which does not exist "
           f"on chip config 'tiny' ({NSL} MEM slices per hemisphere)", structural=False)
    expect(monkeypatch, with_data(DataSymbol("x", addr("w", 63, 0, 0), "i16", 1, 1)),
           "SYMS data symbol 'x': byte plane 1 of its i16 elements would be in slice W64, which does not exist "
           "(64 MEM slices per hemisphere)", config=None)
    expect(monkeypatch, with_data(DataSymbol("x", addr("e", 1, 0, 250), "i32", 8, 1)),
           "SYMS data symbol 'x': words 250..257 run past the end of the bank (256 words on chip config 'tiny')",
           structural=False)
    expect(monkeypatch, with_data(DataSymbol("x", addr("e", 1, 0, 4000), "i8", 120, 1)),
           "SYMS data symbol 'x': words 4000..4119 run past the end of the bank (4096 words)", config=None)
    expect(monkeypatch, with_data(DataSymbol("x", addr("e", 1, 1, 0), "i16", 2, 40),
                                  DataSymbol("y", addr("e", 1, 1, 3), "i8", 1, 1)),
           "SYMS data symbols 'x' and 'y' overlap in E1.b1")
    # x's second byte plane lies in slice E2, where y is
    expect(monkeypatch, with_data(DataSymbol("x", addr("e", 1, 1, 0), "i16", 2, 40),
                                  DataSymbol("y", addr("e", 2, 1, 3), "i8", 1, 1)),
           "SYMS data symbols 'x' and 'y' overlap in E2.b1")


def test_disjoint_neighbours_are_fine():
    img = bad_image(with_data(DataSymbol("x", addr("e", 1, 1, 0), "i16", 2, 40),
                              DataSymbol("y", addr("e", 1, 1, 4), "i8", 1, 1),
                              DataSymbol("y2", addr("e", 2, 1, 4), "i8", 1, 1),
                              DataSymbol("y3", addr("e", 3, 1, 0), "i8", 1, 1),
                              DataSymbol("z", addr("w", 1, 1, 0), "i8", 1, 1, np.ones((1, LANES), np.uint8))))
    assert from_bytes(to_bytes(img), CFG).equals(canonical(img))


def test_bad_init_shape_is_not_written():
    img = bad_image(with_data(DataSymbol("x", 0, "i16", 1, 1, np.zeros((1, LANES), np.uint8))))
    with pytest.raises(ImageError, match=r"initial contents must be uint8 of shape \(2, 32\), got uint8 \(1, 32\)"):
        to_bytes(img)


def test_symbol_checks(monkeypatch):
    expect(monkeypatch, lambda img: img.labels.append(LabelSymbol("N", 0, 0)),
           "SYMS: duplicate symbol name 'N' (constant and label)")
    expect(monkeypatch, lambda img: img.consts.append(ConstSymbol("weights", 1)),
           "SYMS: duplicate symbol name 'weights' (constant and data symbol)")
    expect(monkeypatch, lambda img: img.labels.append(LabelSymbol("far", Q("w3"), 4)),
           "SYMS label 'far': index 4 is past the end of queue w3 (3 instructions)")
    expect(monkeypatch, lambda img: img.labels.append(LabelSymbol("far", 50, 0)),
           "SYMS label 'far': queue 50 does not exist on chip config 'tiny'", structural=False)
    expect(monkeypatch, lambda img: img.labels.append(LabelSymbol("fin", -1, 2)),
           "SYMS label 'fin': an end-of-program label (queue -1) must have index 0, not 2")
    img = bad_image(lambda img: img.consts.append(ConstSymbol("", 1)))
    with pytest.raises(ImageError, match=r"^cannot write image: SYMS: a constant has an empty name$"):
        to_bytes(img)
    assert load_error(raw_bytes(img, monkeypatch)) == "SYMS constant 0: name '' is empty or not printable"


def test_names_must_be_printable(monkeypatch):
    img = canonical(sample())
    img.labels.insert(0, LabelSymbol("a\nb", 0, 0))
    with pytest.raises(ImageError, match=r"^cannot write image: SYMS: label name 'a\\nb' is not printable$"):
        to_bytes(img)
    assert load_error(raw_bytes(img, monkeypatch)) == "SYMS label 0: name 'a\\nb' is empty or not printable"


def test_unsorted_symbols_are_rejected(monkeypatch):
    img = canonical(sample())
    img.consts.reverse()
    assert load_error(raw_bytes(img, monkeypatch, keep_order=True)) == (
        "SYMS constants are not sorted by name ('PI' after 'µ')")
    img = canonical(sample())
    img.data.reverse()
    assert load_error(raw_bytes(img, monkeypatch, keep_order=True)) == (
        "SYMS data symbols are not sorted by address ('bias' after 'buf')")


def test_source_map_checks(monkeypatch):
    def rows(n):
        def change(img):
            sm = img.srcmap
            sm.file, sm.line, sm.col, sm.chain = sm.file[:n], sm.line[:n], sm.col[:n], sm.chain[:n]
        return change
    expect(monkeypatch, rows(10), "SMAP has 10 rows for 11 instructions")

    def poke(attr, row, value):
        def change(img):
            getattr(img.srcmap, attr)[row] = value
        return change
    expect(monkeypatch, poke("file", 4, 2), "SMAP row 4: file index 2 out of range (2 files)")
    expect(monkeypatch, poke("chain", 6, 2), "SMAP row 6: chain index 2 out of range (2 macro frames)")
    expect(monkeypatch, poke("chain", 6, -2), "SMAP row 6: chain index -2 out of range (2 macro frames)")
    expect(monkeypatch, lambda img: setattr(img.srcmap.frames[0], "parent", 1),
           "SMAP macro frame 0: parent 1 is not an earlier frame")
    expect(monkeypatch, lambda img: setattr(img.srcmap.frames[1], "file", 2),
           "SMAP macro frame 1: file index 2 out of range (2 files)")
    expect(monkeypatch, lambda img: img.srcmap.files.append("model.lasm"), "SMAP file 'model.lasm' is listed twice")


# ---------------------------------------------------------------------------- the decoder agrees with isa.unpack
@settings(max_examples=300, deadline=None)
@given(st.integers(0, (1 << 64) - 1), st.sampled_from(sorted(isa.BY_OPCODE)))
def test_vectorised_decode_agrees_with_unpack(word, opcode):
    for w in (word, (word & ~0xFF) | opcode):
        found = imagecheck._scan(0, words(w), None, ())
        try:
            isa.unpack(w)
        except ValueError as exc:
            assert found is not None and found[1] == str(exc)
        else:
            assert found is None or "reserved bits" not in found[1] and "unknown opcode" not in found[1]


# ---------------------------------------------------------------------------- random images
NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6).filter(str.isprintable)


def operand_value(draw, op: isa.Operand, qname: str, cfg) -> int:
    if op.kind == "queue":
        return cfg.queue_id(qname)
    if op.kind == "stream":
        return s(draw(st.integers(0, cfg.streams_per_direction - 1)), draw(st.booleans()))
    if op.kind == "src":
        if draw(st.booleans()):
            return isa.SRC_IMMEDIATE | draw(st.integers(0, (1 << 32) - 1))
        return s(draw(st.integers(0, cfg.streams_per_direction - 1)), draw(st.booleans()))
    if op.kind == "addr":
        return addr(qname[0], int(qname[1:]), draw(st.integers(0, cfg.banks_per_slice - 1)),
                    draw(st.integers(0, cfg.words_per_bank - 1)))
    if op.kind in ("alu", "plane", "link"):
        return int(qname[3:])
    if op.kind == "sxm":
        return int(qname == "sxme")
    if op.kind == "uimm":
        return draw(st.integers(0, (1 << op.width) - 1))
    return draw(st.integers(-(1 << (op.width - 1)), (1 << (op.width - 1)) - 1))


def rows_for(qid: int, cfg) -> list[isa.Instr]:
    unit = cfg.unit_of_queue(qid)
    return [r for r in isa.TABLE.values() if r.unit == unit or (r.unit == "icu" and r.queue is None)]


@st.composite
def instruction(draw, qid: int, cfg, first: bool) -> int:
    choices = [r for r in rows_for(qid, cfg) if not first or r.mnemonic not in ("nop", "repeat")]
    row = draw(st.sampled_from(choices))
    qname = cfg.queues[qid]
    values = {op.name: operand_value(draw, op, qname, cfg) for op in row.operands}
    for i, allowed in enumerate(row.dtypes):
        values["dt" if i == 0 else "dt2"] = isa.DTYPES[draw(st.sampled_from(allowed))]
    return isa.pack(row, values)


@st.composite
def images(draw, cfg=TINY) -> Image:
    lanes = cfg.lanes
    qids = draw(st.lists(st.integers(0, len(cfg.queues) - 1), unique=True, max_size=4))
    text = {}
    for q in qids:
        n = draw(st.integers(1, 5))
        text[q] = words(*[draw(instruction(q, cfg, i == 0)) for i in range(n)])
    counts = {q: int(np.count_nonzero((w & np.uint64(0xFF)) != 0)) for q, w in text.items()}
    names = draw(st.lists(NAMES, unique=True, max_size=9))
    nc = draw(st.integers(0, len(names)))
    nd = draw(st.integers(0, len(names) - nc))
    consts = [ConstSymbol(n, draw(st.integers(-(1 << 63), (1 << 63) - 1) | st.floats())) for n in names[:nc]]
    data, free = [], {}  # (east, slice, bank) -> first free word
    for name in names[nc:nc + nd]:
        dtype = draw(st.sampled_from(isa.ALL_DTYPES))
        sym = DataSymbol(name, 0, dtype, draw(st.integers(1, 3)), draw(st.integers(1, 2 * lanes + 1)))
        east, bank = draw(st.booleans()), draw(st.integers(0, cfg.banks_per_slice - 1))
        sl = draw(st.integers(0, cfg.mem_slices_per_hemisphere - sym.planes))
        start = max(free.get((east, sl + k, bank), 0) for k in range(sym.planes)) + draw(st.integers(0, 3))
        start = min(start, cfg.words_per_bank - sym.words_per_plane(lanes))
        for k in range(sym.planes):  # placed after everything in its slices, so never overlapping
            free[(east, sl + k, bank)] = start + sym.words_per_plane(lanes)
        sym.addr = isa.addr_code(east, sl, bank, start)
        if draw(st.booleans()):
            raw = draw(st.binary(min_size=sym.nwords(lanes) * lanes, max_size=sym.nwords(lanes) * lanes))
            sym.init = np.frombuffer(raw, np.uint8).reshape(-1, lanes).copy()
        data.append(sym)
    labels = []
    for name in names[nc + nd:]:
        if not text or draw(st.integers(0, 4)) == 0:
            labels.append(LabelSymbol(name, -1, 0))
        else:
            q = draw(st.sampled_from(sorted(text)))
            labels.append(LabelSymbol(name, q, draw(st.integers(0, counts[q]))))
    nrows = sum(counts.values())
    srcmap = SourceMap()
    if nrows and draw(st.booleans()):
        files = draw(st.lists(NAMES, unique=True, min_size=1, max_size=3))
        frames = []
        for i in range(draw(st.integers(0, 3))):
            frames.append(MacroFrame(draw(NAMES), draw(st.integers(0, len(files) - 1)), draw(st.integers(0, 99)),
                                     draw(st.integers(0, 99)), draw(st.integers(-1, i - 1))))
        srcmap = SourceMap(
            files,
            np.array(draw(st.lists(st.integers(0, len(files) - 1), min_size=nrows, max_size=nrows)), np.uint16),
            np.array(draw(st.lists(st.integers(0, (1 << 32) - 1), min_size=nrows, max_size=nrows)), np.uint32),
            np.array(draw(st.lists(st.integers(0, 0xFFFF), min_size=nrows, max_size=nrows)), np.uint16),
            np.array(draw(st.lists(st.integers(-1, len(frames) - 1), min_size=nrows, max_size=nrows)), np.int32),
            frames)
    img = Image(cfg.name, cfg.hash, text, data, consts, labels, srcmap)
    shuffled = draw(st.permutations(list(text)))
    img.text = {q: img.text[q] for q in shuffled}
    img.consts, img.data, img.labels = (draw(st.permutations(x)) for x in (img.consts, img.data, img.labels))
    return img


FAST = settings(max_examples=int(__import__("os").environ.get("IMG_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(images())
def test_random_images_round_trip(img):
    blob = to_bytes(img)
    back = from_bytes(blob, TINY)
    assert back.equals(canonical(img))
    assert to_bytes(back) == blob
    assert to_bytes(canonical(img)) == blob


@FAST
@given(images(TSP_V1))
def test_random_tsp_v1_images_round_trip(img):
    blob = to_bytes(img, TSP_V1)
    assert from_bytes(blob, TSP_V1).equals(canonical(img))
    assert load_error(blob, TINY).startswith("built for chip config 'tsp-v1'")


@FAST
@given(images(), st.data())
def test_edits_behind_valid_crcs_never_crash(img, data):
    """Structural fuzzing: change payload bytes and fix the CRCs, so the parser
    itself is exercised.  The loader either rejects the file with ImageError or
    accepts it, and then the file is canonical: writing it back gives the same bytes."""
    blob = bytearray(to_bytes(img))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(6, len(blob) - 1) | st.integers(imagefile.TABLE_END, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    blob = fix_crcs(blob)
    for config in (TINY, None):
        try:
            back = from_bytes(blob, config)
        except ImageError as exc:
            assert "\n" not in str(exc) and "malformed image" not in str(exc)
        else:
            lanes_unknown = (config is None and back.data and all(d.init is None for d in back.data)
                             and back.config_hash not in (TINY.hash, TSP_V1.hash))
            if lanes_unknown:  # an Image does not carry the lane count; the writer needs the config then
                with pytest.raises(ImageError, match="lane count is unknown"):
                    to_bytes(back)
            else:
                assert to_bytes(back, config) == blob


@FAST
@given(st.binary(max_size=400))
def test_random_bytes(blob):
    load_error(blob)
    load_error(SAMPLE[:6] + blob)
    load_error(fix_crcs(SAMPLE[:imagefile.TABLE_END] + blob))


@FAST
@given(st.binary(min_size=imagefile.TABLE_END - 8, max_size=imagefile.TABLE_END - 8))
def test_random_headers_behind_a_valid_crc(rest):
    """Any header whose CRC is right is still checked field by field."""
    blob = fix_crcs(SAMPLE[:6] + rest + SAMPLE[imagefile.TABLE_END:])
    try:
        from_bytes(blob, None)
    except ImageError as exc:
        assert "malformed image" not in str(exc)


def test_loader_never_leaks_other_exceptions():
    with pytest.raises(ImageError, match="malformed image"):
        from_bytes("not bytes")  # type: ignore[arg-type]
