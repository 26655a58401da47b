"""Losses (Keras 2.2 names and aliases, tf.keras loss classes).

`compile(loss=...)` accepts a canonical name, an alias (`mse`, `mae`, `mape`, `msle`, `kld`, `cosine`), one of
the functions of this module, or an instance of one of its tf.keras loss classes
(`SparseCategoricalCrossentropy(from_logits=True)`). The functions compute the per-sample loss of NumPy arrays
with the engines' definitions (`fastfit.losses.mean_squared_error(y_true, y_pred)`); the objects compute the
reduced loss as tf.keras does (`loss(y_true, y_pred, sample_weight=None)`).
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn, TypeAlias

import numpy as np
import numpy.typing as npt

from fastfit._reference import losses as _twin  # the NumPy twins of the engine kernels
from fastfit.contract.names import LOSSES

ALIASES = {
    "mse": "mean_squared_error", "MSE": "mean_squared_error",
    "mae": "mean_absolute_error", "MAE": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "MAPE": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error", "MSLE": "mean_squared_logarithmic_error",
    "kld": "kullback_leibler_divergence", "KLD": "kullback_leibler_divergence",
    "cosine": "cosine_proximity", "cosine_similarity": "cosine_proximity",
    "logcosh": "logcosh", "log_cosh": "logcosh",
}

# What `get`, `engine_loss` and `compile(loss=...)` take: a name, a serialised loss, a function or a Loss object.
LossIdentifier: TypeAlias = "str | dict[str, Any] | Callable[..., Any] | Loss | None"


def per_sample_function(twin: ModuleType, name: str) -> Callable[[npt.ArrayLike, npt.ArrayLike], np.ndarray]:
    """A public `f(y_true, y_pred)` returning the per-sample values of `name` from a NumPy twin module
    (`fastfit._reference.losses` or `.metrics`); used here and by `fastfit.metrics`."""
    def function(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
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


def _refuse_custom(function: Any) -> NoReturn:
    name = getattr(function, "__name__", None) or type(function).__name__
    raise ValueError(f"Custom loss {name!r} ({function!r}) is not supported: fastfit trains with gradients it "
                     f"derives for its built-in losses only, and does not derive them for other functions. Use "
                     f"one of {list(LOSSES)} (aliases: {sorted(ALIASES)}); a custom function can still be a "
                     f"metric (compile(metrics=[{name}]))")


# -- tf.keras loss objects ---------------------------------------------------------------------------------

class Reduction:
    """tf.keras's `losses.Reduction` names: how `Loss.__call__` reduces the per-sample losses.

    `compile` trains with the default ('auto', which means 'sum_over_batch_size' in `fit`); the others
    work in `__call__` only.
    """
    AUTO = "auto"
    NONE = "none"
    SUM = "sum"
    SUM_OVER_BATCH_SIZE = "sum_over_batch_size"

    @classmethod
    def all(cls) -> tuple[str, ...]:
        return (cls.AUTO, cls.NONE, cls.SUM, cls.SUM_OVER_BATCH_SIZE)

    @classmethod
    def validate(cls, key: str) -> None:
        if key not in cls.all():
            raise ValueError(f"reduction: expected one of {list(cls.all())}, got {key!r}")


_TRAINABLE_REDUCTIONS = (Reduction.AUTO, Reduction.SUM_OVER_BATCH_SIZE)


class Loss:
    """Base of the tf.keras loss classes of the losses fastfit's engines compute.

    An instance computes the loss of NumPy arrays, `loss(y_true, y_pred, sample_weight=None)`, as tf.keras
    does: the per-sample values (`call`) weighted by `sample_weight`, then reduced ('sum_over_batch_size':
    their sum divided by the number of samples; 'sum'; 'none': the weighted per-sample values).
    `compile(loss=...)` accepts instances of the built-in subclasses only: fastfit derives gradients for its
    built-in losses, so a subclass with its own `call` is refused (it can still be a metric).
    """
    _function_name = ""  # the canonical name of the loss in fastfit.contract.names.LOSSES
    _default_name = ""  # tf.keras's default `name`

    def __init__(self, reduction: str = Reduction.AUTO, name: str | None = None) -> None:
        Reduction.validate(reduction)
        self.reduction = reduction
        self.name = self._default_name if name is None else name

    def call(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
        """Per-sample loss values (the last axis reduced)."""
        return per_sample_function(_twin, self._function_name)(y_true, y_pred)

    def __call__(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike,
                 sample_weight: npt.ArrayLike | None = None) -> np.ndarray | np.floating:
        values = np.asarray(self.call(y_true, y_pred))
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=values.dtype)
            if weight.ndim == values.ndim + 1 and weight.shape[-1] == 1:
                weight = weight[..., 0]
            try:
                values = values * np.broadcast_to(weight, values.shape)
            except ValueError:
                raise ValueError(f"sample_weight: expected a shape broadcastable to {values.shape}, got "
                                 f"{weight.shape}") from None
        if self.reduction == Reduction.NONE:
            return values
        total = np.sum(values, dtype=np.float64)
        if self.reduction == Reduction.SUM:
            return values.dtype.type(total)
        return values.dtype.type(total / values.size if values.size else 0.0)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def _core_loss(self, output_ndim: int) -> str:
        """The canonical loss the engines train with for this object.

        Raises:
            ValueError: an argument the engines cannot carry out (named in the message).
        """
        if self.reduction not in _TRAINABLE_REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: fastfit trains with reduction='sum_over_batch_size' (the "
                             f"default, 'auto') only, got reduction={self.reduction!r}; remove the argument")
        return self._function_name

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def _check_axis(loss, axis, ndim: int) -> None:
    if axis != -1 and axis != ndim - 1:
        raise ValueError(f"{type(loss).__name__}: fastfit reduces the loss over the last axis only, got "
                         f"axis={axis!r} for an output of {ndim} dimensions; remove the argument")


def _last_axis(array: npt.ArrayLike, axis: int) -> np.ndarray:
    array = np.asarray(array)
    return array if array.ndim == 0 or axis in (-1, array.ndim - 1) else np.moveaxis(array, axis, -1)


class MeanSquaredError(Loss):
    _function_name, _default_name = "mean_squared_error", "mean_squared_error"


class MeanAbsoluteError(Loss):
    _function_name, _default_name = "mean_absolute_error", "mean_absolute_error"


class MeanAbsolutePercentageError(Loss):
    _function_name, _default_name = "mean_absolute_percentage_error", "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(Loss):
    _function_name, _default_name = "mean_squared_logarithmic_error", "mean_squared_logarithmic_error"


class Hinge(Loss):
    """Keras 2.2's hinge, max(1 - y_true * y_pred, 0): targets are -1 or 1 (unlike tf.keras, 0/1 targets are
    not converted to -1/1)."""
    _function_name, _default_name = "hinge", "hinge"


class SquaredHinge(Loss):
    """Keras 2.2's squared hinge: targets are -1 or 1 (unlike tf.keras, 0/1 targets are not converted)."""
    _function_name, _default_name = "squared_hinge", "squared_hinge"


