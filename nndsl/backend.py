"""The explicit registry of backends, imported on first use."""

from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS = {
    "numpy": "nndsl.backends.numpy",
    "c": "nndsl.backends.c",
}


def backend(name: str) -> ModuleType:
    """The backend module named ``name`` (``numpy`` or ``c``)."""
    return importlib.import_module(BACKENDS[name])
