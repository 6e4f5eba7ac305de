"""The Python API: ``nndsl.load(path)``, ``model.run(x)``, ``model.build(dir)``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nndsl import ir
from nndsl.backend import backend
from nndsl.buildsys import depfile_text
from nndsl.cnames import prefix_problem
from nndsl.diagnostics import Diagnostic, Loc, NNError
from nndsl.files import write_files
from nndsl.pipeline import Compiled, compile_file, compile_source
from nndsl.ranges import Observed
from nndsl.summary import Summary
from nndsl.types import TensorType

Array = npt.NDArray[np.generic]


def _quantise_hint(in_type: TensorType) -> str:
    if in_type.fixed is not None:
        return f" (quantise it first: q = round(x * 2^{in_type.fixed.frac_bits}))"
    return " (quantise it first: q = round(x / scale) + zero_point)" if in_type.dtype.is_integer else ""


def _check_format_range(array: Array, in_type: TensorType) -> None:
    """A qM.N input narrower than its storage (q2.3 in int8) takes only its format's values: the proof assumes so."""
    if in_type.fixed is None or not array.size:
        return
    low, high = in_type.bounds
    if array.min() < low or array.max() > high:
        raise InputError(f"input values must lie in {in_type.fixed.name}'s range [{low}, {high}], got "
                         f"{array.min()}..{array.max()}")


class InputError(ValueError):
    """An input array that does not fit the model (shape or dtype)."""


