"""The op-list parser both engines run once per network (docs/architecture.md, "The engine contract").

`parse_ops` validates a model's op list and returns it as small named tuples: every array checked (dtype,
layout, shape, writeable: the engines update them in place), the widths chained, the trainable flags read,
penalties and constraints tied to a parameter array of an earlier op, and the identities (rate-0 dropouts,
zero-strength noise) dropped. Each engine then builds its own ops from the parsed list (the reference its
NumPy op objects, the Cython engine its C op table with Dense+activation fusion); neither re-checks an op.
`trained_params` gives the trained parameter arrays in the order the optimizer slots follow.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from fastfit.contract.checks import (
    check_float_array,
    check_layer_op,
    check_name,
    check_trainable,
    layer_op_width,
)
from fastfit.contract.names import ACTIVATIONS, LAYER_OPS, NOISE_OPS


class DenseOp(NamedTuple):
    """`x @ W + b` (b None: no bias); a frozen op (`trainable` False) has no trained parameters."""
    W: np.ndarray
    b: np.ndarray | None
    trainable: bool


class ActivationOp(NamedTuple):
    """An activation of `names.ACTIVATIONS`."""
    name: str


class DropoutOp(NamedTuple):
    """Inverted dropout with 0 < rate < 1, active in training only."""
    rate: float
    seed: int


class LayerOp(NamedTuple):
    """One of `names.LAYER_OPS`, normalised by `checks.check_layer_op` (`op[0]` is `kind`); `width` is the
    input width the op requires, or None for any."""
    kind: str
    op: tuple[Any, ...]
    width: int | None


ParsedOp = DenseOp | ActivationOp | DropoutOp | LayerOp

_KINDS = ("dense", "activation", "dropout") + LAYER_OPS

# Ops with trained parameters: (slice of the op holding them, position of the optional trainable flag).
_PARAM_OPS = {"dense": (slice(1, 3), 3), "prelu": (slice(1, 2), 2), "batch_normalization": (slice(1, 3), 7)}


def parse_ops(ops: Sequence[tuple[Any, ...]], dtype: np.dtype) -> list[ParsedOp]:
    """Validate the op list `ops` of a network of `dtype` and return it parsed (see the module docstring).

    Raises:
        ValueError: an op that is not one of the contract's forms, an array of the wrong dtype, layout or shape
            (or read-only), widths that do not chain, a dropout rate outside [0, 1) or a seed that is not a
            non-negative int, a penalty or constraint on an array no earlier op holds, two penalties on one
            array. The message names the op index, the item, what was expected and what was given.
    """
    if not isinstance(ops, (list, tuple)):
        raise ValueError(f"ops: expected a list of tuples, got {type(ops).__name__}")
    parsed: list[ParsedOp] = []
    width: int | None = None  # the output width of the ops so far (None: not fixed yet)
    arrays: list[np.ndarray] = []  # the parameter arrays of the ops so far: penalties and constraints name one
    penalised: list[np.ndarray] = []
    for i, op in enumerate(ops):
        if not isinstance(op, tuple) or not op or op[0] not in _KINDS:
            raise ValueError(f"ops[{i}]: expected ('dense', W, b[, trainable]), ('activation', name), "
                             f"('dropout', rate, seed) or one of {list(LAYER_OPS)}, got {op!r}")
        kind = op[0]
        if kind in LAYER_OPS:
            op = check_layer_op(op, i, dtype)
            if kind in ("penalty", "constraint"):
                if not any(a is op[1] for a in arrays):
                    raise ValueError(f"ops[{i}] {kind} array: expected a parameter array of an earlier op")
                if kind == "penalty" and (op[2] or op[3]):
                    if any(a is op[1] for a in penalised):
                        raise ValueError("penalty: two penalty ops on one array (combine them into one L1L2)")
                    penalised.append(op[1])
                parsed.append(LayerOp(kind, op, None))
                continue
            need = layer_op_width(op)
            if need is not None and width is not None and need != width:
                raise ValueError(f"ops[{i}] {kind}: expected {need} input features, the op before gives {width}")
            width = need if need is not None else width
            if kind in NOISE_OPS and op[1] == 0:  # a noise op of zero strength is the identity
                continue
            if kind in ("prelu", "batch_normalization"):
                arrays += [a for a in op[1:3] if isinstance(a, np.ndarray)]
            parsed.append(LayerOp(kind, op, need))
        elif kind == "dense" and len(op) in (3, 4):
            W = check_float_array(op[1], dtype, f"ops[{i}] W", ndim=2, writeable=True)
            if width is not None and W.shape[0] != width:
                raise ValueError(f"ops[{i}] W: expected {width} input rows, got shape {W.shape}")
            b = op[2]
            if b is not None:
                check_float_array(b, dtype, f"ops[{i}] b", shape=(W.shape[1],), writeable=True)
            parsed.append(DenseOp(W, b, check_trainable(op, i)))
            arrays += [W] if b is None else [W, b]
            width = W.shape[1]
        elif kind == "activation" and len(op) == 2:
            parsed.append(ActivationOp(check_name(op[1], ACTIVATIONS, f"ops[{i}] activation")))
        elif kind == "dropout" and len(op) == 3:
            rate, seed = op[1], op[2]
            if (isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating))
                    or not 0 <= rate < 1):
                raise ValueError(f"ops[{i}] dropout rate: expected a number in [0, 1), got {rate!r}")
            if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"ops[{i}] dropout seed: expected a non-negative int, got {seed!r}")
            if rate > 0:  # rate 0 is the identity
                parsed.append(DropoutOp(float(rate), int(seed)))
        else:
            raise ValueError(f"ops[{i}]: malformed {kind!r} op {op!r}")
    return parsed


def trained_params(ops: Sequence[tuple[Any, ...]]) -> list[np.ndarray]:
    """The trained parameter arrays of the op list `ops` in engine order (W0, b0, W1, ...), the order the
    optimizer slots follow (frozen ops have none). Reads the ops as given; `parse_ops` checks them."""
    params: list[np.ndarray] = []
    for i, op in enumerate(ops):
        arrays = _PARAM_OPS.get(op[0])
        if arrays is None:
            continue
        if op[0] == "dense":
            if not check_trainable(op, i):
                continue
        elif len(op) > arrays[1] and op[arrays[1]] is False:
            continue
        params.extend(a for a in op[arrays[0]] if a is not None)
    return params
