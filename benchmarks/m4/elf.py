"""What the emulator and the size report need from an ELF image, read once with pyelftools."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.ranges import BaseAddressEntry, RangeEntry
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx")
RAM_SECTIONS = (".data", ".bss", ".noinit")


@dataclass(frozen=True)
class Symbol:
    """A named function or object: its address (Thumb bit cleared), size, kind and section."""

    name: str
    address: int
    size: int
    kind: str
    section: str


@dataclass(frozen=True)
class Segment:
    """Bytes to place at a load (physical) address: flash contents, including .data's initial values."""

    address: int
    data: bytes


@dataclass(frozen=True)
class LineRow:
    """One row of the DWARF line table: code from ``address`` on comes from ``file``:``line``."""

    address: int
    file: str
    line: int


@dataclass(frozen=True)
class InlinedCall:
    """Code of a function inlined at ``file``:``line``, over [low, high): charged to the call site."""

    low: int
    high: int
    file: str
    line: int


@dataclass(frozen=True)
class Image:
    """An ELF's load segments, symbols, section sizes and line table."""

    path: Path
    segments: list[Segment]
    symbols: dict[str, Symbol]
    section_sizes: dict[str, int]
    lines: list[LineRow]
    line_addresses: list[int]
    inlined: list[InlinedCall]

    def symbol(self, name: str) -> Symbol:
        """The symbol called ``name``, or a KeyError naming the image."""
        try:
            return self.symbols[name]
        except KeyError:
            raise KeyError(f"{self.path}: no symbol {name!r}") from None

    def line_at(self, address: int) -> LineRow | None:
        """The line-table row covering ``address`` (the last row at or before it)."""
        index = bisect.bisect_right(self.line_addresses, address) - 1
        return self.lines[index] if index >= 0 else None

    def source_at(self, address: int) -> tuple[str, int] | None:
        """The source line ``address`` computes: an outermost inlined call's call site, else the line table's."""
        for call in self.inlined:
            if call.low <= address < call.high:
                return call.file, call.line
        row = self.line_at(address)
        return (row.file, row.line) if row is not None else None


def _segments(elf: ELFFile) -> list[Segment]:
    return [Segment(seg["p_paddr"], seg.data()[: seg["p_filesz"]])
            for seg in elf.iter_segments() if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]]


def _symbols(elf: ELFFile) -> dict[str, Symbol]:
    table = elf.get_section_by_name(".symtab")
    if not isinstance(table, SymbolTableSection):
        raise ValueError("image has no symbol table")
    found: dict[str, Symbol] = {}
    for sym in table.iter_symbols():
        kind = sym["st_info"]["type"]
        index = sym["st_shndx"]
        if kind not in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE") or not sym.name or sym.name.startswith("$"):
            continue
        if not isinstance(index, int) and index != "SHN_ABS":
            continue
        section = elf.get_section(index).name if isinstance(index, int) else ""
        address = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
        found[sym.name] = Symbol(sym.name, address, sym["st_size"], kind, section)
    return found


def _lines(elf: ELFFile) -> list[LineRow]:
    if not elf.has_dwarf_info():
        return []
    dwarf = elf.get_dwarf_info()
    rows: list[LineRow] = []
    for unit in dwarf.iter_CUs():
        program = dwarf.line_program_for_CU(unit)
        if program is None:
            continue
        files = _file_names(program)
        for entry in program.get_entries():
            state = entry.state
            if state is None or state.end_sequence:
                continue
            rows.append(LineRow(state.address, files.get(state.file, "?"), state.line))
    rows.sort(key=lambda row: row.address)
    return rows


def _file_names(program: object) -> dict[int, str]:
    """File index to base name; DWARF 5 numbers files from 0, earlier versions from 1."""
    header = program.header  # type: ignore[attr-defined]
    first = 0 if header["version"] >= 5 else 1
    return {first + i: entry.name.decode() for i, entry in enumerate(header["file_entry"])}


def _die_ranges(dwarf: DWARFInfo, unit: CompileUnit, die: DIE) -> list[tuple[int, int]]:
    attrs = die.attributes
    if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        low = attrs["DW_AT_low_pc"].value
        high = attrs["DW_AT_high_pc"]
        return [(low, high.value if high.form == "DW_FORM_addr" else low + high.value)]
    if "DW_AT_ranges" not in attrs:
        return []
    lists = dwarf.range_lists()
    if lists is None:
        return []
    base = unit.get_top_DIE().attributes.get("DW_AT_low_pc")
    base_address = base.value if base is not None else 0
    found: list[tuple[int, int]] = []
    for entry in lists.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=unit):
        if isinstance(entry, BaseAddressEntry):
            base_address = entry.base_address
        elif isinstance(entry, RangeEntry):
            offset = 0 if getattr(entry, "is_absolute", False) else base_address
            found.append((offset + entry.begin_offset, offset + entry.end_offset))
    return found


def _outermost_inlined(dwarf: DWARFInfo, unit: CompileUnit, die: DIE, files: dict[int, str]) -> list[InlinedCall]:
    """Inlined calls under ``die`` that are not themselves inside an inlined call."""
    calls: list[InlinedCall] = []
    for child in die.iter_children():
        if child.tag == "DW_TAG_inlined_subroutine" and "DW_AT_call_line" in child.attributes:
            file = files.get(child.attributes["DW_AT_call_file"].value, "?")
            line = child.attributes["DW_AT_call_line"].value
            calls.extend(InlinedCall(low, high, file, line) for low, high in _die_ranges(dwarf, unit, child))
        elif child.tag in ("DW_TAG_subprogram", "DW_TAG_lexical_block"):
            calls.extend(_outermost_inlined(dwarf, unit, child, files))
    return calls


def _inlined(elf: ELFFile) -> list[InlinedCall]:
    if not elf.has_dwarf_info():
        return []
    dwarf = elf.get_dwarf_info()
    calls: list[InlinedCall] = []
    for unit in dwarf.iter_CUs():
        program = dwarf.line_program_for_CU(unit)
        if program is not None:
            calls.extend(_outermost_inlined(dwarf, unit, unit.get_top_DIE(), _file_names(program)))
    return calls


def load(path: Path) -> Image:
    """Read ``path``: load segments, function/object symbols, allocated section sizes, line table."""
    with path.open("rb") as handle:
        elf = ELFFile(handle)
        sizes = {s.name: s["sh_size"] for s in elf.iter_sections() if s["sh_flags"] & 0x2}  # SHF_ALLOC
        lines = _lines(elf)
        return Image(path, _segments(elf), _symbols(elf), sizes, lines, [row.address for row in lines], _inlined(elf))
