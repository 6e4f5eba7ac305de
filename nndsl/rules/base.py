"""What every op rule shares: the failure signal, message formatting, typed attributes."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nndsl import ast
from nndsl.diagnostics import Loc
from nndsl.types import DType, Quant


class CheckFailed(Exception):
    """Raised inside one layer's rule after its error is reported; the checker moves on."""


Fail = Callable[[Loc, str], CheckFailed]

FLOAT32_MAX = float(np.finfo(np.float32).max)
KERNEL_STORAGES = (DType.I8, DType.I16)  # fixed-point weights and constants: q-formats stored in int8 or int16


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


# Where a kernel from another framework has its axes: PyTorch and ONNX store [out, in, ...] (depthwise
# [C, M, ...]), nndsl [..., in, out]. These orders are tried first, then every other.
Axes = tuple[int, ...]
_FRAMEWORK_ORDERS: dict[int, list[Axes]] = {2: [(1, 0)], 3: [(2, 1, 0), (2, 0, 1)], 4: [(2, 3, 1, 0), (2, 3, 0, 1)]}


def transposed_hint(shape: tuple[int, ...], fits: Callable[[tuple[int, ...]], bool]) -> str:
    """`` (transposed it would fit: ...)`` for a kernel whose axes, reordered, satisfy ``fits``; else ''."""
    rank = len(shape)
    identity = tuple(range(rank))
    preferred = _FRAMEWORK_ORDERS.get(rank, [])
    others: list[Axes] = [p for p in itertools.permutations(identity) if p not in preferred and p != identity]
    for axes in [*preferred, *others]:
        moved = tuple(shape[a] for a in axes)
        if fits(moved):
            call = "kernel.T" if rank == 2 else f"numpy.transpose(kernel, {axes})"
            return (f" (transposed it would fit: {call} is {shape_text(moved)}; PyTorch and ONNX store kernels "
                    "[out, in, ...], nndsl [..., in, out])")
    return ""


def quant_text(quant: Quant | None) -> str:
    """A per-tensor quantisation as the language writes it, scale in its shortest float32 form (or a qM.N name)."""
    if quant is not None and quant.fixed is not None:
        return quant.fixed.name
    if quant is None or quant.axis is not None:
        return str(quant)
    inverse = 1 / quant.scale
    if inverse.is_integer() and inverse > 1:  # 1/256, 1/128: the scales TFLM fixes
        return f"scale(1/{int(inverse)}) zero({quant.zero_point})"
    return f"scale({np.float32(quant.scale)!s}) zero({quant.zero_point})"


@dataclass(frozen=True)
class Attrs:
    """A layer's keyword attributes (already checked against its signature), read with their types."""

    op: str
    given: dict[str, ast.KeywordArg]
    fail: Fail

    def loc(self, name: str, default: Loc) -> Loc:
        kwarg = self.given.get(name)
        return kwarg.loc if kwarg is not None else default

    def number(self, name: str, default: float) -> float:
        kwarg = self.given.get(name)
        if kwarg is None:
            return default
        if isinstance(kwarg.value, bool) or not isinstance(kwarg.value, int | float):
            raise self.fail(kwarg.loc, f"{self.op} {name} must be a number (got {kwarg.value!r})")
        if not abs(kwarg.value) <= FLOAT32_MAX:  # inf, nan, or beyond what the kernels' float32 holds
            raise self.fail(kwarg.loc, f"{self.op} {name} {kwarg.value:g} is outside the range of float32")
        return float(kwarg.value)

    def integer(self, name: str, default: int) -> int:
        kwarg = self.given.get(name)
        if kwarg is None:
            return default
        if not isinstance(kwarg.value, int):
            raise self.fail(kwarg.loc, f"{self.op} {name} must be a whole number (got {kwarg.value!r})")
        return kwarg.value

    def ints(self, name: str, count: int, default: int | None = None, minimum: int = 1) -> tuple[int, ...]:
        """One value per spatial axis: ``2`` or ``(2, 1)``; a single value applies to every axis."""
        kwarg = self.given.get(name)
        if kwarg is None:
            assert default is not None, f"attribute {name} is required by the signature"
            return (default,) * count
        raw = kwarg.value if isinstance(kwarg.value, tuple) else (kwarg.value,)
        if not all(isinstance(v, int) and v >= minimum for v in raw):
            raise self.fail(kwarg.loc, f"{self.op} {name} must be whole numbers >= {minimum} (got {kwarg.value!r})")
        values = tuple(int(v) for v in raw)  # type: ignore[arg-type]
        if len(values) == 1:
            return values * count
        if len(values) != count:
            expected = "1" if count == 1 else f"1 or {count}"
            raise self.fail(kwarg.loc, f"{self.op} {name} has {len(values)} values, expected {expected} "
                            f"(one per spatial axis)")
        return values

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        kwarg = self.given.get(name)
        if kwarg is None:
            return default
        if kwarg.value not in choices:
            raise self.fail(kwarg.loc, f"{self.op} {name} must be one of {', '.join(choices)} (got {kwarg.value!r})")
        return str(kwarg.value)

    def pads(self, name: str, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """``((before, after), ...)``: one pair of whole numbers >= 0 per axis of ``shape``."""
        kwarg = self.given[name]
        rank = len(shape)
        value = kwarg.value
        given = value if isinstance(value, tuple) and all(isinstance(p, tuple) for p in value) else None
        if given is None or len(given) != rank:
            got = f"{len(given)}" if given is not None else repr(value)
            raise self.fail(kwarg.loc, f"{self.op} needs {rank} (before, after) pairs in {name}, one per axis of its "
                            f"{shape_text(shape)} input (got {got})")
        pairs: list[tuple[int, int]] = []
        for axis, pair in enumerate(given):
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(v, int) and v >= 0 for v in pair)):
                raise self.fail(kwarg.loc, f"{self.op} {name} for axis {axis} must be a (before, after) pair of whole "
                                f"numbers >= 0 (got {pair!r})")
            pairs.append((int(pair[0]), int(pair[1])))  # type: ignore[arg-type]
        return tuple(pairs)
