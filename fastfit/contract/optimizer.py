"""The optimizer reader both engines run at the start of each training call (docs/architecture.md, "The engine
contract").

An optimizer object hands the engines `kind`, `lr` and the other hyper-parameters, `iterations` (the updates
done so far), Nadam's `m_schedule` and `slots` (per trained parameter array, the arrays its update rule
keeps). `read_optimizer` checks them all and returns an `OptimizerView`; the engines update `iterations`,
`m_schedule` and the slot arrays in place and write the counters back at every hook call and at the end.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from fastfit.contract.checks import check_float_array
from fastfit.contract.names import OPTIMIZERS

# Slot arrays per parameter (sgd needs its one only with momentum, adam a third with amsgrad).
SLOT_COUNTS = {"sgd": 1, "rmsprop": 1, "adagrad": 1, "adadelta": 2, "adam": 2, "adamax": 2, "nadam": 2}


def read_number(obj: Any, attr: str, default: float | None = None) -> float:
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


class Hyper:
    """The hyper-parameters of an optimizer object, read at the start of a call.

    Arguments:
        optimizer: object with `kind`, `lr`, `decay`, `epsilon` and the per-kind attributes.

    Raises:
        ValueError: unknown kind or a hyper-parameter that is not a number.
    """

    def __init__(self, optimizer: Any) -> None:
        kind = getattr(optimizer, "kind", None)
        if not isinstance(kind, str) or kind not in OPTIMIZERS:
            raise ValueError(f"optimizer.kind: expected one of {list(OPTIMIZERS)}, got {kind!r}")
        self.kind: str = kind
        self.lr = read_number(optimizer, "lr")
        self.decay = read_number(optimizer, "decay", 0.0)
        self.epsilon = read_number(optimizer, "epsilon", 1e-7)
        self.momentum = read_number(optimizer, "momentum", 0.0)
        self.nesterov = bool(getattr(optimizer, "nesterov", False))
        self.rho = read_number(optimizer, "rho", 0.9)
        self.beta_1 = read_number(optimizer, "beta_1", 0.9)
        self.beta_2 = read_number(optimizer, "beta_2", 0.999)
        self.amsgrad = bool(getattr(optimizer, "amsgrad", False))
        self.schedule_decay = read_number(optimizer, "schedule_decay", 0.004)

    def reread_lr(self, optimizer: Any) -> None:
        """Pick up a learning rate changed by a callback."""
        self.lr = read_number(optimizer, "lr")

    def slot_count(self) -> int:
        """Number of slot arrays per parameter the rule reads."""
        if self.kind == "sgd" and self.momentum == 0:
            return 0
        if self.kind == "adam" and self.amsgrad:
            return 3
        return SLOT_COUNTS[self.kind]


class OptimizerView(NamedTuple):
    """What a training call reads from the optimizer object: `slots` is the object's own list (one entry of at
    least `hyper.slot_count()` arrays per trained parameter array), updated in place."""
    hyper: Hyper
    iterations: int
    m_schedule: float
    slots: Sequence[Sequence[np.ndarray]]


def read_optimizer(optimizer: Any, params: Sequence[np.ndarray], dtype: np.dtype) -> OptimizerView:
    """Read and check the optimizer object for a training call over the trained parameter arrays `params`
    (`contract.ops.trained_params` order) of a network of `dtype`.

    Raises:
        ValueError: an unknown kind, a hyper-parameter that is not a number, `iterations` that is not a
            non-negative int, slots that are not one list of writeable arrays of the parameter's shape and
            `dtype` per parameter array.
    """
    hyper = Hyper(optimizer)
    iterations = getattr(optimizer, "iterations", None)
    if (isinstance(iterations, (bool, np.bool_)) or not isinstance(iterations, (int, np.integer))
            or iterations < 0):
        raise ValueError(f"optimizer.iterations: expected a non-negative int, got {iterations!r}")
    m_schedule = read_number(optimizer, "m_schedule", 1.0) if hyper.kind == "nadam" else 1.0
    slots = getattr(optimizer, "slots", None)
    if not isinstance(slots, (list, tuple)) or len(slots) != len(params):
        given = len(slots) if isinstance(slots, (list, tuple)) else type(slots).__name__
        raise ValueError(f"optimizer.slots: expected a list of {len(params)} entries (one per "
                         f"parameter array), got {given}")
    need = hyper.slot_count()
    for j, (param, entry) in enumerate(zip(params, slots)):
        if not isinstance(entry, (list, tuple)) or len(entry) < need:
            raise ValueError(f"optimizer.slots[{j}]: expected {need} arrays for {hyper.kind!r}, got {entry!r}")
        for k in range(need):
            check_float_array(entry[k], dtype, f"optimizer.slots[{j}][{k}]", shape=param.shape, writeable=True)
    return OptimizerView(hyper, int(iterations), m_schedule, slots)
