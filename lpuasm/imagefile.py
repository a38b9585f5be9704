"""The ``.lpu`` file format: :class:`~lpuasm.image.Image` to bytes and back.

The byte layout is documented in docs/image-format.md.  In short: a 56-byte
header (magic, version, flags, file size, chip-config hash and name, lanes,
section count, header CRC), a table of four sections (TEXT, DATA, SYMS, SMAP)
each with offset, size and CRC32, then the 8-byte aligned payloads.

The writer canonicalises (constants and labels by name, data by address, text
by queue id), so equal programs give equal bytes.  The loader trusts nothing:
every count, offset, index and instruction word is checked, and the only
exception it raises is :class:`ImageError`, whose message is one line that
starts with the file name.  Large arrays (instruction words, SRAM contents,
source-map rows) are read and checked with numpy, never word by word.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from . import isa
from .config import BUILTIN, ChipConfig
from .image import FORMAT_VERSION, ConstSymbol, DataSymbol, Image, LabelSymbol, MacroFrame, SourceMap
from .imagecheck import _ROW_COLUMNS, ImageError, _Bad, _check_image, _check_shape, _writer_lanes

MAGIC = b"\x7fLPU"
SECTION_KINDS = (b"TEXT", b"DATA", b"SYMS", b"SMAP")

_HEADER = struct.Struct("<4sHHQ16s16sHHI")  # magic .. header CRC
_ENTRY = struct.Struct("<4sIQQ")  # kind, CRC32, offset, size
HEADER_SIZE = _HEADER.size  # 56
TABLE_END = HEADER_SIZE + len(SECTION_KINDS) * _ENTRY.size  # 152
_CRC_FIELD = HEADER_SIZE - 4  # the header CRC covers bytes before it, then the table

_TEXT_HEAD = struct.Struct("<II")  # queue count, reserved
_QUEUE_HEAD = struct.Struct("<HHI")  # queue id, reserved, word count
_SYMS_HEAD = struct.Struct("<IIII")  # consts, data, labels, string-table bytes
_SMAP_HEAD = struct.Struct("<IIQII")  # files, frames, rows, string-table bytes, reserved

_CONST = np.dtype([("off", "<u4"), ("len", "<u4"), ("tag", "u1"), ("pad", "V7"), ("value", "V8")])
_DATA = np.dtype([("off", "<u4"), ("len", "<u4"), ("addr", "<u4"), ("dtype", "u1"), ("flags", "u1"),
                  ("pad", "<u2"), ("rows", "<u4"), ("cols", "<u4"), ("doff", "<u8"), ("dsize", "<u8")])
_LABEL = np.dtype([("off", "<u4"), ("len", "<u4"), ("queue", "<i4"), ("index", "<u4")])
_FILE = np.dtype([("off", "<u4"), ("len", "<u4")])
_FRAME = np.dtype([("off", "<u4"), ("len", "<u4"), ("file", "<u4"), ("line", "<u4"), ("col", "<u2"),
                   ("pad", "<u2"), ("parent", "<i4")])

CONST_INT, CONST_FLOAT = 0, 1
DATA_INITIALISED = 1


def _align8(n: int) -> int:
    return (n + 7) & ~7


# ============================================================================ writer
def to_bytes(image: Image, config: ChipConfig | None = None) -> bytes:
    """Serialise *image* (canonicalised first).  Raises ImageError if the image
    is not one the loader would accept.  *config*, when given, must be the
    image's chip config; the text is then checked against it too, and it
    supplies the lane count when no initialised data does."""
    try:
        try:
            img = canonical(image)
        except TypeError as exc:  # keys or addresses that do not even sort
            raise _Bad(f"cannot put the image in canonical order ({exc})") from None
        if config is not None and bytes(img.config_hash) != config.hash:
            raise _Bad(f"image is for chip config hash {bytes(img.config_hash).hex()[:8]}.., "
                       f"not '{config.name}' ({config.hash.hex()[:8]}..)")
        lanes = _writer_lanes(img, config)
        _check_image(img, config, lanes)
        text, (data, syms), smap = _encode_text(img), _encode_syms_and_data(img, lanes), _encode_smap(img.srcmap)
    except _Bad as exc:
        raise ImageError(f"cannot write image: {exc}") from None
    parts, table, offset = [], [], TABLE_END
    for kind, payload in zip(SECTION_KINDS, (text, data, syms, smap)):
        pad = _align8(len(payload)) - len(payload)
        parts += [payload, bytes(pad)]
        table.append(_ENTRY.pack(kind, zlib.crc32(payload), offset, len(payload)))
        offset += len(payload) + pad
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, offset, bytes(img.config_hash),
                        _name_field(img.config_name), lanes, len(SECTION_KINDS), 0)[:_CRC_FIELD]
    table_bytes = b"".join(table)
    crc = zlib.crc32(table_bytes, zlib.crc32(head))
    return b"".join([head, struct.pack("<I", crc), table_bytes, *parts])


def save(image: Image, path, config: ChipConfig | None = None) -> None:
    """Write *image* to *path* (see :func:`to_bytes`)."""
    blob = to_bytes(image, config)
    try:
        Path(path).write_bytes(blob)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write: {exc.strerror}") from None


def canonical(image: Image) -> Image:
    """A shallow copy of *image* in canonical order: constants and labels by
    name, data by address, text by queue id (empty queues dropped).  Arrays
    are shared with *image*, not copied."""
    text = {}
    for q in sorted(image.text):
        words = np.asarray(image.text[q])
        if words.size:
            text[q] = words
    return Image(
        config_name=image.config_name,
        config_hash=image.config_hash,
        text=text,
        data=sorted(image.data, key=lambda d: (d.addr, d.name)),
        consts=sorted(image.consts, key=lambda c: c.name),
        labels=sorted(image.labels, key=lambda lb: (lb.name, lb.queue, lb.index)),
        srcmap=image.srcmap,
        version=image.version,
    )


def _name_field(name: str) -> bytes:
    """The 16-byte config-name field: printable ASCII ('?' for anything else),
    cut to 16 bytes, NUL-padded.  The name is informational; the hash is the
    config's identity."""
    text = "".join(c if " " <= c <= "~" else "?" for c in str(name))[:16]
    return text.encode("ascii").ljust(16, b"\0")


