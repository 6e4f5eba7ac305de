"""Flash, static RAM and worst-case stack of a benchmark image, split into the model's share and the rest.

Flash is what the linker placed there (vector table, code, read-only data and
.data's initial values); the model's weights are its read-only objects named
``<name>_...`` (kernels, biases, multipliers, shifts: the arrays the generated
C declares ``static const``), code is the rest less the harness and start-up
code. The worst-case stack is the deepest path from the entry function through
gcc's call graph (``-fcallgraph-info=su``: one ``.ci`` file per unit, frame
sizes included), which is exact for these acyclic graphs without calls through
pointers; a callee without a frame size (a library routine) counts 0 and is
listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.m4.elf import FLASH_SECTIONS, Image

# What startup.c and harness.c add to every image.
HARNESS_FUNCTIONS = ("Reset_Handler", "Default_Handler", "main", "nndsl_done")
HARNESS_OBJECTS = ("nndsl_vectors", "nndsl_input", "nndsl_output", "nndsl_status")
_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?\\n(\d+) bytes \((\w+)')
_BARE_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


@dataclass(frozen=True)
class Sizes:
    """Bytes of flash and RAM one image takes, the model's share separated."""

    flash_total: int
    flash_code: int
    flash_weights: int
    flash_harness: int
    static_ram: int


@dataclass
class CallGraph:
    """Frame bytes per function and who calls whom, from gcc's ``.ci`` files."""

    frames: dict[str, int] = field(default_factory=dict)
    dynamic: set[str] = field(default_factory=set)
    calls: dict[str, set[str]] = field(default_factory=dict)


def sizes(image: Image, name: str) -> Sizes:
    """The image's flash split into model code, model weights and harness; the model's static RAM."""
    flash = sum(image.section_sizes.get(s, 0) for s in FLASH_SECTIONS) + image.section_sizes.get(".data", 0)
    weights = sum(s.size for s in image.symbols.values()
                  if s.kind == "STT_OBJECT" and s.section == ".rodata" and s.name.startswith(f"{name}_"))
    harness = sum(image.symbols[s].size for s in HARNESS_FUNCTIONS if s in image.symbols)
    harness += image.symbols["nndsl_vectors"].size if "nndsl_vectors" in image.symbols else 0
    harness_ram = sum(image.symbols[s].size for s in HARNESS_OBJECTS[2:] if s in image.symbols)
    ram = image.section_sizes.get(".data", 0) + image.section_sizes.get(".bss", 0) - harness_ram
    return Sizes(flash, flash - weights - harness, weights, harness, ram)


def _base(title: str) -> str:
    """``mlp.c:nn_exp.constprop.0`` and ``nn_exp.constprop`` name the same function."""
    return re.sub(r"\.(constprop|isra|part)(\.\d+)?", "", title.split(":")[-1])


def read_call_graph(files: list[Path]) -> CallGraph:
    """Parse every ``.ci`` file among ``files`` into one graph keyed by base function name."""
    graph = CallGraph()
    for path in files:
        if path.suffix != ".ci":
            continue
        text = path.read_text()
        for title in _BARE_NODE.findall(text):
            graph.frames.setdefault(_base(title), 0)
        for title, size, kind in _NODE.findall(text):
            graph.frames[_base(title)] = int(size)
            if kind != "static":
                graph.dynamic.add(_base(title))
        for source, target in _EDGE.findall(text):
            graph.calls.setdefault(_base(source), set()).add(_base(target))
    return graph


def worst_stack(graph: CallGraph, entry: str, seen: frozenset[str] = frozenset()) -> int:
    """Bytes of the deepest call chain from ``entry`` (a recursive cycle, absent here, is cut)."""
    if entry in seen:
        return 0
    below = [worst_stack(graph, callee, seen | {entry}) for callee in graph.calls.get(entry, ())]
    return graph.frames.get(entry, 0) + max(below, default=0)


def arena_bytes(header: Path, name: str) -> int:
    """The ``<NAME>_ARENA_SIZE`` macro of a generated header."""
    match = re.search(rf"#define {name.upper()}_ARENA_SIZE (\d+)", header.read_text())
    if match is None:
        raise ValueError(f"{header}: no {name.upper()}_ARENA_SIZE")
    return int(match[1])
