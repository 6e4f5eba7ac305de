"""``nndsl validate``: the compiled C, on the host, against the NumPy backend and a reference.

The generated C is compiled with the host's C compiler and the host program
shipped in ``nndsl/share/host``, and run on every input. Its outputs must equal
the NumPy backend's (the two implement one arithmetic); against a TensorFlow
Lite model they must equal TensorFlow Lite Micro's for integer networks, and
against a Keras model (or a float network) the error is reported. On the first
input where C and NumPy differ, a second build with the model's
``<NAME>_TRACE`` hook defined records every layer, naming the first layer whose
values differ. TensorFlow and tflite-micro are imported only for a reference.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.backend import backend
from nndsl.diagnostics import Loc, NNError
from nndsl.model import InputError, Model

Array = npt.NDArray[Any]

HOST_PROGRAM = "nndsl_host.c"
# Flags of the host build: plain C99 as a firmware build compiles it; warnings shown, not fatal.
HOST_FLAGS: tuple[str, ...] = ("-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic")
COMPILER_NAMES = ("cc", "gcc", "clang")
TFLM_ARENA_BYTES = 16 << 20  # generous: TFLM's interpreter fails cleanly when an arena is too small
F32_RTOL = 1e-5  # C vs NumPy in f32: of each output row's largest |value| (summation order differs)
FLOAT_TOLERANCE = 1e-4  # of each output row's largest |reference value|, for f32 networks


@dataclass(frozen=True)
class HostBuild:
    """A compiled host program for one model, and the folder it was built in."""

    program: Path
    folder: Path
    name: str
    compiler: str


@dataclass(frozen=True)
class LayerDifference:
    """One layer's values in C and in NumPy on one input."""

    name: str
    op: str
    loc: Loc
    shape: tuple[int, ...]
    differing: int
    max_abs: float


@dataclass(frozen=True)
class ReferenceResult:
    """The C outputs against a reference framework's."""

    source: str  # what ran it: "TensorFlow Lite Micro" or "Keras"
    exact: bool  # integer outputs compared for equality (else real-valued error figures)
    differing: int  # values not equal (exact) or beyond the tolerance (real-valued)
    differing_inputs: int
    max_abs_error: float
    mean_abs_error: float
    tolerance: float | None
    top1_agreement: float
    accuracy: float | None = None


@dataclass
class Report:
    """Everything ``nndsl validate`` found; ``ok`` is its exit status."""

    model: Model
    compiler: str
    inputs: int
    c_vs_numpy: int = 0
    differing_inputs: list[int] = field(default_factory=list)
    layers: list[LayerDifference] = field(default_factory=list)
    reference: ReferenceResult | None = None
    accuracy: float | None = None
    min_accuracy: float | None = None
    trace_note: str | None = None

    @property
    def failures(self) -> list[str]:
        """Why validation failed, one message each (empty when it passed)."""
        found = []
        if self.c_vs_numpy:
            found.append(f"the C differs from the NumPy backend in {self.c_vs_numpy} values "
                         f"({len(self.differing_inputs)} of {self.inputs} inputs)")
        ref = self.reference
        if ref is not None and ref.differing:
            limit = "" if ref.exact else f" by more than {ref.tolerance:g} of each row's largest value"
            found.append(f"the C differs from {ref.source}{limit} in {ref.differing} values "
                         f"({ref.differing_inputs} of {self.inputs} inputs)")
        if self.min_accuracy is not None and self.accuracy is not None and self.accuracy < self.min_accuracy:
            found.append(f"accuracy {self.accuracy:.4f} is below --min-accuracy {self.min_accuracy:g}")
        return found


# -- the host build ------------------------------------------------------------------------------


def find_compiler(requested: str | None = None) -> str:
    """The host C compiler: ``requested``, else ``$CC``, else cc, gcc or clang on PATH."""
    if requested is not None:  # asked for by name: that one or an error, never another
        if shutil.which(requested):
            return requested
        raise NNError.at(None, f"no host C compiler found ({requested}); install it or pass another --cc")
    for name in (os.environ.get("CC"), *COMPILER_NAMES):
        if name and shutil.which(name):
            return name
    wanted = requested or os.environ.get("CC") or "cc, gcc or clang"
    raise NNError.at(None, f"no host C compiler found ({wanted}); install gcc or pass --cc")


@contextmanager
def work_folder(keep: str | Path | None) -> Iterator[Path]:
    """The folder the host build goes in: ``keep`` (created, left in place) or a temporary one."""
    if keep is not None:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="nndsl_validate_") as folder:
        yield Path(folder)


