"""Kernel records: each integer kernel variant, typed, with everything every stage needs to know of it.

Lowering binds an op to one record, its parameters filled in. From then on
- the NumPy backend calls ``kernel.reference(...)``: the :mod:`nndsl.qmath`
  function, the one definition of the kernel's integer semantics;
- the C backend emits ``kernel.c.function`` with ``kernel.c_args()`` after the
  op's buffers and sizes (the order of the C parameters is written here, once),
  pastes ``kernel.c.runtime`` and defines ``kernel.c.guard`` to compile it in;
- the summary counts ``kernel.c.code`` once per program, however many ops call it.

A record is a frozen dataclass: its fields are the parameters of one call, its
class variables the facts of the kernel. The records of one op form a closed
union (``AddKernel``...), so a backend holds no table keyed by type and the type
checker sees every place a new variant is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nndsl.qmath import activations as act8
from nndsl.qmath import binary as bin8
from nndsl.qmath import fixed_functions as fixed_fn
from nndsl.qmath import quantize as quant
from nndsl.qmath.add import AddS8Params, AddS16Params, add_s8, add_s16
from nndsl.qmath.gru import GruQParams, GruWeights, gru_f32, gru_q
from nndsl.qmath.layout import Walk, gather
from nndsl.qmath.lstm import LstmS8Params, LstmState, lstm_f32, lstm_s8
from nndsl.qmath.pooling import MeanS8Params, MeanS16Params, mean_s8, mean_s16
from nndsl.qmath.reduce import mean_f32, reduce_max, reduced_values
from nndsl.qmath.requant import Rounding
from nndsl.qmath.resize import resize_nearest
from nndsl.qmath.shift import AddQParams, BinaryQParams, add_q, binary_q
from nndsl.qmath.softmax import SoftmaxS8Params, SoftmaxS16Params, softmax_s8, softmax_s8_exp_table, softmax_s16
from nndsl.types import DType, QFormat

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class RuntimeCode:
    """A runtime helper's estimated Thumb-2 bytes (-Os, order of magnitude), counted once per program."""

    name: str
    bytes: int


# The runtime helpers' estimated sizes (measured order-of-magnitude figures for nndsl's C at -Os).
REQUANT = RuntimeCode("requant", 160)
SHIFT = RuntimeCode("shift", 48)
ADD_CODE = RuntimeCode("add", 200)
MEAN_CODE = RuntimeCode("mean", 160)
FUNCTION_S8_CODE = RuntimeCode("function_s8", 400)
FUNCTION_S16_CODE = RuntimeCode("function_s16", 300 + 512)  # code and a 256-entry int16 table
SOFTMAX_S8_CODE = RuntimeCode("softmax_s8", 720)
SOFTMAX_TABLE_S8_CODE = RuntimeCode("softmax_table_s8", 400)  # its exponential table counted from its Table argument
SOFTMAX_S16_CODE = RuntimeCode("softmax_s16", 400)  # and its two 513-entry int16 tables from theirs
BINARY_CODE = RuntimeCode("binary", 120)  # one element function and the broadcast loop around it
QUANTIZE_CODE = RuntimeCode("quantize", 96)
FUNCTION_Q_CODE = RuntimeCode("function_q", 96)  # its table counted from its Table argument
SOFTMAX_Q_CODE = RuntimeCode("softmax_q", 1070)  # 270 and libgcc's 64-bit division (800); its table from its Table
GATHER_CODE = RuntimeCode("gather", 160)  # runtime/layout.c: the strided copy of transpose and slice
REDUCE_CODE = RuntimeCode("reduce", 200)  # runtime/reduce.c: one reduction and its two walks
RESIZE_CODE = RuntimeCode("resize", 96)  # runtime/resize.c: row and column lookups, channel runs copied
GRU_F32_CODE = RuntimeCode("gru_f32", 520)  # runtime/gru.c: the float GRU step loop (expf, tanhf from libm)
GRU_Q_CODE = RuntimeCode("gru_q", 700)  # the fixed-point GRU step loop; its two tables from its Table arguments
# Helpers of the loops the C templates write inline (no kernel record yet).
AVG_POOL = RuntimeCode("avg_pool", 240)
MATMUL = RuntimeCode("matmul", 850)  # runtime/matmul.c: int8 dense and convolution
DEPTHWISE = RuntimeCode("depthwise", 950)  # runtime/depthwise.c
MBQM64 = RuntimeCode("mbqm64", 64)
LIBM = RuntimeCode("libm", 1024)


