"""The data directives of lasm (``.data``, ``.npy``, ``.blob``, ``.space``):
SRAM addresses, dtypes, values, and the checks that a tensor fits its slices
and banks and overlaps no other.  A mixin of :class:`lpuasm.lower.Lowerer`."""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from . import isa
from .diagnostics import Diagnostic
from .image import DataSymbol
from .layout import NUMPY_DTYPES, tensor_to_words
from .syntax import Directive, Indexed, ListLit, Name, Span, Str

SLICE_RE = re.compile(r"([we])(\d+)\.b(\d+)$", re.I)


class DataDirectives:
    """``.data``, ``.npy``, ``.blob``, ``.space`` and SRAM address operands."""

    def slice_address(self, node) -> tuple[int, Span]:
        """An explicit ``W3.b1[16]`` address: (addr code, span)."""
        if not isinstance(node, Indexed) or not SLICE_RE.match(node.base):
            self.fail("expected an SRAM address like W3.b0[16]", node.span)
        return self.explicit_address(node), node.span

    def explicit_address(self, node: Indexed) -> int:
        m = SLICE_RE.match(node.base)
        east = m.group(1).lower() == "e"
        slice_, bank = int(m.group(2)), int(m.group(3))
        cfg = self.config
        if slice_ >= cfg.mem_slices_per_hemisphere:
            self.fail(f"slice {m.group(1).upper()}{slice_} does not exist on chip '{cfg.name}' "
                      f"(it has {m.group(1).upper()}0..{m.group(1).upper()}{cfg.mem_slices_per_hemisphere - 1})", node.span)
        if bank >= cfg.banks_per_slice:
            self.fail(f"bank b{bank} does not exist (banks are b0..b{cfg.banks_per_slice - 1})", node.span)
        offset = self.integer(node.index, "word offset", 0, cfg.words_per_bank - 1)
        return isa.addr_code(east, slice_, bank, offset)

    def dtype_arg(self, node) -> str:
        if not isinstance(node, Name) or node.name.lower() not in isa.DTYPES:
            self.fail("expected a dtype (i8, i16, i32, f16, f32)", node.span)
        return node.name.lower()

    def define_data(self, name_node, addr: int, addr_span: Span, dtype: str, rows: int, cols: int,
                    init: np.ndarray | None) -> None:
        name = self.name_arg(name_node)
        self.check_new_name(name, name_node.span, "data symbol")
        sym = DataSymbol(name, addr, dtype, rows, cols, init)
        n = sym.words_per_plane(self.config.lanes)
        east, slice_, bank, offset = isa.addr_parts(addr)
        last_slice = slice_ + sym.planes - 1
        if last_slice >= self.config.mem_slices_per_hemisphere:
            h = "E" if east else "W"
            self.fail(f"'{name}' ({dtype}) needs {sym.planes} slices for its byte planes, "
                      f"{h}{slice_}..{h}{last_slice}, but the hemisphere ends at "
                      f"{h}{self.config.mem_slices_per_hemisphere - 1}", addr_span)
        if offset + n > self.config.words_per_bank:
            self.fail(f"'{name}' needs {n} words from offset {offset}, past the end of the bank "
                      f"({self.config.words_per_bank} words)", addr_span)
        for other in self.data.values():
            oe, os_, ob, oo = isa.addr_parts(other.addr)
            on = other.words_per_plane(self.config.lanes)
            shared = set(range(slice_, last_slice + 1)) & set(range(os_, os_ + other.planes))
            if (oe, ob) == (east, bank) and shared and offset < oo + on and oo < offset + n:
                where = isa.addr_name(isa.addr_code(east, min(shared), bank, 0)).split("[")[0]
                self.fail(f"'{name}' (words {offset}..{offset + n - 1}) overlaps '{other.name}' "
                          f"(words {oo}..{oo + on - 1}) in {where}", addr_span,
                          notes=[Diagnostic("note", f"'{other.name}' defined here", self.defined_at.get(other.name))])
        self.data[name] = sym
        self.defined_at[name] = name_node.span

    def convert_values(self, values: np.ndarray, dtype: str, span: Span) -> np.ndarray:
        target = NUMPY_DTYPES[dtype]
        if dtype in isa.INT_DTYPES:
            if values.dtype.kind == "f":
                if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                    self.fail(f"values for {dtype} must be integers", span)
            info = np.iinfo(target)
            if values.size and (values.min() < info.min or values.max() > info.max):
                self.fail(f"value out of range for {dtype} ({info.min}..{info.max})", span)
            return values.astype(target)
        with np.errstate(over="ignore"):
            out = values.astype(target)
        if np.any(np.isinf(out) & np.isfinite(values.astype(np.float64))):
            self.fail(f"value too large for {dtype}", span)
        return out

    def list_values(self, node) -> np.ndarray:
        if not isinstance(node, ListLit):
            return np.array([[self.value(node)]])
        rows = []
        nested = [isinstance(i, ListLit) for i in node.items]
        if any(nested) and not all(nested):
            self.fail("mix of numbers and lists; give a list of numbers or a list of rows", node.span)
        if not node.items:
            self.fail("empty data list", node.span)
        if all(nested):
            for item in node.items:
                row = []
                for v in item.items:
                    if isinstance(v, ListLit):
                        self.fail("data lists nest at most two deep (rows of numbers)", v.span)
                    row.append(self.value(v))
                rows.append(row)
            width = len(rows[0])
            for item, row in zip(node.items, rows):
                if len(row) != width:
                    self.fail(f"row has {len(row)} values, the first row has {width}", item.span)
        else:
            rows = [[self.value(v) for v in node.items]]
        if not rows[0]:
            self.fail("empty data row", node.span)
        kinds = {type(v) for row in rows for v in row}
        try:
            return np.array(rows, dtype=np.float64 if float in kinds else np.int64)
        except OverflowError:
            self.fail("value out of range (integers must fit 64 bits)", node.span)

    def d_data(self, st: Directive) -> None:
        self.nargs(st, 4, 4, "NAME, ADDRESS, DTYPE, VALUES")
        addr, addr_span = self.slice_address(st.args[1])
        dtype = self.dtype_arg(st.args[2])
        values = self.convert_values(self.list_values(st.args[3]), dtype, st.args[3].span)
        rows, cols = values.shape
        self.define_data(st.args[0], addr, addr_span, dtype, rows, cols,
                         tensor_to_words(values, dtype, self.config.lanes))

    def d_npy(self, st: Directive) -> None:
        self.nargs(st, 3, 4, 'NAME, ADDRESS, "FILE.npy" [, DTYPE]')
        addr, addr_span = self.slice_address(st.args[1])
        if not isinstance(st.args[2], Str):
            self.fail("expected a .npy file name string", st.args[2].span)
        path = self.resolve_path(st.args[2].value, st.args[2].span, stdlib=False)
        try:
            values = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            self.fail(f"cannot load '{path}': {exc}", st.args[2].span)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2 or values.size == 0:
            self.fail(f"'{path}' holds an array of shape {values.shape}; expected 1-D or 2-D, not empty", st.args[2].span)
        if len(st.args) == 4:
            dtype = self.dtype_arg(st.args[3])
        else:
            by_numpy = {np.dtype(v).name: k for k, v in NUMPY_DTYPES.items()}
            dtype = by_numpy.get(values.dtype.name)
            if dtype is None:
                self.fail(f"'{path}' holds {values.dtype.name}; give the dtype to convert to", st.args[2].span)
        if values.dtype.kind not in "iufb":
            self.fail(f"'{path}' holds {values.dtype.name}, not numbers", st.args[2].span)
        values = self.convert_values(values.astype(np.float64 if values.dtype.kind == "f" else np.int64),
                                     dtype, st.args[2].span)
        rows, cols = values.shape
        self.define_data(st.args[0], addr, addr_span, dtype, rows, cols,
                         tensor_to_words(values, dtype, self.config.lanes))

    def d_blob(self, st: Directive) -> None:
        self.nargs(st, 6, 6, 'NAME, ADDRESS, DTYPE, ROWS, COLS, "BASE64"')
        addr, addr_span = self.slice_address(st.args[1])
        dtype = self.dtype_arg(st.args[2])
        rows = self.integer(st.args[3], "row count", 1, 1 << 24)
        cols = self.integer(st.args[4], "column count", 1, 1 << 24)
        if not isinstance(st.args[5], Str):
            self.fail("expected a base64 string", st.args[5].span)
        try:
            raw = base64.b64decode(st.args[5].value, validate=True)
        except (binascii.Error, ValueError):
            self.fail("not valid base64", st.args[5].span)
        want = rows * cols * isa.DTYPE_BYTES[dtype]
        if len(raw) != want:
            self.fail(f"the blob holds {len(raw)} bytes; {rows}x{cols} {dtype} needs {want}", st.args[5].span)
        values = np.frombuffer(raw, dtype=np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<")).reshape(rows, cols)
        self.define_data(st.args[0], addr, addr_span, dtype, rows, cols,
                         tensor_to_words(values.astype(NUMPY_DTYPES[dtype]), dtype, self.config.lanes))

    def d_space(self, st: Directive) -> None:
        self.nargs(st, 4, 5, "NAME, ADDRESS, DTYPE, ROWS [, COLS]")
        addr, addr_span = self.slice_address(st.args[1])
        dtype = self.dtype_arg(st.args[2])
        rows = self.integer(st.args[3], "row count", 1, 1 << 24)
        cols = self.integer(st.args[4], "column count", 1, 1 << 24) if len(st.args) == 5 else self.config.lanes
        self.define_data(st.args[0], addr, addr_span, dtype, rows, cols, None)