def c_prefix(model: Model) -> str:
    """The C prefix of a model: its files are ``<prefix>.c``/``.h``, its entry point ``<prefix>_run``."""
    return str(backend("c").emit.identifier(model.name))


def place_sources(model: Model, folder: Path, sources: Path | None) -> None:
    """The model's C in ``folder``: generated now, or copied from ``sources`` (the C a user ships)."""
    if sources is None:
        model.build(folder, depfile=False)
        return
    name = c_prefix(model)
    for suffix in (".c", ".h"):
        path = sources / f"{name}{suffix}"
        if not path.is_file():
            raise NNError.at(Loc.file(str(path)), f"no generated {suffix} file of network {model.name} "
                                     "here (write it with nndsl build)")
        shutil.copyfile(path, folder / path.name)


def compile_host(model: Model, folder: Path, compiler: str, *, trace: bool = False) -> HostBuild:
    """Compile the model's C in ``folder`` with the host program; with ``trace``, its trace hook on."""
    name = c_prefix(model)
    host = folder / HOST_PROGRAM
    host.write_bytes(resources.files("nndsl.share.host").joinpath(HOST_PROGRAM).read_bytes())
    model_source = folder / f"{name}.c"
    if trace:
        model_source = folder / f"{name}_trace.c"
        model_source.write_text(_trace_unit(name), encoding="utf-8")
    program = folder / (f"{name}_trace_host" if trace else f"{name}_host")
    defines = [f"-DNNDSL_MODEL={name}", f"-DNNDSL_MODEL_UPPER={name.upper()}", f'-DNNDSL_MODEL_HEADER="{name}.h"']
    command = [compiler, *HOST_FLAGS, *defines, f"-I{folder}", str(model_source), str(host), "-o", str(program),
               "-lm"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        where = Loc.file(str(folder / f"{name}.c"))
        raise NNError.at(where, f"the host C compiler failed:\n{' '.join(command)}\n"
                                 f"{done.stderr.strip()[-4000:]}")
    return HostBuild(program, folder, name, compiler)


def _trace_unit(name: str) -> str:
    """A translation unit: the model's C with its ``<NAME>_TRACE`` hook calling the host's ``nndsl_trace``."""
    return (f"/* {name}.c with its trace hook on (nndsl validate). */\n"
            "#include <stddef.h>\n"
            "void nndsl_trace(int layer, const char *name, const void *data, size_t element_size, size_t count);\n"
            f"#define {name.upper()}_TRACE(layer, name, data, count) "
            "nndsl_trace((layer), (name), (data), sizeof *(data), (size_t)(count))\n"
            f'#include "{name}.c"\n')


def run_host(build: HostBuild, model: Model, inputs: Array, trace_file: Path | None = None) -> Array:
    """The C outputs for a batch of inputs in the model's input type."""
    graph = model.graph
    batch = np.ascontiguousarray(inputs, dtype=graph.input.type.dtype.numpy)
    in_path, out_path = build.folder / "inputs.bin", build.folder / "outputs.bin"
    in_path.write_bytes(batch.tobytes())
    command = [str(build.program), str(in_path), str(out_path), *([str(trace_file)] if trace_file else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NNError.at(Loc.file(str(build.program)), f"the host program failed (exit {done.returncode}): "
                                 f"{done.stderr.strip()[-2000:]}")
    flat = np.fromfile(out_path, dtype=graph.output.type.dtype.numpy)
    expected = len(batch) * graph.output.type.size
    if flat.size != expected:
        raise NNError.at(Loc.file(str(build.program)), f"{flat.size} output values, expected {expected}")
    return flat.reshape((len(batch), *graph.output.type.shape))


# -- the per-layer comparison ------------------------------------------------------------------


def read_trace(path: Path, model: Model) -> dict[str, Array]:
    """The layer values a trace build wrote for one input, by tensor name."""
    data = path.read_bytes()
    ops = model.graph.ops
    values: dict[str, Array] = {}
    offset = 0
    while offset < len(data):
        index, name_length, size = np.frombuffer(data, dtype=np.int32, count=3, offset=offset)
        offset += 12
        name = data[offset : offset + name_length].decode("utf-8")
        offset += int(name_length)
        if not 0 <= index < len(ops) or ops[index].output.name != name:
            raise NNError.at(None, f"the C's layer {index} is '{name}', which is not this model's "
                                     "(was the C generated from another version of the .nn?)")
        tensor_type = ops[index].output.type
        values[name] = np.frombuffer(data, dtype=tensor_type.dtype.numpy, count=tensor_type.size,
                                     offset=offset).reshape(tensor_type.shape)
        offset += int(size)
    return values


def layer_differences(model: Model, c_values: dict[str, Array], numpy_values: dict[str, Array]) -> list[
        LayerDifference]:
    """Every layer's C values against NumPy's, in execution order."""
    found = []
    for op in model.graph.ops:
        name = op.output.name
        if name not in c_values:
            continue
        c, py = c_values[name], numpy_values[name]
        count = int(np.count_nonzero(differing(c[np.newaxis], py[np.newaxis])))
        max_abs = float(np.max(np.abs(c.astype(np.float64) - py))) if c.size else 0.0
        found.append(LayerDifference(name, op.kind, op.loc, op.output.type.shape, count, max_abs))
    return found


def trace_first_difference(model: Model, folder: Path, compiler: str, x: Array) -> list[LayerDifference]:
    """Build the C with its trace hook, run it on one input and compare every layer with NumPy's trace."""
    build = compile_host(model, folder, compiler, trace=True)
    trace_file = folder / "trace.bin"
    run_host(build, model, x[np.newaxis], trace_file)
    return layer_differences(model, read_trace(trace_file, model), model.trace(x))


# -- references -------------------------------------------------------------------------------


def tflm_outputs(path: Path, model: Model, inputs: Array) -> Array:
    """TensorFlow Lite Micro's outputs (the pinned tflite-micro Python runtime) for the model's inputs."""
    where = Loc.file(str(path))
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise NNError.at(where, "a .tflite reference needs the tflite-micro package (pip install tflite-micro)"
                         ) from None
    try:
        interpreter = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=TFLM_ARENA_BYTES)
        expected = interpreter.get_input_details(0)["dtype"]
        if np.dtype(expected) != inputs.dtype:
            raise NNError.at(where, f"the .tflite model takes {np.dtype(expected)} input, the .nn model "
                             f"{inputs.dtype}: not the same network")
        outputs = []
        for x in inputs:
            interpreter.set_input(x[np.newaxis], 0)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_output(0)).reshape(model.graph.output.type.shape))
    except (RuntimeError, ValueError, OSError) as error:
        raise NNError.at(where, f"TensorFlow Lite Micro cannot run it: {str(error).strip()[:500]}") from None
    return np.stack(outputs)


