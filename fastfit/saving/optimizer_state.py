"""Optimizer state (`iterations`, slot arrays) in the `optimizer_weights` group of a model file.

Order is Keras 2's (`optimizer.get_weights()`): iterations, (Nadam: m_schedule), then every parameter's first
slot, every parameter's second slot, ... Names follow tf.keras 2.x: `Adam/iter:0`, `Adam/dense_1/kernel/m:0`.
Keras 3 files (`adam/iteration`, `adam/learning_rate`, then the slots of each variable in turn) are
converted when the counts fit; otherwise the state is not restored and a warning says so.
"""
import warnings

import numpy as np

from fastfit.saving import attributes, weights


def _params_and_names(model):
    """The trainable parameter arrays in engine order and their Keras 2 names."""
    from fastfit.engine import compiled
    params = compiled.chain_params(compiled.model_ops(model))
    trained = {id(p) for p in params}  # not frozen layers' weights, nor BatchNormalization's moving statistics
    names = [name for layer in compiled.output_chains(model)[0]
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
    """`optimizer.get_weights()` without its copies (HDF5 copies the arrays anyway; saves ~6 ms for W3).

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


def read(h5file, where):
    """The saved optimizer arrays (names, arrays) in file order, or None if the file has none."""
    if "optimizer_weights" not in h5file:
        return None
    group = h5file["optimizer_weights"]
    names = attributes.read_name_list(group.attrs, "weight_names")
    arrays = []
    for name in names:
        if name not in group:
            raise ValueError(f"{where}: optimizer weight '{name}' is listed but missing from the file")
        arrays.append(weights._numeric(group[name], f"{where}: optimizer weight '{name}'")[()])
    return names, arrays


def restore(model, saved, where):
    """Load saved optimizer state into `model.optimizer`; warn (and keep a fresh state) if it does not fit.

    Returns:
        True if the state was restored.
    """
    names, arrays = saved
    params, _ = _params_and_names(model)
    if names and names[0].endswith("/iteration") and len(names) > 1 and names[1].endswith("/learning_rate"):
        arrays = _from_keras3(arrays, len(params))
    try:
        if arrays is None:
            raise ValueError("the Keras 3 optimizer variables do not map onto this optimizer's slots")
        model.optimizer.set_weights(arrays, params=params)
    except (ValueError, TypeError) as error:
        # Keras does the same: a model whose optimizer state cannot be restored still loads and trains.
        model.optimizer.build(params)
        model.optimizer.iterations = 0
        warnings.warn(f"{where}: the saved optimizer state was not restored ({error}); the optimizer starts "
                      "fresh", UserWarning, stacklevel=3)
        return False
    return True


def _from_keras3(arrays, n_params):
    """Keras 3 order (iteration, learning_rate, per variable: slot 1, slot 2, ...) → Keras 2 order."""
    rest = arrays[2:]
    if n_params == 0 or len(rest) % n_params:
        return None
    per = len(rest) // n_params
    by_kind = [rest[v * per + k] for k in range(per) for v in range(n_params)]
    return [np.asarray(arrays[0], dtype=np.int64)] + by_kind
