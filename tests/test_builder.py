"""The Python builder: the same syntax tree as `.nn` text, printed, parsed back, checked, run and built."""

from __future__ import annotations

import doctest
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nndsl
from nndsl import ast, builder
from nndsl.ast import without_locations
from nndsl.ops import SIGNATURES
from nndsl.parser import parse
from nndsl.printer import format_program
from nndsl.resolve import WEIGHT_COMPANIONS
from tests.conftest import DATA, EXAMPLES

EXAMPLE_MODELS = sorted(EXAMPLES.glob("*/*.nn"))


def _type(expr: ast.TypeExpr) -> nndsl.Type:
    quant = {} if expr.quant is None else {"scale": expr.quant.scale, "zero_point": expr.quant.zero_point}
    return nndsl.Type(expr.dtype, expr.shape, **quant)


def _weight(arrays: Any, name: str) -> nndsl.Weight:
    companions = {suffix[1:]: arrays[name + suffix] for suffix in WEIGHT_COMPANIONS if name + suffix in arrays}
    return nndsl.Weight(arrays[name], name=name, **companions)


def rebuild(program: ast.Program, arrays: Any) -> nndsl.Network:
    """The network of a parsed program made again through the builder's public methods."""
    weights = next((s.path for s in program.statements if isinstance(s, ast.WeightsDecl)), None)
    net = nndsl.Network(program.name, weights_file=weights)
    tensors: dict[str, builder.Tensor] = {}
    for statement in program.statements:
        match statement:
            case ast.TargetDecl():
                fields: dict[str, Any] = {
                    f.name: f.word or (f"{f.quantity.value} {f.quantity.unit}" if f.quantity.unit else f.quantity.value)
                    for f in statement.fields}
                net.target(statement.name, **fields)
            case ast.InputDecl():
                type_ = _type(statement.type)
                assert type_.shape is not None
                tensors[statement.name] = net.input(statement.name, type_.dtype, type_.shape, scale=type_.scale,
                                                    zero_point=type_.zero_point)
            case ast.LayerDecl():
                call = statement.call
                signature = SIGNATURES[call.op]
                if signature.constants:  # operands: tensors, weight arrays, numbers
                    operands = [arg.value if isinstance(arg, ast.Literal) else tensors[arg.name]
                                if arg.name in tensors else _weight(arrays, arg.name) for arg in call.args]
                    tensors[statement.name] = getattr(net, call.op)(
                        *operands, name=statement.name, activation=[a.name for a in call.activations],
                        output=statement.is_output, type=None if statement.type is None else _type(statement.type))
                    continue
                count = len(call.args) if signature.variadic else signature.tensors
                roles = signature.weights + signature.optional_weights
                weights_given = {role: _weight(arrays, ref.name) for role, ref in zip(roles, call.args[count:],
                                                                                       strict=False)
                                 if isinstance(ref, ast.Ref)}
                attributes = {kw.name: kw.value for kw in call.kwargs}
                method = getattr(net, call.op)
                tensors[statement.name] = method(
                    *(tensors[ref.name] for ref in call.args[:count] if isinstance(ref, ast.Ref)), name=statement.name,
                    activation=[a.name for a in call.activations], output=statement.is_output,
                    type=None if statement.type is None else _type(statement.type), **weights_given, **attributes)
            case ast.OutputDecl():
                net.output(tensors[statement.name])
    return net


@pytest.mark.parametrize("path", EXAMPLE_MODELS, ids=lambda p: p.stem)
def test_printed_example_parses_to_the_same_tree(path: Path) -> None:
    program = parse(path.read_text(), str(path))
    assert without_locations(parse(format_program(program))) == without_locations(program)


@pytest.mark.parametrize("path", EXAMPLE_MODELS, ids=lambda p: p.stem)
def test_builder_round_trip_on_every_example(path: Path, tmp_path: Path) -> None:
    """builder -> text -> parse gives the example's tree; the model runs as the file does; the files load."""
    program = parse(path.read_text(), str(path))
    with np.load(path.with_suffix(".npz")) as arrays:
        net = rebuild(program, dict(arrays))
    assert without_locations(net.program) == without_locations(program)
    assert without_locations(parse(net.text())) == without_locations(program)
    inputs = np.load(path.parent / "inputs.npy")[:20]
    expected = nndsl.load(path).run(inputs)
    np.testing.assert_array_equal(net.model().run(inputs), expected)
    written = net.write(tmp_path / path.name)
    assert [p.name for p in written] == [path.name, path.with_suffix(".npz").name]
    np.testing.assert_array_equal(nndsl.load(written[0]).run(inputs), expected)