def keras_outputs(path: Path, real_inputs: Array) -> Array:
    """The Keras model's float outputs for real-valued inputs."""
    from nndsl.importers.keras import load_keras
    from nndsl.importers.tf import quiet

    keras_model = load_keras(path)
    try:
        with quiet():
            result = keras_model(real_inputs.astype(np.float32), training=False)
    except Exception as error:  # Keras raises many kinds for inputs of the wrong shape
        raise NNError.at(Loc.file(str(path)), f"Keras cannot run it on these inputs: {error}") from None
    return np.asarray(result[0] if isinstance(result, list | tuple) else result)


def compare_reference(model: Model, c_outputs: Array, reference: Array, source: str,
                      tolerance: float | None) -> ReferenceResult:
    """C against a reference: exactly when both hold the same integers, else as real values."""
    reference = reference.reshape(c_outputs.shape)
    exact = c_outputs.dtype.kind == "i" and reference.dtype == c_outputs.dtype
    c_real = c_outputs.astype(np.float64) if exact else model.dequantize(c_outputs)
    ref_real = reference.astype(np.float64)
    error = np.abs(c_real - ref_real)
    rows = error.reshape(len(error), -1)
    if exact:
        bad = rows != 0
    else:
        scale = np.max(np.abs(ref_real.reshape(len(error), -1)), axis=1, keepdims=True)
        bad = rows > (np.inf if tolerance is None else tolerance * np.maximum(scale, np.finfo(np.float64).tiny))
    agreement = np.mean(_top1(c_real) == _top1(ref_real))
    return ReferenceResult(source, exact, int(np.count_nonzero(bad)), int(np.count_nonzero(bad.any(axis=1))),
                           float(error.max(initial=0.0)), float(error.mean()) if error.size else 0.0,
                           None if exact else tolerance, float(agreement))


def _top1(outputs: Array) -> Array:
    classes: Array = outputs.reshape(len(outputs), -1).argmax(axis=1)
    return classes


