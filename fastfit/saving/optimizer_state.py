"""Optimizer state (`iterations`, slot arrays) in the `optimizer_weights` group of a model file.

Order is Keras 2's (`optimizer.get_weights()`): iterations, (Nadam: m_schedule), then every parameter's first
slot, every parameter's second slot, ... Names follow tf.keras 2.x: `Adam/iter:0`, `Adam/dense_1/kernel/m:0`.
Keras 3 files (`adam/iteration`, `adam/learning_rate`, then the slots of each variable in turn) are
converted when the counts fit; otherwise the state is not restored and a warning says so.
"""
import warnings

import numpy as np

from fastfit.contract.ops import trained_params
from fastfit.engine import lowering
from fastfit.saving import attributes, weights


def _params_and_names(model):
    """The trainable parameter arrays in engine order and their Keras 2 names."""
    params = trained_params(lowering.model_ops(model))
    trained = {id(p) for p in params}  # not frozen layers' weights, nor BatchNormalization's moving statistics
    names = [name for layer in lowering.output_chains(model)[0]
             for name, weight in zip(weights.weight_names(layer), layer.weights) if id(weight) in trained]
    if len(names) != len(params):
        names = [f"param_{i}:0" for i in range(len(params))]
    return params, names


def _slot_names(optimizer):
    active = getattr(optimizer, "_active_slots", None)
    return tuple(active()) if callable(active) else ()


def write(h5file, model):
    """Write `model.optimizer`'s state to `optimizer_weights`, if it has any (slots are built at first fit)."""
    optimizer = model.optimizer
    if optimizer is None or not getattr(optimizer, "slots", None):
        return
    values = _state_arrays(optimizer)
    _params, param_names = _params_and_names(model)
    prefix = type(optimizer).__name__
    names = [f"{prefix}/iter:0"]
    if getattr(optimizer, "kind", None) == "nadam":
        names.append(f"{prefix}/m_schedule:0")
    slot_names = _slot_names(optimizer) or tuple(f"slot_{k}" for k in range(len(optimizer.slots[0])))
    for slot in slot_names:
        names.extend(f"{prefix}/{p[:-2] if p.endswith(':0') else p}/{slot}:0" for p in param_names)
    if len(names) != len(values):  # an optimizer that orders its state differently: keep it, generic names
        names = [f"{prefix}/weight_{i}:0" for i in range(len(values))]
    group = h5file.create_group("optimizer_weights")
    attributes.write_name_list(group.attrs, "weight_names", names)
    for name, value in zip(names, values):
        group.create_dataset(name, data=value)


def _state_arrays(optimizer):
    """`optimizer.get_weights()` without its copies: the live arrays, which the writer copies anyway.

    Same order as `get_weights` (architecture contract): iterations, (Nadam) m_schedule, slots by kind.
    """
    slots = optimizer.slots
    per_param = {len(s) for s in slots}
    if len(per_param) != 1:
        return optimizer.get_weights()
    head = [np.array(optimizer.iterations, dtype=np.int64)]
    if getattr(optimizer, "kind", None) == "nadam":
        head.append(np.array(optimizer.m_schedule, dtype=np.float64))
    return head + [s[k] for k in range(per_param.pop()) for s in slots]


def read(contents, where):
    """The saved optimizer weights (`isolation.Weight`s, nothing read yet) in file order, or None."""
    return contents.optimizer


# Iterations beyond this cannot come from training (2**53 steps: centuries at a million steps per second).
MAX_ITERATIONS = 1 << 53


def restore(model, saved, read, where):
    """Load saved optimizer state into `model.optimizer`; warn (and keep a fresh state) if it does not fit.

    The saved shapes are checked against the model's parameters before anything is read, so optimizer
    state costs at most what the model's own slots cost.

    Arguments:
        saved: from `read`; read: `Contents.read`.

    Returns:
        True if the state was restored.

    Raises:
        ValueError: the saved `iterations` is not a count training can reach (negative, fractional, huge).
    """
    names = [weight.name for weight in saved]
    params, _ = _params_and_names(model)
    optimizer = model.optimizer
    keras3 = len(names) > 1 and names[0].endswith("/iteration") and names[1].endswith("/learning_rate")
    arrays = None
    problem = _shape_problem(optimizer, params, [weight.shape for weight in saved], keras3)
    if problem is None:
        arrays = read(saved)
        _check_iterations(arrays[0], where)
        if keras3:
            arrays = _from_keras3(arrays, len(params))
    try:
        if arrays is None:
            raise ValueError(problem)
        optimizer.set_weights(arrays, params=params)
    except (ValueError, TypeError) as error:
        # Keras does the same: a model whose optimizer state cannot be restored still loads and trains.
        optimizer.build(params)
        optimizer.iterations = 0
        warnings.warn(f"{where}: the saved optimizer state was not restored ({error}); the optimizer starts "
                      "fresh", UserWarning, stacklevel=3)
        return False
    return True


def _shape_problem(optimizer, params, shapes, keras3):
    """Why saved arrays of `shapes` cannot be `optimizer`'s state for `params`, or None."""
    active = _slot_names(optimizer)
    n_slots = len(active) if active else 0
    n_head = 2 if keras3 or getattr(optimizer, "kind", None) == "nadam" else 1
    if not params or len(shapes) != n_head + n_slots * len(params):
        return (f"the file holds {len(shapes)} optimizer arrays, this optimizer has {n_head} + {n_slots} per "
                f"parameter for {len(params)} parameters")
    if any(int(np.prod(shape, dtype=object)) != 1 for shape in shapes[:n_head]):
        return f"the first {n_head} optimizer arrays must be single numbers, found shapes {shapes[:n_head]}"
    rest = shapes[n_head:]
    if keras3:  # per variable: its slots in turn
        expected = [tuple(p.shape) for p in params for _ in range(n_slots)]
    else:  # per slot kind: every parameter in turn
        expected = [tuple(p.shape) for _ in range(n_slots) for p in params]
    for index, (shape, want) in enumerate(zip(rest, expected)):
        if tuple(shape) != want:
            return f"optimizer array {n_head + index} has shape {tuple(shape)}, the parameter it belongs to {want}"
    return None


def _check_iterations(value, where):
    value = np.asarray(value).reshape(-1)[0]
    number = float(value) if value.dtype.kind == "f" else int(value)
    if not (0 <= number <= MAX_ITERATIONS) or number != int(number):
        raise ValueError(f"{where}: the saved optimizer iteration count {value!r} is impossible (expected a whole "
                         f"number from 0 to 2**53): the file is corrupted or crafted")


def _from_keras3(arrays, n_params):
    """Keras 3 order (iteration, learning_rate, per variable: slot 1, slot 2, ...) → Keras 2 order."""
    rest = arrays[2:]
    if n_params == 0 or len(rest) % n_params:
        return None
    per = len(rest) // n_params
    by_kind = [rest[v * per + k] for k in range(per) for v in range(n_params)]
    return [np.asarray(arrays[0], dtype=np.int64)] + by_kind