@dataclass(frozen=True)
class CKernel:
    """The C side of a kernel: the runtime function it calls (or none: the template writes the loop inline).

    ``runtime`` names files of ``backends/c/runtime`` to paste (with what they
    call); ``guard`` is the macro that compiles the function in, so a program
    carries only the kernels it calls.
    """

    macro: str  # the ops.c.j2 macro laying out the call (or the inline loop)
    function: str | None
    runtime: tuple[str, ...]
    guard: str | None
    code: tuple[RuntimeCode, ...]


@dataclass(frozen=True)
class Table:
    """A constant array argument of a C kernel (a lookup table made at build time)."""

    key: str
    values: tuple[int, ...]
    dtype: DType
    comment: str


CArg = int | float | Table  # a float is a C float literal


def _called(function: str, runtime: str | tuple[str, ...], guard: str | None, *code: RuntimeCode,
            macro: str) -> CKernel:
    """A kernel in a runtime file (and the files it calls), which calls the requantisation helpers."""
    files = (runtime,) if isinstance(runtime, str) else runtime
    return CKernel(macro, function, (*files, "requant"), guard, (REQUANT, *code))


# -- add -----------------------------------------------------------------------------------------------------


def _add_args(p: AddS8Params | AddS16Params) -> tuple[int, ...]:
    return (p.input1_offset, p.input1_multiplier, p.input1_shift, p.input2_offset, p.input2_multiplier,
            p.input2_shift, p.output_offset, p.output_multiplier, p.output_shift, p.left_shift)


