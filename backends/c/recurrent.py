"""The C view of the recurrent layers: weights laid out per gate unit, the state array, the kernel call.

A stateful layer's state is a file-scope static array of the generated file
(:func:`state_arrays`), at its initial value at startup and after ``<name>_reset()``; a
stateless one's is zeroed on the stack at every call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nndsl import ir
from nndsl.cnames import identifier
from nndsl.kernels import GruQ
from nndsl.types import DType

if TYPE_CHECKING:
    from .emit import _Emitter


def state_name(prefix: str, state: ir.State) -> str:
    """The C array holding a state: ``<prefix>_state_<layer>_h``."""
    return f"{prefix}_state_{identifier(state.name)}"


def state_arrays(prefix: str, graph: ir.Graph) -> list[dict[str, Any]]:
    """The static arrays of a network's recurrent state, for ``model.c.j2``."""
    return [{"name": state_name(prefix, s), "ctype": s.type.dtype.c_type, "length": s.type.size,
             "initial": s.initial, "comment": f"{s.name}: {s.type}"} for s in graph.states]


def gru_view(emitter: _Emitter, op: ir.Gru) -> dict[str, Any]:
    """A GRU's call: ``kernel`` ``[3U][F]`` and ``recurrent`` ``[3U][U]`` (each gate unit's weights in a row),
    ``bias`` ``[2][3U]`` (the fixed-point record's aligned int64 biases), the state and the work array."""
    record = op.record
    assert record is not None, "lowering binds a fixed-point GRU's record"
    weights = op.weights()
    units = op.units
    kernel = emitter.const_array(op.kernel.name, np.ascontiguousarray(weights.kernel.T), op.kernel.type.dtype,
                                 f"{op.kernel.name}: [{3 * units}][{op.features}], transposed from [inputs, 3 x units]")
    recurrent = emitter.const_array(op.recurrent.name, np.ascontiguousarray(weights.recurrent.T),
                                    op.recurrent.type.dtype,
                                    f"{op.recurrent.name}: [{3 * units}][{units}], transposed from [units, 3 x units]")
    if isinstance(record, GruQ):
        bias_data = np.array([record.bias, record.recurrent_bias], dtype=np.int64)
        bias_dtype, work_ctype, work_size = DType.I64, "int64_t", 5 * units
        emitter.defines.add("NN_USE_FUNCTION_Q")  # the gates' sigmoid and tanh
    else:
        bias_data = np.stack([weights.bias, weights.recurrent_bias]).astype(np.float32)
        bias_dtype, work_ctype, work_size = DType.F32, "float", 4 * units
        emitter.uses_math = True
    bias = emitter.const_array(f"{op.output.name}/gru_bias", bias_data, bias_dtype,
                               f"{op.output.name}: input and recurrent biases [2][{3 * units}]")
    state = state_name(emitter.prefix, op.states[0]) if ir.op_states(op) else None
    return {"kernel": kernel, "recurrent": recurrent, "bias": bias, "state": state, "units": units,
            "work_ctype": work_ctype, "work_size": work_size} | emitter.kernel_call(record)
