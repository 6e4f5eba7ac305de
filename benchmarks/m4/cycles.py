"""A static Cortex-M4 cycle estimate per instruction, from the Technical Reference Manual's tables.

Why an estimate: the emulator executes instructions but has no pipeline. The
figures below are the Cortex-M4 TRM's (Table 3-1, processor instructions, and
the FPU chapter's table), for a system with zero wait states; assumptions:

- data processing, shifts, extends, bit-field, saturation, CLZ, IT: 1 cycle
  (IT is counted, not folded onto the previous instruction);
- MUL, MLA, MLS, the long multiplies (SMULL, UMULL, SMLAL, UMLAL) and every DSP
  multiply (SMLAD, SMLA<x><y>, SMUL<x><y>, SMMUL, ...): 1 cycle;
- SDIV and UDIV: 2 to 12 cycles depending on the operands; counted as 7;
- single loads (LDR, LDRB, LDRH, LDRSB, LDRSH): 2 cycles; a load or store that
  directly follows a single load in the same basic block is pipelined with it
  and costs 1, unless its address uses the register the load wrote; a single
  store costs 2 and nothing pipelines after a store;
- LDRD/STRD: 3; LDM/STM/PUSH/POP: 1 + N (N registers, PC included);
- a branch costs 1 when not taken, 1 + P when taken, with the pipeline refill
  P counted as 2 (the TRM gives 1 to 3); any control transfer (B, BL, BX, CBZ,
  POP {..., pc}, LDR pc) is detected at run time, as a basic block that does
  not start where the previous one ended, and charged P then;
- TBB/TBH: 2 (+ P when taken, as above);
- FPU: VADD/VSUB/VMUL/VNMUL/VABS/VNEG/VCMP/VCVT/VMOV/VMRS/VMSR 1, VMLA/VMLS/
  VNMLA/VNMLS/VFMA/VFMS/VFNMA/VFNMS 3, VDIV/VSQRT 14, VLDR/VSTR 2 (3 for a
  double word), VLDM/VSTM/VPUSH/VPOP 1 + N words; VMOV of two core registers 2;
- memory has zero wait states and no bus contention (a real flash at 40 MHz
  and above adds wait states that a prefetch buffer or cache may hide).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs, CsInsn  # type: ignore[import-untyped]
from capstone.arm import ARM_OP_MEM, ARM_OP_REG  # type: ignore[import-untyped]

PIPELINE_REFILL = 2
DIVIDE_CYCLES = 7

SINGLE_LOADS = frozenset({"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrex", "ldrexb", "ldrexh", "ldrt", "ldrbt",
                          "ldrht", "ldrsbt", "ldrsht"})
SINGLE_STORES = frozenset({"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht"})
MULTIPLE = frozenset({"ldm", "ldmdb", "ldmia", "stm", "stmdb", "stmia", "push", "pop"})
FP_MULTIPLE = frozenset({"vldmia", "vldmdb", "vstmia", "vstmdb", "vpush", "vpop", "vldm", "vstm"})
FP_ACCUMULATE = frozenset({"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"})
FIXED: dict[str, int] = {
    "sdiv": DIVIDE_CYCLES, "udiv": DIVIDE_CYCLES, "ldrd": 3, "strd": 3, "tbb": 2, "tbh": 2,
    "vdiv": 14, "vsqrt": 14,
}


def disassembler() -> Cs:
    """Capstone for Thumb-2 on an M-profile core, with operand details (registers, memory operands)."""
    cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
    cs.detail = True
    return cs


@dataclass(frozen=True)
class Timed:
    """One decoded instruction and its estimated cycles (branch refill excluded: it is charged at run time)."""

    address: int
    name: str
    cycles: int


def _registers(insn: CsInsn) -> int:
    return sum(1 for op in insn.operands if op.type == ARM_OP_REG)


def _fp_words(insn: CsInsn) -> int:
    """Words an FP load/store multiple moves: a D register is two."""
    words = 0
    for op in insn.operands:
        if op.type == ARM_OP_REG:
            words += 2 if insn.reg_name(op.reg).startswith("d") else 1
    return words


def _memory_registers(insn: CsInsn) -> set[int]:
    regs: set[int] = set()
    for op in insn.operands:
        if op.type == ARM_OP_MEM:
            regs.update(r for r in (op.mem.base, op.mem.index) if r)
    return regs


def _loaded_register(insn: CsInsn) -> int:
    first = insn.operands[0] if insn.operands else None
    return first.reg if first is not None and first.type == ARM_OP_REG else 0


def _base_cycles(insn: CsInsn, name: str) -> int:
    if name in FIXED:
        return FIXED[name]
    if name in MULTIPLE:
        base_operand = 0 if name in ("push", "pop") else 1
        return 1 + _registers(insn) - base_operand
    if name in FP_MULTIPLE:
        return 1 + _fp_words(insn)
    if name in ("vldr", "vstr"):
        return 3 if insn.reg_name(insn.operands[0].reg).startswith("d") else 2
    if name in FP_ACCUMULATE:
        return 3
    if name == "vmov" and _registers(insn) >= 3:
        return 2
    if name in SINGLE_LOADS or name in SINGLE_STORES:
        return 2
    return 1


def time_block(instructions: Sequence[CsInsn]) -> list[Timed]:
    """Each instruction's cycles, with load/store pipelining inside the block."""
    timed: list[Timed] = []
    previous: CsInsn | None = None
    for insn in instructions:
        name = insn.insn_name()
        cycles = _base_cycles(insn, name)
        if (previous is not None and previous.insn_name() in SINGLE_LOADS
                and (name in SINGLE_LOADS or name in SINGLE_STORES)
                and _loaded_register(previous) not in _memory_registers(insn)):
            cycles = 1
        timed.append(Timed(insn.address, name, cycles))
        previous = insn
    return timed
