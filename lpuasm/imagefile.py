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
from .config import BUILTIN, ENCODING_LIMITS, ChipConfig
from .diagnostics import LpuError
from .image import FORMAT_VERSION, ConstSymbol, DataSymbol, Image, LabelSymbol, MacroFrame, SourceMap

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
_ROW_COLUMNS = (("file", "<u2", np.uint16), ("line", "<u4", np.uint32), ("col", "<u2", np.uint16),
                ("chain", "<i4", np.int32))

CONST_INT, CONST_FLOAT = 0, 1
DATA_INITIALISED = 1
QUEUE_FIELD_LIMIT = 1 << isa.KINDS["queue"].width  # queue ids must fit the 8-bit queue operand
_U32 = (1 << 32) - 1


class ImageError(LpuError):
    """An image that cannot be written, read, or run on the given chip config."""


class _Bad(Exception):
    """Internal: what is wrong, without the file-name prefix."""


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


def _writer_lanes(img: Image, config: ChipConfig | None) -> int:
    """The header's lane count: 0 without data symbols (so the field is
    canonical), else the config's, the initial contents', or a built-in's."""
    if not img.data:
        return 0
    if config is not None:
        return config.lanes
    shapes = {d.init.shape[1] for d in img.data
              if isinstance(d.init, np.ndarray) and d.init.ndim == 2}
    if len(shapes) > 1:
        raise _Bad(f"data symbols disagree on the lane count ({', '.join(map(str, sorted(shapes)))})")
    if shapes:
        return shapes.pop()
    known = next((c for c in BUILTIN.values() if c.hash == bytes(img.config_hash)), None)
    if known is not None:
        return known.lanes
    raise _Bad("the lane count is unknown (no initialised data, not a built-in config); pass the chip config")


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
def check_image(image: Image, config: ChipConfig | None = None, name: str = "<image>") -> None:
    """Check a whole in-memory image as the loader does (everything but the
    canonical order and the config hash); with *config*, also every operand
    and address against it.  Raises ImageError."""
    try:
        lanes = config.lanes if config is not None else _writer_lanes(image, None)
        _check_image(image, config, lanes)
    except _Bad as exc:
        raise ImageError(f"{name}: {exc}") from None


def check_text(image: Image, config: ChipConfig, name: str = "<image>") -> None:
    """Check every instruction word of *image* against *config*: it decodes,
    its dtypes are allowed, its ICU queue operand names its own stream, halt is
    only in queue icu, repeat has something to repeat, every stream, address,
    ALU, plane and link exists on the chip, and the queue-selecting operand
    names the queue the word is in.  Raises ImageError."""
    try:
        _check_text(image.text, config, _queue_names(image, config))
    except _Bad as exc:
        raise ImageError(f"{name}: {exc}") from None


def _queue_names(image: Image, config: ChipConfig | None) -> tuple[str, ...]:
    if config is None:  # names only, for messages: a built-in config with this hash
        config = next((c for c in BUILTIN.values() if c.hash == bytes(image.config_hash)), None)
    return config.queues if config is not None else ()


def _qname(q: int, names: tuple[str, ...]) -> str:
    return names[q] if 0 <= q < len(names) else str(q)


def _check_image(image: Image, config: ChipConfig | None, lanes: int) -> None:
    if not isinstance(image.config_hash, (bytes, bytearray)) or len(image.config_hash) != 16:
        raise _Bad("config hash must be 16 bytes")
    names = _queue_names(image, config)
    counts = _check_text(image.text, config, names)
    seen: dict[str, str] = {}
    for kind, syms in (("constant", image.consts), ("data symbol", image.data), ("label", image.labels)):
        for s in syms:
            _check_symbol_name(s.name, kind)
            if s.name in seen:
                raise _Bad(f"SYMS: duplicate symbol name '{s.name}' ({seen[s.name]} and {kind})")
            seen[s.name] = kind
    for c in image.consts:
        _check_const(c)
    _check_data(image.data, config, lanes)
    _check_labels(image.labels, counts, config, names)
    _check_srcmap(image.srcmap, sum(counts.values()))


