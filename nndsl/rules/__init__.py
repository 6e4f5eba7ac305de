"""Each op's shape and type rule, by the op's name in the language.

A rule takes the checker, the bound layer and its input tensors, reports
problems through ``ctx.fail`` and returns the op's typed IR node.
"""

from __future__ import annotations

from collections.abc import Callable

from nndsl import ir
from nndsl.ops import SIGNATURES
from nndsl.rules.binary import check_add, check_binary
from nndsl.rules.dense import check_batch_norm, check_dense
from nndsl.rules.elementwise import check_dequantize, check_function, check_quantize, check_relu, check_softmax
from nndsl.rules.layout import check_resize, check_slice, check_strided_slice, check_transpose
from nndsl.rules.recurrent import check_gru, check_lstm
from nndsl.rules.reduce import check_reduce
from nndsl.rules.shape import check_concat, check_global_pool, check_pad, check_reshape
from nndsl.rules.window import check_conv, check_pool

Rule = Callable[..., ir.AnyOp]

RULES: dict[str, Rule] = {
    "dense": check_dense,
    "batch_norm": check_batch_norm,
    "conv1d": check_conv,
    "conv2d": check_conv,
    "depthwise_conv1d": check_conv,
    "depthwise_conv2d": check_conv,
    "max_pool": check_pool,
    "avg_pool": check_pool,
    "global_max_pool": check_global_pool,
    "global_avg_pool": check_global_pool,
    "add": check_add,
    "sub": check_binary,
    "mul": check_binary,
    "maximum": check_binary,
    "minimum": check_binary,
    "squared_difference": check_binary,
    "prelu": check_binary,
    "concat": check_concat,
    "pad": check_pad,
    "relu": check_relu,
    "relu6": check_relu,
    "leaky_relu": check_function,
    "tanh": check_function,
    "sigmoid": check_function,
    "hard_swish": check_function,
    "softmax": check_softmax,
    "quantize": check_quantize,
    "dequantize": check_dequantize,
    "flatten": check_reshape,
    "reshape": check_reshape,
    "transpose": check_transpose,
    "slice": check_slice,
    "strided_slice": check_strided_slice,
    "reduce_max": check_reduce,
    "mean": check_reduce,
    "resize_nearest_neighbor": check_resize,
    "gru": check_gru,
    "lstm": check_lstm,
}

assert set(RULES) == set(SIGNATURES), "every op in the catalogue has exactly one rule"

__all__ = ["RULES", "Rule"]
