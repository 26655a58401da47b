"""Metrics (Keras 2 names).

`compile(metrics=[...])` takes strings or functions of this module or `fastfit.losses`. The log key is the
string the user passed (`'acc'` → `acc`, `'accuracy'` → `accuracy`), or the function's name. `'acc'` and
`'accuracy'` resolve to binary, categorical or sparse categorical accuracy from the loss and output size, as
Keras does.
"""
from fastfit import losses as _losses
from fastfit._reference import metrics as _twin  # the NumPy twins of the engine kernels
from fastfit.losses import per_sample_function
from fastfit._reference.names import LOSSES, METRICS, SPARSE_METRICS

_ACCURACY = ("acc", "accuracy")
_CROSSENTROPY = ("ce", "crossentropy")


binary_accuracy = per_sample_function(_twin, "binary_accuracy")
categorical_accuracy = per_sample_function(_twin, "categorical_accuracy")
sparse_categorical_accuracy = per_sample_function(_twin, "sparse_categorical_accuracy")
top_k_categorical_accuracy = per_sample_function(_twin, "top_k_categorical_accuracy")
sparse_top_k_categorical_accuracy = per_sample_function(_twin, "sparse_top_k_categorical_accuracy")


def resolve(identifier, loss, units):
    """Return `(log_key, canonical_metric_name)` for one entry of `compile(metrics=...)`.

    Arguments:
        identifier: what the user passed: a string or a function of this module or `fastfit.losses`.
        loss: the canonical loss name of the model.
        units: the number of output units.

    Raises:
        ValueError: unknown metric, or one that cannot be computed for this loss's targets.
    """
    if isinstance(identifier, str):
        key = name = identifier
    elif callable(identifier) and getattr(identifier, "__name__", None):
        key = name = identifier.__name__
        known = globals().get(name) is identifier or getattr(_losses, name, None) is identifier
        if not known:
            raise ValueError(f"Custom metric functions are not supported by the compiled engine "
                             f"(got {identifier!r}); expected one of {sorted(METRICS)}")
    else:
        raise ValueError(f"Could not interpret metric {identifier!r}; expected a name such as 'acc'")
    sparse = loss == "sparse_categorical_crossentropy"
    if name in _ACCURACY:
        if sparse:
            name = "sparse_categorical_accuracy"
        elif units == 1 or loss == "binary_crossentropy":
            name = "binary_accuracy"
        else:
            name = "categorical_accuracy"
    elif name in _CROSSENTROPY:
        if sparse:
            name = "sparse_categorical_crossentropy"
        elif units == 1 or loss == "binary_crossentropy":
            name = "binary_crossentropy"
        else:
            name = "categorical_crossentropy"
    else:
        name = _losses.ALIASES.get(name, name)
    if name not in METRICS:
        raise ValueError(f"Unknown metric {identifier!r}; expected 'acc', 'accuracy', one of "
                         f"{sorted(m for m in METRICS if m not in LOSSES)} or a loss name")
    takes_labels = name in SPARSE_METRICS or name == "sparse_categorical_crossentropy"
    if takes_labels != sparse:
        raise ValueError(f"Metric {identifier!r} cannot be computed with loss {loss!r}: "
                         + ("integer targets need a sparse metric such as 'sparse_categorical_accuracy'"
                            if sparse else "it needs integer targets and the sparse_categorical_crossentropy loss"))
    return key, name