class CategoricalHinge(Loss):
    _function_name, _default_name = "categorical_hinge", "categorical_hinge"


class LogCosh(Loss):
    _function_name, _default_name = "logcosh", "log_cosh"


class KLDivergence(Loss):
    _function_name, _default_name = "kullback_leibler_divergence", "kl_divergence"


class Poisson(Loss):
    _function_name, _default_name = "poisson", "poisson"


class CosineSimilarity(Loss):
    """-sum(l2_normalize(y_true) * l2_normalize(y_pred)) over `axis` (Keras 2.2's cosine_proximity)."""
    _function_name, _default_name = "cosine_proximity", "cosine_similarity"

    def __init__(self, axis: int = -1, reduction: str = Reduction.AUTO, name: str | None = None) -> None:
        super().__init__(reduction=reduction, name=name)
        self.axis = axis

    def call(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
        return super().call(_last_axis(y_true, self.axis), _last_axis(y_pred, self.axis))

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}

    def _core_loss(self, output_ndim: int) -> str:
        _check_axis(self, self.axis, output_ndim)
        return super()._core_loss(output_ndim)


class _Crossentropy(Loss):
    """Crossentropy of probabilities (Keras 2.2's definition, clipped to [1e-7, 1 - 1e-7]) or, with
    `from_logits=True`, of the logits in log-sum-exp form (softmax or sigmoid applied inside the loss)."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = Reduction.AUTO, name: str | None = None) -> None:
        super().__init__(reduction=reduction, name=name)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ValueError(f"from_logits: expected True or False, got {from_logits!r}")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.number)) \
                or not 0 <= label_smoothing <= 1:
            raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing!r}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def _smooth(self, y_true, units: int):
        raise NotImplementedError

    def call(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
        y_pred = _last_axis(y_pred, self.axis)
        y_true = _last_axis(y_true, self.axis)
        if self.label_smoothing:
            y_true = self._smooth(np.asarray(y_true, dtype=np.float64), y_pred.shape[-1])
        name = self._function_name + ("_from_logits" if self.from_logits else "")
        return per_sample_function(_twin, name)(y_true, y_pred)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}

    def _core_loss(self, output_ndim: int) -> str:
        if self.label_smoothing:
            raise ValueError(f"{type(self).__name__}: fastfit does not train with label smoothing, got "
                             f"label_smoothing={self.label_smoothing!r}; remove the argument (or smooth the "
                             "targets yourself)")
        _check_axis(self, self.axis, output_ndim)
        name = super()._core_loss(output_ndim)
        return name + "_from_logits" if self.from_logits else name


class CategoricalCrossentropy(_Crossentropy):
    _function_name, _default_name = "categorical_crossentropy", "categorical_crossentropy"

    def _smooth(self, y_true, units):
        return y_true * (1 - self.label_smoothing) + self.label_smoothing / units


class BinaryCrossentropy(_Crossentropy):
    _function_name, _default_name = "binary_crossentropy", "binary_crossentropy"

    def _smooth(self, y_true, units):
        return y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy of integer labels against probabilities or, with `from_logits=True`, against logits."""
    _function_name, _default_name = "sparse_categorical_crossentropy", "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str = Reduction.AUTO, name: str | None = None) -> None:
        super().__init__(reduction=reduction, name=name)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise ValueError(f"from_logits: expected True or False, got {from_logits!r}")
        if ignore_class is not None:
            raise ValueError(f"SparseCategoricalCrossentropy: fastfit does not support ignore_class (got "
                             f"{ignore_class!r}); remove the argument, or give the ignored samples "
                             "sample_weight 0")
        self.from_logits = bool(from_logits)
        self.ignore_class = None

    def call(self, y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> np.ndarray:
        name = self._function_name + ("_from_logits" if self.from_logits else "")
        return per_sample_function(_twin, name)(y_true, y_pred)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}

    def _core_loss(self, output_ndim: int) -> str:
        name = super()._core_loss(output_ndim)
        return name + "_from_logits" if self.from_logits else name


