"""Argument checks of both engines, run with the GIL before any engine code; each raises ValueError naming the
argument, what was expected and what was given. Both engines import them, so a bad call can never reach the
Cython engine's pointer arithmetic and both engines word their errors the same way."""
from collections.abc import Sized
from typing import Any

import numpy as np

from fastfit.contract.names import CONSTRAINTS, METRICS, SPARSE_LOSSES, SPARSE_METRICS


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
    for entry in metrics:
        name = entry
        if isinstance(entry, tuple):  # (name, param): a threshold or a k (see split_entry)
            name, param = entry if len(entry) == 2 else (None, None)
            if name == "binary_accuracy":
                if isinstance(param, bool) or not isinstance(param, (int, float)) or not np.isfinite(param):
                    raise ValueError(f"metrics: the threshold of {entry!r} must be a finite number")
            elif name in ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
                if isinstance(param, bool) or not isinstance(param, int) or not 1 <= param <= _INT_MAX:
                    raise ValueError(f"metrics: the k of {entry!r} must be a positive int")
            else:
                raise ValueError(f"metrics: expected a name or (name, parameter) for binary_accuracy or a "
                                 f"top-k accuracy, got {entry!r}")
        check_name(name, METRICS, "metrics")
        if (name in SPARSE_METRICS) != sparse:
            raise ValueError(f"metrics: {name!r} cannot be used with the loss {loss!r} (sparse integer "
                             f"labels go with {list(SPARSE_METRICS)} only)")
    return list(metrics)


_INT_MAX = 2 ** 31 - 1  # the Cython engine indexes with C ints


def split_entry(entry: Any) -> tuple[Any, Any]:
    """`(name, param)` of an engine metric entry: a name, or `(name, param)` for binary_accuracy or a top-k
    accuracy (param None: the name's default, rounding for binary accuracy and k = 5 for the top-k metrics)."""
    if isinstance(entry, tuple) and len(entry) == 2:
        return entry[0], entry[1]
    return entry, None


def histogram_size(thresholds: Sized) -> int:
    """Length of the threshold histogram of `thresholds`: positives and negatives per bucket, out of range."""
    return 2 * (len(thresholds) + 1) + 1


def check_confusion(confusion, loss):
    """Return the threshold histograms' specs as a list of (thresholds, class_id, top_k): thresholds a sorted
    float64 array, class_id -1 (every column) or a column, top_k 0 (every prediction) or k.

    Raises:
        ValueError: not a list of (thresholds, class_id, top_k), unsorted or non-finite thresholds, a
            negative class_id or top_k, or a sparse loss (the histograms need targets of the output's shape).
    """
    if isinstance(confusion, str) or not isinstance(confusion, (list, tuple)):
        raise ValueError(f"confusion: expected a list of (thresholds, class_id, top_k), got {confusion!r}")
    if confusion and loss in SPARSE_LOSSES:
        raise ValueError(f"confusion: threshold metrics need targets of the output's shape, not the sparse "
                         f"labels of {loss!r}")
    specs = []
    for i, spec in enumerate(confusion):
        if not isinstance(spec, tuple) or len(spec) != 3:
            raise ValueError(f"confusion[{i}]: expected (thresholds, class_id, top_k), got {spec!r}")
        thresholds = np.asarray(spec[0], dtype=np.float64)
        if (thresholds.ndim != 1 or not 1 <= len(thresholds) <= _INT_MAX // 4
                or not np.all(np.isfinite(thresholds)) or np.any(np.diff(thresholds) < 0)):
            raise ValueError(f"confusion[{i}] thresholds: expected a non-empty sorted list of finite numbers, "
                             f"got {spec[0]!r}")
        for what, value in (("class_id", spec[1]), ("top_k", spec[2])):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                    or not -1 <= value <= _INT_MAX:
                raise ValueError(f"confusion[{i}] {what}: expected an int, got {value!r}")
        if spec[2] < 0:
            raise ValueError(f"confusion[{i}] top_k: expected 0 (none) or a positive int, got {spec[2]!r}")
        specs.append((np.ascontiguousarray(thresholds), int(spec[1]), int(spec[2])))
    return specs


def check_confusion_units(specs, units):
    """Raise ValueError when a confusion spec's class_id is not a column of `units`."""
    for i, (_, class_id, _) in enumerate(specs):
        if class_id >= units:
            raise ValueError(f"confusion[{i}] class_id: expected a column in [0, {units}), got {class_id}")


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


def check_end_calls(hook, n_metrics):
    """(calls, keys, model) from the hook's optional `end_calls` (docs/architecture.md, "Hooks"), or
    (None, None, None) without one. The Cython engine then makes the hook's batch-end calls itself; the
    reference engine calls the hook, which makes the same calls.

    Raises:
        ValueError: not (callables, keys, model or None), or not 1 + `n_metrics` str keys.
    """
    plan = getattr(hook, "end_calls", None) if hook is not None else None
    if plan is None:
        return None, None, None
    try:
        calls, keys, model = plan
        calls, keys = tuple(calls), tuple(keys)
    except (TypeError, ValueError):
        raise ValueError(f"hook.end_calls: expected (callables, keys, model or None), got {plan!r}") from None
    if len(keys) != 1 + n_metrics or not all(isinstance(key, str) for key in keys):
        raise ValueError(f"hook.end_calls: expected {1 + n_metrics} str keys (the loss and each "
                         f"metric), got {keys!r}")
    if not all(callable(call) for call in calls):
        raise ValueError(f"hook.end_calls: every call must be callable, got {calls!r}")
    return calls, keys, model


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
    """The trainable flag of a ('dense', W, b[, trainable]) core op (True when absent).

    Raises:
        ValueError: a 4th item that is not a bool.
    """
    if len(op) < 4:
        return True
    if not isinstance(op[3], (bool, np.bool_)):
        raise ValueError(f"ops[{index}] trainable: expected True or False, got {op[3]!r}")
    return bool(op[3])


