"""Keras 0.x/1 argument spellings, converted to Keras 2 with a DeprecationWarning."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def convert_legacy_kwargs(layer_name: str, kwargs: dict[str, Any],
                          renames: Mapping[str, str | tuple[str, Callable[[Any], Any]]],
                          must_be_none: Iterable[str] = ()) -> None:
    """Rename legacy keywords in `kwargs` in place.

    Arguments:
        layer_name: class name, for messages.
        kwargs: the keyword arguments given to the constructor.
        renames: `{legacy: modern}` pairs; a value may be a `(modern, convert)` pair to transform the value.
        must_be_none: legacy keywords fastfit only accepts as None (features it does not have).

    Raises:
        TypeError: a legacy keyword and its modern spelling were both given.
    """
    for legacy, modern in renames.items():
        convert = None
        if isinstance(modern, tuple):
            modern, convert = modern
        if legacy not in kwargs:
            continue
        if modern in kwargs:
            raise TypeError(f"{layer_name} received both the legacy keyword argument `{legacy}` and the Keras 2 "
                            f"keyword argument `{modern}`; pass only `{modern}`")
        value = kwargs.pop(legacy)
        warnings.warn(f"Update your `{layer_name}` call to the Keras 2 API: `{legacy}` is now `{modern}`",
                      DeprecationWarning, stacklevel=3)
        kwargs[modern] = convert(value) if convert else value
    for legacy in must_be_none:
        if kwargs.get(legacy) is not None:
            raise ValueError(f"{layer_name}: `{legacy}` is not supported by fastfit (only None)")
        kwargs.pop(legacy, None)
