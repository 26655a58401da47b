"""Argument checks of both engines, run with the GIL before any engine code; each raises ValueError naming the
argument, what was expected and what was given. The Cython engine imports them too, so a bad call can never
reach its pointer arithmetic and both engines word their errors the same way."""
import numpy as np

from fastfit._reference.names import ENGINE_METRICS, SPARSE_LOSSES, SPARSE_METRICS


def check_dtype(dtype):
    """Return `dtype` as numpy.dtype float32 or float64.

    Raises:
        ValueError: any other dtype.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected numpy.float32 or numpy.float64, got {dtype!r}")
    return dt


def check_metrics(metrics, loss):
    """Return `metrics` as a list of canonical metric names that fit the target kind of `loss`.

    Raises:
        ValueError: not a list of names, an unknown name, or a sparse metric with dense targets (or the
            other way round).
    """
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise ValueError(f"metrics: expected a list of metric names, got {metrics!r}")
    sparse = loss in SPARSE_LOSSES
    for name in metrics:
        check_name(name, ENGINE_METRICS, "metrics")
        if (name in SPARSE_METRICS) != sparse:
            raise ValueError(f"metrics: {name!r} cannot be used with the loss {loss!r} (sparse integer "
                             f"labels go with {list(SPARSE_METRICS)} only)")
    return list(metrics)


_INT_MAX = 2 ** 31 - 1  # the Cython engine indexes with C ints


def check_name(name, names, what):
    """Return `name` if it is one of the canonical `names`.

    Raises:
        ValueError: `name` is not one of `names`.
    """
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"{what}: expected one of {list(names)}, got {name!r}")
    return name


def code(name, names, what):
    """Return the index of `name` in `names` (the integer code the Cython engine uses).

    Raises:
        ValueError: `name` is not one of `names`.
    """
    return names.index(check_name(name, names, what))


def check_float_array(arr, dtype, what, shape=None, ndim=None, writeable=False):
    """Check a float array: NumPy, exactly `dtype`, C-contiguous, with `shape` (None entries match any),
    and writeable if the engine writes into it.

    Returns:
        The array itself.

    Raises:
        ValueError: any of the properties is not met.
    """
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{what}: expected a NumPy array of {np.dtype(dtype).name}, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise ValueError(f"{what}: expected dtype {np.dtype(dtype).name}, got {arr.dtype}")
    if writeable and not arr.flags.writeable:
        raise ValueError(f"{what}: expected a writeable array, got a read-only one")
    return _check_layout(arr, what, shape, ndim)


def check_int_array(arr, what, shape=None):
    """Check an int64 C-contiguous array of the given shape (see `check_float_array`)."""
    if not isinstance(arr, np.ndarray) or arr.dtype != np.int64:
        given = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"{what}: expected a NumPy array of int64, got {given}")
    return _check_layout(arr, what, shape, None)


def _check_layout(arr, what, shape, ndim):
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{what}: expected a {ndim}-D array, got shape {arr.shape}")
    if shape is not None and any(want is not None and want != got for want, got in zip(shape, arr.shape)):
        expected = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"{what}: expected shape {expected}, got {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{what}: expected a C-contiguous array, got a non-contiguous one")
    if any(s > _INT_MAX for s in arr.shape):
        raise ValueError(f"{what}: every dimension must be below 2**31, got shape {arr.shape}")
    return arr


def check_labels(arr, high, what):
    """Check that every value of an int64 array lies in [0, high).

    Raises:
        ValueError: a value is out of range.
    """
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        raise ValueError(f"{what}: expected values in [0, {high}), got values in [{arr.min()}, {arr.max()}]")


def check_positive_int(value, what):
    """Return `value` as an int >= 1.

    Raises:
        ValueError: not an integer >= 1.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}: expected an integer >= 1, got {value!r}")
    return int(value)


def check_hook(hook):
    """Return (batch_begin, batch_end, end_interval) of a hook, or (False, False, 0.0) for None.

    Raises:
        ValueError: the hook is not callable or lacks one of the attributes.
    """
    if hook is None:
        return False, False, 0.0
    if not callable(hook):
        raise ValueError(f"hook: expected None or a callable, got {type(hook).__name__}")
    try:
        return bool(hook.batch_begin), bool(hook.batch_end), float(hook.end_interval)
    except AttributeError as exc:
        raise ValueError(f"hook: expected attributes batch_begin, batch_end and end_interval ({exc})") from None


def check_predictions(hook, rows, units, dtype):
    """The hook's optional `predictions` array, or None (no hook, or a hook without one).

    When present, the engine copies each batch's output (rows 0..size) into it before the batch end call,
    where custom metrics read it; the hook must then be called at every batch end.

    Raises:
        ValueError: not a writeable C-contiguous (rows, units) array of `dtype`, or a hook that skips batch
            ends (`batch_end` false or `end_interval` > 0).
    """
    predictions = getattr(hook, "predictions", None) if hook is not None else None
    if predictions is None:
        return None
    if not hook.batch_end or hook.end_interval > 0:
        raise ValueError("hook.predictions: the hook must be called at every batch end (batch_end true, "
                         f"end_interval 0), got batch_end={hook.batch_end!r}, end_interval={hook.end_interval!r}")
    return check_float_array(predictions, dtype, "hook.predictions", shape=(rows, units), writeable=True)


def check_trainable(op, index):
    """The trainable flag of a ('dense', W, b[, trainable]) engine op (True when absent).

    Raises:
        ValueError: a 4th item that is not a bool.
    """
    if len(op) < 4:
        return True
    if not isinstance(op[3], (bool, np.bool_)):
        raise ValueError(f"ops[{index}] trainable: expected True or False, got {op[3]!r}")
    return bool(op[3])


def read_number(obj, attr, default=None):
    """Read `obj.attr` as a float (or `default` when missing or None).

    Raises:
        ValueError: missing without default, or not a number.
    """
    value = getattr(obj, attr, None)
    if value is None:
        if default is None:
            raise ValueError(f"optimizer.{attr}: expected a number, got nothing")
        return float(default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"optimizer.{attr}: expected a number, got {value!r}") from None


def slot_count(kind, optimizer):
    """Number of slot arrays per parameter the update rule of `kind` reads."""
    if kind == "sgd":
        return 1 if read_number(optimizer, "momentum", 0.0) != 0 else 0
    if kind == "adam" and getattr(optimizer, "amsgrad", False):
        return 3
    return 1 if kind in ("rmsprop", "adagrad") else 2
