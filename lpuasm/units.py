"""What both fast engines share: decoding a batch's fields, grouping rows into
batches, and the VXM and SXM semantics over a batch.  An engine supplies
``_inputs(rows)`` (the byte planes the rows sample), ``_outputs(rows, planes)``
and ``_violate(row, cause, hint)``, which stops the run (cycle engine) or
records the violation (level engine)."""

from __future__ import annotations

import numpy as np

from . import isa
from . import semantics as sem
from .ir import fields_of
from .program import Program


def group_keys(p: Program) -> np.ndarray:
    """Rows that can run as one batch share a key: opcode, dtypes, and
    whether the src operand is an immediate."""
    key = p.op.astype(np.int64) << 12
    dt = ((p.word >> np.uint64(8)) & np.uint64(0x3F)).astype(np.int64)
    for opcode in np.unique(p.op).tolist():
        row = isa.BY_OPCODE[opcode]
        rows = p.op == opcode
        extra = dt[rows] & ((1 << (3 * row.nsuffixes)) - 1)
        if any(o.name == "b" and o.kind == "src" for o in row.operands):
            f = next(f for f in row.fields if f.name == "b")
            extra = extra | (((p.word[rows] >> np.uint64(f.lo + 32)) & np.uint64(1)).astype(np.int64) << 6)
        key[rows] |= extra
    return key


class UnitEngine:
    """Batch semantics of the VXM, SXM, ICU and C2C for an engine."""

    p: Program
    strict_fp: bool
    nan_inf: int

    def _inputs(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _outputs(self, rows: np.ndarray, planes: np.ndarray) -> None:
        raise NotImplementedError

    def _violate(self, row: int, cause: str, hint: str | None = None) -> None:
        raise NotImplementedError

    def _fields(self, rows: np.ndarray, row: isa.Instr) -> dict:
        return fields_of(self.p.word[rows], row)

    def _check_fp(self, rows: np.ndarray, values: np.ndarray) -> None:
        if values.dtype.kind != "f":
            return
        bad = ~np.isfinite(values)
        if bad.any():
            self.nan_inf += int(bad.sum())
            if self.strict_fp:
                self._violate(int(rows[int(np.nonzero(bad.any(axis=1))[0][0])]), "non-finite result (strict fp)")

    def _icu(self, rows, row) -> None:
        pass

    def _c2c(self, rows, row) -> None:
        self._violate(int(rows[0]), "C2C is not simulated yet (multi-chip runs come later); use --timing-only")

    def _vxm(self, rows, row) -> None:
        f = self._fields(rows, row)
        dt = isa.DTYPE_NAMES[int(f["dt"][0])]
        dt2 = isa.DTYPE_NAMES[int(f["dt2"][0])] if row.nsuffixes > 1 else None
        planes = self._inputs(rows)
        g = isa.DTYPE_BYTES[dt]
        ops, at = {}, 0
        for o in row.operands:
            if o.kind not in ("stream", "src") or o.name == "d":
                continue
            if o.name == "b" and f["b"][0] & isa.SRC_IMMEDIATE:
                ops["b"] = sem.immediates(f["b"], dt)
                continue
            ops[o.name] = sem.from_planes(planes[:, at:at + g], dt)
            at += g
        out = sem.vxm(row.mnemonic, dt, ops.get("a"), ops.get("b"), ops.get("m"), dt2)
        self._check_fp(rows, out)
        self._outputs(rows, sem.to_planes(out))

    def _sxm(self, rows, row) -> None:
        f = self._fields(rows, row)
        planes = self._inputs(rows)
        lanes = self.p.config.lanes
        mn = row.mnemonic
        if mn == "transpose":
            self._outputs(rows, sem.transpose(planes))
            return
        s = planes[:, 0]
        if mn == "shift":
            out = sem.shift(s, f["n"])
        elif mn == "rotate":
            out = sem.rotate(s, f["n"])
        elif mn == "permute":
            index = sem.from_planes(planes[:, 1:3], "i16").astype(np.int64) & 0xFFFF
            for i in np.nonzero((index >= lanes).any(axis=1))[0][:1].tolist():
                self._violate(int(rows[i]), f"permute map names lane {int(index[i].max())}, past the last lane "
                                            f"{lanes - 1}")
            out = sem.permute(s, np.minimum(index, lanes - 1))
        else:
            index = planes[:, 1]
            badmask = (index >= 16) & (index != 255)
            for i in np.nonzero(badmask.any(axis=1))[0][:1].tolist():
                self._violate(int(rows[i]), f"distribute map value {int(index[i][badmask[i]][0])} is neither a "
                                            f"lane of the superlane (0..15) nor 255")
            out = sem.distribute(s, np.where(badmask, 0, index))
        self._outputs(rows, out[:, None, :])