@dataclass(frozen=True)
class Model:
    """A compiled network. A stateful one (``stateful=true`` recurrent layers) keeps its recurrent state
    between :meth:`run` calls, as its C code does; :meth:`reset` zeroes it."""

    compiled: Compiled
    _state: dict[str, Array] = field(default_factory=dict, repr=False, compare=False)

    @property
    def graph(self) -> ir.Graph:
        return self.compiled.graph

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return self.compiled.warnings

    @property
    def budget_errors(self) -> tuple[Diagnostic, ...]:
        """Where the model exceeds its target (only when loaded with ``budget=False``; else they are raised)."""
        return self.compiled.budget_errors

    def summary(self) -> Summary:
        return self.compiled.summary

    def range_warnings(self, calibration: npt.ArrayLike | None = None) -> list[Diagnostic]:
        """Where a layer's output format clips values its inputs can reach (what ``nndsl check`` warns of).

        The bound is the worst case over every input the input type allows. With ``calibration``
        (representative inputs ``[N, ...]``, real values or already quantised) each warning also says
        whether those inputs reach the clipping limit, and how often.
        """
        if calibration is None:
            return self.compiled.range_warnings()
        array = np.asarray(calibration)
        if array.shape == self.graph.input.type.shape:
            array = array[np.newaxis]
        values = self.trace(array, quantize=array.dtype.kind == "f")
        return self.compiled.range_warnings(Observed(values, len(array)))

    def _batch(self, x: npt.ArrayLike) -> tuple[Array, bool]:
        array = np.asarray(x)
        in_type = self.graph.input.type
        expected = np.dtype(in_type.dtype.numpy)
        if array.dtype != expected:
            if in_type.dtype.is_integer or array.dtype.kind != "f":
                raise InputError(f"input is {array.dtype}, the model takes {expected}{_quantise_hint(in_type)}")
            array = array.astype(expected)
        _check_format_range(array, in_type)
        if array.shape == in_type.shape:
            return array[np.newaxis], False
        if array.shape[1:] == in_type.shape:
            return array, True
        shape = ", ".join(map(str, in_type.shape))
        raise InputError(f"input has shape {list(array.shape)}, the model takes [{shape}] or [N, {shape}]")

    def run(self, x: npt.ArrayLike, *, quantize: bool = False, real: bool = False) -> Array:
        """The output for one input (the model's input shape) or a batch (a leading axis).

        ``quantize``: ``x`` holds real values, quantised first (:meth:`quantize`);
        ``real``: the output as real values (:meth:`dequantize`), not integers.
        A stateful network's rows are consecutive calls (in order, each continuing from the state the one
        before left), and the state carries over to the next ``run``.
        """
        batch, batched = self._batch(self.quantize(x) if quantize else x)
        numpy_backend = backend("numpy")
        if self.graph.states:
            result: Array = numpy_backend.run_stateful(self.graph, batch, self._state)
        else:
            result = numpy_backend.run(self.graph, batch)
        result = result if batched else result[0]
        return self.dequantize(result) if real else result

    @property
    def stateful(self) -> bool:
        """Whether the network keeps recurrent state between calls (``<name>_reset`` in its C)."""
        return bool(self.graph.states)

    def reset(self) -> None:
        """Zero the recurrent state of a stateful network (as ``<name>_reset()`` in C); nothing otherwise."""
        self._state.clear()

    def trace(self, x: npt.ArrayLike, *, quantize: bool = False, real: bool = False) -> dict[str, Array]:
        """Every tensor's value, the input first, by tensor name in execution order, for one input or a batch.

        ``quantize`` and ``real`` as for :meth:`run` (``real``: each tensor dequantised with its own scale).
        Each row starts from a zero recurrent state; a stateful model's state is neither read nor changed.
        """
        batch, batched = self._batch(self.quantize(x) if quantize else x)
        values: dict[str, Array] = backend("numpy").run(self.graph, batch, trace=True)
        values = values if batched else {name: v[0] for name, v in values.items()}
        return {name: self.dequantize(v, name) for name, v in values.items()} if real else values

    def quantize(self, x: npt.ArrayLike) -> Array:
        """Real-valued input in the model's input type, as TensorFlow Lite quantises it.

        ``q = clamp(round(x / scale) + zero_point)``, halves rounded away from
        zero (the division in float64); a qM.N input is clamped to its format's
        range. An f32 model takes the values as float32.
        """
        array = np.asarray(x)
        in_type = self.graph.input.type
        if array.dtype.kind not in "fiu":
            raise InputError(f"input is {array.dtype}, not real numbers")
        if in_type.quant is None:
            return array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise InputError("input holds NaN or infinite values, which have no quantised value")
        scaled = array.astype(np.float64) / in_type.quant.scale
        rounded = np.copysign(np.floor(np.abs(scaled) + 0.5), scaled) + in_type.quant.zero_point
        low, high = in_type.bounds
        quantized: Array = np.clip(rounded, low, high).astype(in_type.dtype.numpy)
        return quantized

    def dequantize(self, values: npt.ArrayLike, tensor: str | None = None) -> npt.NDArray[np.float64]:
        """Real values of a tensor's integers (default: the output): ``scale * (q - zero_point)``.

        ``tensor`` names any tensor of the network (a key of :meth:`trace`); f32
        values come back as they are.
        """
        array = np.asarray(values)
        tensor_type = self._tensor(tensor).type
        quant = tensor_type.quant
        if quant is None:
            return array.astype(np.float64)
        scales = np.asarray(quant.scales, dtype=np.float64)
        zeros = np.asarray(quant.zero_points, dtype=np.float64)
        if quant.axis is not None:  # per channel (weights): along that axis, counted from the end
            from_end = len(tensor_type.shape) - quant.axis
            shape = (-1, *([1] * (from_end - 1)))
            scales, zeros = scales.reshape(shape), zeros.reshape(shape)
        return (array.astype(np.float64) - zeros) * scales

    def _tensor(self, name: str | None) -> ir.Tensor:
        if name is None:
            return self.graph.output
        for tensor in self.graph.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(f"network {self.name} has no tensor '{name}'")

    def c_sources(self, prefix: str = "") -> tuple[str, str]:
        """The generated ``(.c, .h)`` text; ``prefix`` begins every C name (see :meth:`build`)."""
        source, header, _ = self._c_sources(prefix)
        return source, header

    def _c_sources(self, prefix: str) -> tuple[str, str, str]:
        """``(.c text, .h text, the C name files and symbols take)``, or an error for a prefix C cannot take."""
        problem = prefix_problem(prefix, self.name) if prefix else None
        if problem is not None:
            raise NNError.at(None, f"symbol prefix '{prefix}': {problem}")
        sources = backend("c").compile(self.graph, prefix)
        return str(sources.source), str(sources.header), str(sources.name)

    def build(self, out_dir: str | Path, depfile: bool = True, prefix: str = "") -> list[Path]:
        """Write ``<name>.c``, ``<name>.h`` (and ``<name>.d`` for make) into ``out_dir``.

        A ``prefix`` goes before the network's name in every C name and in the file names
        (``prefix="left_"``: ``left_mlp_run``, ``LEFT_MLP_INPUT_SIZE``, ``left_mlp.c``), so that two models,
        even two with the same network name, link into one program. All files are replaced or none.
        """
        source, header, name = self._c_sources(prefix)
        out = Path(out_dir)
        files = {out / f"{name}.c": source, out / f"{name}.h": header}
        if depfile:
            files[out / f"{name}.d"] = depfile_text(list(files), self.compiled.dependencies)
        self._refuse_overwriting_inputs(files)
        write_files(files)
        return list(files)

    def _refuse_overwriting_inputs(self, outputs: Iterable[Path]) -> None:
        """An output that is one of the model's own files (the .nn, its weights) would destroy it."""
        inputs = {path.resolve() for path in self.compiled.dependencies}
        for path in outputs:
            if path.resolve() in inputs:
                raise NNError.at(Loc.file(str(path)), "this output would overwrite one of the model's own files; "
                                 "choose another output folder (-o)")


def load(path: str | Path, *, budget: bool = True) -> Model:
    """Parse, check and lower a `.nn` file; raises :class:`NNError` with located diagnostics.

    ``budget=False``: a model over its target's budget loads anyway, the errors in ``model.budget_errors``.
    """
    return Model(compile_file(path, budget=budget))


def loads(source: str, path: str = "<string>") -> Model:
    """Like :func:`load` for `.nn` text; ``path`` anchors a relative weights file."""
    return Model(compile_source(source, path))


__all__ = ["InputError", "Model", "NNError", "load", "loads"]