def _check_symbol_name(name, kind: str) -> None:
    if not isinstance(name, str) or not name:
        raise _Bad(f"SYMS: a {kind} has an empty name")
    if not name.isprintable():
        raise _Bad(f"SYMS: {kind} name {name!r} is not printable")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(f"SYMS: {kind} name {name!r} is not encodable as UTF-8") from None


def _check_const(c: ConstSymbol) -> None:
    v = c.value
    if isinstance(v, (float, np.floating)):
        return
    if not isinstance(v, (int, np.integer)):
        raise _Bad(f"SYMS constant '{c.name}': value {v!r} is neither an integer nor a float")
    if not -(1 << 63) <= int(v) < (1 << 63):
        raise _Bad(f"SYMS constant '{c.name}': value {v} does not fit 64 bits")


def _is_int(*values) -> bool:
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)


def _check_shape(d: DataSymbol, lanes: int) -> None:
    if not _is_int(d.rows, d.cols) or not 1 <= d.rows <= _U32 or not 1 <= d.cols <= _U32:
        raise _Bad(f"SYMS data symbol '{d.name}': shape {d.rows}x{d.cols} is not positive and 32-bit")


def _check_data(data: list[DataSymbol], config: ChipConfig | None, lanes: int) -> None:
    """Each data symbol's byte planes lie in slices ``slice .. slice + bytes - 1``
    of one hemisphere, at one bank and offset (see image.DataSymbol)."""
    if data and not lanes:
        raise _Bad("data symbols need a lane count")
    words_per_bank = config.words_per_bank if config else ENCODING_LIMITS["words_per_bank"]
    slices = config.mem_slices_per_hemisphere if config else ENCODING_LIMITS["mem_slices_per_hemisphere"]
    where = f" on chip config '{config.name}'" if config else ""
    spans: list[tuple[int, int, int, DataSymbol]] = []  # (hemisphere, slice, bank) key, start, end, symbol
    for d in data:
        what = f"SYMS data symbol '{d.name}'"
        if d.dtype not in isa.DTYPES:
            raise _Bad(f"{what}: unknown dtype {d.dtype!r}")
        _check_shape(d, lanes)
        if not _is_int(d.addr) or not 0 <= d.addr < (1 << isa.KINDS["addr"].width):
            raise _Bad(f"{what}: address code {d.addr:#x} does not fit the 20-bit address field")
        east, slice_, bank, offset = isa.addr_parts(d.addr)
        hemi = "E" if east else "W"
        last = slice_ + d.planes - 1
        if slice_ >= slices:
            raise _Bad(f"{what}: slice {hemi}{slice_} does not exist{where} ({slices} MEM slices per hemisphere)")
        if last >= slices:
            raise _Bad(f"{what}: byte plane {slices - slice_} of its {d.dtype} elements would be in slice "
                       f"{hemi}{slices}, which does not exist{where} ({slices} MEM slices per hemisphere)")
        if config is not None and bank >= config.banks_per_slice:
            raise _Bad(f"{what}: bank {bank} does not exist{where} ({config.banks_per_slice} banks per slice)")
        n = d.words_per_plane(lanes)
        if offset + n > words_per_bank:
            raise _Bad(f"{what}: words {offset}..{offset + n - 1} run past the end of the bank "
                       f"({words_per_bank} words{where})")
        if d.init is not None:
            init, nwords = d.init, d.nwords(lanes)
            if not isinstance(init, np.ndarray) or init.dtype != np.uint8 or init.shape != (nwords, lanes):
                got = f"{init.dtype} {init.shape}" if isinstance(init, np.ndarray) else type(init).__name__
                raise _Bad(f"{what}: initial contents must be uint8 of shape ({nwords}, {lanes}), got {got}")
        for k in range(d.planes):
            spans.append((isa.addr_code(east, slice_ + k, bank, 0), offset, offset + n, d))
    spans.sort(key=lambda sp: (sp[0], sp[1]))
    for a, b in zip(spans, spans[1:]):
        if a[0] == b[0] and b[1] < a[2]:
            raise _Bad(f"SYMS data symbols '{a[3].name}' and '{b[3].name}' overlap in "
                       f"{isa.addr_name(a[0]).split('[')[0]}")


