"""Networks written in Python: the same syntax tree a `.nn` file parses to, with weights as NumPy arrays.

>>> net = Network("tiny")
>>> x = net.input("x", "f32", (4,))
>>> y = net.dense(x, kernel=np.ones((4, 2), np.float32), activation="relu", name="fc")
>>> net.output(y)
>>> print(net.text(), end="")
network tiny
<BLANKLINE>
weights "tiny.npz"
<BLANKLINE>
input x : f32[4]
fc = dense(x, fc.kernel) -> relu
output fc
>>> net.model().run(np.ones(4, np.float32))
array([4., 4.], dtype=float32)

One method per operator of :data:`nndsl.ops.SIGNATURES` (``net.conv2d``,
``net.softmax``...), made from its signature: tensors are positional,
weight arrays and attributes are keywords (the operands of ``add``, ``sub``,
``mul``, ``maximum``, ``minimum`` and ``squared_difference`` may also be
numbers or arrays: ``net.mul(x, 0.5)``). Every node carries the Python
line that made it, so the checker's errors point at the user's code.
"""

from __future__ import annotations

import io
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl import ast
from nndsl.cnames import LANGUAGE_KEYWORDS, c_name_problem
from nndsl.diagnostics import Loc, NNError, did_you_mean
from nndsl.files import write_files
from nndsl.model import Model
from nndsl.ops import SIGNATURES, OpSignature
from nndsl.pipeline import compile_program
from nndsl.printer import format_program
from nndsl.resolve import WEIGHT_COMPANIONS
from nndsl.target import field_relation

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WEIGHT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]+)\s*")


@dataclass(frozen=True)
class Weight:
    """A weight array with what the checker reads beside it, and optionally its name in the `.npz`.

    ``scale`` (one or one per output channel) and ``zero_point`` for int8 kernels, ``frac_bits`` for
    fixed-point (qM.N) weights: stored as ``NAME.scale``, ``NAME.zero_point``, ``NAME.frac_bits``.
    A plain array needs none of them (f32 networks, int32 biases). ``name`` defaults to ``LAYER.ROLE``.
    """

    values: npt.ArrayLike
    scale: npt.ArrayLike | None = None
    zero_point: npt.ArrayLike | None = None
    frac_bits: int | None = None
    name: str | None = None

    def arrays(self, name: str) -> dict[str, npt.NDArray[Any]]:
        """The arrays stored for it under ``name``: the values, then the companions given."""
        stored = {name: np.asarray(self.values)}
        for suffix in WEIGHT_COMPANIONS:  # ".scale" -> self.scale: one list of companions, in resolve.py
            companion = getattr(self, suffix[1:])
            if companion is not None:
                stored[name + suffix] = np.asarray(companion)
        return stored


@dataclass(frozen=True)
class Tensor:
    """A tensor of a :class:`Network` (its input or a layer's output), passed to further layers."""

    name: str
    network: Network = field(repr=False, compare=False)


