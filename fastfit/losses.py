"""Losses (Keras 2.2 names and aliases).

`compile(loss=...)` accepts a canonical name, an alias (`mse`, `mae`, `mape`, `msle`, `kld`, `cosine`) or one of
the functions of this module. The functions compute the per-sample loss of NumPy arrays with the engines'
definitions (`fastfit.losses.mean_squared_error(y_true, y_pred)`).
"""
import numpy as np

from fastfit._reference import losses as _twin  # the NumPy twins of the engine kernels
from fastfit._reference.names import LOSSES

ALIASES = {
    "mse": "mean_squared_error", "MSE": "mean_squared_error",
    "mae": "mean_absolute_error", "MAE": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "MAPE": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error", "MSLE": "mean_squared_logarithmic_error",
    "kld": "kullback_leibler_divergence", "KLD": "kullback_leibler_divergence",
    "cosine": "cosine_proximity", "cosine_similarity": "cosine_proximity",
    "logcosh": "logcosh", "log_cosh": "logcosh",
}


def per_sample_function(twin, name):
    """A public `f(y_true, y_pred)` returning the per-sample values of `name` from a NumPy twin module
    (`fastfit._reference.losses` or `.metrics`); used here and by `fastfit.metrics`."""
    def function(y_true, y_pred):
        y_pred = np.asarray(y_pred, dtype=np.result_type(np.asarray(y_pred).dtype, np.float32))
        return twin.per_sample(name, np.asarray(y_true), y_pred)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Per-sample `{name}` of NumPy arrays (`y_true`, `y_pred`)."
    return function


for _name in LOSSES:
    globals()[_name] = per_sample_function(_twin, _name)
mse = MSE = globals()["mean_squared_error"]
mae = MAE = globals()["mean_absolute_error"]
mape = MAPE = globals()["mean_absolute_percentage_error"]
msle = MSLE = globals()["mean_squared_logarithmic_error"]
kld = KLD = globals()["kullback_leibler_divergence"]
cosine = globals()["cosine_proximity"]


def _refuse_custom(function):
    name = getattr(function, "__name__", None) or type(function).__name__
    raise ValueError(f"Custom loss {name!r} ({function!r}) is not supported: fastfit trains with gradients it "
                     f"derives for its built-in losses only, and does not derive them for other functions. Use "
                     f"one of {list(LOSSES)} (aliases: {sorted(ALIASES)}); a custom function can still be a "
                     f"metric (compile(metrics=[{name}]))")


def get(identifier):
    """Return the canonical loss name for a name, alias or one of this module's functions.

    Raises:
        ValueError: unknown loss (the message lists the valid names).
    """
    name = getattr(identifier, "__name__", identifier) if callable(identifier) else identifier
    if isinstance(name, str):
        name = ALIASES.get(name, name)
        if name in LOSSES:
            if callable(identifier) and globals().get(name) is not identifier:
                _refuse_custom(identifier)
            return name
    if callable(identifier):
        _refuse_custom(identifier)
    raise ValueError(f"Unknown loss {identifier!r}; expected one of {list(LOSSES)} "
                     f"or an alias in {sorted(ALIASES)}")
