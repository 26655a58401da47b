"""Optimizers with Keras 2.2 defaults and update rules.

An optimizer holds hyper-parameters as plain Python numbers and its state (`iterations`, per-parameter slot
arrays) as NumPy arrays. The update itself runs inside the engine (Cython, or its NumPy twin in
`fastfit._reference.optim`), which reads `lr` at every batch boundary where a callback ran, so
`optimizer.lr = x`, `backend.set_value(optimizer.lr, x)` and schedulers take effect at the next batch.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import numpy as np

from fastfit import backend


class LearningRate(float):
    """The value of `optimizer.lr`: a float that remembers its owner so `backend.set_value` can write it."""

    _owner: Optimizer
    _attr: str

    def __new__(cls, value: SupportsFloat, owner: Optimizer, attr: str) -> LearningRate:
        self = super().__new__(cls, value)
        self._owner, self._attr = owner, attr
        return self

    def __reduce__(self) -> tuple[type[float], tuple[float]]:  # pickles and deep-copies as a plain float
        return (float, (float(self),))


# Keras optimizer arguments fastfit does not implement, and the values that mean "off".
_NOT_IMPLEMENTED = {"clipnorm": (None,), "clipvalue": (None,), "global_clipnorm": (None,),
                    "weight_decay": (None, 0, 0.0), "use_ema": (False,)}
# Keras 3 config keys that describe nothing fastfit would do differently.
_NEUTRAL_CONFIG_KEYS = ("name", "is_legacy_optimizer", "jit_compile", "ema_momentum", "ema_overwrite_frequency",
                        "loss_scale_factor", "gradient_accumulation_steps")

# Options of other Keras versions' optimizers (tf.keras RMSprop `momentum`/`centered`, Adagrad's initial
# accumulator) that fastfit's update rules match only when they are off.
_OFF_IN_CONFIGS = {"momentum": (0, 0.0), "centered": (False,), "initial_accumulator_value": (0, 0.0)}


def _refuse_clipping(cls_name: str, kwargs: dict[str, Any]) -> None:
    """Pop the not-implemented options from `kwargs`; raise ValueError if one is switched on."""
    for key, off in _NOT_IMPLEMENTED.items():
        if key in kwargs:
            value = kwargs.pop(key)
            if not any(value is o or (type(value) is type(o) and value == o) for o in off):
                raise ValueError(f"{cls_name}: `{key}={value!r}` is not implemented by fastfit (gradient clipping, "
                                 "weight decay and EMA are not available); remove it, or lower the learning rate")


def _check_rate(name: str, value: Any, cls_name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{cls_name}: `{name}` must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{cls_name}: `{name}` must be a finite number >= 0, got {value!r}")
    return value


class Optimizer:
    """Base class. Subclasses set `kind`, `_slot_names` and their hyper-parameters.

    Arguments common to all: `lr` (or `learning_rate`), `decay` (learning rate decay per update), `name`
    (tf.keras; kept as an attribute). Gradient clipping (`clipnorm`, `clipvalue`, `global_clipnorm`) is not
    implemented: a value other than None raises ValueError.
    """

    kind: str | None = None
    _slot_names: tuple[str, ...] = ()
    _default_lr = 0.001

    def __init__(self, lr: SupportsFloat | None = None, learning_rate: SupportsFloat | None = None,
                 decay: float = 0.0, epsilon: float | None = None, **kwargs: Any) -> None:
        name = type(self).__name__
        self.name = kwargs.pop("name", None) or name
        _refuse_clipping(name, kwargs)
        if kwargs:
            raise TypeError(f"{name}: unexpected keyword arguments {sorted(kwargs)}")
        if lr is not None and learning_rate is not None:
            raise TypeError(f"{name}: received both `lr` and `learning_rate`; pass only `learning_rate`")
        rate = learning_rate if learning_rate is not None else lr
        self.lr = self._default_lr if rate is None else rate
        self.decay = _check_rate("decay", decay, name)
        self.epsilon = backend.epsilon() if epsilon is None else _check_rate("epsilon", epsilon, name)
        self.iterations = 0
        self.m_schedule = 1.0
        self.slots: list[list[np.ndarray]] = []

    # -- learning rate: a live attribute under both Keras spellings ------------------------------------
    @property
    def lr(self) -> LearningRate:
        return self._lr_handle  # built once per assignment: the engine reads it after every hook call

    @lr.setter
    def lr(self, value: SupportsFloat) -> None:
        self._lr = _check_rate("lr", backend.get_value(value) if isinstance(value, np.ndarray) else value,
                               type(self).__name__)
        self._lr_handle = LearningRate(self._lr, self, "lr")

    @property
    def learning_rate(self) -> LearningRate:
        """The tf.keras spelling of `lr`: the same value, and assigning either sets both."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: SupportsFloat) -> None:
        self.lr = value

    # -- state ------------------------------------------------------------------------------------------
    def build(self, params: Sequence[np.ndarray]) -> None:
        """Create zeroed slot arrays for `params` (the engine's parameter arrays, in op order)."""
        self.slots = [[np.zeros_like(p) for _ in self._active_slots()] for p in params]

    def _active_slots(self) -> tuple[str, ...]:
        return self._slot_names

    def is_built_for(self, params: Sequence[np.ndarray]) -> bool:
        return len(self.slots) == len(params) and all(
            len(s) == len(self._active_slots()) and all(a.shape == p.shape and a.dtype == p.dtype for a in s)
            for s, p in zip(self.slots, params))

    def get_weights(self) -> list[np.ndarray]:
        """Optimizer state in Keras 2 order: `iterations`, then each parameter's slots."""
        head = [np.array(self.iterations, dtype=np.int64)]
        if self.kind == "nadam":
            head.append(np.array(self.m_schedule, dtype=np.float64))
        # Keras 2 orders slots by kind first (all `m`, then all `v`), matching its `weights` list.
        by_kind = [s[k].copy() for k in range(len(self._active_slots())) for s in self.slots]
        return head + by_kind

    def set_weights(self, weights: Sequence[Any], params: Sequence[np.ndarray] | None = None) -> None:
        """Restore state written by `get_weights` (optionally building slots for `params` first).

        Raises:
            ValueError: the number or shapes of the arrays do not match.
        """
        if params is not None and not self.is_built_for(params):
            self.build(params)
        n_head = 2 if self.kind == "nadam" else 1
        expected = n_head + len(self.slots) * len(self._active_slots())
        if len(weights) != expected:
            raise ValueError(f"{type(self).__name__}.set_weights: expected {expected} arrays "
                             f"(iterations + slots), got {len(weights)}")
        self.iterations = int(np.asarray(weights[0]))
        if self.kind == "nadam":
            self.m_schedule = float(np.asarray(weights[1]))
        rest = list(weights[n_head:])
        for k in range(len(self._active_slots())):
            for s in self.slots:
                value = np.asarray(rest.pop(0))
                if value.shape != s[k].shape:
                    raise ValueError(f"{type(self).__name__}.set_weights: slot shape {value.shape} does not "
                                     f"match parameter shape {s[k].shape}")
                s[k][...] = value

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": float(self._lr), "decay": self.decay, "epsilon": self.epsilon}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        config.pop("name", None)
        if "lr" in config and "learning_rate" not in config:
            config["learning_rate"] = config.pop("lr")
        known = cls._config_keys()
        return cls(**{k: v for k, v in config.items() if k in known})

    @classmethod
    def _config_keys(cls) -> set[str]:
        import inspect
        return set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum.

    Arguments: `lr=0.01`, `momentum=0.`, `decay=0.`, `nesterov=False`.
    """

    kind = "sgd"
    _default_lr = 0.01

    def __init__(self, lr: SupportsFloat | None = None, momentum: float = 0.0, decay: float = 0.0,
                 nesterov: bool = False, learning_rate: SupportsFloat | None = None, **kwargs: Any) -> None:
        if "epsilon" in kwargs:  # the base class takes it for the adaptive optimizers; SGD has none
            raise TypeError("SGD: unexpected keyword argument 'epsilon' (SGD has no epsilon)")
        super().__init__(lr=lr, learning_rate=learning_rate, decay=decay, **kwargs)
        self.momentum = _check_rate("momentum", momentum, "SGD")
        self.nesterov = bool(nesterov)

    def _active_slots(self) -> tuple[str, ...]:
        return ("moments",)

    def get_config(self) -> dict[str, Any]:
        return {"learning_rate": float(self._lr), "momentum": self.momentum, "decay": self.decay,
                "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop. Arguments: `lr=0.001`, `rho=0.9`, `epsilon=None` (1e-7), `decay=0.`."""

    kind = "rmsprop"
    _slot_names = ("accumulators",)

    def __init__(self, lr: SupportsFloat | None = None, rho: float = 0.9, epsilon: float | None = None,
                 decay: float = 0.0, learning_rate: SupportsFloat | None = None, **kwargs: Any) -> None:
        super().__init__(lr=lr, learning_rate=learning_rate, decay=decay, epsilon=epsilon, **kwargs)
        self.rho = _check_rate("rho", rho, "RMSprop")

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), rho=self.rho)


