"""Devices a model is built for: memory, clock and a speed estimate.

A ``target`` statement names a built-in part and may override any of its
figures, or describes a new part in full. The cycles-per-MAC figures of the
Cortex-M4's int8 matrix and depthwise kernels are measured (``make bench``:
estimated cycles on the emulated core at -O2, DSP path, over the examples'
layers that use them); the others are estimates (int8 without SIMD, f32 on
the FPU where the core has one, soft-float otherwise). A target may set its
own figure, which then applies to every layer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from nndsl import ast
from nndsl.diagnostics import DiagnosticSink, Loc
from nndsl.qmath.requant import Rounding
from nndsl.types import DType

# Measured by benchmarks/run.py (emulated Cortex-M4, arm-none-eabi-gcc -O2, DSP path): estimated cycles per
# MAC of the examples' layers on each runtime kernel, all such layers' cycles over all their MACs.
CYCLES_M4_MATRIX = 2.65
CYCLES_M4_DEPTHWISE = 13.5


@dataclass(frozen=True)
class Core:
    name: str
    cycles_per_mac_i8: float  # int8 layers on the plain loops
    cycles_per_mac_f32: float
    cycles_per_mac_matrix: float | None = None  # int8 dense/conv on runtime/matmul.c (None: cycles_per_mac_i8)
    cycles_per_mac_depthwise: float | None = None  # int8 depthwise on runtime/depthwise.c


CORES = {
    "cortex-m0": Core("cortex-m0", cycles_per_mac_i8=10.0, cycles_per_mac_f32=60.0),
    "cortex-m4": Core("cortex-m4", cycles_per_mac_i8=11.0, cycles_per_mac_f32=6.0,
                      cycles_per_mac_matrix=CYCLES_M4_MATRIX, cycles_per_mac_depthwise=CYCLES_M4_DEPTHWISE),
    "cortex-m7": Core("cortex-m7", cycles_per_mac_i8=2.0, cycles_per_mac_f32=3.0),
}


@dataclass(frozen=True)
class Target:
    name: str
    core: Core
    ram_bytes: int
    flash_bytes: int
    clock_hz: float
    latency_s: float | None = None
    cycles_per_mac: float | None = None  # None: the core's figure for the model's dtype
    accumulator_bits: int = 32  # the width the range check holds accumulators to
    rounding: Rounding = Rounding.DOUBLE  # MultiplyByQuantizedMultiplier's scheme (TFLM default: double)
    loc: Loc | None = None

    def cycles_per_mac_for(self, dtype: DType) -> float:
        if self.cycles_per_mac is not None:
            return self.cycles_per_mac
        return self.core.cycles_per_mac_f32 if dtype is DType.F32 else self.core.cycles_per_mac_i8


KIB = 1024
BUILTIN_TARGETS = {
    # Silicon Labs EFM32 Giant/Pearl Gecko class: Cortex-M4F.
    "efm32": Target("efm32", CORES["cortex-m4"], 256 * KIB, 1024 * KIB, 40e6),
    "cortex-m4": Target("cortex-m4", CORES["cortex-m4"], 256 * KIB, 1024 * KIB, 40e6),
    # SAMD21 / STM32F0 class.
    "cortex-m0": Target("cortex-m0", CORES["cortex-m0"], 32 * KIB, 256 * KIB, 48e6),
    # STM32F7 class.
    "cortex-m7": Target("cortex-m7", CORES["cortex-m7"], 320 * KIB, 1024 * KIB, 216e6),
}

_UNITS: dict[str, dict[str | None, float]] = {
    "ram": {"B": 1, "kB": 1000, "KiB": 1024, "MB": 1e6, "MiB": 1024 * 1024},
    "flash": {"B": 1, "kB": 1000, "KiB": 1024, "MB": 1e6, "MiB": 1024 * 1024},
    "clock": {"Hz": 1, "kHz": 1e3, "MHz": 1e6},
    "latency": {"s": 1, "ms": 1e-3, "us": 1e-6},
    "cycles_per_mac": {None: 1},
}
_RELATIONS = {"ram": "=", "flash": "=", "clock": "=", "latency": "<=", "cycles_per_mac": "="}


def field_relation(name: str) -> str:
    """How a target field is written: ``latency <= 10 ms`` is a bound, every other field is ``=``."""
    return _RELATIONS.get(name, "=")


# Settings named by a word: their values and what each means.
_WORDS: dict[str, dict[str, float | Rounding]] = {
    "accumulator": {"i32": 32, "i16": 16},
    "rounding": {"double": Rounding.DOUBLE, "single": Rounding.SINGLE},
}


def _word_value(field: ast.TargetField, sink: DiagnosticSink) -> float | Rounding | None:
    choices = _WORDS[field.name]
    if field.word is None or field.word not in choices:
        given = field.word if field.word is not None else f"{field.quantity.value:g}"
        sink.error(field.quantity.loc, f"'{field.name}' is one of {', '.join(choices)}, not '{given}'")
        return None
    return choices[field.word]


def _field_value(field: ast.TargetField, sink: DiagnosticSink) -> float | Rounding | None:
    if field.name in _WORDS:
        return _word_value(field, sink)
    if field.word is not None and field.name in _UNITS:
        sink.error(field.quantity.loc, f"'{field.name}' takes a number, not '{field.word}'")
        return None
    units = _UNITS.get(field.name)
    if units is None:
        sink.error(field.loc, f"unknown target field '{field.name}' (known: {', '.join([*_UNITS, *_WORDS])})")
        return None
    if field.relation != _RELATIONS[field.name]:
        sink.error(field.loc, f"target field '{field.name}' is written '{field.name} {_RELATIONS[field.name]} ...'")
        return None
    unit = field.quantity.unit
    if unit not in units:
        expected = ", ".join(u for u in units if u is not None) or "no unit"
        sink.error(field.quantity.loc, f"'{field.name}' takes {expected}, not '{unit or 'no unit'}'")
        return None
    if field.quantity.value <= 0:
        sink.error(field.quantity.loc, f"'{field.name}' must be positive (got {field.quantity.value:g})")
        return None
    return field.quantity.value * units[unit]


def resolve_target(decl: ast.TargetDecl, sink: DiagnosticSink) -> Target | None:
    """The target a ``target`` statement describes, or None after reporting errors."""
    values: dict[str, float] = {}
    rounding: Rounding | None = None
    for field in decl.fields:
        value = _field_value(field, sink)
        if isinstance(value, Rounding):
            rounding = value
        elif value is not None:
            values[field.name] = value
    # A name in the language has no '-': `target cortex_m4` is the built-in "cortex-m4".
    base = BUILTIN_TARGETS.get(decl.name.replace("_", "-"))
    if base is None:
        missing = [name for name in ("ram", "flash", "clock") if name not in values]
        if missing:
            spelled = [name.replace("-", "_") for name in BUILTIN_TARGETS]
            close = difflib.get_close_matches(decl.name, spelled, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            sink.error(
                decl.loc,
                f"unknown target '{decl.name}'{hint}: name a built-in one ({', '.join(spelled)}) "
                f"or give {', '.join(missing)} in its block",
            )
            return None
        base = Target(decl.name, CORES["cortex-m4"], 0, 0, 0.0)
    return replace(
        base,
        name=decl.name,
        ram_bytes=int(values.get("ram", base.ram_bytes)),
        flash_bytes=int(values.get("flash", base.flash_bytes)),
        clock_hz=values.get("clock", base.clock_hz),
        latency_s=values.get("latency", base.latency_s),
        cycles_per_mac=values.get("cycles_per_mac", base.cycles_per_mac),
        accumulator_bits=int(values.get("accumulator", base.accumulator_bits)),
        rounding=rounding if rounding is not None else base.rounding,
        loc=decl.loc,
    )
