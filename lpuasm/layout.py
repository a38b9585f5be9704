"""How tensors lie in SRAM (the layout of image.DataSymbol): byte planes in
consecutive slices, column tiles of LANES, rows as consecutive words."""

from __future__ import annotations

import numpy as np

from . import isa

NUMPY_DTYPES = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "f16": np.float16, "f32": np.float32}


def tensor_to_words(values: np.ndarray, dtype: str, lanes: int) -> np.ndarray:
    """Lay a 2-D tensor out as SRAM words, byte plane after byte plane
    (see image.DataSymbol for the layout)."""
    rows, cols = values.shape
    b = isa.DTYPE_BYTES[dtype]
    tiles = -(-cols // lanes)
    padded = np.zeros((rows, tiles * lanes), dtype=np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<"))
    padded[:, :cols] = values
    # (rows, tiles, lanes, b) bytes -> (b, tiles, rows, lanes)
    raw = padded.view(np.uint8).reshape(rows, tiles, lanes, b)
    return np.ascontiguousarray(raw.transpose(3, 1, 0, 2)).reshape(b * tiles * rows, lanes)


def words_to_tensor(words: np.ndarray, dtype: str, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`tensor_to_words`."""
    lanes = words.shape[1]
    b = isa.DTYPE_BYTES[dtype]
    tiles = -(-cols // lanes)
    raw = np.ascontiguousarray(words.reshape(b, tiles, rows, lanes).transpose(2, 1, 3, 0))
    vals = raw.view(np.dtype(NUMPY_DTYPES[dtype]).newbyteorder("<")).reshape(rows, tiles * lanes)
    return vals[:, :cols].astype(NUMPY_DTYPES[dtype])
