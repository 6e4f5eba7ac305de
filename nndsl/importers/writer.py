"""Writing an imported network as readable `.nn` text and its `.npz` weights."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nndsl.files import write_files
from nndsl.model import Model
from nndsl.pipeline import compile_source
from nndsl.types import as_float32

KEYWORDS = frozenset({"network", "target", "weights", "input", "output"})


def identifier(text: str, fallback: str = "layer") -> str:
    """A `.nn` name from a source name: letters, digits and underscores, not starting with a digit."""
    name = re.sub(r"\W+", "_", text).strip("_") or fallback
    if name[0].isdigit() or name in KEYWORDS:
        name = f"{fallback}_{name}"
    return name


def scale_text(scale: float) -> str:
    """The shortest decimal that reads back as the same float32 scale."""
    return repr(as_float32(scale))


def shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass
class ImportedModel:
    """A network in `.nn` form: statements, weights, and notes for the user."""

    name: str
    lines: list[str] = field(default_factory=list)
    weights: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    used_names: set[str] = field(default_factory=set)
    tflite: bytes | None = None  # the flatbuffer a Keras model was converted to, when there was one
    sources: tuple[Path, ...] = ()  # the files it was made from, which writing it must not replace

    def fresh_name(self, base: str) -> str:
        name = identifier(base)
        candidate, number = name, 1
        while candidate in self.used_names:
            number += 1
            candidate = f"{name}_{number}"
        self.used_names.add(candidate)
        return candidate

    def text(self, weights_file: str) -> str:
        header = [
            f"# Imported by nndsl; edit freely. Weights: {weights_file}.",
            f"network {self.name}",
            "",
            f'weights "{weights_file}"',
            "",
        ]
        return "\n".join(header + self.lines) + "\n"

    def npz(self) -> bytes:
        """The weights as the bytes of an ``.npz`` archive."""
        buffer = io.BytesIO()
        np.savez(buffer, **self.weights)  # type: ignore[arg-type]
        return buffer.getvalue()

    def write(self, nn_path: str | Path) -> tuple[Path, Path]:
        """Write ``OUT.nn`` and ``OUT.npz`` beside it (the .npz first: the .nn names it)."""
        nn = Path(nn_path)
        npz = nn.with_suffix(".npz")
        write_files({npz: self.npz(), nn: self.text(npz.name)}, keep=self.sources)
        return nn, npz

    def model(self) -> Model:
        """The imported network compiled without writing a file: what :func:`nndsl.load` gives after :meth:`write`."""
        weights_file = f"{self.name}.npz"
        return Model(compile_source(self.text(weights_file), f"<imported {self.name}>", archive=self.npz()))
