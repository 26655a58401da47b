"""Type aliases shared by the public API's annotations (they describe values; nothing here runs)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

# A shape with the batch axis (or any unknown size) as None: (None, 784). The sizes are `int | None`; they are
# typed Any because a layer's `build` and `compute_output_shape` compute with sizes its `check_input_shape` has
# already found known.
Shape = tuple[Any, ...]
# A Keras config: the JSON-compatible dict `get_config` returns and `from_config` takes.
Config = dict[str, Any]
# One engine op: ("dense", kernel, bias), ("activation", "relu"), ... (see docs/architecture.md).
EngineOp = tuple[Any, ...]
# Model inputs or targets: one array or, for the functional API, a list or dict of arrays.
ArrayOrArrays = np.ndarray | list[np.ndarray] | dict[str, np.ndarray]

if TYPE_CHECKING:
    from fastfit.constraints import Constraint
    from fastfit.initializers import Initializer
    from fastfit.regularizers import Regularizer

# What the `*_initializer`, `*_regularizer` and `*_constraint` keywords accept: a name, a config dict or an object.
InitializerLike: TypeAlias = "str | Config | Initializer | Callable[..., Any]"
RegularizerLike: TypeAlias = "str | Config | Regularizer | None"
ConstraintLike: TypeAlias = "str | Config | Constraint | None"
