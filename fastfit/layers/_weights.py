"""Helpers shared by layers with weights: the regularizer/constraint keywords and their core ops."""
from fastfit import constraints, regularizers


def take_penalties(owner, kwargs, names):
    """Pop `<name>_regularizer` and `<name>_constraint` for each weight name from `kwargs` as objects.

    Raises:
        ValueError: a value that is not a regularizer/constraint fastfit can run (names the keyword).
    """
    found = {}
    for name in names:
        for suffix, module in (("regularizer", regularizers), ("constraint", constraints)):
            key = f"{name}_{suffix}"
            try:
                found[key] = module.get(kwargs.pop(key, None))
            except ValueError as exc:
                raise ValueError(f"{owner}: `{key}`: {exc}") from None
    return found


def penalty_config(layer, names):
    """The serialized `<name>_regularizer` / `<name>_constraint` entries of a config."""
    config = {}
    for name in names:
        config[f"{name}_regularizer"] = regularizers.serialize(getattr(layer, f"{name}_regularizer"))
    for name in names:
        config[f"{name}_constraint"] = constraints.serialize(getattr(layer, f"{name}_constraint"))
    return config


def penalty_ops(layer, names):
    """The core ops of the regularizers and constraints on the layer's weights `names`."""
    ops = []
    for name in names:
        ops += regularizers.core_ops(getattr(layer, name), getattr(layer, f"{name}_regularizer"))
    for name in names:
        ops += constraints.core_ops(getattr(layer, name), getattr(layer, f"{name}_constraint"))
    return ops
