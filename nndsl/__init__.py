"""nndsl: small neural networks to dependency-free, range-checked C for microcontrollers.

>>> import nndsl
>>> model = nndsl.load("examples/mlp/mlp.nn")      # doctest: +SKIP
>>> model.run(x)                                   # doctest: +SKIP
>>> model.build("build/")                          # doctest: +SKIP

TensorFlow is never imported here: :func:`import_model` imports it only when it converts a Keras model.
"""

from nndsl.builder import Network, Type, Weight
from nndsl.diagnostics import Diagnostic, Loc, NNError
from nndsl.importers import import_model
from nndsl.model import InputError, Model, load, loads

__version__ = "0.1.0"

__all__ = ["Diagnostic", "InputError", "Loc", "Model", "NNError", "Network", "Type", "Weight", "__version__",
           "import_model", "load", "loads"]