def _strings(names: list[str]) -> tuple[list[tuple[int, int]], bytes]:
    refs, table = [], bytearray()
    for n in names:
        b = n.encode("utf-8")
        refs.append((len(table), len(b)))
        table += b
    return refs, bytes(table)


def _encode_text(img: Image) -> bytes:
    out = bytearray(_TEXT_HEAD.pack(len(img.text), 0))
    for q, words in img.text.items():
        out += _QUEUE_HEAD.pack(q, 0, len(words))
        out += np.ascontiguousarray(words, dtype="<u8").tobytes()
    return bytes(out)


def _encode_syms_and_data(img: Image, lanes: int) -> tuple[bytes, bytes]:
    """The DATA and SYMS payloads."""
    names = [c.name for c in img.consts] + [d.name for d in img.data] + [lb.name for lb in img.labels]
    refs, strtab = _strings(names)
    consts = np.zeros(len(img.consts), _CONST)
    for i, c in enumerate(img.consts):
        consts[i]["off"], consts[i]["len"] = refs[i]
        if isinstance(c.value, (float, np.floating)):
            consts[i]["tag"], value = CONST_FLOAT, struct.pack("<d", float(c.value))
        else:
            consts[i]["tag"], value = CONST_INT, struct.pack("<q", int(c.value))
        consts[i]["value"] = np.void(value)
    data = np.zeros(len(img.data), _DATA)
    blobs, doff = [], 0
    for i, d in enumerate(img.data):
        rec = data[i]
        rec["off"], rec["len"] = refs[len(img.consts) + i]
        rec["addr"], rec["dtype"], rec["rows"], rec["cols"] = d.addr, isa.DTYPES[d.dtype], d.rows, d.cols
        if d.init is not None:
            b = np.ascontiguousarray(d.init).tobytes()
            rec["flags"], rec["doff"], rec["dsize"] = DATA_INITIALISED, doff, len(b)
            blobs.append(b)
            doff += len(b)
    labels = np.zeros(len(img.labels), _LABEL)
    base = len(img.consts) + len(img.data)
    for i, lb in enumerate(img.labels):
        labels[i]["off"], labels[i]["len"] = refs[base + i]
        labels[i]["queue"], labels[i]["index"] = lb.queue, lb.index
    syms = (_SYMS_HEAD.pack(len(consts), len(data), len(labels), len(strtab))
            + consts.tobytes() + data.tobytes() + labels.tobytes() + strtab)
    return b"".join(blobs), syms