def reference_outputs(path: Path, model: Model, inputs: Array, real_inputs: Array | None) -> tuple[Array, str]:
    """The reference's outputs and its name, by the file's kind."""
    if path.suffix == ".tflite":
        return tflm_outputs(path, model, inputs), "TensorFlow Lite Micro"
    if path.suffix in (".keras", ".h5") or path.is_dir():
        if real_inputs is None:
            real_inputs = model.dequantize(inputs, model.graph.input.name)
        return keras_outputs(path, real_inputs), "Keras"
    raise NNError.at(Loc.file(str(path)), "the reference must be a .tflite, .keras or .h5 model (or a SavedModel "
                     "folder)")


# -- inputs ---------------------------------------------------------------------------------------


def model_inputs(model: Model, x: Array) -> tuple[Array, Array | None]:
    """A batch in the model's input type, and the real values when the inputs were given as such.

    Integer networks take quantised integers as they are, or real (float)
    values quantised with :meth:`Model.quantize`.
    """
    in_type = model.graph.input.type
    if x.shape == in_type.shape:
        x = x[np.newaxis]
    if x.shape[1:] != in_type.shape or x.ndim == len(in_type.shape):
        shape = ", ".join(map(str, in_type.shape))
        raise InputError(f"input has shape {list(x.shape)}, the model takes [{shape}] or [N, {shape}]")
    if not len(x):
        raise InputError("holds no inputs")
    if x.dtype.kind == "f":
        return model.quantize(x), x
    expected = np.dtype(in_type.dtype.numpy)
    if x.dtype != expected:
        raise InputError(f"input is {x.dtype}, the model takes {expected} (or real values, which it quantises)")
    model.run(x[:1])  # the model's own input checks (a qM.N input's range)
    model.reset()  # a stateful model's check call must not carry into the comparison
    return x, None


def labels_of(labels: Array, count: int) -> Array:
    """Integer class labels, one per input."""
    flat = labels.reshape(-1) if labels.ndim > 1 and labels.shape[1:] == (1,) else labels
    if flat.ndim != 1 or flat.dtype.kind not in "iu" or len(flat) != count:
        raise InputError(f"expected {count} integer class labels, got {flat.dtype} {list(labels.shape)}")
    return flat


# -- the whole run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What to validate against, and how."""

    reference: Path | None = None
    labels: Array | None = None
    sources: Path | None = None  # the already generated C to validate, instead of generating it
    work_dir: Path | None = None
    compiler: str | None = None
    tolerance: float | None = None
    min_accuracy: float | None = None


def validate(model: Model, x: Array, options: Options) -> Report:
    """Build and run the C on every input; compare it with NumPy, the reference and the labels."""
    inputs, real_inputs = model_inputs(model, x)
    labels = labels_of(options.labels, len(inputs)) if options.labels is not None else None
    compiler = find_compiler(options.compiler)
    with work_folder(options.work_dir) as folder:
        place_sources(model, folder, options.sources)
        c_outputs = run_host(compile_host(model, folder, compiler), model, inputs)
        report = Report(model, compiler, len(inputs), min_accuracy=options.min_accuracy)
        model.reset()  # the C program starts from a zero state: a stateful model's inputs are one stream
        numpy_outputs = model.run(inputs)
        _compare_numpy(report, c_outputs, numpy_outputs)
        if report.differing_inputs:
            _explain(report, model, folder, compiler, inputs[report.differing_inputs[0]])
    if options.reference is not None:
        outputs, source = reference_outputs(options.reference, model, inputs, real_inputs)
        tolerance = options.tolerance if options.tolerance is not None else _default_tolerance(model)
        report.reference = compare_reference(model, c_outputs, outputs, source, tolerance)
        if labels is not None:
            accuracy = float(np.mean(_top1(outputs.astype(np.float64)) == labels))
            report.reference = _with_accuracy(report.reference, accuracy)
    if labels is not None:
        report.accuracy = float(np.mean(_top1(c_outputs.astype(np.float64)) == labels))
    return report


def _default_tolerance(model: Model) -> float | None:
    """f32 networks must be close to a float reference; quantised ones are only measured against Keras."""
    return FLOAT_TOLERANCE if model.graph.output.type.quant is None else None


def _with_accuracy(result: ReferenceResult, accuracy: float) -> ReferenceResult:
    return replace(result, accuracy=accuracy)