def _rng_array(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)


# One small f32 layer per operator: its input shape, weights and attributes.
EVERY_OP: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "dense": ((6,), {"kernel": _rng_array((6, 3)), "bias": _rng_array((3,))}),
    "conv1d": ((8, 2), {"kernel": _rng_array((3, 2, 4)), "bias": _rng_array((4,)), "padding": "same"}),
    "conv2d": ((6, 6, 2), {"kernel": _rng_array((3, 3, 2, 4)), "stride": 2, "padding": "same"}),
    "depthwise_conv1d": ((8, 2), {"kernel": _rng_array((3, 2, 1)), "dilation": 2}),
    "depthwise_conv2d": ((6, 6, 2), {"kernel": _rng_array((3, 3, 2, 2)), "bias": _rng_array((4,))}),
    "max_pool": ((6, 6, 2), {"size": (2, 2), "stride": 2}),
    "avg_pool": ((8, 2), {"size": 2, "padding": "same"}),
    "global_max_pool": ((4, 4, 3), {}),
    "global_avg_pool": ((8, 3), {}),
    "add": ((5,), {}),
    "sub": ((5,), {}),
    "mul": ((5,), {}),
    "maximum": ((5,), {}),
    "minimum": ((5,), {}),
    "squared_difference": ((5,), {}),
    "concat": ((5,), {"axis": 0}),
    "pad": ((4, 2), {"pads": ((1, 2), (0, 0))}),
    "batch_norm": ((4, 3), {"gamma": _rng_array((3,)), "beta": _rng_array((3,)), "mean": _rng_array((3,)),
                            "variance": np.abs(_rng_array((3,))) + 0.5, "epsilon": 0.001}),
    "relu": ((5,), {}),
    "relu6": ((5,), {}),
    "leaky_relu": ((5,), {"alpha": 0.2}),
    "tanh": ((5,), {}),
    "sigmoid": ((5,), {}),
    "hard_swish": ((5,), {}),
    "softmax": ((5,), {"beta": 2.0}),
    "flatten": ((2, 3), {}),
    "reshape": ((6,), {"shape": (3, 2)}),
    "transpose": ((2, 3, 4), {"perm": (2, 0, 1)}),
    "slice": ((4, 3), {"begin": (1, 0), "size": (2, -1)}),
    "strided_slice": ((5, 4), {"begin": (-1, 1), "end": (0, 3), "strides": (-2, 1), "end_mask": 1,
                               "shrink_axis_mask": 2}),
    "reduce_max": ((3, 4, 2), {"axes": (0, 2)}),
    "mean": ((3, 4, 2), {"axes": -2, "keep_dims": "true"}),
    "resize_nearest_neighbor": ((3, 4, 2), {"size": (5, 2), "align_corners": "true"}),
    "prelu": ((5,), {}),
    "gru": ((4, 3), {"kernel": _rng_array((3, 6)), "recurrent_kernel": _rng_array((2, 6)),
                     "bias": _rng_array((2, 6)), "return_sequences": "true"}),
    "lstm": ((4, 3), {"kernel": _rng_array((3, 8)), "recurrent_kernel": _rng_array((2, 8)), "bias": _rng_array((8,)),
                      "cell_clip": 3.0, "return_sequences": "true"}),
}


# The edges of an integer network with float input and output (test_float_edges_through_the_builder).
FLOAT_EDGE_OPS = {"quantize", "dequantize"}


def test_every_operator_has_a_row_here() -> None:
    assert set(EVERY_OP) | FLOAT_EDGE_OPS == set(SIGNATURES)


