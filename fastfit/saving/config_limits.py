"""Bounds on what a model file's configs may ask for, checked before anything is built or read.

- `parse`: a JSON attribute, with bounded integers and nesting (the text itself is at most 64 MiB:
  `h5inspect.MAX_TEXT_BYTES`) and at most `MAX_LAYERS` layers in a model config; linear in the text's size.
- `weight_budget`: while a model is rebuilt from a file's config, every layer's weight shapes are computed
  from its config and input shape (`weight_shapes`) *before* the layer allocates them, and the model may not
  hold more weight elements than the file's weight datasets declare. A config asking for `units=10**12`
  is refused before anything is allocated, and the memory a load takes is bounded by the weights the file
  holds (which `assign` then checks shape by shape before reading any).

The seam for new layers: each layer's `weight_shapes(input_shape)` method names the weights `build` would
create and their shapes, in `layer.weights` order, without allocating them (the base class: none);
`tests/saving/test_safe_loading.py` checks, for every layer class fastfit exports, that it matches what
`build` creates. Layers passed in `custom_objects` are the caller's own code and are built unchecked.
"""
import contextlib
import json
import math
from collections.abc import Iterator

from fastfit.engine import base_layer

MAX_LAYERS = 100_000
MAX_DEPTH = 64          # nesting of JSON objects and lists (Keras configs nest about 8 deep)
MAX_INT = 1 << 64       # |integer| in a config (seeds are at most 64 bits; sizes are checked separately)


class TooLarge(ValueError):
    """The config asks for more than the file holds (the message names the file)."""


def _bounded_int(text):
    if len(text.lstrip("-")) > 20:
        raise ValueError(f"the integer {text[:24]}... is too large")
    value = int(text)
    if abs(value) >= MAX_INT:
        raise ValueError(f"the integer {value} is too large")
    return value


def parse(attrs: "dict[str, str]", name: str, where: str) -> object:
    """The JSON attribute `name` of `attrs` (a dict of text), or None if absent.

    Raises:
        ValueError: not valid JSON, nested deeper than MAX_DEPTH, an integer of 2**64 or more, or a model
            config with more than MAX_LAYERS layers (names the attribute and `where`).
    """
    if name not in attrs:
        return None
    try:
        value = json.loads(attrs[name], parse_int=_bounded_int)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"{where}: attribute '{name}' is not valid JSON or is out of bounds "
                         f"({type(error).__name__}: {str(error)[:200]})") from None
    _check_depth(value, name, where)
    if name == "model_config" and isinstance(value, dict):
        inner = value.get("config")
        layers = inner.get("layers") if isinstance(inner, dict) else inner
        if isinstance(layers, list) and len(layers) > MAX_LAYERS:
            raise ValueError(f"{where}: the model config has {len(layers)} layers; at most {MAX_LAYERS} are loaded")
    return value


def _check_depth(value, name, where):
    """Iteratively (no recursion), in time linear in the number of values."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{where}: attribute '{name}' nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, (dict, list)))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))


# -- weights a config implies --------------------------------------------------------------------------------
def weight_shapes(layer, input_shape: tuple) -> "list[tuple] | None":
    """The shapes `layer` will create for `input_shape` (its `weight_shapes` method, which allocates nothing);
    None for a class defined outside fastfit (the caller's own code, from `custom_objects`: unchecked)."""
    if not type(layer).__module__.startswith("fastfit."):
        return None
    return [tuple(shape) for shape in layer.weight_shapes(input_shape).values()]


@contextlib.contextmanager
def weight_budget(elements: int, where: str) -> Iterator[None]:
    """While active (in this thread / context), building a layer first checks that the weights of all layers
    built so far, itself included, hold at most `elements` values.

    Raises:
        TooLarge: the config asks for more (names the layer and `where`).
    """
    total = [0]

    def check(layer, input_shape):
        shapes = weight_shapes(layer, input_shape)
        if not shapes:
            return
        count = sum(math.prod(shape) for shape in shapes)
        total[0] += count
        if total[0] > elements:
            raise TooLarge(f"{where}: layer '{layer.name}' ({type(layer).__name__}) would create weights of shapes "
                           f"{[tuple(s) for s in shapes]}, and the model's weights would then hold {total[0]} values "
                           f"while the file's weights hold only {elements}: the config does not match the file")

    token = base_layer.BUILD_CHECK.set(check)
    try:
        yield
    finally:
        base_layer.BUILD_CHECK.reset(token)