def _encode_smap(sm: SourceMap) -> bytes:
    refs, strtab = _strings(list(sm.files) + [f.macro for f in sm.frames])
    files = np.array(refs[:len(sm.files)], dtype=np.uint32).reshape(-1, 2).astype("<u4")
    frames = np.zeros(len(sm.frames), _FRAME)
    for i, f in enumerate(sm.frames):
        frames[i]["off"], frames[i]["len"] = refs[len(sm.files) + i]
        frames[i]["file"], frames[i]["line"], frames[i]["col"], frames[i]["parent"] = f.file, f.line, f.col, f.parent
    nrows = len(sm.file)
    out = bytearray(_SMAP_HEAD.pack(len(sm.files), len(sm.frames), nrows, len(strtab), 0))
    out += files.tobytes() + frames.tobytes()
    for attr, le, _ in _ROW_COLUMNS:
        col = np.asarray(getattr(sm, attr)).astype(le).tobytes()
        out += col + bytes(_align8(len(col)) - len(col))
    return bytes(out + strtab)


# ============================================================================ loader
def load(path, config: ChipConfig | None = None) -> Image:
    """Read the image at *path* (see :func:`from_bytes`)."""
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return from_bytes(blob, config, str(path))


def from_bytes(blob: bytes, config: ChipConfig | None = None, name: str = "<image>") -> Image:
    """Parse and check an image.  With *config*, also refuse an image built for
    another chip config and check every operand against it.  Raises only
    :class:`ImageError`, with a one-line message starting with *name*."""
    try:
        return _from_bytes(blob, config)
    except _Bad as exc:
        raise ImageError(f"{name}: {exc}") from None
    except ImageError:
        raise
    except Exception as exc:  # a check we forgot: still one clear line, never a traceback
        raise ImageError(f"{name}: malformed image ({type(exc).__name__}: {exc})") from None


def _from_bytes(blob, config: ChipConfig | None) -> Image:
    mv = memoryview(blob).cast("B")
    n = len(mv)
    if n < 4 or bytes(mv[:4]) != MAGIC:
        if n < 4 and bytes(mv) == MAGIC[:n]:
            raise _Bad(f"truncated: {n} bytes, shorter than the {HEADER_SIZE}-byte header")
        raise _Bad("bad magic (not an lpuasm image)")
    if n < 6:
        raise _Bad(f"truncated: {n} bytes, shorter than the {HEADER_SIZE}-byte header")
    version = struct.unpack_from("<H", mv, 4)[0]
    if version != FORMAT_VERSION:
        raise _Bad(f"format version {version} is not supported (this lpuasm reads version {FORMAT_VERSION})")
    if n < HEADER_SIZE:
        raise _Bad(f"truncated: {n} bytes, shorter than the {HEADER_SIZE}-byte header")
    _, _, flags, size, hash_, name_field, lanes, nsec, crc = _HEADER.unpack_from(mv, 0)
    if nsec != len(SECTION_KINDS):
        raise _Bad(f"header names {nsec} sections, version {FORMAT_VERSION} images have {len(SECTION_KINDS)} (file corrupt)")
    if n < TABLE_END:
        raise _Bad(f"truncated: {n} bytes, shorter than the header and section table ({TABLE_END} bytes)")
    if zlib.crc32(mv[HEADER_SIZE:TABLE_END], zlib.crc32(mv[:_CRC_FIELD])) != crc:
        raise _Bad("CRC mismatch in header (file corrupt)")
    if size > n:
        raise _Bad(f"truncated: the header says {size} bytes, the file has {n}")
    if size < n:
        raise _Bad(f"{n - size} bytes of trailing data after the image")
    if flags:
        raise _Bad(f"unknown header flags {flags:#06x}")
    config_name = _parse_name(name_field)
    if config is not None and hash_ != config.hash:
        fix = f"with --config {config.name}" if BUILTIN.get(config.name) is config else f"for chip config '{config.name}'"
        raise _Bad(f"built for chip config '{config_name}' (hash {hash_.hex()[:8]}..), not '{config.name}' "
                   f"(hash {config.hash.hex()[:8]}..); assemble it again {fix}")
    if lanes and (lanes % 16 or lanes > 1024):
        raise _Bad(f"header lane count {lanes} is impossible (a multiple of 16, at most 1024)")
    if config is not None and lanes not in (0, config.lanes):
        raise _Bad(f"header lane count {lanes} does not match chip config '{config.name}' ({config.lanes} lanes)")
    payloads = _sections(mv)
    data_blob, syms = payloads[b"DATA"], payloads[b"SYMS"]
    image = Image(config_name=config_name, config_hash=bytes(hash_), text=_parse_text(payloads[b"TEXT"]),
                  version=version)
    image.consts, image.data, image.labels = _parse_syms(syms, data_blob, lanes)
    image.srcmap = _parse_smap(payloads[b"SMAP"])
    _check_image(image, config, lanes)
    return image