def test_float_edges_and_constant_operands_through_the_builder() -> None:
    net = nndsl.Network("edges")
    x = net.input("x", "f32", (4,))
    q = net.quantize(x, type=nndsl.Type("i8", scale=0.05, zero_point=-3))
    s = net.sub(1.5, q, type=nndsl.Type("i8", scale=0.1, zero_point=0))
    m = net.mul(s, np.array([1.0, 2.0, -1.0, 0.5], np.float32), type=nndsl.Type("i8", scale=0.2, zero_point=0))
    net.dequantize(m, output=True)
    assert "sub(1.5, quantize_1)" in net.text() and "mul(sub_1, mul_1.x1)" in net.text()
    assert without_locations(parse(net.text())) == without_locations(net.program)
    y = net.model().run(np.array([[0.0, 1.0, 2.0, -1.0]], np.float32))
    assert y.dtype == np.float32 and np.allclose(y, [[1.5, 1.0, 0.5, 1.25]], atol=0.2)


@pytest.mark.parametrize("op", sorted(EVERY_OP))
def test_every_operator_builds_prints_and_runs(op: str) -> None:
    shape, arguments = EVERY_OP[op]
    net = nndsl.Network(f"only_{op}")
    x = net.input("x", "f32", shape)
    inputs = [x] * SIGNATURES[op].tensors + ([x] if SIGNATURES[op].variadic else [])
    getattr(net, op)(*inputs, name="y", output=True, **arguments)
    assert without_locations(parse(net.text())) == without_locations(net.program)
    values = np.random.default_rng(1).normal(size=(3, *shape)).astype(np.float32)
    result = net.model().run(values)
    assert result.shape[0] == 3 and np.all(np.isfinite(result))


def test_layer_names_default_to_the_op_and_a_number() -> None:
    net = nndsl.Network("auto")
    x = net.input("x", "f32", (4,))
    a, b = net.relu(x), net.relu(x)
    net.add(a, b, output=True)
    assert "relu_1 = relu(x)\nrelu_2 = relu(x)\noutput add_1 = add(relu_1, relu_2)" in net.text()


def test_target_and_types_print_as_written() -> None:
    net = nndsl.Network("q", weights_file="w.npz")
    net.target("efm32", latency="10 ms", accumulator="i16")
    x = net.input("x", "i8", (4,), scale=0.5, zero_point=-128)
    kernel = nndsl.Weight(np.ones((4, 2), np.int8), scale=np.full(2, 0.01))
    net.dense(x, kernel=kernel, bias=np.zeros(2, np.int32), type=nndsl.Type("i8", scale=0.25, zero_point=3),
              output=True)
    text = net.text()
    assert "target efm32 {\n    latency <= 10 ms\n    accumulator = i16\n}" in text
    assert 'weights "w.npz"' in text
    assert "input x : i8[4] @ scale(0.5) zero(-128)" in text
    assert "output dense_1 = dense(x, dense_1.kernel, dense_1.bias) : i8 @ scale(0.25) zero(3)" in text
    assert set(net.arrays) == {"dense_1.kernel", "dense_1.kernel.scale", "dense_1.bias"}
    model = net.model()
    assert model.summary().target is not None and model.graph.target is not None
    assert model.graph.target.accumulator_bits == 16


def test_checker_errors_point_at_the_python_line() -> None:
    net = nndsl.Network("bad")
    x = net.input("x", "f32", (4,))
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    net.dense(x, kernel=np.ones((3, 2), np.float32), output=True)
    with pytest.raises(nndsl.NNError) as caught:
        net.model()
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.loc is not None
    assert (diagnostic.loc.path, diagnostic.loc.line) == (__file__, line)
    assert "is 3x2 (inputs x outputs), but its input 'x' has 4 features" in diagnostic.message


