"""fastfit: Keras-2-compatible training on the CPU, with a Cython training core.

`import fastfit as keras` makes Keras 2 scripts run: `keras.models`, `keras.layers`, `keras.callbacks`,
`keras.optimizers`, `keras.losses`, `keras.metrics`, `keras.backend`, `keras.utils`, `keras.initializers`,
`keras.activations`, and as in tf.keras `keras.Input`, `keras.Sequential`, `keras.Model`.
"""
from fastfit._version import __version__
from fastfit import activations, backend, constraints, initializers, losses, metrics, optimizers
from fastfit import regularizers
from fastfit import layers, models, utils
from fastfit import callbacks, datasets
from fastfit.models import Model, Sequential
from fastfit.layers import Input  # (tf.keras: keras.Input)

__all__ = ["__version__", "activations", "backend", "callbacks", "constraints", "datasets", "initializers", "layers",
           "losses", "metrics", "models", "optimizers", "regularizers", "utils", "Input", "Model", "Sequential"]
