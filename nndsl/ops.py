"""The catalogue of operators the language knows: their call signatures.

The signature says which positional arguments are tensors and which are
weight arrays, and which keyword attributes exist; the resolver uses it to bind
names and check arity, the checker (:mod:`nndsl.check`) holds each op's shape
and type rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AttrKind(enum.Enum):
    NUMBER = "a number"
    INTS = "a tuple of whole numbers"


@dataclass(frozen=True)
class Attr:
    name: str
    kind: AttrKind
    required: bool = False


@dataclass(frozen=True)
class OpSignature:
    name: str
    tensors: int
    weights: tuple[str, ...] = ()
    optional_weights: tuple[str, ...] = ()
    attrs: tuple[Attr, ...] = ()
    summary: str = ""

    @property
    def min_args(self) -> int:
        return self.tensors + len(self.weights)

    @property
    def max_args(self) -> int:
        return self.min_args + len(self.optional_weights)

    @property
    def usage(self) -> str:
        params = [("x" if self.tensors == 1 else f"x{i}") for i in range(self.tensors)]
        params += list(self.weights) + [f"[{w}]" for w in self.optional_weights]
        params += [f"{a.name}=..." for a in self.attrs]
        return f"{self.name}({', '.join(params)})"


SIGNATURES = {
    sig.name: sig
    for sig in (
        OpSignature("dense", 1, ("kernel",), ("bias",), summary="fully connected layer over the last axis"),
        OpSignature("relu", 1, summary="max(x, 0)"),
        OpSignature("relu6", 1, summary="min(max(x, 0), 6)"),
        OpSignature("softmax", 1, attrs=(Attr("beta", AttrKind.NUMBER),), summary="softmax over the last axis"),
        OpSignature("flatten", 1, summary="reshape to one dimension"),
        OpSignature("reshape", 1, attrs=(Attr("shape", AttrKind.INTS, required=True),), summary="new shape"),
    )
}
