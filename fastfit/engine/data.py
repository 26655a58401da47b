"""Check and convert user data once per call, in Python, before any engine code runs.

Every check that can fail happens here, so a bad call raises a clear exception (naming the argument, what
was expected and what was given) and leaves the model untouched. Conversion copies only when needed: a
C-contiguous array of the model's dtype is used as is.
"""
import numpy as np

from fastfit.contract.names import SPARSE_LOSSES


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def as_numeric_array(value, argument):
    """Return `value` as a NumPy array of real numbers (bool and int allowed), without copying arrays.

    Raises:
        TypeError: None, strings, objects, complex numbers or ragged lists.
    """
    if value is None:
        raise TypeError(f"`{argument}` is required: expected an array of numbers, got None")
    if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value) and len(value) != 1:
        raise TypeError(f"`{argument}`: fastfit models take one input array, got a list of {len(value)} arrays")
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], np.ndarray):
        value = value[0]  # Keras accepts [x] for a single-input model
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise TypeError(f"`{argument}` must be a rectangular array of numbers; could not convert it: {error}") \
            from None
    if array.dtype.kind not in "biuf":
        kind = {"c": "complex numbers", "O": "Python objects", "U": "strings", "S": "bytes",
                "M": "datetimes", "m": "timedeltas", "V": "structured records"}.get(array.dtype.kind, "")
        raise TypeError(f"`{argument}` must hold real numbers (float, int or bool), got {_describe(array)}"
                        + (f" ({kind})" if kind else ""))
    if array.ndim == 0:
        raise ValueError(f"`{argument}` must have a sample axis, got a scalar")
    return array


def check_finite(array, argument, threads=None):
    """Raise ValueError if a float array holds NaN or inf.

    `threads` caps the compiled scan's threads (a reader thread beside the training engine passes 1); by
    default it uses the threads BLAS may use.

    One read of the data: the compiled scan (`fastfit._ext._scan`, on the threads BLAS may use) counts the
    elements whose exponent bits are all set. Without the compiled modules, the NumPy twin: the sum of squares
    (one BLAS dot, no temporary the size of the data) is NaN or inf whenever some element is; only then (or
    when large finite values overflow it) is the exact element-wise count made, in chunks.
    """
    if array.dtype.kind != "f":
        return
    bad = _count_nonfinite(array, threads)
    if bad:
        raise ValueError(f"`{argument}` contains {bad} NaN or infinite value(s); clean the data first")


def _compiled_scan():
    """(count_nonfinite, blas_threads) of the compiled modules, or None without them (looked up once)."""
    global _SCAN
    if _SCAN is _UNSET:
        try:
            from fastfit._ext._blas import blas_threads
            from fastfit._ext._scan import count_nonfinite
        except ImportError:
            _SCAN = None
        else:
            _SCAN = (count_nonfinite, blas_threads)
    return _SCAN


_UNSET = object()
_SCAN = _UNSET
_SCAN_ONE_THREAD = 1 << 18  # elements the scan reads as one task (`_scan.CHUNK`): no thread count needed


def _count_nonfinite(array, threads=None):
    scan = _compiled_scan()
    if scan is not None and array.dtype.char in "fd" and array.flags.c_contiguous:  # float32, float64
        count_nonfinite, blas_threads = scan
        if array.size <= _SCAN_ONE_THREAD:
            threads = 1
        return count_nonfinite(array, threads or blas_threads())
    flat = array.reshape(-1) if array.flags.c_contiguous else np.ravel(array)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.dot(flat, flat)):
            return 0
    return sum(int(np.count_nonzero(~np.isfinite(chunk))) for chunk in _chunks(flat))


def _chunks(flat, size=1 << 16):
    for start in range(0, len(flat), size):
        yield flat[start:start + size]


def convert(array, dtype, argument):
    """Return `array` as a C-contiguous array of `dtype`.

    Raises:
        ValueError: finite values too large for `dtype` (1e39 becomes inf in float32).
    """
    with np.errstate(over="ignore"):
        converted = np.ascontiguousarray(array, dtype=dtype)
    narrowing = array.dtype.kind == "f" and array.dtype.itemsize > converted.dtype.itemsize
    if narrowing and not np.isfinite(converted).all():  # NaN/inf were refused before: this is overflow
        raise ValueError(f"`{argument}` holds values too large for {np.dtype(dtype).name} (largest magnitude "
                         f"{np.abs(array).max()}); scale the data or use float64 layers")
    return converted


def prepare_inputs(x, input_shape, dtype, argument="x"):
    """Return `x` as a C-contiguous `(n, features)` array of `dtype`, checked against the model input shape.

    Arguments:
        input_shape: the model's input shape with the batch axis (`(None, 28, 28)`).
    """
    array = as_numeric_array(x, argument)
    expected = tuple(input_shape[1:])
    given = array.shape[1:]
    if len(given) != len(expected) or any(e is not None and e != g for e, g in zip(expected, given)):
        raise ValueError(f"`{argument}`: the model expects samples of shape {expected} "
                         f"(input shape {(None,) + expected}), got {_describe(array)}")
    if array.shape[0] == 0:
        raise ValueError(f"`{argument}` has 0 samples; give at least one")
    check_finite(array, argument)
    flat = array.reshape(array.shape[0], -1)
    return convert(flat, dtype, argument)