@dataclass(frozen=True)
class AddS8:
    """TFLM's int8 ADD: both inputs rescaled to a shared scale, summed, rescaled to the output's."""

    params: AddS8Params
    act_min: int
    act_max: int
    rounding: Rounding
    c: ClassVar[CKernel] = _called("nn_add_s8", ("add", "binary"), "NN_USE_ADD_S8", ADD_CODE, macro="add_q")

    def reference(self, a: Array, b: Array) -> Array:
        return add_s8(a, b, self.params, self.act_min, self.act_max, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return (*_add_args(self.params), self.act_min, self.act_max)


@dataclass(frozen=True)
class AddS16:
    """TFLM's 16x8 ADD (double rounding only)."""

    params: AddS16Params
    act_min: int
    act_max: int
    c: ClassVar[CKernel] = _called("nn_add_s16", ("add", "binary"), "NN_USE_ADD_S16", ADD_CODE, macro="add_q")

    def reference(self, a: Array, b: Array) -> Array:
        return add_s16(a, b, self.params, self.act_min, self.act_max)

    def c_args(self) -> tuple[CArg, ...]:
        return (*_add_args(self.params), self.act_min, self.act_max)


@dataclass(frozen=True)
class AddQ:
    """Fixed-point add: both inputs aligned to the larger fraction bits, summed, shifted to the output's."""

    params: AddQParams
    act_min: int
    act_max: int
    c: ClassVar[CKernel] = CKernel("add_shift_q", None, ("shift",), None, (REQUANT, SHIFT))

    def reference(self, a: Array, b: Array) -> Array:
        return add_q(a, b, self.params, self.act_min, self.act_max)

    def c_args(self) -> tuple[CArg, ...]:
        """The inline loop's constants: the two input scales (powers of two) and the output shift."""
        return (1 << self.params.left_a, 1 << self.params.left_b, self.params.shift, self.act_min, self.act_max)


AddKernel = AddS8 | AddS16 | AddQ


# -- mean (global average pool) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanS8:
    """TFLM's int8 MEAN over the spatial axes (``count`` values per output channel)."""

    params: MeanS8Params
    rounding: Rounding
    c: ClassVar[CKernel] = _called("nn_mean_s8", "pooling", "NN_USE_MEAN_S8", MEAN_CODE, macro="mean_q")

    def reference(self, positions: Array) -> Array:
        return mean_s8(positions, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.input_zero_point, p.output_zero_point, p.multiplier, p.shift)


@dataclass(frozen=True)
class MeanS16:
    """TFLM's 16x8 MEAN over the spatial axes."""

    params: MeanS16Params
    c: ClassVar[CKernel] = _called("nn_mean_s16", "pooling", "NN_USE_MEAN_S16", MEAN_CODE, macro="mean_q")

    def reference(self, positions: Array) -> Array:
        return mean_s16(positions, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.input_zero_point, p.output_zero_point, p.multiplier, p.shift)


MeanKernel = MeanS8 | MeanS16


# -- element-wise functions ------------------------------------------------------------------------------------


def _function_s8(name: str, *needs: str) -> CKernel:
    return _called(f"nn_{name}_s8", ("activations", *needs), f"NN_USE_{name.upper()}_S8", FUNCTION_S8_CODE,
                   macro="function_q")


def _function_s16(name: str, runtime: str) -> CKernel:
    return _called(f"nn_{name}_s16", runtime, f"NN_USE_{name.upper()}_S16", FUNCTION_S16_CODE, macro="function_q")


def _q4_args(p: act8.TanhS8Params | act8.LogisticS8Params) -> tuple[CArg, ...]:
    return (p.input_zero_point, p.input_range_radius, p.input_multiplier, p.input_left_shift)


def _leaky_args(p: act8.LeakyReluS8Params | act8.LeakyReluS16Params) -> tuple[CArg, ...]:
    return (p.input_zero_point, p.output_zero_point, p.output_multiplier_identity, p.output_shift_identity,
            p.output_multiplier_alpha, p.output_shift_alpha)


def _sigmoid16_args(p: act8.TanhS16Params | act8.LogisticS16Params) -> tuple[CArg, ...]:
    return (p.input_multiplier, p.input_left_shift)


@dataclass(frozen=True)
class TanhS8:
    params: act8.TanhS8Params
    rounding: Rounding
    c: ClassVar[CKernel] = _function_s8("tanh", "fixedpoint")

    def reference(self, x: Array) -> Array:
        return act8.tanh_s8(x, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return _q4_args(self.params)


@dataclass(frozen=True)
class LogisticS8:
    params: act8.LogisticS8Params
    rounding: Rounding
    c: ClassVar[CKernel] = _function_s8("logistic", "fixedpoint")

    def reference(self, x: Array) -> Array:
        return act8.logistic_s8(x, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return _q4_args(self.params)


@dataclass(frozen=True)
class HardSwishS8:
    """TFLite's int8 HARD_SWISH; its rounding scheme only shapes the parameters (made by lowering)."""

    params: act8.HardSwishS8Params
    c: ClassVar[CKernel] = _function_s8("hard_swish")

    def reference(self, x: Array) -> Array:
        return act8.hard_swish_s8(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.input_zero_point, p.output_zero_point, p.reluish_multiplier_fixedpoint_int16,
                p.reluish_multiplier_exponent, p.output_multiplier_fixedpoint_int16, p.output_multiplier_exponent)


@dataclass(frozen=True)
class LeakyReluS8:
    params: act8.LeakyReluS8Params
    rounding: Rounding
    c: ClassVar[CKernel] = _function_s8("leaky_relu")

    def reference(self, x: Array) -> Array:
        return act8.leaky_relu_s8(x, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return _leaky_args(self.params)


@dataclass(frozen=True)
class TanhS16:
    params: act8.TanhS16Params
    c: ClassVar[CKernel] = _function_s16("tanh", "activations")

    def reference(self, x: Array) -> Array:
        return act8.tanh_s16(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        return _sigmoid16_args(self.params)


@dataclass(frozen=True)
class LogisticS16:
    params: act8.LogisticS16Params
    c: ClassVar[CKernel] = _function_s16("logistic", "activations")

    def reference(self, x: Array) -> Array:
        return act8.logistic_s16(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        return _sigmoid16_args(self.params)


@dataclass(frozen=True)
class LeakyReluS16:
    params: act8.LeakyReluS16Params
    c: ClassVar[CKernel] = _function_s16("leaky_relu", "activations")

    def reference(self, x: Array) -> Array:
        return act8.leaky_relu_s16(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        return _leaky_args(self.params)


@dataclass(frozen=True)
class FunctionQ:
    """Fixed-point tanh or sigmoid (qM.N to qM.N): a table over ``|x|``, interpolated, reflected for ``x < 0``."""

    function: fixed_fn.QFunction
    params: fixed_fn.FunctionQParams
    formats: str  # "q4.11 to q15": names the table
    c: ClassVar[CKernel] = _called("nn_function_q", "fixed_functions", "NN_USE_FUNCTION_Q", FUNCTION_Q_CODE,
                                   macro="map_q")

    def reference(self, x: Array) -> Array:
        return fixed_fn.function_q(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        name = self.function.value
        table = Table(f"{name}_q/{self.formats.replace(' to ', '/')}", p.table, DType.I32,
                      f"fixed-point {name} ({self.formats}): the function at |x| = i * 2^{p.step_shift}, "
                      f"{p.extra_bits} fraction bits beyond the output's")
        return (p.step_shift, p.extra_bits, p.reflect, len(p.table) - 1, p.act_min, p.act_max, table)


def function_q_kernel(function: fixed_fn.QFunction, in_fmt: QFormat, out_fmt: QFormat) -> FunctionQ:
    params = fixed_fn.function_q_params(function, in_fmt.frac_bits, in_fmt.bits, out_fmt.frac_bits, out_fmt.bounds)
    return FunctionQ(function, params, f"{in_fmt.name} to {out_fmt.name}")


FunctionKernel = TanhS8 | LogisticS8 | HardSwishS8 | LeakyReluS8 | TanhS16 | LogisticS16 | LeakyReluS16 | FunctionQ


# -- softmax ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxS8:
    """TFLM's int8 SOFTMAX (gemmlowp fixed-point exponentials and reciprocal)."""

    params: SoftmaxS8Params
    rounding: Rounding
    c: ClassVar[CKernel] = _called("nn_softmax_s8", ("softmax", "fixedpoint"), "NN_USE_SOFTMAX_S8", SOFTMAX_S8_CODE,
                                   macro="softmax_q")

    def reference(self, x: Array) -> Array:
        return softmax_s8(x, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return (self.params.multiplier, self.params.left_shift, self.params.diff_min)


@dataclass(frozen=True)
class SoftmaxTableS8:
    """The same softmax, its exponentials looked up in a table made at build time (they depend only on the
    difference from the row maximum): chosen where the table is smaller than the exponential's code."""

    params: SoftmaxS8Params
    rounding: Rounding
    c: ClassVar[CKernel] = _called("nn_softmax_table_s8", ("softmax", "fixedpoint"), "NN_USE_SOFTMAX_TABLE_S8",
                                   SOFTMAX_TABLE_S8_CODE, macro="softmax_q")
    MAX_TABLE_BYTES: ClassVar[int] = 320  # about what nn_softmax_exp_s8 and its helpers take at -Os

    def reference(self, x: Array) -> Array:
        return softmax_s8(x, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        table = softmax_s8_exp_table(p, self.rounding)
        return (p.diff_min, Table(f"softmax_s8/exp/{p.multiplier}/{p.left_shift}/{self.rounding.value}", table,
                                  DType.I32, f"int8 softmax: exp of the differences 0..-{len(table) - 1} from the "
                                  "row maximum"))


def softmax_s8_kernel(params: SoftmaxS8Params, rounding: Rounding) -> SoftmaxS8 | SoftmaxTableS8:
    """The table form where its table takes no more flash than the exponential's code would."""
    entries = len(softmax_s8_exp_table(params, rounding))
    if entries * DType.I32.size <= SoftmaxTableS8.MAX_TABLE_BYTES:
        return SoftmaxTableS8(params, rounding)
    return SoftmaxS8(params, rounding)


@dataclass(frozen=True)
class SoftmaxS16:
    """TFLM's 16x8 SOFTMAX: two lookup tables, made as its ``Prepare`` makes them."""

    params: SoftmaxS16Params
    c: ClassVar[CKernel] = _called("nn_softmax_s16", ("softmax", "fixedpoint"), "NN_USE_SOFTMAX_S16", SOFTMAX_S16_CODE,
                                   macro="softmax_q")

    def reference(self, x: Array) -> Array:
        return softmax_s16(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.input_multiplier, p.input_left_shift,
                Table("softmax_s16/exp", p.exp_lut, DType.I16,
                      "int16 softmax: exp(x) table, as TFLM's Prepare makes it"),
                Table("softmax_s16/reciprocal", p.one_over_one_plus_x_lut, DType.I16,
                      "int16 softmax: 1 / (1 + x) table"))


@dataclass(frozen=True)
class SoftmaxQ:
    """Fixed-point softmax (qM.N to qM.N): table exponentials in Q30, an int64 sum, a rounded division."""

    params: fixed_fn.SoftmaxQParams
    in_storage: DType
    out_storage: DType
    c: ClassVar[CKernel] = _called("nn_softmax_q", "fixed_functions", "NN_USE_SOFTMAX_Q", SOFTMAX_Q_CODE,
                                   macro="softmax_q")

    def reference(self, x: Array) -> Array:
        return fixed_fn.softmax_q(x, self.params)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        wide = (int(self.in_storage is DType.I16), int(self.out_storage is DType.I16))
        return (*wide, p.multiplier, p.diff_max, p.out_frac, p.out_max,
                Table("softmax_q/exp2", p.exp2_table, DType.I32, "fixed-point softmax: 2^-(i/256) in Q30"))


def softmax_q_kernel(beta: float, in_fmt: QFormat, out_fmt: QFormat) -> SoftmaxQ:
    params = fixed_fn.softmax_q_params(beta, in_fmt.frac_bits, in_fmt.bits, out_fmt.frac_bits, out_fmt.bounds[1])
    return SoftmaxQ(params, in_fmt.storage, out_fmt.storage)


SoftmaxKernel = SoftmaxS8 | SoftmaxTableS8 | SoftmaxS16 | SoftmaxQ


# -- binary ops with broadcasting and constant operands ----------------------------------------------------------
# The generated code walks the broadcast (``binary_q`` in ops.c.j2) and calls the element function per output
# value; the references take the two operands already broadcast to the output's shape.


def _binary(name: str, guard: str, *, requant: bool = True) -> CKernel:
    runtime = ("binary", "requant") if requant else ("binary",)
    code = (REQUANT, BINARY_CODE) if requant else (BINARY_CODE,)
    return CKernel("binary_q", f"nn_{name}_q", runtime, guard, code)


@dataclass(frozen=True)
class BroadcastAdd:
    """TFLM's int8 or 16x8 ADD with a constant or broadcast operand: :class:`AddS8`'s arithmetic per value."""

    params: AddS8Params | AddS16Params
    act_min: int
    act_max: int
    rounding: Rounding
    c: ClassVar[CKernel] = _binary("add", "NN_USE_BROADCAST_ADD_Q")

    def reference(self, a: Array, b: Array) -> Array:
        if isinstance(self.params, AddS16Params):
            return add_s16(a, b, self.params, self.act_min, self.act_max)
        return add_s8(a, b, self.params, self.act_min, self.act_max, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return (*_add_args(self.params), self.act_min, self.act_max)


def _aligned_args(p: bin8.AlignedParams) -> tuple[int, ...]:
    return (p.input1_offset, p.input1_multiplier, p.input1_shift, p.input2_offset, p.input2_multiplier,
            p.input2_shift, p.output_offset, p.output_multiplier, p.output_shift, p.left_shift)


@dataclass(frozen=True)
class Sub:
    """TFLM's int8 or 16x8 SUB (``SubElementwise``, broadcast)."""

    params: bin8.AlignedParams
    act_min: int
    act_max: int
    storage: DType
    rounding: Rounding
    c: ClassVar[CKernel] = _binary("sub", "NN_USE_SUB_Q")

    def reference(self, a: Array, b: Array) -> Array:
        return bin8.sub(a, b, self.params, self.act_min, self.act_max, self.storage.numpy.type, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return (*_aligned_args(self.params), self.act_min, self.act_max)


@dataclass(frozen=True)
class Mul:
    """TFLM's int8 or 16x8 MUL (``MulElementwise``, broadcast)."""

    params: bin8.MulParams
    act_min: int
    act_max: int
    storage: DType
    rounding: Rounding
    c: ClassVar[CKernel] = _binary("mul", "NN_USE_MUL_Q")

    def reference(self, a: Array, b: Array) -> Array:
        return bin8.mul(a, b, self.params, self.act_min, self.act_max, self.storage.numpy.type, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.input1_offset, p.input2_offset, p.output_offset, p.output_multiplier, p.output_shift,
                self.act_min, self.act_max)


@dataclass(frozen=True)
class SquaredDifference:
    """TFLM's int8 or int16 SQUARED_DIFFERENCE (no fused activation: the storage type's range)."""

    params: bin8.AlignedParams
    storage: DType
    rounding: Rounding
    c: ClassVar[CKernel] = _binary("squared_difference", "NN_USE_SQUARED_DIFFERENCE_Q")

    def reference(self, a: Array, b: Array) -> Array:
        return bin8.squared_difference(a, b, self.params, self.storage.numpy.type, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        return (*_aligned_args(self.params), *self.storage.bounds)


@dataclass(frozen=True)
class Maximum:
    """TFLM's MAXIMUM on stored values (inputs and output share one quantisation)."""

    storage: DType
    c: ClassVar[CKernel] = _binary("maximum", "NN_USE_MAXIMUM_Q", requant=False)

    def reference(self, a: Array, b: Array) -> Array:
        return bin8.maximum(a, b, self.storage.numpy.type)

    def c_args(self) -> tuple[CArg, ...]:
        return ()


@dataclass(frozen=True)
class Minimum:
    """TFLM's MINIMUM on stored values (inputs and output share one quantisation)."""

    storage: DType
    c: ClassVar[CKernel] = _binary("minimum", "NN_USE_MINIMUM_Q", requant=False)

    def reference(self, a: Array, b: Array) -> Array:
        return bin8.minimum(a, b, self.storage.numpy.type)

    def c_args(self) -> tuple[CArg, ...]:
        return ()


@dataclass(frozen=True)
class Prelu:
    """TFLM's int8 PRELU (``BroadcastPrelu4DSlow``): the slopes are the second operand."""

    params: bin8.PreluParams
    storage: DType
    rounding: Rounding
    c: ClassVar[CKernel] = _binary("prelu", "NN_USE_PRELU_Q")

    def reference(self, a: Array, b: Array) -> Array:
        return bin8.prelu(a, b, self.params, self.storage.numpy.type, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.input_offset, p.alpha_offset, p.output_offset, p.output_multiplier_1, p.output_shift_1,
                p.output_multiplier_2, p.output_shift_2, *self.storage.bounds)


@dataclass(frozen=True)
class BinaryQ:
    """A fixed-point (qM.N) binary op with a constant or broadcast operand: aligned or multiplied, then shifted."""

    params: BinaryQParams
    act_min: int
    act_max: int
    c: ClassVar[CKernel] = CKernel("binary_q", "nn_binary_shift_q", ("shift", "binary"), "NN_USE_BINARY_SHIFT_Q",
                                   (REQUANT, SHIFT, BINARY_CODE))

    def reference(self, a: Array, b: Array) -> Array:
        return binary_q(a, b, self.params, self.act_min, self.act_max)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (p.code, p.left_a, p.left_b, p.shift, self.act_min, self.act_max)


BinaryKernel = BroadcastAdd | Sub | Mul | SquaredDifference | Maximum | Minimum | Prelu | BinaryQ


# -- float edges: QUANTIZE from float, DEQUANTIZE to float ---------------------------------------------------------


@dataclass(frozen=True)
class AffineQuantize:
    """TFLM's QUANTIZE of a float input to int8 or int16 (``map_q``: the element function per value)."""

    scale: float
    zero_point: int
    storage: DType
    c: ClassVar[CKernel] = CKernel("map_q", "nn_quantize_f32", ("quantize",), "NN_USE_QUANTIZE_F32",
                                   (QUANTIZE_CODE,))

    def reference(self, x: Array) -> Array:
        return quant.affine_quantize(x, self.scale, self.zero_point, self.storage.numpy.type)

    def c_args(self) -> tuple[CArg, ...]:
        return (self.scale, self.zero_point, *self.storage.bounds)


@dataclass(frozen=True)
class Dequantize:
    """TFLM's DEQUANTIZE of an int8 or int16 output to float."""

    scale: float
    zero_point: int
    c: ClassVar[CKernel] = CKernel("map_q", "nn_dequantize", ("quantize",), "NN_USE_DEQUANTIZE", (QUANTIZE_CODE,))

    def reference(self, x: Array) -> Array:
        return quant.dequantize(x, self.scale, self.zero_point)

    def c_args(self) -> tuple[CArg, ...]:
        return (self.scale, self.zero_point)


# -- data movement: transpose and slice -------------------------------------------------------------------------


@dataclass(frozen=True)
class Gather:
    """TFLM's TRANSPOSE, SLICE and STRIDED_SLICE (any element type): the input's values copied along a
    :class:`~nndsl.qmath.layout.Walk`; ``width`` is the bytes of one value."""

    walk: Walk
    width: int
    c: ClassVar[CKernel] = CKernel("strided", "nn_gather", ("layout",), "NN_USE_GATHER", (GATHER_CODE,))

    def reference(self, x: Array) -> Array:
        return gather(x, self.walk)

    def c_args(self) -> tuple[CArg, ...]:
        walk = self.walk
        shape = "x".join(map(str, walk.counts))
        return (self.width, len(walk.counts),
                Table(f"gather/counts/{shape}", walk.counts, DType.I32, f"a strided copy's loop counts [{shape}]"),
                Table(f"gather/strides/{shape}/{walk.strides}", walk.strides, DType.I32,
                      f"a strided copy's steps through its input, in values, per loop of [{shape}]"),
                walk.offset)


# -- reductions over any axes: REDUCE_MAX and MEAN ---------------------------------------------------------------


def _walk_args(name: str, walk: Walk) -> tuple[CArg, ...]:
    """A walk as C arguments: its loop count, its counts and its steps (constant arrays), not its offset."""
    shape = "x".join(map(str, walk.counts))
    return (len(walk.counts),
            Table(f"{name}/counts/{shape}", walk.counts, DType.I32, f"{name} loop counts [{shape}]"),
            Table(f"{name}/strides/{shape}/{walk.strides}", walk.strides, DType.I32,
                  f"{name} steps through the input, in values, per loop of [{shape}]"))


def _reduce_args(outer: Walk, inner: Walk) -> tuple[CArg, ...]:
    return (*_walk_args("reduce outputs", outer), *_walk_args("reduce values", inner))


def _reduce(function: str, guard: str, *, requant: bool = False) -> CKernel:
    runtime = ("reduce", "requant") if requant else ("reduce",)
    return CKernel("strided", function, runtime, guard, (REQUANT, REDUCE_CODE) if requant else (REDUCE_CODE,))


@dataclass(frozen=True)
class ReduceMax:
    """TFLM's REDUCE_MAX (int8, float32): the largest stored value over the reduced axes."""

    outer: Walk
    inner: Walk
    width: int
    c: ClassVar[CKernel] = _reduce("nn_reduce_max", "NN_USE_REDUCE")

    def reference(self, x: Array) -> Array:
        return reduce_max(x, self.outer, self.inner)

    def c_args(self) -> tuple[CArg, ...]:
        return (self.width, *_reduce_args(self.outer, self.inner))


@dataclass(frozen=True)
class ReduceMean:
    """TFLM's int8 or int16 MEAN (``QuantizedMeanOrSum``) over any axes."""

    params: MeanS8Params | MeanS16Params
    outer: Walk
    inner: Walk
    rounding: Rounding
    c: ClassVar[CKernel] = _reduce("nn_reduce_mean_q", "NN_USE_REDUCE", requant=True)

    def reference(self, x: Array) -> Array:
        values = reduced_values(x, self.outer, self.inner).transpose(0, 2, 1)  # (batch, count, outputs)
        if isinstance(self.params, MeanS16Params):
            return mean_s16(values, self.params)
        return mean_s8(values, self.params, self.rounding)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        storage = DType.I16 if isinstance(p, MeanS16Params) else DType.I8
        return (storage.size, *_reduce_args(self.outer, self.inner), p.input_zero_point, p.output_zero_point,
                p.multiplier, p.shift, *storage.bounds)


@dataclass(frozen=True)
class ReduceMeanF32:
    """The float32 MEAN: the values added in walk order, divided by their count."""

    outer: Walk
    inner: Walk
    c: ClassVar[CKernel] = _reduce("nn_reduce_mean_f32", "NN_USE_REDUCE")

    def reference(self, x: Array) -> Array:
        return mean_f32(x, self.outer, self.inner)

    def c_args(self) -> tuple[CArg, ...]:
        return _reduce_args(self.outer, self.inner)


ReduceKernel = ReduceMax | ReduceMean | ReduceMeanF32


# -- RESIZE_NEAREST_NEIGHBOR ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResizeNearest:
    """TFLM's RESIZE_NEAREST_NEIGHBOR (any element type): output row ``y`` and column ``x`` copy input row
    ``rows[y]`` and column ``cols[x]`` (the indices :func:`nndsl.qmath.resize.nearest_indices` chose)."""

    rows: tuple[int, ...]
    cols: tuple[int, ...]
    in_width: int
    channels: int
    width: int
    c: ClassVar[CKernel] = CKernel("strided", "nn_resize_nearest", ("resize",), "NN_USE_RESIZE_NEAREST",
                                   (RESIZE_CODE,))

    def reference(self, x: Array) -> Array:
        return resize_nearest(x, self.rows, self.cols)

    def c_args(self) -> tuple[CArg, ...]:
        return (self.width, len(self.rows), len(self.cols), self.in_width, self.channels,
                Table(f"resize/rows/{self.rows}", self.rows, DType.I32, "resize: the input row of each output row"),
                Table(f"resize/cols/{self.cols}", self.cols, DType.I32,
                      "resize: the input column of each output column"))


# -- recurrent layers ----------------------------------------------------------------------------------------------
# The weights are the op's constant tensors (the C emitter lays them out); ``reference`` takes them with the
# states the call starts from and returns the output and the states it ends with.


@dataclass(frozen=True)
class GruF32:
    """The float32 GRU (:func:`nndsl.qmath.gru.gru_f32`)."""

    steps: int
    features: int
    units: int
    sequences: bool
    reset_after: bool
    c: ClassVar[CKernel] = CKernel("gru", "nn_gru_f32", ("gru",), "NN_USE_GRU_F32", (GRU_F32_CODE, LIBM))

    def reference(self, x: Array, states: tuple[Array, ...], weights: GruWeights) -> tuple[Array, tuple[Array]]:
        sequence, last = gru_f32(x.reshape((x.shape[0], self.steps, self.features)), states[0], weights,
                                 self.reset_after)
        return (sequence if self.sequences else last), (last,)

    def c_args(self) -> tuple[CArg, ...]:
        return (self.steps, self.features, self.units, int(self.sequences), int(self.reset_after))


@dataclass(frozen=True)
class GruQ:
    """The fixed-point GRU (:func:`nndsl.qmath.gru.gru_q`); ``bias`` and ``recurrent_bias`` are aligned to their
    sums' fraction bits (int64 values)."""

    steps: int
    features: int
    units: int
    sequences: bool
    reset_after: bool
    params: GruQParams
    bias: tuple[int, ...]
    recurrent_bias: tuple[int, ...]
    widths: tuple[int, int, int, int]  # bytes of an input, kernel, recurrent kernel and output value
    c: ClassVar[CKernel] = CKernel("gru", "nn_gru_q", ("gru", "fixed_functions", "requant"), "NN_USE_GRU_Q",
                                   (REQUANT, FUNCTION_Q_CODE, GRU_Q_CODE))

    def reference(self, x: Array, states: tuple[Array, ...], weights: GruWeights) -> tuple[Array, tuple[Array]]:
        aligned = GruWeights(weights.kernel, weights.recurrent, np.asarray(self.bias, dtype=np.int64),
                             np.asarray(self.recurrent_bias, dtype=np.int64))
        sequence, last = gru_q(x.reshape((x.shape[0], self.steps, self.features)), states[0], aligned,
                               self.reset_after, self.params)
        return (sequence if self.sequences else last), (last,)

    def c_args(self) -> tuple[CArg, ...]:
        p = self.params
        return (self.steps, self.features, self.units, int(self.sequences), int(self.reset_after), *self.widths,
                p.left_x, p.left_h, p.gate_shift, p.out_shift, p.out_min, p.out_max,
                *_gru_table_args(p.sigmoid, "sigmoid"), *_gru_table_args(p.tanh, "tanh"))


def _gru_table_args(p: fixed_fn.FunctionQParams, name: str) -> tuple[CArg, ...]:
    """A gate function's arguments to ``nn_function_q`` (runtime/fixed_functions.c), its table last."""
    table = Table(f"gru_q/{name}", p.table, DType.I32, f"fixed-point GRU: {name} of q4.11 values, in Q15 with "
                  f"{p.extra_bits} more fraction bits, at |x| = i * 2^{p.step_shift}")
    return (p.step_shift, p.extra_bits, p.reflect, len(p.table) - 1, p.act_min, p.act_max, table)


GruKernel = GruF32 | GruQ


# -- UNIDIRECTIONAL_SEQUENCE_LSTM ----------------------------------------------------------------------------------
# Its weights and state buffers are arguments too, so the emitter lays out its call itself (the ``lstm`` macro of
# ops.c.j2); the records hold the parameters and say what to paste. Not in ``Kernel``: ``reference`` takes the
# weights as well.

LSTM_CODE = RuntimeCode("lstm", 600)  # runtime/lstm.c: the gates' sums, the cell and hidden updates


@dataclass(frozen=True)
class LstmS8:
    """TFLM's integer 8x8->16 LSTM (``qmath.lstm.lstm_s8``) from the given state ``(h, c)``."""

    params: LstmS8Params
    return_sequences: bool
    c: ClassVar[CKernel] = CKernel("lstm", "nn_lstm_s8", ("lstm", "activations", "requant"), "NN_USE_LSTM_S8",
                                   (REQUANT, FUNCTION_S16_CODE, LSTM_CODE))

    def reference(self, x: Array, states: tuple[Array, ...], kernel: Array, recurrent: Array,
                  bias: Array | None) -> tuple[Array, tuple[Array, Array]]:
        outputs, end = lstm_s8(x, kernel, recurrent, bias, self.params, LstmState(*states))
        return (outputs if self.return_sequences else outputs[..., -1, :]), (end.hidden, end.cell)


@dataclass(frozen=True)
class LstmF32:
    """The float LSTM (``qmath.lstm.lstm_f32``)."""

    cell_clip: float
    return_sequences: bool
    c: ClassVar[CKernel] = CKernel("lstm", "nn_lstm_f32", ("lstm",), "NN_USE_LSTM_F32", (LSTM_CODE, LIBM))

    def reference(self, x: Array, states: tuple[Array, ...], kernel: Array, recurrent: Array,
                  bias: Array | None) -> tuple[Array, tuple[Array, Array]]:
        outputs, end = lstm_f32(x, kernel, recurrent, bias, self.cell_clip, LstmState(*states))
        return (outputs if self.return_sequences else outputs[..., -1, :]), (end.hidden, end.cell)


LstmKernel = LstmS8 | LstmF32


Kernel = (AddKernel | MeanKernel | FunctionKernel | SoftmaxKernel | BinaryKernel | AffineQuantize | Dequantize
          | Gather | ReduceKernel | ResizeNearest | GruKernel)


def table_array(table: Table) -> npt.NDArray[np.generic]:
    return np.array(table.values, dtype=table.dtype.numpy)


__all__ = ["AddKernel", "BinaryKernel", "CKernel", "FunctionKernel", "Gather", "GruF32", "GruKernel", "GruQ",
           "Kernel", "LstmKernel", "MeanKernel",
           "ReduceKernel", "RuntimeCode", "SoftmaxKernel", "Table"]
