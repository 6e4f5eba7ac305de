"""The C backend: a lowered graph to ``<name>.c`` and ``<name>.h`` (C99, no heap)."""

from .emit import CSources, compile

__all__ = ["CSources", "compile"]