class Adagrad(Optimizer):
    """Adagrad. Arguments: `lr=0.01`, `epsilon=None` (1e-7), `decay=0.`."""

    kind = "adagrad"
    _slot_names = ("accumulators",)
    _default_lr = 0.01

    def __init__(self, lr: SupportsFloat | None = None, epsilon: float | None = None, decay: float = 0.0,
                 learning_rate: SupportsFloat | None = None, **kwargs: Any) -> None:
        super().__init__(lr=lr, learning_rate=learning_rate, decay=decay, epsilon=epsilon, **kwargs)


class Adadelta(Optimizer):
    """Adadelta. Arguments: `lr=1.0`, `rho=0.95`, `epsilon=None` (1e-7), `decay=0.`."""

    kind = "adadelta"
    _slot_names = ("accumulators", "delta_accumulators")
    _default_lr = 1.0

    def __init__(self, lr: SupportsFloat | None = None, rho: float = 0.95, epsilon: float | None = None,
                 decay: float = 0.0, learning_rate: SupportsFloat | None = None, **kwargs: Any) -> None:
        super().__init__(lr=lr, learning_rate=learning_rate, decay=decay, epsilon=epsilon, **kwargs)
        self.rho = _check_rate("rho", rho, "Adadelta")

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), rho=self.rho)