def _parse_name(field: bytes) -> str:
    text = field.rstrip(b"\0")
    if b"\0" in text or any(not 0x20 <= c <= 0x7E for c in text):
        raise _Bad("config name field is not NUL-padded printable ASCII")
    return text.decode("ascii")


def _kind(k: bytes) -> str:
    return k.decode("ascii") if all(0x20 < c < 0x7F for c in k) else repr(k)


def _sections(mv: memoryview) -> dict[bytes, memoryview]:
    entries = [_ENTRY.unpack_from(mv, HEADER_SIZE + i * _ENTRY.size) for i in range(len(SECTION_KINDS))]
    kinds = tuple(e[0] for e in entries)
    if kinds != SECTION_KINDS:
        raise _Bad(f"section table lists {', '.join(map(_kind, kinds))}; expected {', '.join(map(_kind, SECTION_KINDS))}")
    total = len(mv)
    for kind, _, offset, size in entries:
        if offset % 8:
            raise _Bad(f"section {_kind(kind)} is not 8-byte aligned (offset {offset})")
        if offset < TABLE_END:
            raise _Bad(f"section {_kind(kind)} overlaps the header")
        if offset + size > total:
            raise _Bad(f"section {_kind(kind)} runs past the end of the file (offset {offset}, size {size}, file {total})")
    order = sorted(range(len(entries)), key=lambda i: (entries[i][2], i))
    pos, prev = TABLE_END, None
    for i in order:
        kind, _, offset, size = entries[i]
        if prev is not None and offset < prev[1]:
            raise _Bad(f"section {_kind(prev[0])} overlaps section {_kind(kind)}")
        if offset != pos:
            where = f"after section {_kind(prev[0])}" if prev else "after the section table"
            raise _Bad(f"{offset - pos} unexpected bytes {where}")
        end = offset + size
        if any(mv[end:_align8(end)]):
            raise _Bad(f"non-zero padding after section {_kind(kind)}")
        pos, prev = _align8(end), (kind, end)
    if pos != total:
        raise _Bad(f"{total - pos} unexpected bytes after section {_kind(prev[0])}")
    out = {}
    for kind, crc, offset, size in entries:
        payload = mv[offset:offset + size]
        if zlib.crc32(payload) != crc:
            raise _Bad(f"CRC mismatch in section {_kind(kind)} (file corrupt)")
        out[kind] = payload
    return out


def _array(mv: memoryview, pos: int, dtype, count: int, what: str) -> tuple[np.ndarray, int]:
    dtype = np.dtype(dtype)
    end = pos + dtype.itemsize * count
    if end > len(mv):
        raise _Bad(f"{what} runs past the end of its section")
    return np.frombuffer(mv[pos:end], dtype=dtype), end


