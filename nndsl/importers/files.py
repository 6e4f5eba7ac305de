"""The files an import reads: only regular files (or a SavedModel folder), and a bounded flatbuffer.

A FIFO or a device named as the source would block TensorFlow's loader forever or fill memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nndsl.diagnostics import Loc, NNError
from nndsl.resolve import open_regular_file

MAX_FLATBUFFER_BYTES = 2**28  # a .tflite file: its weights are limited to far less (MAX_WEIGHT_ELEMENTS)


def refuse_special_file(path: Path) -> None:
    """A located error unless ``path`` is a regular file or a folder (a missing one is the loader's to report)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise NNError.at(Loc.file(str(path)), "not a regular file or a folder (a FIFO, a device or a socket)")


def read_flatbuffer(path: Path) -> bytes:
    """The bytes of a ``.tflite`` file, or a located error for one that is not a regular file or is too large."""
    try:
        with open_regular_file(path) as stream:
            if os.fstat(stream.fileno()).st_size <= MAX_FLATBUFFER_BYTES:
                data = stream.read(MAX_FLATBUFFER_BYTES + 1)  # the file may grow while it is read
                if len(data) <= MAX_FLATBUFFER_BYTES:
                    return data
    except OSError as error:
        raise NNError.at(Loc.file(str(path)), f"cannot read the model: {error.strerror or error}") from None
    raise NNError.at(Loc.file(str(path)), f"the model is over {MAX_FLATBUFFER_BYTES >> 20} MiB; nndsl imports "
                     f".tflite files of at most {MAX_FLATBUFFER_BYTES} bytes")
