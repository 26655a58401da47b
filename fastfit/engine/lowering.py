"""Lower a model to the ops the compute core runs, and keep its core networks.

Both cores (Cython `fastfit._ext._loop`, NumPy `fastfit._reference.loop`, chosen by `fastfit.core`) keep one
contract (`fastfit.contract`). Core networks hold views of the layers' arrays, so they stay valid across
`set_weights`; they are cached per model and rebuilt only when the layer structure changes.
"""
import numpy as np

from fastfit.core import core_class
from fastfit.engine.base_layer import check_lowerable

# Ops that take a last trainable flag (`contract.ops`): a frozen layer's ops get False.
_PARAM_OPS = ("dense", "prelu", "batch_normalization")


def chain_ops(layers, frozen=frozenset()):
    """The core ops of a chain of layers (InputLayer and Flatten contribute none).

    Arguments:
        frozen: the layers whose weights training leaves alone (their ops with parameters carry a last item,
            False).
    """
    ops = []
    for layer in layers:
        check_lowerable(layer)  # the last guard: the cores never run a layer as something it is not
        layer_ops = layer.core_ops()
        if layer in frozen:
            layer_ops = [op + (False,) if op[0] in _PARAM_OPS else op for op in layer_ops]
        ops.extend(layer_ops)
    return ops


def model_ops(model, output_index=0):
    """The core ops of one output chain of `model`, with the layers frozen at its last `compile`."""
    return chain_ops(output_chains(model)[output_index], getattr(model, "_frozen", frozenset()))


def model_dtype(layers):
    """The one float dtype of the layers' weights.

    Raises:
        ValueError: layers with weights of different dtypes (the cores run one dtype end to end).
    """
    dtypes = {}
    for layer in layers:
        for weight in layer.weights:
            dtypes.setdefault(weight.dtype, layer.name)
    if len(dtypes) > 1:
        found = ", ".join(f"{dtype} (layer '{name}')" for dtype, name in dtypes.items())
        raise ValueError(f"All layers of a model must have one dtype, got {found}; pass the same `dtype=` to "
                         "every layer, or call fastfit.backend.set_floatx() before building the model")
    if dtypes:
        return next(iter(dtypes))
    return np.dtype(layers[0].dtype if layers else "float32")


def output_chains(model):
    """For each model output, the list of layers from the input to it."""
    return [model._chain_to_input(out, model.inputs[0]) for out in model.outputs]


def core_network(model, core, loss, metrics, output_index=0, confusion=()):
    """Return a cached core network for one output chain of `model` (`confusion`: the threshold histograms
    of its metric objects, see `fastfit.engine.metric_readout`)."""
    key = (core, loss, tuple(metrics), output_index, tuple(confusion))
    cached = model._core_cache.get(key)
    if cached is None:
        layers = output_chains(model)[output_index]
        ops = model_ops(model, output_index)
        cached = core_class(core)(ops, loss, list(metrics), model_dtype(layers), confusion=list(confusion))
        model._core_cache[key] = cached
    return cached


# The forward pass of predict/evaluate runs in blocks of at least this many rows when no batch hook needs
# the user's batches (docs/guide/performance-and-threads.md, "Forward blocks"): one GEMM per layer and block
# instead of one per batch of 32, so W is packed once per block. A block's widest activation buffer stays
# within BLOCK_BYTES unless the user's batch is already larger.
FORWARD_BLOCK_ROWS = 1024
FORWARD_BLOCK_BYTES = 16 << 20


def forward_block(model, batch_size, dtype):
    """The rows per engine call batch for a forward-only pass (predict, evaluate) without batch hooks:
    `max(batch_size, FORWARD_BLOCK_ROWS)`, fewer rows for layers so wide that the block would need more
    than FORWARD_BLOCK_BYTES per activation buffer (never fewer than `batch_size`)."""
    widest = model._core_cache.get("widest")  # the cache is emptied whenever the layers change
    if widest is None:
        widest = max([1] + [max(op[1].shape) for i in range(len(model.outputs))
                            for op in model_ops(model, i) if op[0] == "dense"])
        model._core_cache["widest"] = widest
    rows = min(FORWARD_BLOCK_ROWS, max(1, FORWARD_BLOCK_BYTES // (widest * np.dtype(dtype).itemsize)))
    return max(int(batch_size), rows)