def _caller() -> Loc:
    """Where the user's code called the builder: the first frame outside this module."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:
        return Loc("<python>", 0, 0)
    column = 1
    positions = getattr(frame.f_code, "co_positions", None)  # Python 3.11+: the call's column too
    if positions is not None:
        start = next((p[2] for i, p in enumerate(positions()) if i == frame.f_lasti // 2), None)
        column = start + 1 if start is not None else 1
    return Loc(frame.f_code.co_filename, frame.f_lineno, column)


def _error(loc: Loc, message: str) -> NNError:
    return NNError.at(loc, message)


def _name(loc: Loc, name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _error(loc, f"{what} name {name!r} is not a name (letters, digits and '_', not starting with a digit)")
    if name in LANGUAGE_KEYWORDS:
        raise _error(loc, f"'{name}' is a keyword of the language and cannot name {what}")
    return name


def _value(loc: Loc, attribute: str, value: object) -> ast.Value:
    """An attribute's value as the parser would give it: int, float, a name or string, a tuple of those."""
    if isinstance(value, bool) or value is None:
        raise _error(loc, f"attribute '{attribute}' takes a number, a name or a tuple, not {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            raise _error(loc, f"attribute '{attribute}' must be a finite number, got {value!r}")
        return float(value)
    if isinstance(value, str):
        if '"' in value or "\n" in value:
            raise _error(loc, f"attribute '{attribute}': a string holds no '\"' and no line break")
        return value
    if isinstance(value, tuple | list):
        return tuple(_value(loc, attribute, item) for item in value)
    raise _error(loc, f"attribute '{attribute}' takes a number, a name or a tuple, not {type(value).__name__}")


@dataclass(frozen=True)
class Type:
    """A layer's type annotation, ``: i8 @ scale(0.05) zero(-128)``: a dtype name (f32, i8, i16, q7, qM.N),
    optionally the shape it must have, and for i8/i16 the scale and zero point."""

    dtype: str
    shape: Sequence[int] | None = None
    scale: float | None = None
    zero_point: int | None = None

    def expr(self, loc: Loc) -> ast.TypeExpr:
        if (self.scale is None) != (self.zero_point is None):
            raise _error(loc, "give scale and zero_point together (or neither)")
        quant = None if self.scale is None else ast.QuantSpec(loc, float(self.scale), int(self.zero_point or 0))
        dims = None if self.shape is None else tuple(int(d) for d in self.shape)
        return ast.TypeExpr(loc, str(self.dtype), dims, quant)


def _annotation(loc: Loc, given: Type | str | None) -> ast.TypeExpr | None:
    if given is None:
        return None
    if isinstance(given, str):
        given = Type(given)
    if not isinstance(given, Type):
        raise _error(loc, f"type= takes a dtype name such as 'q7' or nndsl.Type(...), not {type(given).__name__}")
    return given.expr(loc)


def _field(loc: Loc, name: str, value: str | float) -> ast.TargetField:
    """``latency="10 ms"``, ``ram="256 KiB"``, ``cycles_per_mac=3.5`` or ``accumulator="i16"``."""
    relation = field_relation(name)
    if isinstance(value, str) and _NAME.fullmatch(value):
        return ast.TargetField(loc, name, relation, ast.Quantity(loc, 0.0, None), word=value)
    if isinstance(value, str):
        match = _QUANTITY.fullmatch(value)
        if match is None:
            raise _error(loc, f"target field '{name}': {value!r} is not a quantity such as '256 KiB' or '10 ms'")
        return ast.TargetField(loc, name, relation, ast.Quantity(loc, float(match[1]), match[2]))
    return ast.TargetField(loc, name, relation, ast.Quantity(loc, float(value), None))


class Network:
    """A network made in Python: ``net.input``, one method per operator, ``net.output``.

    It prints as `.nn` text (:meth:`text`), writes a `.nn` file and its `.npz` (:meth:`write`), and
    compiles to the :class:`~nndsl.Model` that :func:`nndsl.load` would give for those files
    (:meth:`model`).
    """

    def __init__(self, name: str, *, weights_file: str | None = None) -> None:
        loc = _caller()
        problem = c_name_problem(_name(loc, name, "the network"))
        if problem is not None:
            raise _error(loc, f"the network name '{name}' {problem}; rename the network")
        self.name = name
        self.weights_file = weights_file or f"{name}.npz"
        self.loc = loc
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self._target: ast.TargetDecl | None = None
        self._body: list[ast.Statement] = []
        self._names: set[str] = set()

    # -- statements ----------------------------------------------------------------------------------

    def target(self, name: str, **fields: str | float) -> None:
        """``target NAME { ... }``: a built-in part, its figures overridden by ``fields`` (``latency="10 ms"``)."""
        loc = _caller()
        decl_fields = tuple(_field(loc, key, value) for key, value in fields.items())
        self._target = ast.TargetDecl(loc, _name(loc, name, "a target"), decl_fields)

    def input(self, name: str, dtype: str, shape: Sequence[int], *, scale: float | None = None,
              zero_point: int | None = None) -> Tensor:
        """``input NAME : DTYPE[SHAPE] @ scale(S) zero(Z)``; an integer input needs ``scale`` and ``zero_point``."""
        loc = _caller()
        expr = Type(dtype, shape, scale, zero_point).expr(loc)
        return self._define(ast.InputDecl(loc, self._fresh(loc, name, "input"), expr))

    def layer(self, op: str, *inputs: Any, name: str | None = None, activation: str | Sequence[str] = (),
              type: Type | str | None = None, output: bool = False, **arguments: Any) -> Tensor:
        """``NAME = OP(inputs, weights, attributes) -> activation : type``, the layer's output returned.

        ``inputs`` are tensors; a binary op's may also be numbers, arrays or :class:`Weight` (its constants).
        ``arguments`` are the op's weights (arrays or :class:`Weight`, e.g. ``kernel=``) and its
        attributes (``stride=2``); ``type`` annotates the output (``"q4.11"``, ``Type("i8", scale=0.1,
        zero_point=-128)``); ``output`` makes it the network's output (``output NAME = ...``).
        """
        loc = _caller()
        signature = SIGNATURES.get(op)
        if signature is None:
            raise _error(loc, f"unknown operator '{op}'{did_you_mean(op, list(SIGNATURES))}")
        layer_name = self._fresh(loc, name, op)
        refs: list[ast.Ref | ast.Literal] = [self._operand(loc, signature, layer_name, index, given)
                                             for index, given in enumerate(inputs)]
        refs += self._weight_refs(loc, signature, layer_name, arguments)
        kwargs = tuple(ast.KeywordArg(loc, key, _value(loc, key, value)) for key, value in arguments.items()
                       if key not in signature.weights + signature.optional_weights)
        names = (activation,) if isinstance(activation, str) else tuple(activation)
        call = ast.Call(loc, op, tuple(refs), kwargs, tuple(ast.Activation(loc, a) for a in names))
        annotation = _annotation(loc, type)
        return self._define(ast.LayerDecl(loc, layer_name, call, annotation, is_output=output))

    def output(self, tensor: Tensor) -> None:
        """``output NAME``: marks a tensor already made as the network's output."""
        loc = _caller()
        self._body.append(ast.OutputDecl(loc, self._tensor_ref(loc, tensor).name))

    def __getattr__(self, op: str) -> Callable[..., Tensor]:
        """``net.conv2d(x, kernel=k, stride=2)``: :meth:`layer` for each operator the language has."""
        signature = SIGNATURES.get(op)
        if signature is None or op.startswith("_"):
            hint = did_you_mean(op, list(SIGNATURES)) if not op.startswith("_") else ""
            raise AttributeError(f"'Network' object has no attribute or operator '{op}'{hint}")

        def method(*inputs: Any, **keywords: Any) -> Tensor:
            return self.layer(op, *inputs, **keywords)

        method.__name__ = op
        method.__doc__ = f"{signature.usage}: {signature.summary}"
        return method

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *SIGNATURES})

    # -- results --------------------------------------------------------------------------------------

    @property
    def program(self) -> ast.Program:
        """The syntax tree, as :func:`nndsl.parser.parse` gives it for :meth:`text` (locations aside)."""
        header: list[ast.Statement] = [] if self._target is None else [self._target]
        if self.arrays:
            header.append(ast.WeightsDecl(self.loc, self.weights_file))
        return ast.Program(self.loc, self.name, (*header, *self._body), "")

    def text(self) -> str:
        """The network as `.nn` text."""
        return format_program(self.program)

    def __str__(self) -> str:
        return self.text()

    def npz(self) -> bytes:
        """The weights as the bytes of an ``.npz`` archive (what :meth:`write` puts beside the `.nn`)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    def write(self, path: str | Path) -> list[Path]:
        """Write ``path`` (the `.nn` text) and, when there are weights, ``weights_file`` beside it; all or none."""
        nn = Path(path)
        files: dict[Path, str | bytes] = {nn: self.text()}
        if self.arrays:
            files[nn.parent / self.weights_file] = self.npz()
        write_files(files)
        return list(files)

    def model(self, *, budget: bool = True) -> Model:
        """Check and lower the network: the :class:`~nndsl.Model` :func:`nndsl.load` gives for its files.

        Errors are located at the Python lines that made the layers. ``budget`` as for :func:`nndsl.load`.
        """
        archive = self.npz() if self.arrays else None
        return Model(compile_program(self.program, f"<network {self.name}>", archive=archive, budget=budget))

    # -- helpers --------------------------------------------------------------------------------------

    def _fresh(self, loc: Loc, name: str | None, op: str) -> str:
        if name is not None:
            return _name(loc, name, "a tensor")
        number = 1
        while f"{op}_{number}" in self._names:
            number += 1
        return f"{op}_{number}"

    def _define(self, statement: ast.InputDecl | ast.LayerDecl) -> Tensor:
        self._body.append(statement)
        self._names.add(statement.name)
        return Tensor(statement.name, self)

    def _tensor_ref(self, loc: Loc, tensor: object) -> ast.Ref:
        if not isinstance(tensor, Tensor):
            raise _error(loc, f"expected a tensor of this network (what net.input or a layer returns), got "
                         f"{type(tensor).__name__}; weights and attributes are keywords (kernel=..., stride=...)")
        if tensor.network is not self:
            raise _error(loc, f"tensor '{tensor.name}' belongs to network '{tensor.network.name}', not '{self.name}'")
        return ast.Ref(loc, tensor.name)

    def _operand(self, loc: Loc, signature: OpSignature, layer: str, index: int,
                 given: object) -> ast.Ref | ast.Literal:
        """A tensor; for an op with constant operands also a number (written in the text) or an array
        (a weight ``LAYER.xN``)."""
        if isinstance(given, Tensor) or not signature.constants:
            return self._tensor_ref(loc, given)
        if isinstance(given, int | float) and not isinstance(given, bool):
            return ast.Literal(loc, given)
        return ast.Ref(loc, self._add_weight(loc, layer, f"x{index}", given))

    def _weight_refs(self, loc: Loc, signature: OpSignature, layer: str, arguments: dict[str, Any]) -> list[ast.Ref]:
        """The weights in their positional order; unknown keywords and missing weights are errors here."""
        roles = signature.weights + signature.optional_weights
        known = [*roles, *(a.name for a in signature.attrs)]
        for key in arguments:
            if key not in known:
                listed = ", ".join(known) or "none"
                raise _error(loc, f"'{signature.name}' has no weight or attribute '{key}'"
                             f"{did_you_mean(key, known)} (it takes: {listed})")
        refs = []
        for role in roles:
            if role not in arguments:
                if role in signature.weights:
                    raise _error(loc, f"'{signature.name}' needs its {role}: {role}=array")
                if any(later in arguments for later in roles[roles.index(role) + 1:]):
                    raise _error(loc, f"'{signature.name}' takes {role} before the weights after it")
                break
            refs.append(ast.Ref(loc, self._add_weight(loc, layer, role, arguments[role])))
        return refs

    def _add_weight(self, loc: Loc, layer: str, role: str, given: Any) -> str:
        weight = given if isinstance(given, Weight) else Weight(given)
        name = weight.name or f"{layer}.{role}"
        if not _WEIGHT_NAME.fullmatch(name):
            raise _error(loc, f"weight name {name!r} is not a name such as 'fc1.kernel'")
        for key, array in weight.arrays(name).items():
            if array.dtype.kind not in "biuf":
                raise _error(loc, f"weight '{key}' is an array of {array.dtype}; weights are integers or floats")
            previous = self.arrays.get(key)
            if previous is not None and not (previous.dtype == array.dtype and np.array_equal(previous, array)):
                raise _error(loc, f"weight '{key}' is already in the network with other values; name this one "
                             f"differently (Weight(..., name=...))")
            self.arrays[key] = array
        return name