class Adam(Optimizer):
    """Adam. Arguments: `lr=0.001`, `beta_1=0.9`, `beta_2=0.999`, `epsilon=None` (1e-7), `decay=0.`,
    `amsgrad=False`."""

    kind = "adam"

    def __init__(self, lr: SupportsFloat | None = None, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float | None = None, decay: float = 0.0, amsgrad: bool = False,
                 learning_rate: SupportsFloat | None = None, **kwargs: Any) -> None:
        super().__init__(lr=lr, learning_rate=learning_rate, decay=decay, epsilon=epsilon, **kwargs)
        self.beta_1 = _check_rate("beta_1", beta_1, "Adam")
        self.beta_2 = _check_rate("beta_2", beta_2, "Adam")
        self.amsgrad = bool(amsgrad)

    def _active_slots(self) -> tuple[str, ...]:
        return ("m", "v", "vhat") if self.amsgrad else ("m", "v")

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2, amsgrad=self.amsgrad)


class Adamax(Optimizer):
    """Adamax. Arguments: `lr=0.002`, `beta_1=0.9`, `beta_2=0.999`, `epsilon=None` (1e-7), `decay=0.`."""

    kind = "adamax"
    _slot_names = ("m", "u")
    _default_lr = 0.002

    def __init__(self, lr: SupportsFloat | None = None, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float | None = None, decay: float = 0.0, learning_rate: SupportsFloat | None = None,
                 **kwargs: Any) -> None:
        super().__init__(lr=lr, learning_rate=learning_rate, decay=decay, epsilon=epsilon, **kwargs)
        self.beta_1 = _check_rate("beta_1", beta_1, "Adamax")
        self.beta_2 = _check_rate("beta_2", beta_2, "Adamax")

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2)