def _parse_text(mv: memoryview) -> dict[int, np.ndarray]:
    if len(mv) < _TEXT_HEAD.size:
        raise _Bad("TEXT section is shorter than its header")
    nq, reserved = _TEXT_HEAD.unpack_from(mv, 0)
    if reserved:
        raise _Bad("TEXT header: reserved field is not zero")
    pos, text, prev = _TEXT_HEAD.size, {}, -1
    for _ in range(nq):
        if pos + _QUEUE_HEAD.size > len(mv):
            raise _Bad(f"TEXT section ends inside the header of its stream {len(text) + 1} of {nq}")
        q, reserved, count = _QUEUE_HEAD.unpack_from(mv, pos)
        if reserved:
            raise _Bad(f"TEXT queue {q}: reserved field is not zero")
        if q <= prev:
            raise _Bad(f"TEXT queues are not in ascending order (queue {q} after queue {prev})")
        if count == 0:
            raise _Bad(f"TEXT queue {q} has no words")
        words, pos = _array(mv, pos + _QUEUE_HEAD.size, "<u8", count, f"TEXT queue {q} ({count} words)")
        text[q] = words.astype(np.uint64)
        prev = q
    if pos != len(mv):
        raise _Bad(f"TEXT section has {len(mv) - pos} bytes after its last stream")
    return text


def _names(refs: np.ndarray, strtab: memoryview, what: str, start: int = 0) -> list[str]:
    """Decode string references; strings must be laid out one after another in
    record order from *start*, without gaps."""
    offs = refs["off"].astype(np.int64)
    lens = refs["len"].astype(np.int64)
    expect = start + np.concatenate(([0], np.cumsum(lens)[:-1])) if len(lens) else offs
    bad = np.flatnonzero(offs != expect)
    if bad.size:
        raise _Bad(f"{what} {bad[0]}: name is not where the string table layout puts it")
    if len(lens) and start + int(lens.sum()) > len(strtab):
        raise _Bad(f"{what} names run past the end of the string table")
    out = []
    raw = bytes(strtab)
    for i, (o, n) in enumerate(zip(offs.tolist(), lens.tolist())):
        try:
            s = raw[o:o + n].decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"{what} {i}: name is not valid UTF-8") from None
        if not s or not s.isprintable():
            raise _Bad(f"{what} {i}: name {s!r} is empty or not printable")
        out.append(s)
    return out


def _parse_syms(mv: memoryview, data_mv: memoryview, lanes: int):
    if len(mv) < _SYMS_HEAD.size:
        raise _Bad("SYMS section is shorter than its header")
    nc, nd, nl, nstr = _SYMS_HEAD.unpack_from(mv, 0)
    expect = _SYMS_HEAD.size + nc * _CONST.itemsize + nd * _DATA.itemsize + nl * _LABEL.itemsize + nstr
    if expect != len(mv):
        raise _Bad(f"SYMS section is {len(mv)} bytes, its counts say {expect}")
    crec, pos = _array(mv, _SYMS_HEAD.size, _CONST, nc, "SYMS constants")
    drec, pos = _array(mv, pos, _DATA, nd, "SYMS data symbols")
    lrec, pos = _array(mv, pos, _LABEL, nl, "SYMS labels")
    strtab = mv[pos:]
    cnames = _names(crec, strtab, "SYMS constant")
    dnames = _names(drec, strtab, "SYMS data symbol", int(crec["len"].sum()))
    used = int(crec["len"].sum()) + int(drec["len"].sum())
    lnames = _names(lrec, strtab, "SYMS label", used)
    if used + int(lrec["len"].sum()) != nstr:
        raise _Bad("SYMS string table has bytes no symbol uses")

    consts = []
    for i, rec in enumerate(crec):
        if bytes(rec["pad"]).strip(b"\0"):
            raise _Bad(f"SYMS constant '{cnames[i]}': reserved bytes are not zero")
        raw = bytes(rec["value"])
        if rec["tag"] == CONST_INT:
            value = struct.unpack("<q", raw)[0]
        elif rec["tag"] == CONST_FLOAT:
            value = struct.unpack("<d", raw)[0]
        else:
            raise _Bad(f"SYMS constant '{cnames[i]}': unknown value tag {rec['tag']}")
        consts.append(ConstSymbol(cnames[i], value))
    _check_sorted(cnames, "constants")
    _check_sorted(lnames, "labels")

    data, doff = [], 0
    for i, rec in enumerate(drec):
        sym = dnames[i]
        flags, code = int(rec["flags"]), int(rec["dtype"])
        if rec["pad"] or flags & ~DATA_INITIALISED:
            raise _Bad(f"SYMS data symbol '{sym}': reserved bits are not zero")
        if code not in isa.DTYPE_NAMES:
            raise _Bad(f"SYMS data symbol '{sym}': unknown dtype code {code}")
        d = DataSymbol(sym, int(rec["addr"]), isa.DTYPE_NAMES[code], int(rec["rows"]), int(rec["cols"]))
        if flags & DATA_INITIALISED:
            if not lanes:
                raise _Bad(f"SYMS data symbol '{sym}' is initialised but the header gives no lane count")
            _check_shape(d, lanes)
            nbytes = d.nwords(lanes) * lanes
            if int(rec["doff"]) != doff or int(rec["dsize"]) != nbytes:
                raise _Bad(f"SYMS data symbol '{sym}': its DATA bytes are at {int(rec['doff'])} "
                           f"(+{int(rec['dsize'])}), expected {doff} (+{nbytes})")
            if doff + nbytes > len(data_mv):
                raise _Bad(f"SYMS data symbol '{sym}': its bytes run past the end of DATA")
            d.init = np.frombuffer(data_mv[doff:doff + nbytes], np.uint8).reshape(-1, lanes).copy()
            doff += nbytes
        elif rec["doff"] or rec["dsize"]:
            raise _Bad(f"SYMS data symbol '{sym}' is not initialised but points at DATA bytes")
        if data and d.addr <= data[-1].addr:
            raise _Bad(f"SYMS data symbols are not sorted by address ('{sym}' after '{data[-1].name}')")
        data.append(d)
    if bool(data) != bool(lanes):
        raise _Bad(f"header lane count {lanes} with {len(data)} data symbols (it is 0 exactly when there are none)")
    if doff != len(data_mv):
        raise _Bad(f"DATA section has {len(data_mv) - doff} bytes no data symbol uses")

    labels = [LabelSymbol(lnames[i], int(r["queue"]), int(r["index"])) for i, r in enumerate(lrec)]
    return consts, data, labels


