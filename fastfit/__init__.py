"""fastfit: Keras-2-compatible training on the CPU, with a Cython training core.

`import fastfit as keras` makes Keras 2 scripts run: `keras.models`, `keras.layers`, `keras.callbacks`,
`keras.optimizers`, `keras.losses`, `keras.metrics`, `keras.backend`, `keras.utils`, `keras.initializers`,
`keras.activations`, and as in tf.keras `keras.Input`, `keras.Sequential`, `keras.Model`.
"""
__version__ = "0.1.0"

from fastfit import activations, backend, constraints, initializers, losses, metrics, optimizers  # noqa: E402
from fastfit import regularizers  # noqa: E402
from fastfit import layers, models, utils  # noqa: E402
from fastfit import callbacks, datasets  # noqa: E402
from fastfit.models import Model, Sequential  # noqa: E402
from fastfit.layers import Input  # noqa: E402  (tf.keras: keras.Input)

__all__ = ["__version__", "activations", "backend", "callbacks", "constraints", "datasets", "initializers", "layers",
           "losses", "metrics", "models", "optimizers", "regularizers", "utils", "Input", "Model", "Sequential"]
