"""Reading a ``.npy`` array the user names (``run --input``, ``--calibrate``, ``--labels``) without trusting it.

Only a regular file is opened (a FIFO or ``/dev/zero`` would block or fill memory), and its header is
checked against the file's size and :data:`~nndsl.types.MAX_ARRAY_FILE_ELEMENTS` before any data is read,
so a header declaring a terabyte costs nothing. Nothing is unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from nndsl.resolve import open_regular_file, read_npy_header
from nndsl.types import MAX_ARRAY_FILE_ELEMENTS, element_count, power_text

Array = npt.NDArray[np.generic]
_READABLE_KINDS = "biuf"  # booleans, integers and floats


class ArrayFileError(ValueError):
    """A file that is not a ``.npy`` array nndsl reads; the message says why, without the path."""


def read_npy(path: str | Path) -> Array:
    """The array in the ``.npy`` file at ``path``, or :class:`ArrayFileError`."""
    if "\0" in str(path):
        raise ArrayFileError("a file name has no NUL character")
    try:
        with open_regular_file(Path(path)) as stream:
            return _read(stream)
    except ArrayFileError:
        raise
    except OSError as error:
        raise ArrayFileError(f"cannot read the input ({error.strerror or error})") from None
    except (ValueError, EOFError) as error:  # numpy's own reasons, e.g. a header it cannot parse
        raise ArrayFileError(f"cannot read a .npy array ({error or 'the file ends early'})") from None


def _read(stream: BinaryIO) -> Array:
    """The array, once its header has been found safe to read."""
    if stream.read(6) != b"\x93NUMPY":
        raise ArrayFileError("not a .npy array file (save it with numpy.save)")
    stream.seek(0)
    header = read_npy_header(stream)
    if header is None:
        raise ArrayFileError("not a .npy array of format version 1.0 or 2.0 (numpy.save writes those)")
    if header.dtype.hasobject:
        raise ArrayFileError("holds an object array, which nndsl does not load (it would need unpickling)")
    if header.dtype.kind not in _READABLE_KINDS:
        raise ArrayFileError(f"holds an array of {header.dtype}; nndsl reads arrays of integers or floats")
    count = element_count(header.shape)
    if count > MAX_ARRAY_FILE_ELEMENTS:
        raise ArrayFileError(f"declares {count} elements (shape {list(header.shape)}); nndsl reads .npy files of "
                             f"at most {power_text(MAX_ARRAY_FILE_ELEMENTS)} elements")
    available = os.fstat(stream.fileno()).st_size - header.offset
    if header.nbytes > available:
        raise ArrayFileError(f"declares {header.nbytes} bytes of {header.dtype} (shape {list(header.shape)}), but "
                             f"the file holds {max(available, 0)} after its header (a truncated file)")
    stream.seek(0)
    return np.asarray(np.lib.format.read_array(stream, allow_pickle=False))
