"""Content checks of an :class:`~lpuasm.image.Image`: symbols, SRAM data, the
source map, and every instruction word against the instruction table and, when
given, the chip config (queues exist, operands in range, each instruction in
the queue its operands select).  The writer and the loader of
:mod:`lpuasm.imagefile` both run them, so no file that fails them is written or
loaded.  Instruction words are checked with numpy, one opcode at a time."""

from __future__ import annotations

import numpy as np

from . import isa
from .config import BUILTIN, ENCODING_LIMITS, ChipConfig
from .diagnostics import LpuError
from .image import ConstSymbol, DataSymbol, Image, SourceMap

_ROW_COLUMNS = (("file", "<u2", np.uint16), ("line", "<u4", np.uint32), ("col", "<u2", np.uint16),
                ("chain", "<i4", np.int32))
QUEUE_FIELD_LIMIT = 1 << isa.KINDS["queue"].width  # queue ids must fit the 8-bit queue operand
_U32 = (1 << 32) - 1


class ImageError(LpuError):
    """An image that cannot be written, read, or run on the given chip config."""


class _Bad(Exception):
    """Internal: what is wrong, without the file-name prefix."""


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
        bad = _scan(int(q), w, config, names) or _check_pairs(w)
        if bad is not None:
            raise _Bad(f"TEXT queue {_qname(q, names)} word {bad[0]}: {bad[1]}")
        counts[int(q)] = int(np.count_nonzero((w & np.uint64(0xFF)) != isa.NOP.opcode))
    return counts


_READS = [isa.TABLE[m].opcode for m in ("read", "gather")]
_WRITES = [isa.TABLE[m].opcode for m in ("write", "scatter")]


def _check_pairs(words: np.ndarray) -> tuple[int, str] | None:
    """A pair bit joins a MEM read-type and write-type word, in either order;
    the second carries no pair bit."""
    op = (words & np.uint64(0xFF)).astype(np.int64)
    mem = np.isin(op, _READS + _WRITES)
    paired = np.nonzero(mem & (words >> np.uint64(63)).astype(bool))[0]
    if not len(paired):
        return None
    nxt = np.minimum(paired + 1, len(words) - 1)
    ok = (paired + 1 < len(words)) & ~(words[nxt] >> np.uint64(63)).astype(bool)
    ok &= (np.isin(op[paired], _READS) & np.isin(op[nxt], _WRITES)) | (np.isin(op[paired], _WRITES) & np.isin(op[nxt], _READS))
    if ok.all():
        return None
    i = int(paired[np.nonzero(~ok)[0][0]])
    return i, "the pair bit must join a MEM read and a MEM write issued in one cycle"


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