def _check_labels(labels, counts: dict[int, int], config, names) -> None:
    nqueues = len(config.queues) if config is not None else QUEUE_FIELD_LIMIT
    for lb in labels:
        what = f"SYMS label '{lb.name}'"
        if not _is_int(lb.queue, lb.index):
            raise _Bad(f"{what}: queue and index must be integers")
        if lb.queue == -1:
            if lb.index != 0:
                raise _Bad(f"{what}: an end-of-program label (queue -1) must have index 0, not {lb.index}")
            continue
        if not 0 <= lb.queue < nqueues:
            on = f" on chip config '{config.name}'" if config is not None else ""
            raise _Bad(f"{what}: queue {lb.queue} does not exist{on}")
        n = counts.get(lb.queue, 0)
        if not 0 <= lb.index <= n:
            raise _Bad(f"{what}: index {lb.index} is past the end of queue {_qname(lb.queue, names)} "
                       f"({n} instructions)")


def _check_srcmap(sm: SourceMap, ninstr: int) -> None:
    cols = {a: np.asarray(getattr(sm, a)) for a, _, _ in _ROW_COLUMNS}
    lengths = {a: c.shape for a, c in cols.items()}
    nrows = len(cols["file"])
    if any(c.ndim != 1 or len(c) != nrows for c in cols.values()):
        raise _Bad(f"SMAP columns disagree in length ({lengths})")
    for (attr, le, native) in _ROW_COLUMNS:
        c = cols[attr]
        info = np.iinfo(native)
        if c.size and (c.dtype.kind not in "iu" or c.min() < info.min or c.max() > info.max):
            raise _Bad(f"SMAP {attr} column does not fit {np.dtype(native).name}")
    if nrows and nrows != ninstr:
        raise _Bad(f"SMAP has {nrows} rows for {ninstr} instructions")
    seen = set()
    for i, f in enumerate(sm.files):
        if not isinstance(f, str) or not f or not f.isprintable():
            raise _Bad(f"SMAP file {i}: name {f!r} is empty or not printable text")
        if f in seen:
            raise _Bad(f"SMAP file '{f}' is listed twice")
        seen.add(f)
    nf, nm = len(sm.files), len(sm.frames)
    for i, fr in enumerate(sm.frames):
        if not _is_int(fr.file, fr.line, fr.col, fr.parent):
            raise _Bad(f"SMAP macro frame {i}: file, line, col and parent must be integers")
        if not isinstance(fr.macro, str) or not fr.macro or not fr.macro.isprintable():
            raise _Bad(f"SMAP macro frame {i}: macro name {fr.macro!r} is empty or not printable text")
        if not 0 <= fr.file < nf:
            raise _Bad(f"SMAP macro frame {i}: file index {fr.file} out of range ({nf} files)")
        if not 0 <= fr.line <= _U32 or not 0 <= fr.col <= 0xFFFF:
            raise _Bad(f"SMAP macro frame {i}: line {fr.line} / column {fr.col} out of range")
        if not -1 <= fr.parent < i:
            raise _Bad(f"SMAP macro frame {i}: parent {fr.parent} is not an earlier frame")
    if nrows:
        bad = np.flatnonzero(cols["file"] >= nf)
        if bad.size:
            raise _Bad(f"SMAP row {bad[0]}: file index {cols['file'][bad[0]]} out of range ({nf} files)")
        chain = cols["chain"].astype(np.int64)
        bad = np.flatnonzero((chain < -1) | (chain >= nm))
        if bad.size:
            raise _Bad(f"SMAP row {bad[0]}: chain index {chain[bad[0]]} out of range ({nm} macro frames)")


