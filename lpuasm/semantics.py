"""What the units compute, on batches of vectors (docs/timing-model.md).

Every function takes arrays with a leading batch axis (B, lanes): one row per
instruction of a batch of instructions with the same opcode and dtype.  Stream
values travel as byte planes, (B, b, lanes) uint8; :func:`from_planes` and
:func:`to_planes` convert them to and from typed (B, lanes) arrays.
"""

from __future__ import annotations

import numpy as np

from . import isa

NP = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "f16": np.float16, "f32": np.float32}


def from_planes(planes: np.ndarray, dtype: str) -> np.ndarray:
    """(B, b, lanes) uint8 byte planes -> (B, lanes) little-endian values."""
    B, b, lanes = planes.shape
    return np.ascontiguousarray(planes.transpose(0, 2, 1)).view(np.dtype(NP[dtype]).newbyteorder("<")).reshape(B, lanes).astype(NP[dtype], copy=False)


def to_planes(values: np.ndarray) -> np.ndarray:
    """(B, lanes) values -> (B, b, lanes) uint8 byte planes."""
    B, lanes = values.shape
    v = np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"), copy=False))
    return np.ascontiguousarray(v.view(np.uint8).reshape(B, lanes, v.dtype.itemsize).transpose(0, 2, 1))


def immediates(codes: np.ndarray, dtype: str) -> np.ndarray:
    """(B,) src field codes holding immediates -> (B, 1) values of *dtype*."""
    bits = (codes & 0xFFFFFFFF).astype(np.uint32)
    if dtype in isa.FLOAT_DTYPES:
        return bits.view(np.float32).astype(NP[dtype])[:, None]
    return bits.view(np.int32).astype(NP[dtype])[:, None]


def _float_op(fn, dtype, *args):
    if dtype == "f16":
        return fn(*(a.astype(np.float32) for a in args)).astype(np.float16)
    return fn(*args)


_BINARY = {
    "vadd": np.add, "vsub": np.subtract, "vmul": np.multiply,
    "vmax": np.maximum, "vmin": np.minimum,
}
_COMPARE = {"veq": np.equal, "vne": np.not_equal, "vlt": np.less, "vle": np.less_equal}
_UNARY_FLOAT = {
    "vexp": np.exp,
    "vtanh": np.tanh,
    "vrsqrt": lambda x: np.float32(1) / np.sqrt(x),
    "vrcp": lambda x: np.float32(1) / x,
}


def vxm(mnemonic: str, dtype: str, a: np.ndarray, b: np.ndarray | None = None, m: np.ndarray | None = None,
        dtype2: str | None = None) -> np.ndarray:
    """One VXM op on typed operands; returns the typed result."""
    with np.errstate(all="ignore"):
        if mnemonic in _BINARY:
            fn = _BINARY[mnemonic]
            if dtype in isa.FLOAT_DTYPES:
                return _float_op(fn, dtype, a, b)
            return fn(a, b).astype(NP[dtype], copy=False)
        if mnemonic in _COMPARE:
            return _COMPARE[mnemonic](a, b).astype(NP[dtype])
        if mnemonic == "vsel":
            return np.where(m != 0, a, b)
        if mnemonic == "vmov":
            return a.copy()
        if mnemonic == "vneg":
            return np.negative(a)
        if mnemonic == "vabs":
            return np.abs(a)
        if mnemonic == "vrelu":
            return np.maximum(a, NP[dtype](0))
        if mnemonic in _UNARY_FLOAT:
            return _float_op(_UNARY_FLOAT[mnemonic], dtype, a)
        if mnemonic == "vcvt":
            return convert(a, dtype, dtype2)
    raise ValueError(f"not a VXM op: {mnemonic}")


def convert(x: np.ndarray, src: str, dst: str) -> np.ndarray:
    """vcvt: float->int rounds half to even and saturates (NaN -> 0); int->int
    saturates; ->float rounds to nearest even."""
    target = NP[dst]
    with np.errstate(all="ignore"):
        if dst in isa.FLOAT_DTYPES:
            return x.astype(target)
        info = np.iinfo(target)
        if src in isa.FLOAT_DTYPES:
            r = np.rint(x.astype(np.float64))
            r = np.where(np.isnan(r), 0, np.clip(r, info.min, info.max))
            return r.astype(target)
        return np.clip(x.astype(np.int64), info.min, info.max).astype(target)


# ---- SXM ---------------------------------------------------------------------------
def shift(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """d[i] = s[i - n], zero outside the lanes; s (B, lanes) bytes, n (B,)."""
    out = np.zeros_like(s)
    lanes = s.shape[1]
    for k in np.unique(n).tolist():
        rows = n == k
        if k >= 0:
            out[rows, k:] = s[rows, :lanes - k] if k < lanes else 0
        else:
            out[rows, :lanes + k] = s[rows, -k:] if -k < lanes else 0
    return out


def rotate(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """d[i] = s[(i - n) mod lanes]."""
    lanes = s.shape[1]
    idx = (np.arange(lanes)[None, :] - n[:, None]) % lanes
    return np.take_along_axis(s, idx, axis=1)


def permute(s: np.ndarray, index: np.ndarray) -> np.ndarray:
    """d[i] = s[index[i]]; index (B, lanes) < lanes."""
    return np.take_along_axis(s, index.astype(np.int64), axis=1)


def distribute(s: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Within each superlane: d[i] = s[16 * (i // 16) + index[i]], 0 where index = 255."""
    lanes = s.shape[1]
    base = (np.arange(lanes) // 16 * 16)[None, :]
    zero = index == 255
    src = base + np.where(zero, 0, index).astype(np.int64)
    out = np.take_along_axis(s, src, axis=1)
    out[zero] = 0
    return out


def transpose(planes: np.ndarray) -> np.ndarray:
    """(B, 16 streams, lanes): per superlane j, out stream k lane 16j+i = in stream i lane 16j+k."""
    B, sixteen, lanes = planes.shape
    x = planes.reshape(B, 16, lanes // 16, 16)  # stream i, superlane j, lane k
    return np.ascontiguousarray(x.transpose(0, 3, 2, 1)).reshape(B, 16, lanes)


# ---- MXM ---------------------------------------------------------------------------
def matmul(x: np.ndarray, w: np.ndarray, dtype: str) -> np.ndarray:
    """Products of activations x (B, K) with installed weights w (K, N):
    int8 -> exact int32; fp16 -> exact products summed in float64, rounded to f32."""
    if dtype == "i8":
        # |sum| <= K * 128 * 128 < 2**24: exact in float32 BLAS
        return (x.astype(np.float32) @ w.astype(np.float32)).astype(np.int32)
    return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
