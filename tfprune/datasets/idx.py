"""The IDX format of the original MNIST and Fashion-MNIST files (LeCun et al.), gzip or raw.

Header: two zero bytes, a type code (0x08: unsigned byte), the number of dimensions, then each
dimension as a big-endian 32-bit integer; the data follow. Everything is checked against the
file's length, so a truncated or corrupt file is an error naming the file, never a wrong array.
"""

import gzip
import os
import struct
import zlib

import numpy as np

from tfprune.errors import TfpruneError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path, expect_ndim=None):
    """The array in an IDX file (.gz or raw); TfpruneError for a corrupt or truncated file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            content = f.read()
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as err:
        raise TfpruneError(f"{path!r} is not a readable IDX file: {type(err).__name__}: "
                           f"{err}") from None
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] not in _TYPES:
        raise TfpruneError(f"{path!r} is not an IDX file (bad magic number "
                           f"{content[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_TYPES[content[2]]), content[3]
    if expect_ndim is not None and ndim != expect_ndim:
        raise TfpruneError(f"{path!r}: expected an IDX file of {expect_ndim} dimension(s), got "
                           f"{ndim}")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise TfpruneError(f"{path!r} is truncated: its header needs {header} bytes, got "
                           f"{len(content)}")
    shape = struct.unpack(f">{ndim}I", content[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(content) - header != expected:
        raise TfpruneError(f"{path!r} is truncated or corrupt: shape {shape} needs {expected} "
                           f"bytes of data, the file holds {len(content) - header}")
    return np.frombuffer(content, dtype, offset=header).reshape(shape)


def write_idx(path, array):
    """Write ``array`` (uint8) as a gzip IDX file: what the original files hold (for tests)."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as f:
        f.write(gzip.compress(header + array.tobytes(), mtime=0))
