"""Shared by the callbacks that watch one logs key: the `mode` rule and the missing-key warning."""
import warnings

MODES = ("auto", "min", "max")


def higher_is_better(mode, monitor, owner, model=None):
    """Return True when larger values of `monitor` are better under `mode`.

    `auto`: when `model` was compiled with a metric object whose log key is `monitor` (or `val_` + it), the
    object's `direction` (max for accuracies, precision, recall, AUC, true positives/negatives; min for
    false positives/negatives and errors; Keras 3 decides the same way), else the name rule of Keras 2: max
    for names containing `acc`, starting with `fmeasure` or ending with `auc`, min otherwise.

    Raises:
        ValueError: `mode` is not one of 'auto', 'min', 'max' (names `owner`, the callback class).
    """
    if mode not in MODES:
        raise ValueError(f"{owner}: unknown `mode` {mode!r}; expected one of {', '.join(map(repr, MODES))}")
    if mode == "auto":
        name = str(monitor)
        direction = _declared_direction(model, name)
        if direction is not None:
            return direction == "max"
        return "acc" in name or name.startswith("fmeasure") or name.endswith("auc")
    return mode == "max"


def _declared_direction(model, monitor):
    """The `direction` of the compiled metric object logged as `monitor` (or its `val_` twin), or None."""
    for metric in getattr(model, "metrics", None) or ():
        direction = getattr(metric, "direction", None)
        name = getattr(metric, "name", None)
        if direction in ("max", "min") and isinstance(name, str) and monitor in (name, "val_" + name):
            return direction
    return None


def check_monitor(monitor, owner):
    """Return `monitor` if it is a string; else raise TypeError naming `owner`."""
    if not isinstance(monitor, str):
        raise TypeError(f"{owner}: `monitor` must be a logs key (str), got {type(monitor).__name__} {monitor!r}")
    return monitor


def warn_missing(message, logs, stacklevel=3):
    """Warn (RuntimeWarning) that a monitored key is missing, listing the available keys."""
    available = ",".join(str(key) for key in logs) or "(none)"
    warnings.warn(f"{message} Available metrics are: {available}", RuntimeWarning, stacklevel=stacklevel)
