"""Run a benchmark image on an emulated Cortex-M4 (unicorn) and read the inference back.

One run: map flash and RAM, load the image, write the input into the harness's
``nndsl_input`` (in .noinit, which the reset handler leaves alone), paint the
stack, start at the reset vector and stop when ``nndsl_done`` is reached; then
read ``nndsl_output`` and ``nndsl_status``. With ``profile=True`` a basic-block
hook counts the instructions executed inside the entry function (``<name>_run``)
and their estimated cycles (:mod:`benchmarks.m4.cycles`), per layer when a
:class:`~benchmarks.m4.layers.LayerMap` is given. Blocks are decoded once and
cached, so the Python cost is one call per executed block, not per instruction.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.m4 import cycles
from benchmarks.m4.elf import Image
from benchmarks.m4.layers import LayerMap

# unicorn's bindings are only partly annotated (untyped methods, implicit re-exports): used through Any.
_unicorn: Any = importlib.import_module("unicorn")
_arm: Any = importlib.import_module("unicorn.arm_const")
Uc = Any  # a unicorn.Uc

FLASH = (0x08000000, 1 << 20)
RAM = (0x20000000, 256 << 10)
SYSTEM_CONTROL = (0xE000E000, 0x1000)  # CPACR lives here; the start-up code writes it
STACK_PAINT = 0xA5
ENTRY_LAYER = "(entry)"
# Stops a run whose code never reaches nndsl_done (a hang, a fault loop).
INSTRUCTION_LIMIT = 500_000_000


@dataclass
class Counts:
    """Instructions executed and their estimated cycles."""

    instructions: int = 0
    cycles: int = 0


@dataclass
class Run:
    """One inference: its output and status, and (when profiled) what it cost."""

    output: npt.NDArray[Any]
    status: int
    stack_bytes: int
    total: Counts = field(default_factory=Counts)
    layers: dict[str, Counts] = field(default_factory=dict)


@dataclass(frozen=True)
class _Block:
    """A decoded basic block: (layer or None, instructions, cycles) runs in address order."""

    parts: tuple[tuple[str | None, int, int], ...]


class _Profiler:
    """The block hook's state: inside the entry function or not, the running layer, the previous block's end."""

    def __init__(self, image: Image, entry: int, layers: LayerMap | None) -> None:
        self.image = image
        self.entry = entry
        self.layer_map = layers
        self.cs = cycles.disassembler()
        self.blocks: dict[tuple[int, int], _Block] = {}
        self.inside = False
        self.return_to = -1
        self.previous_end = -1
        self.current = ENTRY_LAYER
        self.total = Counts()
        self.layers: dict[str, Counts] = {}

    def decode(self, uc: Uc, address: int, size: int) -> _Block:
        code = bytes(uc.mem_read(address, size))
        timed = cycles.time_block(list(self.cs.disasm(code, address)))
        parts: list[tuple[str | None, int, int]] = []
        for insn in timed:
            label = self.layer_map.label_at(self.image, insn.address) if self.layer_map else None
            if parts and parts[-1][0] == label:
                _, count, cost = parts[-1]
                parts[-1] = (label, count + 1, cost + insn.cycles)
            else:
                parts.append((label, 1, insn.cycles))
        return _Block(tuple(parts))

    def charge(self, label: str, instructions: int, cost: int) -> None:
        counts = self.layers.setdefault(label, Counts())
        counts.instructions += instructions
        counts.cycles += cost
        self.total.instructions += instructions
        self.total.cycles += cost

    def on_block(self, uc: Uc, address: int, size: int, _data: object) -> None:
        if self.inside and address != self.previous_end:
            self.charge(self.current, 0, cycles.PIPELINE_REFILL)  # the previous block ended in a taken branch
        if address == self.entry and not self.inside:
            self.inside = True
            self.return_to = uc.reg_read(_arm.UC_ARM_REG_LR) & ~1
        elif address == self.return_to and self.inside:
            self.inside = False
        self.previous_end = address + size
        if not self.inside:
            return
        block = self.blocks.get((address, size))
        if block is None:
            block = self.blocks[(address, size)] = self.decode(uc, address, size)
        for label, count, cost in block.parts:
            if label is not None:
                self.current = label
            self.charge(self.current, count, cost)


def _new_cpu(image: Image) -> Uc:
    uc = _unicorn.Uc(_unicorn.UC_ARCH_ARM, _unicorn.UC_MODE_THUMB | _unicorn.UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(_arm.UC_CPU_ARM_CORTEX_M4)
    for base, size in (FLASH, RAM, SYSTEM_CONTROL):
        uc.mem_map(base, size)
    for segment in image.segments:
        uc.mem_write(segment.address, segment.data)
    return uc


def _word(uc: Uc, address: int) -> int:
    return int.from_bytes(bytes(uc.mem_read(address, 4)), "little")


def _stack_used(uc: Uc, low: int, top: int) -> int:
    """Bytes below ``top`` that the run wrote: the painted pattern's first change from the bottom."""
    painted = bytes(uc.mem_read(low, top - low))
    for offset, value in enumerate(painted):
        if value != STACK_PAINT:
            return top - (low + offset)
    return 0


def run(image: Image, x: npt.NDArray[Any], output_dtype: npt.DTypeLike, *, entry: str, profile: bool = False,
        layers: LayerMap | None = None) -> Run:
    """One inference of ``x`` through the image's entry function ``entry`` (``<name>_run``)."""
    uc = _new_cpu(image)
    target = image.symbol("nndsl_input")
    data = np.ascontiguousarray(x).tobytes()
    if len(data) != target.size:
        raise ValueError(f"input is {len(data)} bytes; nndsl_input holds {target.size}")
    uc.mem_write(target.address, data)
    top = RAM[0] + RAM[1]
    low = image.symbol("_stack_limit").address
    uc.mem_write(low, bytes([STACK_PAINT]) * (top - low))
    uc.reg_write(_arm.UC_ARM_REG_SP, _word(uc, FLASH[0]))
    start = image.symbol(entry).address
    entry_sp = [top]

    def at_entry(uc: Uc, _address: int, _size: int, _data: object) -> None:
        entry_sp[0] = uc.reg_read(_arm.UC_ARM_REG_SP)

    uc.hook_add(_unicorn.UC_HOOK_CODE, at_entry, begin=start, end=start)
    profiler = _Profiler(image, start, layers) if profile else None
    if profiler is not None:
        uc.hook_add(_unicorn.UC_HOOK_BLOCK, profiler.on_block)
    done = image.symbol("nndsl_done").address
    uc.emu_start(_word(uc, FLASH[0] + 4), done, count=INSTRUCTION_LIMIT)
    if uc.reg_read(_arm.UC_ARM_REG_PC) != done:
        raise RuntimeError(f"{image.path}: stopped at {uc.reg_read(_arm.UC_ARM_REG_PC):#x}, not at nndsl_done")
    # The stack the entry function used: the high-water mark less what its callers held at the call.
    stack = _stack_used(uc, low, top) - (top - entry_sp[0])
    return _result(uc, image, output_dtype, profiler, stack)


def _result(uc: Uc, image: Image, output_dtype: npt.DTypeLike, profiler: _Profiler | None, stack: int) -> Run:
    out = image.symbol("nndsl_output")
    output = np.frombuffer(bytes(uc.mem_read(out.address, out.size)), dtype=output_dtype).copy()
    status = int(np.array(_word(uc, image.symbol("nndsl_status").address), dtype=np.uint32).view(np.int32))
    result = Run(output, status, stack)
    if profiler is not None:
        result.total, result.layers = profiler.total, profiler.layers
    return result