class Nadam(Optimizer):
    """Nesterov Adam. Arguments: `lr=0.002`, `beta_1=0.9`, `beta_2=0.999`, `epsilon=None` (1e-7),
    `schedule_decay=0.004`."""

    kind = "nadam"
    _slot_names = ("m", "v")
    _default_lr = 0.002

    def __init__(self, lr: SupportsFloat | None = None, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float | None = None, schedule_decay: float = 0.004,
                 learning_rate: SupportsFloat | None = None, **kwargs: Any) -> None:
        if kwargs.get("decay", 0.0) not in (0, 0.0):  # Keras 2.2's Nadam has no `decay`: its schedule is fixed
            raise ValueError(f"Nadam: `decay={kwargs['decay']!r}` is not supported (Keras 2.2's Nadam has no "
                             "learning rate decay; it uses `schedule_decay`); use a LearningRateScheduler callback")
        kwargs.pop("decay", None)
        super().__init__(lr=lr, learning_rate=learning_rate, epsilon=epsilon, **kwargs)
        self.beta_1 = _check_rate("beta_1", beta_1, "Nadam")
        self.beta_2 = _check_rate("beta_2", beta_2, "Nadam")
        self.schedule_decay = _check_rate("schedule_decay", schedule_decay, "Nadam")

    def get_config(self) -> dict[str, Any]:
        config = dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                      schedule_decay=self.schedule_decay)
        config.pop("decay")
        return config


_CLASSES = {cls.__name__: cls for cls in (SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam)}
_NAMES = {cls.kind: cls for cls in _CLASSES.values()}

# Keras 2 lower-case aliases.
sgd, rmsprop, adagrad, adadelta, adam, adamax, nadam = SGD, RMSprop, Adagrad, Adadelta, Adam, Adamax, Nadam


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Optimizer:
    """Build an optimizer from `{'class_name': ..., 'config': {...}}` (Keras 2 or 3 spelling).

    Raises:
        ValueError: unknown class name (pass custom classes with `custom_objects`).
    """
    name: Any = config.get("class_name")
    classes = dict(_CLASSES, **(custom_objects or {}))
    cls = classes.get(name) or _NAMES.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Unknown optimizer class {name!r}; known: {sorted(_CLASSES)}. "
                         "Pass custom optimizers with `custom_objects`.")
    inner = dict(config.get("config") or {})
    if "decay" in inner and cls is Nadam:
        inner.pop("decay")
    for key in _NEUTRAL_CONFIG_KEYS:
        inner.pop(key, None)
    _refuse_clipping(f"{name} (from a saved config)", inner)
    for key, off in _OFF_IN_CONFIGS.items():  # other Keras versions' options, dropped only when off
        if key not in cls._config_keys() and key in inner and inner[key] in off and type(inner[key]) is not str:
            inner.pop(key)
    unknown = set(inner) - cls._config_keys()
    if unknown:
        raise ValueError(f"{name} config has keys fastfit's {cls.__name__} does not implement: "
                         f"{ {k: inner[k] for k in sorted(unknown)} }; load the model with `compile=False` and "
                         "compile it with a fastfit optimizer")
    return cls.from_config(inner)


def get(identifier: str | dict[str, Any] | Optimizer) -> Optimizer:
    """Return an optimizer from a name ('rmsprop'), a config dict or an instance.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown optimizer {identifier!r}; expected one of {sorted(_NAMES)} "
                             "or an Optimizer instance")
        return cls()
    raise ValueError(f"Could not interpret optimizer {identifier!r}; expected a name such as 'rmsprop' "
                     "or an Optimizer instance")