def differing(c: Array, py: Array) -> Array:
    """Which values of a batch differ: integers exactly; f32 beyond :data:`F32_RTOL` of each row's largest.

    The C sums in its own order, NumPy in BLAS's, so float results agree to
    rounding, not bit for bit (the rule of the test suite).
    """
    c_rows, py_rows = c.reshape(len(c), -1), py.reshape(len(py), -1)
    if c.dtype.kind != "f":
        exact: Array = c_rows != py_rows
        return exact
    both_nan = np.isnan(c_rows) & np.isnan(py_rows)
    with np.errstate(invalid="ignore"):
        limit = F32_RTOL * np.max(np.abs(py_rows), axis=1, keepdims=True, initial=0.0)
        far = ~(np.abs(c_rows.astype(np.float64) - py_rows) <= limit)
    beyond: Array = far & ~both_nan
    return beyond


def _compare_numpy(report: Report, c_outputs: Array, numpy_outputs: Array) -> None:
    rows = differing(c_outputs, numpy_outputs)
    report.c_vs_numpy = int(np.count_nonzero(rows))
    report.differing_inputs = [int(i) for i in np.flatnonzero(rows.any(axis=1))]


def _explain(report: Report, model: Model, folder: Path, compiler: str, x: Array) -> None:
    """Per-layer differences on the first differing input (when the C has the trace hook)."""
    source = (folder / f"{c_prefix(model)}.c").read_text(encoding="utf-8")
    if f"{c_prefix(model).upper()}_TRACE" not in source:
        report.trace_note = "this C has no trace hook (it was generated by an older nndsl): no per-layer comparison"
        return
    report.layers = trace_first_difference(model, folder, compiler, x)


# -- the report -------------------------------------------------------------------------------------


def format_report(report: Report) -> str:
    """The lines ``nndsl validate`` prints."""
    model = report.model
    lines = [f"{model.name}: {report.inputs} inputs, C compiled with {report.compiler}",
             f"C vs NumPy backend{_rule(model)}: {report.c_vs_numpy} differing values" + _inputs_note(report)]
    lines += _layer_lines(report)
    if report.reference is not None:
        lines.append(_reference_line(report.reference))
    if report.accuracy is not None:
        reference = report.reference
        also = f" ({reference.source}: {reference.accuracy:.4f})" if reference and reference.accuracy is not None \
            else ""
        lines.append(f"accuracy of the C: {report.accuracy:.4f}{also}")
    lines.append("OK" if not report.failures else "FAILED")
    return "\n".join(lines)


def _rule(model: Model) -> str:
    return f" (f32: beyond {F32_RTOL:g} of each row's largest value)" if model.graph.output.type.quant is None \
        and model.graph.output.type.dtype.numpy.kind == "f" else ""


def _inputs_note(report: Report) -> str:
    if not report.differing_inputs:
        return ""
    return f" in {len(report.differing_inputs)} of {report.inputs} inputs (first: input {report.differing_inputs[0]})"


def _layer_lines(report: Report) -> list[str]:
    if report.trace_note:
        return [report.trace_note]
    if not report.layers:
        return []
    first = next((layer for layer in report.layers if layer.differing), None)
    index = report.differing_inputs[0]
    lines = [f"per layer on input {index} (C trace build vs NumPy trace):"]
    width = max(8, *(len(layer.name) for layer in report.layers))
    for layer in report.layers:
        shape = "[" + ",".join(map(str, layer.shape)) + "]"
        mark = "  <- first difference" if layer is first else ""
        lines.append(f"  {layer.name:<{width}} {layer.op:<12} {shape:<14} {layer.differing:>6} differ, "
                     f"max |diff| {layer.max_abs:g}{mark}")
    if first is not None:
        lines.append(f"{first.loc}: first differing layer: '{first.name}' ({first.op}), {first.differing} of "
                     f"{int(np.prod(first.shape))} values")
    else:
        lines.append("every layer agrees in the trace build: the difference depends on the build (optimisation, "
                     "undefined behaviour?)")
    return lines


def _reference_line(ref: ReferenceResult) -> str:
    if ref.exact:
        return f"C vs {ref.source}: {ref.differing} differing values" + (
            f" in {ref.differing_inputs} inputs" if ref.differing else "")
    limit = "" if ref.tolerance is None else f", {ref.differing} beyond {ref.tolerance:g} of the row's largest value"
    return (f"C vs {ref.source} (real values): max |error| {ref.max_abs_error:.4g}, mean |error| "
            f"{ref.mean_abs_error:.4g}, same top-1 class on {ref.top1_agreement:.2%} of inputs{limit}")
