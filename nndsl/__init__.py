"""nndsl: small neural networks to dependency-free, range-checked C for microcontrollers.

>>> import nndsl
>>> model = nndsl.load("examples/mlp/mlp.nn")      # doctest: +SKIP
>>> model.run(x)                                   # doctest: +SKIP
>>> model.build("build/")                          # doctest: +SKIP

TensorFlow is never imported here; only :mod:`nndsl.importers` needs it.
"""

from nndsl.diagnostics import Diagnostic, Loc, NNError
from nndsl.model import InputError, Model, load, loads

__version__ = "0.1.0"

__all__ = ["Diagnostic", "InputError", "Loc", "Model", "NNError", "__version__", "load", "loads"]
