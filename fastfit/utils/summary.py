"""`model.summary()`: Keras's layer table."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastfit.engine.base_layer import shape_str

if TYPE_CHECKING:
    from fastfit.engine.network import Network


def summary_shape(shape: Any) -> str:
    """A layer's output shape as the summary table shows it (a list of shapes joined by commas)."""
    return shape_str(shape) if not isinstance(shape, list) else ", ".join(shape_str(s) for s in shape)


def print_summary(model: Network, line_length: int | None = None, positions: Sequence[float] | None = None,
                  print_fn: Callable[[str], Any] | None = None) -> None:
    """Print the Keras 2 summary table: Layer (type), Output Shape, Param #, and the totals."""
    print_fn = print_fn or print
    line_length = line_length or 65
    positions = positions or [0.45, 0.85, 1.0]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]

    def row(fields):
        line = ""
        for field, stop in zip(fields, positions):
            line = (line + str(field))[:stop - 1].ljust(stop)
        print_fn(line.rstrip())

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    row(["Layer (type)", "Output Shape", "Param #"])
    print_fn("=" * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        try:
            shape = summary_shape(layer.output_shape)
        except AttributeError:
            shape = "multiple"
        row([f"{layer.name} ({type(layer).__name__})", shape, layer.count_params()])
        print_fn("=" * line_length if i == len(layers) - 1 else "_" * line_length)
    if not layers:
        print_fn("=" * line_length)
    trainable = sum(w.size for w in model.trainable_weights)
    total = model.count_params()
    print_fn(f"Total params: {total:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {total - trainable:,}")
    print_fn("_" * line_length)