@pytest.mark.parametrize(("make", "message"), [
    (lambda net, x: net.dense(x, kernal=np.ones((4, 2))), "no weight or attribute 'kernal'; did you mean 'kernel'?"),
    (lambda net, x: net.conv1d(x, kernel=np.ones((1, 4, 1)), strides=2), "did you mean 'stride'?"),
    (lambda net, x: net.dense(x), "'dense' needs its kernel: kernel=array"),
    (lambda net, x: net.relu(np.ones(4)), "expected a tensor of this network"),
    (lambda net, x: net.relu(nndsl.Network("other").input("y", "f32", (4,))), "belongs to network 'other'"),
    (lambda net, x: net.relu(x, name="input"), "'input' is a keyword"),
    (lambda net, x: net.relu(x, name="a-b"), "is not a name"),
    (lambda net, x: net.reshape(x, shape=None), "takes a number, a name or a tuple"),
    (lambda net, x: net.leaky_relu(x, alpha=float("nan")), "must be a finite number"),
    (lambda net, x: net.relu(x, type=nndsl.Type("i8", scale=0.5)), "give scale and zero_point together"),
    (lambda net, x: net.relu(x, type=3), "type= takes a dtype name"),
    (lambda net, x: net.layer("dense2", x), "unknown operator 'dense2'; did you mean 'dense'?"),
])
def test_builder_misuse_is_a_located_error(make: Any, message: str) -> None:
    net = nndsl.Network("misuse")
    x = net.input("x", "f32", (4,))
    with pytest.raises(nndsl.NNError) as caught:
        make(net, x)
    [diagnostic] = caught.value.diagnostics
    assert message in diagnostic.message
    assert diagnostic.loc is not None and diagnostic.loc.path == __file__


def test_an_unknown_operator_method_is_an_attribute_error_with_a_hint() -> None:
    with pytest.raises(AttributeError, match="did you mean 'conv2d'"):
        _ = nndsl.Network("n").conv3d
    assert not hasattr(nndsl.Network("n"), "__deepcopy_hook__")


def test_no_operator_hides_a_network_method() -> None:
    assert not set(SIGNATURES) & set(vars(nndsl.Network))
    assert set(SIGNATURES) <= set(dir(nndsl.Network("n")))


def test_a_weight_named_twice_must_be_the_same_array() -> None:
    net = nndsl.Network("shared")
    x = net.input("x", "f32", (4,))
    shared = nndsl.Weight(np.ones((4, 4), np.float32), name="w.kernel")
    h = net.dense(x, kernel=shared)
    net.dense(h, kernel=shared, output=True)
    assert net.model().run(np.ones(4, np.float32)).tolist() == [16.0] * 4
    with pytest.raises(nndsl.NNError, match="already in the network with other values"):
        net.dense(h, kernel=nndsl.Weight(np.zeros((4, 4), np.float32), name="w.kernel"))


def test_network_names_follow_the_language() -> None:
    with pytest.raises(nndsl.NNError, match="network name '_x'"):
        nndsl.Network("_x")
    with pytest.raises(nndsl.NNError, match="keyword"):
        nndsl.Network("output")


def test_module_doctest() -> None:
    assert doctest.testmod(builder).failed == 0


def test_an_imported_model_compiles_in_memory() -> None:
    from nndsl.importers.tflite import import_tflite

    imported = import_tflite((DATA / "mlp" / "model_int8.tflite").read_bytes(), "model_int8.tflite", name="mlp")
    x = np.load(DATA / "mlp" / "x_test_int8.npy")[:10]
    np.testing.assert_array_equal(imported.model().run(x), np.load(DATA / "mlp" / "tflm_out.npy")[:10])


@pytest.mark.tensorflow
def test_import_model_takes_a_keras_model_in_memory(tmp_path: Path) -> None:
    from nndsl.importers.tf import tensorflow

    keras = tensorflow().keras
    model = keras.models.load_model(DATA / "mlp" / "model.keras", compile=False)
    calibration = np.load(DATA / "mlp" / "x_calib.npy")
    in_memory = nndsl.import_model(model, calibrate=calibration, name="mlp")
    from_file = nndsl.import_model(DATA / "mlp" / "model.keras", calibrate=DATA / "mlp" / "x_calib.npy", name="mlp")
    assert in_memory.text("w.npz").splitlines()[1:] == from_file.text("w.npz").splitlines()[1:]
    x = np.load(DATA / "mlp" / "x_test_int8.npy")[:10]
    np.testing.assert_array_equal(in_memory.model().run(x), from_file.model().run(x))
    with pytest.raises(nndsl.NNError, match="calibration data has shape"):
        nndsl.import_model(model, calibrate=np.zeros((3, 5)))
    with pytest.raises(nndsl.NNError, match="takes a path or a Keras model"):
        nndsl.import_model(42)