# ---- instruction words ---------------------------------------------------------------
def _check_text(text: dict, config: ChipConfig | None, names: tuple[str, ...]) -> dict[int, int]:
    """Check every word; return the instruction (non-NOP) count per queue."""
    counts = {}
    for q, words in text.items():
        if config is not None and not (isinstance(q, (int, np.integer)) and 0 <= q < len(config.queues)):
            raise _Bad(f"TEXT queue {q} does not exist on chip config '{config.name}'")
        if not isinstance(q, (int, np.integer)) or not 0 <= q < QUEUE_FIELD_LIMIT:
            raise _Bad(f"TEXT queue {q} is not a queue id (0..{QUEUE_FIELD_LIMIT - 1})")
        w = np.asarray(words)
        if w.ndim != 1 or (w.size and w.dtype != np.uint64):
            raise _Bad(f"TEXT queue {_qname(q, names)}: words must be a 1-D uint64 array, got {w.dtype} {w.shape}")
        if not w.size:
            raise _Bad(f"TEXT queue {_qname(q, names)} has no words")
        bad = _scan(int(q), w, config, names)
        if bad is not None:
            raise _Bad(f"TEXT queue {_qname(q, names)} word {bad[0]}: {bad[1]}")
        counts[int(q)] = int(np.count_nonzero((w & np.uint64(0xFF)) != isa.NOP.opcode))
    return counts


_USED = {row.opcode: sum(f.mask << f.lo for f in row.fields) for row in isa.TABLE.values()}


def _scan(qid: int, words: np.ndarray, config: ChipConfig | None, names) -> tuple[int, str] | None:
    """The first bad word of one queue's stream, as (index, message), or None.
    Each check runs vectorised over all words of one opcode; the earliest
    failing word wins (the first check listed, if one word fails several)."""
    found: list[tuple[int, int, str]] = []
    here = _qname(qid, names)

    def report(sel: np.ndarray, bad: np.ndarray, message) -> None:
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(sel[hits[0]])
            found.append((i, len(found), message(int(words[i]))))

    def decode_error(word: int) -> str:
        try:
            isa.unpack(word)
        except ValueError as exc:
            return str(exc)
        return f"cannot decode {word:#018x}"  # pragma: no cover - _USED agrees with unpack

    ops = (words & np.uint64(0xFF)).astype(np.int64)
    nonnop = np.flatnonzero(ops != isa.NOP.opcode)
    if nonnop.size and ops[nonnop[0]] == isa.REPEAT.opcode:
        found.append((int(nonnop[0]), -1, "repeat with no earlier instruction in the queue to repeat"))
    for code in np.unique(ops).tolist():
        sel = np.flatnonzero(ops == code)
        row = isa.BY_OPCODE.get(code)
        if row is None:
            report(sel, np.ones(len(sel), bool), decode_error)
            continue
        w = words[sel]
        report(sel, (w & ~np.uint64(_USED[code])) != 0, decode_error)
        fields = {f.name: (w >> np.uint64(f.lo)) & np.uint64(f.mask) for f in row.fields if f.name != "op"}
        for i, allowed in enumerate(row.dtypes):
            fname = "dt" if i == 0 else "dt2"
            codes = [isa.DTYPES[t] for t in allowed]
            report(sel, ~np.isin(fields[fname], codes), lambda word, f=fname, a=allowed: (
                f"{row.mnemonic}: {_dtype_text(_field(row, f, word))} is not one of its dtypes ({', '.join(a)})"))
        if row.queue == "icu" and qid != 0:
            report(sel, np.ones(len(sel), bool), lambda word: f"{row.mnemonic} outside queue icu")
        for op in row.operands:
            _scan_operand(row, op, fields[op.name], sel, qid, here, config, names, report)
    return min(found)[::2] if found else None


