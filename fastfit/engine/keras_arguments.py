"""Keras arguments of `compile`/`fit`/`evaluate`/`predict` that fastfit honours only in part.

`NEUTRAL_VALUES` is one table, checked in one place: each entry names the values that are a no-op for fastfit
(Keras's default among them) and what to do instead when another value is given. A feature that lands deletes
its line. The functions below check the other Keras spellings with a narrower meaning here (Keras 0.x's
`show_accuracy` and `class_mode`, tf.keras's `steps` and `reset_metrics`, generator input).
"""
import collections.abc
import warnings
from typing import Any

import numpy as np

_GENERATORS = ("it applies to generator or `Sequence` input, which fastfit does not take yet; pass NumPy arrays "
               "(fastfit runs the whole epoch in one compiled loop)")

NEUTRAL_VALUES: dict[str, dict[str, tuple[tuple[Any, ...], str]]] = {
    "compile": {
        "weighted_metrics": ((None, [], (), {}),
                             ("fastfit has no weighted metrics; `metrics` are computed without sample weights, "
                              "as Keras 2 computes `metrics`")),
        "run_eagerly": ((None, False),
                        ("fastfit always runs its compiled engine; for the NumPy reference engine "
                         "(step-by-step Python) use compile(engine='python')")),
        "steps_per_execution": ((None, 1),
                                "fastfit runs one batch per step and calls batch callbacks after every batch"),
        "jit_compile": ((None, False, True, "auto"), "fastfit's engine is always compiled"),
    },
    "fit": {
        "workers": ((0, 1), _GENERATORS),
        "use_multiprocessing": ((False,), _GENERATORS),
        "max_queue_size": ((10,), _GENERATORS),
    },
}
NEUTRAL_VALUES["evaluate"] = NEUTRAL_VALUES["predict"] = NEUTRAL_VALUES["fit"]


def pop_neutral(method: str, kwargs: dict) -> None:
    """Remove from `kwargs` the arguments of `NEUTRAL_VALUES[method]`, after checking their values.

    Raises:
        ValueError: a value that fastfit cannot carry out (names the argument, the value and what to do).
    """
    for name, (allowed, advice) in NEUTRAL_VALUES.get(method, {}).items():
        if name not in kwargs:
            continue
        value = kwargs.pop(name)
        if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
            accepted = " or ".join(repr(a) for a in allowed if not isinstance(a, (tuple, dict)))
            raise ValueError(f"{method}: `{name}={value!r}` is not supported by fastfit ({advice}); "
                             f"accepted: {accepted}")


def check_reset_metrics(reset_metrics, method):
    if reset_metrics is not True:
        raise ValueError(f"{method}: `reset_metrics={reset_metrics!r}` is not supported by fastfit: each call "
                         "returns the values of its own batch (reset_metrics=True); average them yourself")


GENERATOR_MESSAGE = ("{method}: generator and `Sequence` input is not supported by fastfit yet (planned: "
                     "generators and streaming); load the data into NumPy arrays and call fit/evaluate/predict")
# Classes of streamed input, by the package that defines them (an h5py `Dataset` is array-like and stays accepted).
_STREAMED = {"Sequence": ("fastfit", "keras", "tensorflow", "tf_keras"), "PyDataset": ("keras",),
             "DatasetV2": ("tensorflow",), "Dataset": ("tensorflow",)}


def refuse_generator(value, method, argument="x"):
    """Raise TypeError for generator, iterator or `Sequence` input (before it would be read as an array)."""
    streamed = any(cls.__module__.split(".")[0] in _STREAMED.get(cls.__name__, ()) for cls in type(value).__mro__)
    if streamed or isinstance(value, collections.abc.Iterator):
        raise TypeError(f"{method}: `{argument}` is a {type(value).__name__}; "
                        + GENERATOR_MESSAGE.format(method=method).split(": ", 1)[1])


def pop_show_accuracy(kwargs, method):
    """Keras 0.x's `show_accuracy`: a DeprecationWarning; True reports the accuracy metric for this call."""
    if "show_accuracy" not in kwargs:
        return False
    value = kwargs.pop("show_accuracy")
    warnings.warn(f"The `show_accuracy` argument of `{method}` is deprecated: pass the accuracy metric at "
                  "compile time instead, `model.compile(optimizer, loss, metrics=['accuracy'])`",
                  DeprecationWarning, stacklevel=3)
    return bool(value)


def check_class_mode(class_mode, loss, units):
    """Keras 0.x's `compile(class_mode=...)` chose how accuracy compares; fastfit picks it from the loss and the
    output size, so the argument is accepted (with a DeprecationWarning) when it names that same choice."""
    warnings.warn("The `class_mode` argument of `compile` is deprecated (Keras 1 removed it); accuracy follows "
                  "the loss and the output size", DeprecationWarning, stacklevel=3)
    chosen = "binary" if units == 1 or loss == "binary_crossentropy" else "categorical"
    if class_mode != chosen:
        raise ValueError(f"compile: class_mode={class_mode!r} does not match this model, whose accuracy is "
                         f"{chosen} (loss {loss}, {units} output units); remove `class_mode`")


def check_steps(steps, argument):
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"`{argument}` must be a positive integer or None, got {steps!r}")
    return int(steps)