def _number(value, what, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    value = float(value)
    if (low is not None and (value < low or (low_open and value == low))) or \
            (high is not None and (value > high or (high_open and value == high))):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        opening, closing = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{what}: expected a number in {opening}{lo}, {hi}{closing}, got {value!r}")
    return value


def _seed(value, what):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{what}: expected a non-negative int, got {value!r}")
    return int(value)


def _trainable_flag(op, index, position):
    if len(op) <= position:
        return True
    if not isinstance(op[position], (bool, np.bool_)):
        raise ValueError(f"ops[{index}] trainable: expected True or False, got {op[position]!r}")
    return bool(op[position])


def check_layer_op(op, index, dtype):
    """Validate one of the `names.LAYER_OPS` ops and return it normalised (numbers as floats, seeds as ints,
    the trainable flag made explicit):

    - ('penalty', array, l1, l2): adds l1 * sum|a| + l2 * sum a**2 to the loss (array: a parameter of an
      earlier op);
    - ('constraint', array, kind, max_value, min_value, rate, axis): applied to the array after each update;
    - ('activity_regularization', l1, l2): identity, adding the penalty of its input (summed over the batch);
    - ('relu', negative_slope, max_value or None, threshold); ('elu', alpha);
    - ('prelu', alpha[, trainable]): alpha of shape (width,) or (1,) (shared);
    - ('batch_normalization', gamma or None, beta or None, moving_mean, moving_variance, momentum, epsilon
      [, trainable]);
    - ('gaussian_noise', stddev, seed), ('gaussian_dropout', rate, seed), ('alpha_dropout', rate, seed).

    Raises:
        ValueError: a malformed op (names the op index, the item, what was expected and what was given).
    """
    kind = op[0]
    where = f"ops[{index}] {kind}"
    sizes = {"penalty": (4,), "constraint": (7,), "activity_regularization": (3,), "relu": (4,), "elu": (2,),
             "prelu": (2, 3), "batch_normalization": (7, 8), "gaussian_noise": (3,), "gaussian_dropout": (3,),
             "alpha_dropout": (3,)}
    if len(op) not in sizes[kind]:
        raise ValueError(f"ops[{index}]: malformed {kind!r} op {op!r}")
    if kind == "penalty":
        arr = check_float_array(op[1], dtype, f"{where} array", writeable=True)
        return (kind, arr, _number(op[2], f"{where} l1", low=0), _number(op[3], f"{where} l2", low=0))
    if kind == "constraint":
        arr = check_float_array(op[1], dtype, f"{where} array", writeable=True)
        if arr.ndim not in (1, 2):
            raise ValueError(f"{where} array: expected a 1-D or 2-D array, got shape {arr.shape}")
        check_name(op[2], CONSTRAINTS, f"{where} kind")
        axis = op[6]
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)) \
                or not -arr.ndim <= axis < arr.ndim:
            raise ValueError(f"{where} axis: expected an axis of a {arr.ndim}-D array, got {axis!r}")
        max_value = _number(op[3], f"{where} max_value", low=0)
        min_value = _number(op[4], f"{where} min_value", low=0, high=max_value)
        return (kind, arr, op[2], max_value, min_value, _number(op[5], f"{where} rate", low=0), int(axis) % arr.ndim)
    if kind == "activity_regularization":
        return (kind, _number(op[1], f"{where} l1", low=0), _number(op[2], f"{where} l2", low=0))
    if kind == "relu":
        max_value = None if op[2] is None else _number(op[2], f"{where} max_value", low=0)
        return (kind, _number(op[1], f"{where} negative_slope"), max_value, _number(op[3], f"{where} threshold"))
    if kind == "elu":
        return (kind, _number(op[1], f"{where} alpha"))
    if kind == "prelu":
        alpha = check_float_array(op[1], dtype, f"{where} alpha", ndim=1, writeable=True)
        return (kind, alpha, _trainable_flag(op, index, 2))
    if kind == "batch_normalization":
        mean = check_float_array(op[3], dtype, f"{where} moving_mean", ndim=1, writeable=True)
        width = mean.shape
        check_float_array(op[4], dtype, f"{where} moving_variance", shape=width, writeable=True)
        for position, name in ((1, "gamma"), (2, "beta")):
            if op[position] is not None:
                check_float_array(op[position], dtype, f"{where} {name}", shape=width, writeable=True)
        return (kind, op[1], op[2], mean, op[4], _number(op[5], f"{where} momentum"),
                _number(op[6], f"{where} epsilon", low=0, low_open=True), _trainable_flag(op, index, 7))
    if kind == "gaussian_noise":
        return (kind, _number(op[1], f"{where} stddev", low=0), _seed(op[2], f"{where} seed"))
    return (kind, _number(op[1], f"{where} rate", low=0, high=1, high_open=True), _seed(op[2], f"{where} seed"))


def layer_op_width(op):
    """The input width a normalised layer op requires (None: any width)."""
    if op[0] == "batch_normalization":
        return op[3].shape[0]
    if op[0] == "prelu" and op[1].shape[0] != 1:
        return op[1].shape[0]
    return None