def _field(row: isa.Instr, name: str, word: int) -> int:
    f = next(f for f in row.fields if f.name == name)
    return (word >> f.lo) & f.mask


def _dtype_text(code: int) -> str:
    return f"dtype {isa.DTYPE_NAMES[code]}" if code in isa.DTYPE_NAMES else f"dtype code {code}"


def _scan_operand(row, op, vals, sel, qid, here, config, names, report) -> None:
    mn = f"{row.mnemonic}: operand {op.name}"
    val = lambda word: _field(row, op.name, word)  # noqa: E731
    if op.kind == "queue":
        report(sel, vals != qid, lambda word: f"{mn} names queue {_qname(val(word), names)}, "
                                              f"but the word is in queue {here}")
        return
    if op.kind == "src":
        stream = (vals & np.uint64(isa.SRC_IMMEDIATE)) == 0
        report(sel, stream & ((vals >> np.uint64(6)) != 0),
               lambda word: f"{mn}: stream operand {val(word):#x} has stray bits above bit 5")
        vals = np.where(stream, vals & np.uint64(31), np.uint64(0))
    if config is None:
        return
    on = f"on chip config '{config.name}'"
    if op.kind in ("stream", "src"):
        if op.kind == "stream":
            vals = vals & np.uint64(31)
        report(sel, vals >= config.streams_per_direction,
               lambda word: f"{mn}: stream {isa.stream_name(val(word) & 63)} does not exist {on} "
                            f"({config.streams_per_direction} streams per direction)")
        return
    if op.kind == "addr":
        offset = vals & np.uint64(0xFFF)
        bank = (vals >> np.uint64(12)) & np.uint64(1)
        slice_ = (vals >> np.uint64(13)) & np.uint64(63)
        east = (vals >> np.uint64(19)) & np.uint64(1)
        addr = lambda word: isa.addr_name(val(word))  # noqa: E731
        n = config.mem_slices_per_hemisphere
        report(sel, slice_ >= n, lambda word: f"{mn}: address {addr(word)}: slice does not exist {on} "
                                              f"({n} MEM slices per hemisphere)")
        report(sel, bank >= config.banks_per_slice, lambda word: f"{mn}: address {addr(word)}: bank does not exist "
                                                                 f"{on} ({config.banks_per_slice} banks per slice)")
        report(sel, offset >= config.words_per_bank, lambda word: f"{mn}: address {addr(word)}: offset past the "
                                                                  f"bank end {on} ({config.words_per_bank} words)")
        lut = np.array([config.queue_id(f"{h}{s}") if s < n else -1 for h in "we" for s in range(64)], np.int64)
        owner = lut[(east * np.uint64(64) + slice_).astype(np.int64)]
        report(sel, (owner != qid) & (slice_ < n), lambda word: (
            f"{mn}: address {addr(word)} is in slice {addr(word).split('.')[0].lower()}, "
            f"whose queue is not {here}"))
        return
    units = {"alu": ("alu", config.vxm_alus_per_lane, "ALUs per lane"),
             "plane": ("mxm", config.mxm_planes, "MXM planes"),
             "link": ("c2c", config.c2c_links, "C2C links"),
             "sxm": ("sxm", 2, "SXMs")}
    if op.kind in units:
        prefix, count, noun = units[op.kind]
        unit_name = (lambda v: ("sxmw", "sxme")[v]) if op.kind == "sxm" else (lambda v: f"{prefix}{v}")
        report(sel, vals >= count, lambda word: f"{mn}: {prefix}{val(word)} does not exist {on} ({count} {noun})")
        lut = np.array([config.queue_id(unit_name(v)) for v in range(count)] + [-1] * ((1 << op.width) - count),
                       np.int64)
        owner = lut[vals.astype(np.int64)]
        report(sel, (owner != qid) & (vals < count), lambda word: (
            f"{mn} names {unit_name(val(word))}, but the word is in queue {here}"))
