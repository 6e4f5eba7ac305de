"""Importers: TensorFlow Lite flatbuffers and Keras models become `.nn` text plus `.npz` weights.

TensorFlow is imported only inside these modules, and only when an import runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nndsl.cnames import network_name_from
from nndsl.diagnostics import Loc, NNError
from nndsl.importers.files import read_flatbuffer
from nndsl.importers.writer import ImportedModel


def import_model(source: str | os.PathLike[str] | Any, *, calibrate: str | Path | npt.ArrayLike | None = None,
                 int16: bool = False, name: str | None = None, progress: bool = False) -> ImportedModel:
    """A `.tflite` file, a Keras model file (`.keras`, `.h5`, SavedModel folder) or a Keras model object in
    `.nn` form.

    ``calibrate``: representative real inputs (a ``.npy`` path, or an array for a model object) to quantise
    a Keras model to int8 (16x8 with ``int16``); without it the import is float.
    """
    if not isinstance(source, str | os.PathLike):
        return _import_keras_object(source, calibrate=calibrate, int16=int16, name=name, progress=progress)
    if calibrate is not None and not isinstance(calibrate, str | os.PathLike):
        raise NNError.at(Loc.file(str(source)), "calibrate takes the path of a .npy file for a model file")
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


def _import_keras_object(model: Any, *, calibrate: str | Path | npt.ArrayLike | None, int16: bool,
                         name: str | None, progress: bool) -> ImportedModel:
    """A Keras model in memory; its name labels errors. TensorFlow is imported only here."""
    label = f"<Keras model {getattr(model, 'name', type(model).__name__)}>"
    if not (hasattr(model, "layers") and hasattr(model, "inputs")):
        raise NNError.at(Loc.file(label), f"import_model takes a path or a Keras model, not {type(model).__name__}")
    from nndsl.importers.keras import calibration_data, import_keras_model

    if int16 and calibrate is None:
        raise NNError.at(Loc.file(label), "int16 quantises: it needs calibrate=")
    calibration = None
    if calibrate is not None:
        input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        if isinstance(calibrate, str | os.PathLike):
            calibration = calibration_data(Path(calibrate), input_shape, label)
        else:
            calibration = np.asarray(calibrate, dtype=np.float32)
            if calibration.shape[1:] != input_shape:
                raise NNError.at(Loc.file(label), f"calibration data has shape {list(calibration.shape)}, the model "
                                 f"takes [N, {', '.join(map(str, input_shape))}]")
    network = name or network_name_from(str(getattr(model, "name", "") or "model"))
    return import_keras_model(model, label, calibration=calibration, int16=int16, name=network, progress=progress)


__all__ = ["ImportedModel", "import_model"]
