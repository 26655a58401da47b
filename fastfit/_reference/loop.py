"""The reference engine's `Network`: train/evaluate/predict loops in vectorised NumPy.

Same contract as the Cython engine (docs/architecture.md, "The engine contract" and "Hooks"): one Python
loop over batches, everything inside a batch is whole-array NumPy. Workspaces are allocated once and kept
between calls (regrown when a larger batch comes).
"""
import time

import numpy as np

from fastfit._reference import activations, dense, layers, losses, metrics, optim, rng
from fastfit.contract.checks import (
    check_confusion,
    check_confusion_units,
    check_dtype,
    check_end_calls,
    check_float_array,
    check_hook,
    check_int_array,
    check_labels,
    check_metrics,
    check_name,
    check_positive_int,
    check_predictions,
    histogram_size,
)
from fastfit.contract.modes import Phase
from fastfit.contract.names import ENGINE_LOSSES, SPARSE_LOSSES
from fastfit.contract.ops import ActivationOp, DenseOp, DropoutOp, parse_ops
from fastfit.contract.optimizer import read_optimizer

# The ops own their workspaces (output, input gradient, dropout mask), sized by `reserve`, and keep a
# reference to their forward input for the backward pass.

class _Dense:
    """`x @ W + b`; the parameter gradients go to gW/gb (a frozen layer has none), the input gradient to dx."""

    def __init__(self, W, b, trainable=True):
        self.W, self.b, self.trainable = W, b, trainable
        self.gW = np.zeros_like(W) if trainable else None
        self.gb = None if b is None or not trainable else np.zeros_like(b)
        self.params = [W] + ([b] if b is not None else []) if trainable else []
        self.grads = [self.gW] + ([self.gb] if b is not None else []) if trainable else []
        self.n_in, self.n_out = W.shape

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)
        self.dx = np.empty((rows, self.n_in), dtype) if need_dx else None

    def forward(self, x, rows, training, step):
        self.x = x
        return dense.forward(x, self.W, self.b, out=self.out[:rows])

    def backward(self, grad, rows, need_dx):
        return dense.backward(self.x, self.W, grad, self.gW, self.gb, self.dx[:rows] if need_dx else None)


class _Activation:
    """An element-wise (or softmax) activation; its backward pass works in place on the incoming gradient."""

    params = grads = ()

    def __init__(self, name):
        self.name = name

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)

    def forward(self, x, rows, training, step):
        self.x = x
        self.y = activations.forward(self.name, x, out=self.out[:rows])
        return self.y

    def backward(self, grad, rows, need_dx):
        return activations.backward(self.name, self.x, self.y, grad, out=grad)


class _Dropout:
    """Inverted dropout with the counter-based mask of `rng`; the identity outside training."""

    row0 = 0  # the place in the global batch of the first row (distributed training; 0 in one process)
    params = grads = ()

    def __init__(self, rate, seed):
        self.rate, self.seed = rate, seed

    def reserve(self, rows, dtype, need_dx):
        self.out = np.empty((rows, self.n_out), dtype)
        self.mask = np.empty((rows, self.n_out), dtype)

    def forward(self, x, rows, training, step):
        if not training:
            return x
        mask = rng.dropout_mask(self.seed, step, x.shape, self.rate, x.dtype, out=self.mask[:rows],
                                offset=self.row0 * self.n_out)
        return np.multiply(x, mask, out=self.out[:rows])

    def backward(self, grad, rows, need_dx):
        grad *= self.mask[:rows]
        return grad


