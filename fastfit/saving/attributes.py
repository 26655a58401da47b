"""Reading and writing HDF5 attributes the way Keras 2 files hold them (docs/saving.md).

Writer: short strings and name lists as fixed-length bytes (old readers call `.decode()` on them), long JSON
as variable-length bytes, name lists split into `name0`, `name1`, ... above the HDF5 object header limit.
Reader: bytes or str, scalar or array, chunked or not, and empty lists of any dtype (Keras 3 writes an
empty float64 array for weightless layers).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

# The object header of an HDF5 group holds at most 64 KiB of attributes (Keras 2's HDF5_OBJECT_HEADER_LIMIT).
HEADER_LIMIT = 64512


def to_text(value: Any) -> str:
    """An attribute value (bytes, numpy.bytes_, str, 0-d array) as a str."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def write_short_text(attrs: Any, name: str, text: str) -> None:
    """A short string as fixed-length bytes (numpy.bytes_)."""
    attrs[name] = np.bytes_(text.encode("utf-8"))


def write_json(attrs: Any, name: str, obj: Any) -> None:
    """A JSON document as variable-length bytes (no size limit; Keras writes `json.dumps(...).encode()`)."""
    attrs[name] = json.dumps(obj, default=_json_default).encode("utf-8")


def read_json(attrs: Any, name: str, where: str) -> Any:
    """Parse the JSON attribute `name`; None if absent.

    Raises:
        ValueError: the attribute is not valid JSON (names it and `where`).
    """
    if name not in attrs:
        return None
    try:
        return json.loads(to_text(attrs[name]))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"{where}: attribute '{name}' is not valid JSON ({type(error).__name__}: {error})") from None


def write_name_list(attrs: Any, name: str, names: Sequence[str]) -> None:
    """A list of names as a fixed-length bytes array, split into `name0`, `name1`, ... when too large."""
    encoded = [n.encode("utf-8") for n in names]
    # Fixed-length arrays hold each item at the longest item's length.
    width = max((len(e) for e in encoded), default=1) or 1
    if not encoded:
        attrs[name] = np.array([], dtype="S1")
        return
    per_chunk = max(1, HEADER_LIMIT // width)
    if len(encoded) <= per_chunk:
        attrs[name] = np.array(encoded, dtype=f"S{width}")
        return
    for index, start in enumerate(range(0, len(encoded), per_chunk)):
        attrs[f"{name}{index}"] = np.array(encoded[start:start + per_chunk], dtype=f"S{width}")


def read_name_list(attrs: Any, name: str) -> list[str]:
    """Read a name list written whole or in chunks; [] if absent or empty (any dtype)."""
    if name in attrs:
        return _names(attrs[name])
    names, index = [], 0
    while f"{name}{index}" in attrs:
        names.extend(_names(attrs[f"{name}{index}"]))
        index += 1
    return names


def _names(value):
    array = np.asarray(value)
    if array.size == 0:
        return []
    return [to_text(item) for item in array.reshape(-1)]


def _json_default(obj):
    """numpy scalars and arrays in configs (shapes, seeds) as plain JSON values."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot write {type(obj).__name__} {obj!r} to a JSON config")
