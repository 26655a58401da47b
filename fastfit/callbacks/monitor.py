"""Shared by the callbacks that watch one logs key: the `mode` rule and the missing-key warning."""
import warnings

MODES = ("auto", "min", "max")


def higher_is_better(mode, monitor, owner):
    """Return True when larger values of `monitor` are better under `mode`.

    `auto` means max for names containing `acc`, starting with `fmeasure` or ending with `auc`, else min.

    Raises:
        ValueError: `mode` is not one of 'auto', 'min', 'max' (names `owner`, the callback class).
    """
    if mode not in MODES:
        raise ValueError(f"{owner}: unknown `mode` {mode!r}; expected one of {', '.join(map(repr, MODES))}")
    if mode == "auto":
        name = str(monitor)
        return "acc" in name or name.startswith("fmeasure") or name.endswith("auc")
    return mode == "max"


def check_monitor(monitor, owner):
    """Return `monitor` if it is a string; else raise TypeError naming `owner`."""
    if not isinstance(monitor, str):
        raise TypeError(f"{owner}: `monitor` must be a logs key (str), got {type(monitor).__name__} {monitor!r}")
    return monitor


def warn_missing(message, logs, stacklevel=3):
    """Warn (RuntimeWarning) that a monitored key is missing, listing the available keys."""
    available = ",".join(str(key) for key in logs) or "(none)"
    warnings.warn(f"{message} Available metrics are: {available}", RuntimeWarning, stacklevel=stacklevel)