class Network:
    """A chain of ops run by vectorised NumPy loops (the reference twin of `fastfit._ext._loop.Network`).

    Arguments:
        ops: list of ('dense', W, b), ('activation', name) and ('dropout', rate, seed) tuples. W and b are
            updated in place.
        loss: canonical loss name.
        metrics: list of canonical metric names, or (name, param) for a thresholded binary accuracy or a
            top-k accuracy with its k (`fastfit.contract.checks.split_entry`).
        dtype: numpy.float32 or numpy.float64.
        confusion: list of (thresholds, class_id, top_k): the threshold histograms to accumulate over each
            train/evaluate call (`fastfit._reference.metrics.threshold_histogram`), concatenated in
            `confusion_counts`, which is zeroed at the start of each such call.

    Raises:
        ValueError: unknown names, arrays of the wrong dtype, layout or shape, widths that do not chain,
            metrics that do not fit the loss's target kind.
    """

    def __init__(self, ops, loss, metrics, dtype, confusion=()):
        self.dtype = check_dtype(dtype)
        self.loss = check_name(loss, ENGINE_LOSSES, "loss")
        self.metrics = check_metrics(metrics, loss)
        self._confusion = check_confusion(confusion, loss)
        self.confusion_counts = np.zeros(sum(histogram_size(t) for t, _, _ in self._confusion))
        self._sparse = loss in SPARSE_LOSSES
        self._layers, self._params, self._grads = self._compile(ops)
        self._first_param = next((i for i, op in enumerate(self._layers) if getattr(op, "params", None)),
                                 len(self._layers))
        last = self._layers[-1] if self._layers else None
        self._fused = (isinstance(last, _Activation) and losses.FUSED_ACTIVATION.get(loss) == last.name)
        self._n_in = None
        for op in self._layers:  # the first op that fixes a width fixes the input width
            if isinstance(op, _Dense) or getattr(op, "width", None) is not None:
                self._n_in = op.n_in if isinstance(op, _Dense) else op.width
                break
        if self._n_in is not None:
            self._set_widths(self._n_in)
        self._capacity = 0
        self._stats = np.zeros(3 + 2 * len(self.metrics))
        self._reducer = None  # distributed training (`distribute`)
        self.first_nonfinite_batch = None  # set by train_epoch
        self._pstats = np.zeros(1)

    def _compile(self, ops):
        """Parse `ops` (`contract.ops.parse_ops`); return the op objects, the parameter arrays and their
        gradient arrays."""
        layers, params, grads = [], [], []
        self._penalties, self._constraints = [], []
        for op in parse_ops(ops, self.dtype):
            if isinstance(op, DenseOp):
                layer = _Dense(op.W, op.b, op.trainable)
            elif isinstance(op, ActivationOp):
                layer = _Activation(op.name)
            elif isinstance(op, DropoutOp):
                layer = _Dropout(op.rate, op.seed)
            else:
                layer = self._compile_layer_op(op, params, grads)
                if layer is None:
                    continue
            layers.append(layer)
            params += layer.params
            grads += layer.grads
        return layers, params, grads

    def _compile_layer_op(self, parsed, params, grads):
        """The op object of a parsed layer op (None for penalties and constraints, which `params` (the trained
        arrays so far) and `grads` tie to their array)."""
        kind, op = parsed.kind, parsed.op
        if kind in ("penalty", "constraint"):
            arr = op[1]
            trained = next((k for k, p in enumerate(params) if p is arr), None)
            if kind == "penalty":
                if op[2] or op[3]:
                    self._penalties.append((arr, op[2], op[3], None if trained is None else grads[trained]))
            elif trained is not None:  # a frozen array is never updated, so never constrained
                self._constraints.append(op[1:])
            return None
        if kind == "activity_regularization":
            layer = layers.ActivityRegularization(op[1], op[2])
        elif kind == "relu":
            layer = layers.Relu(op[1], op[2], op[3])
        elif kind == "elu":
            layer = layers.Elu(op[1])
        elif kind == "prelu":
            layer = layers.PReLU(op[1], op[2])
        elif kind == "batch_normalization":
            layer = layers.BatchNormalization(*op[1:])
        else:
            layer = layers.Noise(kind, op[1], op[2])
        layer.width = parsed.width
        return layer

    def _set_widths(self, n_in):
        """Give every op its output width, starting from `n_in` input features."""
        width = n_in
        for op in self._layers:
            if getattr(op, "width", None) not in (None, width):
                raise ValueError(f"x: expected {op.width} features per row (the width of a "
                                 f"{type(op).__name__} op), got {width}")
            width = op.n_out if isinstance(op, _Dense) else width
            op.n_out = width
        self._n_in, self._units = n_in, width

    def _reserve(self, rows):
        """Make sure every workspace holds `rows` rows."""
        if rows <= self._capacity:
            return
        for i, op in enumerate(self._layers):
            op.reserve(rows, self.dtype, need_dx=i > self._first_param)
        self._xbuf = np.empty((rows, self._n_in), self.dtype)
        self._ybuf = np.empty((rows,), np.int64) if self._sparse else np.empty((rows, self._units), self.dtype)
        self._wbuf = np.empty((rows,), self.dtype)
        self._gbuf = np.empty((rows, self._units), self.dtype)
        self._capacity = rows

    # ---------------------------------------------------------------------------------------------------
    # Argument checks

    def _check_x(self, x):
        x = check_float_array(x, self.dtype, "x", ndim=2)
        if self._n_in is None:  # no Dense op: the chain keeps the width of the first x it sees
            self._set_widths(x.shape[1])
        if x.shape[1] != self._n_in:
            raise ValueError(f"x: expected {self._n_in} features per row, got shape {x.shape}")
        return x.shape[0]

    def _check_targets(self, x, y, sample_weight):
        n = self._check_x(x)
        if self._sparse:
            check_int_array(y, "y", shape=(n,))
            check_labels(y, self._units, "y (sparse labels)")
        else:
            check_float_array(y, self.dtype, "y", shape=(n, self._units))
        check_confusion_units(self._confusion, self._units)
        if sample_weight is not None:
            check_float_array(sample_weight, self.dtype, "sample_weight", shape=(n,))
        return n

    # ---------------------------------------------------------------------------------------------------
    # One batch

    def _forward(self, x, rows, training, step=0, row0=0):
        for op in self._layers:
            if hasattr(op, "row0"):
                op.row0 = row0  # dropout and noise draw by the row's place in the global batch
            x = op.forward(x, rows, training, step)
        return x

    def _score(self, out, y, w, rows, grad, count=None):
        """Write this batch's loss and metrics into stats[0 : 1 + n_metrics]; fill `grad` if given.
        Distributed (`count` given): the loss share and metric sums of these rows of the global batch, and
        their histograms in `_batch_hist` (`_reduce` makes them the global batch's)."""
        stats = self._stats
        stats[0] = losses.batch_loss(self.loss, y, out, w, self._fused,
                                     grad_out=self._gbuf[:rows] if grad else None, count=count)
        for op in self._layers:
            if isinstance(op, layers.ActivityRegularization):
                stats[0] += op.penalty
        for m, entry in enumerate(self.metrics):
            stats[1 + m] = metrics.batch_metric(entry, y, out) * (rows if count is not None else 1)
        start = 0
        counts = self.confusion_counts
        if count is not None:
            counts = self._batch_hist = np.zeros_like(self.confusion_counts)
        for thresholds, class_id, top_k in self._confusion:
            size = histogram_size(thresholds)
            counts[start:start + size] += metrics.threshold_histogram(
                y, out, thresholds, None if class_id < 0 else class_id, top_k or None)
            start += size

    def _accumulate(self, size):
        k = 1 + len(self.metrics)
        self._stats[k] += size
        self._stats[k + 1:] += self._stats[:k] * size

    def _backward(self, rows):
        """Back-propagate the loss gradient down to the first op with parameters."""
        grad = self._gbuf[:rows]
        last = len(self._layers) - 1
        for i in range(last, self._first_param - 1, -1):
            if i == last and self._fused:
                continue  # the loss gradient is already w.r.t. the fused activation's input
            grad = self._layers[i].backward(grad, rows, need_dx=i > self._first_param)

    # ---------------------------------------------------------------------------------------------------
    # Distributed training

    def distribute(self, reducer):
        """Run train_epoch and evaluate as one rank of a data-parallel job (`fastfit.distributed.Reducer`), or
        (None) in one process: each rank runs its contiguous share of every global batch, and one allreduce
        (mpi4py's, on one buffer laid out as the Cython engine's) sums the gradients and batch values.

        Raises:
            ValueError: batch normalization (its statistics are over the whole batch).
        """
        if reducer is not None and reducer.size > 1 and any(isinstance(op, layers.BatchNormalization)
                                                             for op in self._layers):
            raise ValueError("distributed training: BatchNormalization computes statistics over the whole batch, "
                             "which each rank holds only a share of; train it in one process (without "
                             "fastfit.distributed.init())")
        self._reducer = reducer if reducer is not None and reducer.size > 1 else None

    def _share(self, start, size, rows_of, sample_weight):
        """(lo, hi, count) of a global batch at `start` with `size` rows: this rank's rows lo..hi of it, and the
        loss divisor of the whole batch (its rows, or non-zero sample weights). One process: (0, size, None)."""
        r = self._reducer
        if r is None:
            return 0, size, None
        lo, hi = size * r.rank // r.size, size * (r.rank + 1) // r.size
        if sample_weight is None:
            return lo, hi, size
        return lo, hi, int(np.count_nonzero(sample_weight[rows_of(start, size)]))

    def _reduce(self, rows, size, training):
        """Sum this rank's gradients (training) and batch values over the ranks, in the Cython engine's buffer
        layout (gradients, loss share, metric sums, histograms); then stats hold the global batch's means."""
        k = 1 + len(self.metrics)
        grads = self._grads if training else []
        buffer = np.concatenate([g.ravel() for g in grads]
                                + [self._stats[:k].astype(self.dtype), self._batch_hist.astype(self.dtype)])
        self._reducer.allreduce_in_place(buffer)
        at = 0
        for g in grads:
            g.ravel()[:] = buffer[at:at + g.size]
            at += g.size
        tail = buffer[at:].astype(np.float64)
        self._stats[0] = tail[0]
        self._stats[1:k] = tail[1:k] / size
        self.confusion_counts += tail[k:]

    def _weight_penalties(self, with_gradient):
        """Add the weight penalties to this batch's loss (and, training, their gradients)."""
        for arr, l1, l2, grad in self._penalties:
            self._stats[0] += layers.penalty(arr, l1, l2)
            if with_gradient and grad is not None:
                layers.add_penalty_gradient(arr, l1, l2, grad)

    # ---------------------------------------------------------------------------------------------------
    # The batch loop shared by the three calls

    def _run(self, n, batch_size, hook, flags, run_batch, stats, state=None):
        """Call `run_batch(start, size)` for every batch, with the hook calls around it.

        `flags` are the hook's (batch_begin, batch_end, end_interval), read once by `check_hook`.
        `state` (training only) carries the optimizer object and the engine's copy of its counters.
        """
        begin, end, interval = flags
        n_batches = -(-n // batch_size)
        last_end = time.monotonic()
        for k in range(n_batches):
            start = k * batch_size
            size = min(batch_size, n - start)
            if stats is self._pstats:
                stats[0] = start
            if begin and self._call_hook(hook, Phase.BATCH_BEGIN, k, size, stats, state):
                break
            with np.errstate(all="ignore"):  # numeric trouble is returned in the sums, not warned about
                run_batch(start, size)
            if state is not None and self.first_nonfinite_batch is None and not np.isfinite(stats[0]):
                self.first_nonfinite_batch = k
            if end:
                now = time.monotonic()
                if interval <= 0 or k == n_batches - 1 or now - last_end >= interval:
                    last_end = now
                    if self._call_hook(hook, Phase.BATCH_END, k, size, stats, state):
                        break

    @staticmethod
    def _call_hook(hook, phase, batch, size, stats, state):
        """Sync the optimizer both ways around one hook call; return True to stop."""
        if state is not None:
            state.write_back()
        stop = hook(phase, batch, size, stats)
        if state is not None:
            state.hyper.reread_lr(state.optimizer)
        return bool(stop)

    def _sums(self):
        return self._stats[1 + len(self.metrics):].copy()

    # ---------------------------------------------------------------------------------------------------
    # The engine API

    def train_epoch(self, x, y, sample_weight, order, batch_size, optimizer, hook):
        """Train one pass over x in the batches given by `order`.

        Arguments:
            x: (n, in_features) array; y: (n, units) targets, or int64 (n,) labels for the sparse loss;
            sample_weight: None or (n,) array; order: int64 array of row indices in [0, n), walked in batches
                (usually a permutation of range(n); shorter when a resumed epoch skips its first batches);
            batch_size: int >= 1; optimizer: the optimizer object (its iterations, slots and m_schedule
                are updated); hook: None or the batch hook.

        Returns:
            float64 array [seen, loss_sum, metric_sum_1, ...].

        Raises:
            ValueError: any argument of the wrong type, dtype, layout, shape or range.
            Whatever the hook raises (the weights are then those of the last completed batch).
        """
        n = self._check_targets(x, y, sample_weight)
        check_int_array(order, "order", shape=(None,))
        check_labels(order, n, "order")
        steps = len(order)  # rows this call trains on
        batch_size = check_positive_int(batch_size, "batch_size")
        state = _TrainState(optimizer, self._params, self.dtype)
        flags = check_hook(hook)
        check_end_calls(hook, len(self.metrics))  # the hook makes these calls itself here
        predictions = check_predictions(hook, min(batch_size, steps), self._units, self.dtype)
        self._reserve(min(batch_size, steps))
        self._stats[:] = 0
        self.confusion_counts[:] = 0
        self.first_nonfinite_batch = None  # index of the first training batch whose loss was NaN/inf
        runs = np.arange(min(batch_size, steps), dtype=np.int64)

        def run_batch(start, size):
            lo, hi, count = self._share(start, size, lambda a, n: order[a:a + n], sample_weight)
            rows = hi - lo
            idx = order[start + lo:start + hi]
            first = int(idx[0]) if rows else 0
            if np.array_equal(idx, runs[:rows] + first):  # a run of rows: no copy needed
                stop = first + rows
                xb, yb = x[first:stop], y[first:stop]
                wb = None if sample_weight is None else sample_weight[first:stop]
            else:
                xb = np.take(x, idx, axis=0, out=self._xbuf[:rows])
                yb = np.take(y, idx, axis=0, out=self._ybuf[:rows])
                wb = None if sample_weight is None else np.take(sample_weight, idx, out=self._wbuf[:rows])
            out = self._forward(xb, rows, True, state.iterations, lo)
            self._score(out, yb, wb, rows, grad=True, count=count)
            if predictions is not None:  # custom metrics read them at the batch end
                predictions[:size] = out
            self._backward(rows)
            if count is not None:
                self._reduce(rows, size, True)
            self._weight_penalties(True)
            state.step(self._grads)
            for constraint in self._constraints:
                layers.apply_constraint(*constraint)
            self._accumulate(size)

        try:
            self._run(steps, batch_size, hook, flags, run_batch, self._stats, state)
        finally:
            state.write_back()
        return self._sums()

    def evaluate(self, x, y, sample_weight, batch_size, hook):
        """Score x against y in row order, without dropout.

        Returns:
            float64 array [seen, loss_sum, metric_sum_1, ...].

        Raises:
            ValueError: as `train_epoch`. Whatever the hook raises.
        """
        n = self._check_targets(x, y, sample_weight)
        batch_size = check_positive_int(batch_size, "batch_size")
        flags = check_hook(hook)
        check_end_calls(hook, len(self.metrics))  # the hook makes these calls itself here
        predictions = check_predictions(hook, min(batch_size, n), self._units, self.dtype)
        self._reserve(min(batch_size, n))
        self._stats[:] = 0
        self.confusion_counts[:] = 0

        def run_batch(start, size):
            lo, hi, count = self._share(start, size, lambda a, n: slice(a, a + n), sample_weight)
            first, stop = start + lo, start + hi
            out = self._forward(x[first:stop], hi - lo, False)
            wb = None if sample_weight is None else sample_weight[first:stop]
            self._score(out, y[first:stop], wb, hi - lo, grad=False, count=count)
            if count is not None:
                self._reduce(hi - lo, size, False)
            if predictions is not None:
                predictions[:size] = out
            self._weight_penalties(False)
            self._accumulate(size)

        self._run(n, batch_size, hook, flags, run_batch, self._stats)
        return self._sums()

    def predict(self, x, batch_size, out, hook):
        """Write the network output for x into `out` ((n, units), network dtype), in row order.

        The hook's stats are `[start_row]` of the batch.

        Raises:
            ValueError: as `train_epoch`, or `out` of the wrong dtype, layout or shape.
        """
        n = self._check_x(x)
        check_float_array(out, self.dtype, "out", shape=(n, self._units), writeable=True)
        batch_size = check_positive_int(batch_size, "batch_size")
        flags = check_hook(hook)
        self._reserve(min(batch_size, n))
        self._pstats[:] = 0

        def run_batch(start, size):
            out[start:start + size] = self._forward(x[start:start + size], size, False)

        self._run(n, batch_size, hook, flags, run_batch, self._pstats)


class _TrainState:
    """The optimizer object of a training call and the engine's running copy of its counters.

    Raises:
        ValueError: (constructor) bad hyper-parameters, iterations or slot arrays.
    """

    def __init__(self, optimizer, params, dtype):
        self.optimizer = optimizer
        self.hyper, self.iterations, self.m_schedule, self.slots = read_optimizer(optimizer, params, dtype)
        self.params = params
        self.work = [(np.empty_like(p), np.empty_like(p)) for p in params]  # update scratch, once per call

    def step(self, grads):
        """One optimizer update of every parameter array."""
        s, self.m_schedule = optim.prepare(self.hyper, self.iterations, self.m_schedule)
        for p, g, slots, work in zip(self.params, grads, self.slots, self.work):
            optim.update(self.hyper, s, p, g, slots, work)
        self.iterations += 1

    def write_back(self):
        self.optimizer.iterations = self.iterations
        if self.hyper.kind == "nadam":
            self.optimizer.m_schedule = float(self.m_schedule)
