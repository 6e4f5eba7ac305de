"""Importers: TensorFlow Lite flatbuffers and Keras models become `.nn` text plus `.npz` weights.

TensorFlow is imported only inside these modules, and only when an import runs.
"""

from __future__ import annotations

from pathlib import Path

from nndsl.diagnostics import Loc, NNError
from nndsl.importers.files import read_flatbuffer
from nndsl.importers.writer import ImportedModel


def import_model(source: str | Path, *, calibrate: str | Path | None = None, int16: bool = False,
                 name: str | None = None, progress: bool = False) -> ImportedModel:
    """Read a `.tflite` file or a Keras model (`.keras`, `.h5`, SavedModel folder) into `.nn` form."""
    path = Path(source)
    if not path.exists():
        raise NNError.at(Loc.file(str(source)), "no such file or folder")
    if path.suffix == ".tflite":
        if calibrate is not None or int16:
            raise NNError.at(Loc.file(str(source)), "a .tflite model is already quantised: "
                             "--calibrate and --int16 apply to Keras models")
        from nndsl.importers.tflite import import_tflite

        imported = import_tflite(read_flatbuffer(path), str(source), name=name)
    else:
        from nndsl.importers.keras import import_keras

        imported = import_keras(path, calibrate=calibrate, int16=int16, name=name, progress=progress)
    imported.sources = (path,) if calibrate is None else (path, Path(calibrate))
    return imported


__all__ = ["ImportedModel", "import_model"]
