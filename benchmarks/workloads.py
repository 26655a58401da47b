"""The benchmark workloads (W1, W2, W3, W4) and their synthetic MNIST-shaped data.

A workload is a plain description (layer widths, activations, optimizer, batch size) that every engine
adapter turns into its own model, so all engines train exactly the same network on exactly the same data.
"""
from dataclasses import dataclass, field

import numpy as np

N_FEATURES = 784
N_CLASSES = 10
FULL_SAMPLES = 60000
QUICK_SAMPLES = 1024


@dataclass(frozen=True)
class Workload:
    """One training workload.

    Arguments:
        name: short id used on the command line and in the JSON (`w1`, `w2b32`, ...).
        title: human-readable description for the table.
        hidden: widths of the hidden ReLU layers (empty for softmax regression).
        optimizer: `'rmsprop'` or `'adam'` (Keras 2 defaults apart from `lr`).
        lr: learning rate.
        batch_size: samples per step.
        batchnorm: a BatchNormalization between each hidden Dense layer and its ReLU.
        l2: factor of an l2 penalty on every kernel (0: none).
    """

    name: str
    title: str
    hidden: tuple = field(default_factory=tuple)
    optimizer: str = "adam"
    lr: float = 0.001
    batch_size: int = 128
    batchnorm: bool = False
    l2: float = 0.0

    @property
    def widths(self):
        """Returns the layer widths from input to output, e.g. `[784, 128, 10]`."""
        return [N_FEATURES, *self.hidden, N_CLASSES]

    def dense_shapes(self):
        """Returns `(fan_in, fan_out)` for every Dense layer, input side first."""
        w = self.widths
        return list(zip(w[:-1], w[1:]))

    def n_params(self):
        """Returns the number of trainable parameters (kernels, biases, BatchNormalization's gamma and beta)."""
        return sum(i * o + o for i, o in self.dense_shapes()) + (2 * sum(self.hidden) if self.batchnorm else 0)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("w1", "W1 784-10 softmax, RMSprop, batch 128", (), "rmsprop", 0.001, 128),
        Workload("w2b32", "W2 784-128-10, Adam, batch 32", (128,), "adam", 0.001, 32),
        Workload("w2b128", "W2 784-128-10, Adam, batch 128", (128,), "adam", 0.001, 128),
        Workload("w3", "W3 784-1024-1024-10, Adam, batch 256", (1024, 1024), "adam", 0.001, 256),
        Workload("w4", "W4 784-256(BN)-256(BN)-10, l2, Adam, b128", (256, 256), "adam", 0.001, 128, True, 1e-4),
    )
}


def gemm_shapes(workload, batch_size=None):
    """The GEMMs one training step of `workload` needs, as `(m, n, k, kind)`.

    For each Dense layer with fan-in `i`, fan-out `o` and batch `B`: forward `(B,i)@(i,o)`, weight gradient
    `(i,B)@(B,o)` and, except for the first layer (nobody needs the gradient w.r.t. the data), input
    gradient `(B,o)@(o,i)`. `m x k` times `k x n`; flops = 2*m*n*k.

    Arguments:
        workload: a `Workload`.
        batch_size: overrides the workload's batch size (for a partial last batch).

    Returns:
        list of `(m, n, k, kind)` tuples with kind in `forward`, `dW`, `dx`.
    """
    b = batch_size or workload.batch_size
    shapes = []
    for layer, (i, o) in enumerate(workload.dense_shapes()):
        shapes.append((b, o, i, "forward"))
        shapes.append((i, o, b, "dW"))
        if layer > 0:
            shapes.append((b, i, o, "dx"))
    return shapes


def flops_per_step(workload):
    """Returns the floating-point operations of all GEMMs in one full step."""
    return sum(2 * m * n * k for m, n, k, _ in gemm_shapes(workload))


def make_data(n_samples, seed=0):
    """Synthetic MNIST-shaped data: float32 pixels in [0, 1) and labels that depend on them.

    The labels come from a fixed random linear map of the pixels, so the problem is learnable and losses
    behave like real training (no NaNs, no trivially constant gradients).

    Arguments:
        n_samples: number of rows.
        seed: seed of the NumPy generator.

    Returns:
        `(x, y_onehot, y_int)`: float32 `(n, 784)`, float32 `(n, 10)`, int64 `(n,)`; all C-contiguous.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    rng = np.random.default_rng(seed)
    x = rng.random((n_samples, N_FEATURES), dtype=np.float32)
    proj = rng.standard_normal((N_FEATURES, N_CLASSES)).astype(np.float32)
    # in row blocks: one big product makes OpenBLAS touch ~64 MiB of buffers, which the memory benchmark
    # would then blame on fit
    y_int = np.empty(n_samples, dtype=np.int64)
    for start in range(0, n_samples, 4096):
        y_int[start:start + 4096] = np.argmax(x[start:start + 4096] @ proj, axis=1)
    y_onehot = np.zeros((n_samples, N_CLASSES), dtype=np.float32)
    y_onehot[np.arange(n_samples), y_int] = 1.0
    return x, y_onehot, y_int


def steps_per_epoch(workload, n_samples):
    """Returns the number of batches in one epoch (the last one may be partial)."""
    return -(-n_samples // workload.batch_size)
