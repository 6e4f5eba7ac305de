"""Importing TensorFlow: only here, only when an import runs, and without its start-up chatter."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet(descriptors: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Silence standard output and error at the file-descriptor level.

    TensorFlow's C++ logging and Keras's export summary write there directly,
    whatever Python's ``sys.stdout``/``sys.stderr`` are.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in descriptors]
    try:
        with open(os.devnull, "w") as devnull:
            for fd in descriptors:
                os.dup2(devnull.fileno(), fd)
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(descriptors, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def tensorflow() -> Any:
    """The ``tensorflow`` module, imported quietly on first use."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with quiet():
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]
