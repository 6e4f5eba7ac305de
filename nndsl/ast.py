"""The syntax tree of a `.nn` file: frozen dataclasses, each with its source span.

The parser builds these straight from the grammar; nothing after the parser
sees a Lark tree. Names are plain strings, the operator of a call is looked up
in :mod:`nndsl.ops` by the checker, so an unknown op is a located error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TypeVar

from nndsl.diagnostics import Loc


@dataclass(frozen=True)
class Node:
    loc: Loc


@dataclass(frozen=True)
class Quantity(Node):
    """A number with an optional unit, as written: ``256 KiB``, ``40 MHz``, ``2.5``."""

    value: float
    unit: str | None


@dataclass(frozen=True)
class TargetField(Node):
    """``ram = 256 KiB``, ``latency <= 10 ms``, or a named setting such as ``accumulator = i16``."""

    name: str
    relation: str  # "=" or "<="
    quantity: Quantity
    word: str | None = None


@dataclass(frozen=True)
class TargetDecl(Node):
    name: str
    fields: tuple[TargetField, ...]


@dataclass(frozen=True)
class WeightsDecl(Node):
    path: str


@dataclass(frozen=True)
class QuantSpec(Node):
    scale: float
    zero_point: int


@dataclass(frozen=True)
class TypeExpr(Node):
    """``i8[64] @ scale(0.5) zero(-128)``; the shape and quantisation are optional."""

    dtype: str
    shape: tuple[int, ...] | None
    quant: QuantSpec | None


@dataclass(frozen=True)
class Ref(Node):
    """A reference to a tensor or to a weight array: ``x``, ``fc1.kernel``."""

    name: str


@dataclass(frozen=True)
class Literal(Node):
    """A number written as an operand: the ``0.5`` of ``mul(x, 0.5)``."""

    value: float | int


Value = float | int | str | tuple["Value", ...]


@dataclass(frozen=True)
class KeywordArg(Node):
    name: str
    value: Value


@dataclass(frozen=True)
class Activation(Node):
    name: str


@dataclass(frozen=True)
class Call(Node):
    op: str
    args: tuple[Ref | Literal, ...]
    kwargs: tuple[KeywordArg, ...]
    activations: tuple[Activation, ...]


@dataclass(frozen=True)
class InputDecl(Node):
    name: str
    type: TypeExpr


@dataclass(frozen=True)
class LayerDecl(Node):
    """``name = op(args) -> act : type``; ``is_output`` for ``output name = ...``."""

    name: str
    call: Call
    type: TypeExpr | None
    is_output: bool


@dataclass(frozen=True)
class OutputDecl(Node):
    """``output name``: marks an already defined tensor as the network's output."""

    name: str


Statement = TargetDecl | WeightsDecl | InputDecl | LayerDecl | OutputDecl


@dataclass(frozen=True)
class Program(Node):
    name: str
    statements: tuple[Statement, ...]
    source: str


NOWHERE = Loc("", 0, 0)
_N = TypeVar("_N")


def without_locations(node: _N) -> _N:
    """``node`` with every location made :data:`NOWHERE` and a program's text dropped.

    Two trees equal after this describe the same network, however each was
    written (text, the Python builder) and laid out.
    """
    if isinstance(node, tuple):
        return tuple(without_locations(item) for item in node)  # type: ignore[return-value]
    if isinstance(node, Program):
        return replace(node, loc=NOWHERE, statements=without_locations(node.statements), source="")
    if isinstance(node, Node):
        changes = {f.name: without_locations(getattr(node, f.name)) for f in fields(node) if f.name != "loc"}
        return replace(node, loc=NOWHERE, **changes)
    return node
