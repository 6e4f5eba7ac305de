"""Which layer of the network an instruction address belongs to.

The generated C computes every layer inline in ``<name>_run_with_arena``, each
block headed by a comment naming its ``.nn`` statement
(``/* mlp.nn:15: hidden1 = dense(...) ...``). The ELF's line table maps an
address to a C line, and the C line to the layer whose comment precedes it.
Code from other lines (runtime helpers, called or inlined: softmax, the
requantisation) has no layer of its own: the emulator charges it to the layer
that was running when it was entered.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.m4.elf import Image

# The run function's own lines outside any layer: prologue, epilogue, the <name>_run wrapper.
OTHER = "(prologue/epilogue)"
_LAYER_COMMENT = re.compile(r"^\s*/\*\s*[\w.-]+\.nn:(\d+):\s*(?:output\s+)?(\w+)\s*=\s*(\w+)")


@dataclass(frozen=True)
class LayerMap:
    """C line ranges of the layers in one generated file, in execution order."""

    file: str
    starts: list[int]
    labels: list[str]
    body: tuple[int, int]
    end: int

    def label_at(self, image: Image, address: int) -> str | None:
        """The layer ``address`` is in; OTHER for the run function's own lines; None for helpers."""
        source = image.source_at(address)
        if source is None or source[0] != self.file:
            return None
        line = source[1]
        if not self.body[0] <= line < self.body[1]:
            return None
        if not self.starts or line < self.starts[0] or line >= self.end:
            return OTHER
        return self.labels[bisect.bisect_right(self.starts, line) - 1]


def _body_range(lines: list[str], name: str) -> tuple[int, int]:
    """1-based [first, past-last) lines of ``<name>_run_with_arena`` and the ``<name>_run`` wrapper after it."""
    head = re.compile(rf"^int {re.escape(name)}_run(_with_arena)?\(")
    starts = [i + 1 for i, text in enumerate(lines) if head.match(text)]
    if not starts:
        raise ValueError(f"no {name}_run function in the generated C")
    end = starts[-1]
    while end <= len(lines) and lines[end - 1] != "}":
        end += 1
    return starts[0], end + 1


def layer_map(c_file: Path, name: str) -> LayerMap:
    """Parse ``c_file`` (generated for network ``name``) into its layers' line ranges."""
    lines = c_file.read_text().splitlines()
    body = _body_range(lines, name)
    starts: list[int] = []
    labels: list[str] = []
    for number in range(body[0], body[1]):
        match = _LAYER_COMMENT.match(lines[number - 1])
        if match:
            starts.append(number)
            labels.append(f"{match[2]} ({match[3]}, .nn:{match[1]})")
    end = body[1]
    if starts:
        end = next((n for n in range(starts[-1], body[1]) if re.match(r"^\s*return\b", lines[n - 1])), body[1])
    return LayerMap(c_file.name, starts, labels, body, end)