def prepare_targets(y, loss, units, dtype, argument="y"):
    """Return targets in the engine's form for `loss`: int64 labels `(n,)` for sparse losses, else `(n, units)`.

    Raises:
        ValueError: shape or values that do not fit the loss (suggests the right loss or `to_categorical`).
    """
    array = as_numeric_array(y, argument)
    check_finite(array, argument)
    if loss in SPARSE_LOSSES:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise ValueError(f"`{argument}`: {loss} expects integer class labels of shape (n,) or (n, 1), got "
                             f"{_describe(array)}" + ("; for one-hot targets use categorical_crossentropy"
                                                      if array.ndim == 2 else ""))
        labels = array.astype(np.int64)
        if array.dtype.kind == "f" and not np.array_equal(labels, array):
            raise ValueError(f"`{argument}`: {loss} expects integer class labels, got non-integer values")
        if labels.size and (labels.min() < 0 or labels.max() >= units):
            raise ValueError(f"`{argument}`: labels must be in [0, {units - 1}] for a model with {units} outputs, "
                             f"got values from {labels.min()} to {labels.max()}")
        return np.ascontiguousarray(labels)
    if array.ndim == 1 and units == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != units:
        hint = ""
        if units > 1 and (array.ndim == 1 or array.ndim == 2 and array.shape[1] == 1):
            hint = (f"; for integer class labels use loss='sparse_categorical_crossentropy', or convert them with "
                    f"fastfit.utils.to_categorical(y, {units})")
        raise ValueError(f"`{argument}`: loss {loss} expects targets of shape (n, {units}) to match the model "
                         f"output, got {_describe(array)}{hint}")
    if loss == "binary_crossentropy" and array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(f"`{argument}`: binary_crossentropy expects targets in [0, 1], got values from "
                         f"{array.min()} to {array.max()}")
    return convert(array, dtype, argument)


def check_sample_count(x, y, x_name="x", y_name="y"):
    if len(x) != len(y):
        raise ValueError(f"`{x_name}` and `{y_name}` must have the same number of samples, got {len(x)} and {len(y)}")


def prepare_sample_weight(sample_weight, class_weight, targets, loss, units, dtype, argument="sample_weight"):
    """Merge `sample_weight` (per sample) and `class_weight` (per class) into one `(n,)` array, or None.

    Raises:
        ValueError: wrong length, negative or non-finite weights, or classes missing from / unknown to
            `class_weight`.
    """
    n = len(targets)
    weights = None
    if sample_weight is not None:
        weights = as_numeric_array(sample_weight, argument)
        if weights.ndim == 2 and weights.shape[1] == 1:
            weights = weights[:, 0]
        if weights.shape != (n,):
            raise ValueError(f"`{argument}` must have shape ({n},), one weight per sample, got {_describe(weights)}")
        check_finite(weights, argument)
        if weights.size and weights.min() < 0:
            raise ValueError(f"`{argument}` must be >= 0, got a minimum of {weights.min()}")
        weights = weights.astype(np.float64)
    if class_weight is not None:
        per_sample = _class_weights(class_weight, targets, loss, units)
        weights = per_sample if weights is None else weights * per_sample
    return None if weights is None else convert(weights, dtype, argument)


def _class_weights(class_weight, targets, loss, units):
    if not isinstance(class_weight, dict):
        raise TypeError(f"`class_weight` must be a dict {{class index: weight}}, got {type(class_weight).__name__}")
    n_classes = 2 if units == 1 else units
    table = np.ones(n_classes)
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < n_classes:
            raise ValueError(f"`class_weight` names class {key!r}, but the model has classes 0..{n_classes - 1}")
        if not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"`class_weight[{key}]` must be a finite number >= 0, got {value!r}")
        table[key] = value
    if loss in SPARSE_LOSSES:
        classes = targets
    elif units == 1:
        classes = np.rint(targets[:, 0]).astype(np.int64)
    else:
        classes = np.argmax(targets, axis=1)
    missing = sorted(set(np.unique(classes).tolist()) - set(int(k) for k in class_weight))
    if missing:
        raise ValueError(f"`class_weight` must contain all classes in the data; the classes {missing} exist in "
                         "the data but not in `class_weight`")
    return table[np.clip(classes, 0, n_classes - 1)]


def check_batch_size(batch_size, argument="batch_size"):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"`{argument}` must be a positive integer, got {batch_size!r}")
    # Any batch larger than the data is one batch; capping keeps huge values within the engines' C integers.
    return min(int(batch_size), 2 ** 62)


def check_non_negative_int(value, argument):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{argument}` must be a non-negative integer, got {value!r}")
    return int(value)