def _check_sorted(names: list[str], what: str) -> None:
    for a, b in zip(names, names[1:]):
        if b < a:
            raise _Bad(f"SYMS {what} are not sorted by name ('{b}' after '{a}')")


def _parse_smap(mv: memoryview) -> SourceMap:
    if len(mv) < _SMAP_HEAD.size:
        raise _Bad("SMAP section is shorter than its header")
    nf, nm, nrows, nstr, reserved = _SMAP_HEAD.unpack_from(mv, 0)
    if reserved:
        raise _Bad("SMAP header: reserved field is not zero")
    expect = (_SMAP_HEAD.size + nf * _FILE.itemsize + nm * _FRAME.itemsize
              + sum(_align8(nrows * np.dtype(le).itemsize) for _, le, _ in _ROW_COLUMNS) + nstr)
    if expect != len(mv):
        raise _Bad(f"SMAP section is {len(mv)} bytes, its counts say {expect}")
    frec, pos = _array(mv, _SMAP_HEAD.size, _FILE, nf, "SMAP files")
    mrec, pos = _array(mv, pos, _FRAME, nm, "SMAP macro frames")
    cols = {}
    for attr, le, native in _ROW_COLUMNS:
        arr, end = _array(mv, pos, le, nrows, f"SMAP {attr} column")
        if any(mv[end:_align8(end)]):
            raise _Bad(f"SMAP {attr} column: non-zero padding")
        cols[attr], pos = arr.astype(native), _align8(end)
    strtab = mv[pos:]
    files = _names(frec, strtab, "SMAP file")
    start = int(frec["len"].sum())
    macros = _names(mrec, strtab, "SMAP macro frame", start)
    if start + int(mrec["len"].sum()) != nstr:
        raise _Bad("SMAP string table has bytes nothing uses")
    if mrec["pad"].any():
        raise _Bad("SMAP macro frame: reserved field is not zero")
    frames = [MacroFrame(macros[i], int(r["file"]), int(r["line"]), int(r["col"]), int(r["parent"]))
              for i, r in enumerate(mrec)]
    return SourceMap(files=files, frames=frames, **cols)


# ============================================================================ checks