CLASSES = {cls.__name__: cls for cls in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Hinge,
    SquaredHinge, CategoricalHinge, LogCosh, KLDivergence, Poisson, CosineSimilarity, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, BinaryCrossentropy)}


def _is_builtin_object(identifier) -> bool:
    return type(identifier) in CLASSES.values()


def engine_loss(identifier: LossIdentifier, output_ndim: int = 2) -> str:
    """The canonical loss the engines train with for `compile(loss=identifier)`.

    Arguments:
        identifier: a loss name or alias, a function of this module, an instance of one of its loss
            classes (or a class name such as 'CategoricalCrossentropy'), or a serialised loss object.
        output_ndim: the number of dimensions of the model output (batch axis included), for `axis`.

    Raises:
        ValueError: unknown loss, a custom loss, or a loss object argument the engines cannot carry out.
    """
    if isinstance(identifier, dict) or (isinstance(identifier, str) and identifier in CLASSES):
        identifier = deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        raise ValueError(f"Loss {identifier.__name__} is a class; pass an instance, e.g. "
                         f"loss={identifier.__name__}()")
    if isinstance(identifier, Loss):
        if not _is_builtin_object(identifier):
            _refuse_custom(identifier)
        return identifier._core_loss(output_ndim)
    name = getattr(identifier, "__name__", identifier) if callable(identifier) else identifier
    if isinstance(name, str):
        name = ALIASES.get(name, name)
        if name in LOSSES:
            if callable(identifier) and globals().get(name) is not identifier:
                _refuse_custom(identifier)
            return name
    if callable(identifier):
        _refuse_custom(identifier)
    raise ValueError(f"Unknown loss {identifier!r}; expected one of {list(LOSSES)}, an alias in "
                     f"{sorted(ALIASES)}, or a loss object such as CategoricalCrossentropy()")


