"""Type aliases shared by the public API's annotations (they describe values; nothing here runs)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

# A shape with the batch axis (or any unknown size) as None: (None, 784). The sizes are `int | None`; they are
# typed Any because a layer's `build` and `compute_output_shape` compute with sizes its `check_input_shape` has
# already found known.
Shape = tuple[Any, ...]
# A Keras config: the JSON-compatible dict `get_config` returns and `from_config` takes.
Config = dict[str, Any]
# One core op: ("dense", kernel, bias), ("activation", "relu"), ... (see docs/architecture.md).
CoreOp = tuple[Any, ...]
# What `predict` returns: one array, or a list of arrays for a model with a list of outputs.
Outputs = np.ndarray | list[np.ndarray]
# What `evaluate` and `*_on_batch` return: the loss, `[loss, *metrics]`, or with `return_dict=True` a dict.
Scores = float | list[float] | dict[str, float]

if TYPE_CHECKING:
    from fastfit.constraints import Constraint
    from fastfit.engine.base_layer import SymbolicTensor
    from fastfit.initializers import Initializer
    from fastfit.metrics import Metric
    from fastfit.regularizers import Regularizer
    from fastfit.utils.data_utils import Sequence as KerasSequence

# What the `*_initializer`, `*_regularizer` and `*_constraint` keywords accept: a name, a config dict or an object.
InitializerLike: TypeAlias = "str | Config | Initializer | Callable[..., Any]"
RegularizerLike: TypeAlias = "str | Config | Regularizer | None"
ConstraintLike: TypeAlias = "str | Config | Constraint | None"

# A model's `inputs`/`outputs`: one tensor or a list of them.
SymbolicTensors: TypeAlias = "SymbolicTensor | Sequence[SymbolicTensor]"
# A file name the saving functions take.
PathLike: TypeAlias = "str | os.PathLike[str]"
# What `fit`, `evaluate` and `predict` take as `x` or `y`: array-likes (HDF5Matrix included), a list or dict of them
# for several inputs/outputs, or (for `x`) a generator or `fastfit.utils.Sequence` yielding batches.
Batches: TypeAlias = "Iterator[Any] | KerasSequence"
Data: TypeAlias = "npt.ArrayLike | Sequence[npt.ArrayLike] | Mapping[str, npt.ArrayLike] | Batches"
# `compile`'s `loss`: a name, a `fastfit.losses` function or Loss object, one per output (list or dict).
LossFunction: TypeAlias = "str | Callable[..., Any]"
LossLike: TypeAlias = "LossFunction | Sequence[LossFunction] | Mapping[str, LossFunction]"
# `compile`'s `metrics`: names, functions or Metric objects, for all outputs or per output.
MetricsLike: TypeAlias = "Sequence[str | Callable[..., Any] | Metric] | Mapping[str, Any]"