def get(identifier: LossIdentifier) -> Callable[..., Any] | Loss | None:
    """tf.keras's `losses.get`: the loss function of a name or alias, a loss object of a class name or a
    serialised loss (`{'class_name': ..., 'config': ...}`); functions and loss objects pass through.

    Raises:
        ValueError: unknown loss, or a custom loss function (fastfit trains with its built-in losses only).
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict) or (isinstance(identifier, str) and identifier in CLASSES):
        return deserialize(identifier)
    return globals()[engine_loss(identifier)]


def serialize(loss: str | Callable[..., Any] | Loss) -> str | dict[str, Any] | Callable[..., Any]:
    """A loss as Keras writes it: a name for a name or function, `{'class_name', 'config'}` for an object."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return getattr(loss, "__name__", loss) if callable(loss) else loss


def training_config_entry(loss: str | Callable[..., Any] | Loss) -> str | dict[str, Any] | Callable[..., Any]:
    """The `loss` entry of a file's training_config: `serialize(loss)`, with the default reduction 'auto'
    written as 'sum_over_batch_size' (what it means in `fit`, and a spelling both tf.keras and Keras 3 read)."""
    entry = serialize(loss)
    if isinstance(entry, dict) and entry["config"].get("reduction") == Reduction.AUTO:
        entry = {"class_name": entry["class_name"],
                 "config": {**entry["config"], "reduction": Reduction.SUM_OVER_BATCH_SIZE}}
    return entry


_SERIALISED_KEYS = {"class_name", "config", "module", "registered_name"}


def deserialize(config: str | dict[str, Any],
                custom_objects: dict[str, Any] | None = None) -> Callable[..., Any] | Loss | None:
    """A loss from its serialised form: a name (returned as `get` returns it), or `{'class_name': ...,
    'config': {...}}` as tf.keras and Keras 3 write a loss object (Keras 3's `module` and `registered_name`
    keys are accepted, and a `dtype` of None, 'float32' or 'float64': fastfit computes losses in float64).

    Raises:
        ValueError: anything malformed: not a name or dict, unknown keys, an unknown class, a config that
            is not a dict, or config entries the class does not take or accept.
    """
    if isinstance(config, str):
        if config in CLASSES:
            return CLASSES[config]()
        if custom_objects and config in custom_objects:
            return custom_objects[config]
        return get(config)
    if not isinstance(config, dict):
        raise ValueError(f"Could not interpret serialised loss {config!r}: expected a name or a dict "
                         "{'class_name': ..., 'config': {...}}")
    unknown = set(config) - _SERIALISED_KEYS
    class_name = config.get("class_name")
    if unknown or not isinstance(class_name, str):
        raise ValueError(f"Could not interpret serialised loss {config!r}: expected the keys 'class_name' (a "
                         f"str) and 'config'" + (f", got unknown keys {sorted(unknown)}" if unknown else ""))
    arguments = config.get("config", {})
    if not isinstance(arguments, dict):
        raise ValueError(f"Serialised loss {class_name!r}: 'config' must be a dict, got {arguments!r}")
    if class_name not in CLASSES:
        raise ValueError(f"Unknown loss class {class_name!r}; fastfit trains with {sorted(CLASSES)} (or the "
                         f"loss names {list(LOSSES)})")
    arguments = dict(arguments)
    if arguments.get("dtype", None) in (None, "float32", "float64"):
        arguments.pop("dtype", None)
    cls = CLASSES[class_name]
    try:
        return cls.from_config(arguments)
    except TypeError as error:
        raise ValueError(f"Serialised loss {class_name!r}: its config {arguments!r} does not fit "
                         f"{class_name} ({error})") from None
