"""`Model`: compile, fit, evaluate, predict (Keras 2 signatures and semantics).

Python does the per-call and per-epoch work (checks, conversion, validation split, callbacks, epoch logs);
the engine runs each epoch's batch loop in one call and comes back into Python only through the batch hook,
and only when some callback implements a batch hook (docs/architecture.md).
"""
from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fastfit import backend, distributed, losses, optimizers
from fastfit import callbacks as callbacks_module  # make_batch_hook: looked up at each call
from fastfit import metrics as metrics_module
from fastfit._types import Batches, Config, Data, LossLike, MetricsLike, Outputs, PathLike, Scores, SymbolicTensors
from fastfit.callbacks import CallbackList, History, ProgbarLogger
from fastfit.callbacks.progbar import PredictProgbar
from fastfit.contract.ops import trained_params
from fastfit.core import resolve_core
from fastfit.engine import data, functional, keras_arguments, lowering, streaming
from fastfit.engine.batch_stream import BatchStream
from fastfit.engine.custom_metrics import CustomMetrics
from fastfit.engine.logs import Logs, MetricNames
from fastfit.engine.loop_helpers import check_verbose as _check_verbose
from fastfit.engine.loop_helpers import logs_from_sums as _logs_from_sums
from fastfit.engine.loop_helpers import resume_point as _resume_point
from fastfit.engine.loop_helpers import validation_epochs as _validation_epochs
from fastfit.engine.metric_readout import Readout
from fastfit.engine.network import Network
from fastfit.saving import checkpoint_writer
from fastfit.utils.progbar import Progbar

if TYPE_CHECKING:
    from typing_extensions import Self

    from fastfit.callbacks import Callback
    from fastfit.optimizers import Optimizer

# `class_weight`: {class index: weight}, or per output {output name: {class index: weight}}.
ClassWeight = Mapping[Any, Any]


class Model(Network):
    """A trainable graph of layers: `Model(inputs, outputs)` (functional API) or `Sequential`."""

    def __init__(self, inputs: SymbolicTensors | None = None, outputs: SymbolicTensors | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.optimizer: Optimizer | None = None
        self.loss: str | losses.Loss | list[Any] | dict[str, Any] | None = None
        self.metrics: list[Any] = []
        self.metrics_names = MetricNames(["loss"])
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        self._core: str | None = None  # the core compile chose: "cython" or "python"
        self._resolved_metrics: list[tuple[str, Any]] = []  # (log key, metric) per compiled metric (metrics.resolve)
        self._readout = Readout([], None, None)  # where the engine-computed metric values are (compile)
        # compile arguments waiting for a deferred build (see `compile`)
        self._pending_compile: dict[str, Any] | None = None
        self._custom_metrics: CustomMetrics | None = None  # a CustomMetrics when compiled with custom metrics
        self._seed = backend.draw_seed()   # drives per-epoch shuffling; saved with the model
        self._busy = threading.RLock()  # re-entrant: a callback may evaluate/predict its own model

    # -- compile -----------------------------------------------------------------------------------------
    def compile(self, optimizer: str | Optimizer | dict[str, Any] = "rmsprop", loss: LossLike | None = None,
                metrics: MetricsLike | None = None, loss_weights: Sequence[float] | Mapping[str, float] | None = None,
                sample_weight_mode: str | None = None, weighted_metrics: MetricsLike | None = None,
                target_tensors: None = None, engine: str | None = None, **kwargs: Any) -> None:
        """Configure training.

        Arguments:
            optimizer: name ('rmsprop', 'adam', ...) or an optimizer instance.
            loss: name, alias or function of `fastfit.losses`, or an instance of one of its tf.keras loss classes
                (a one-item list or dict is accepted); a custom loss function raises ValueError (fastfit derives
                gradients for its built-in losses only).
            metrics: list of names, functions of `fastfit.metrics`/`fastfit.losses`, custom functions
                `f(y_true, y_pred)` or metric objects (`fastfit.metrics.Metric`); the log key is the string
                given ('acc' → `acc`), a function's `__name__` or an object's `name`.
            engine: 'cython' (default; `FASTFIT_ENGINE` overrides the default) or 'python' (NumPy reference).
            loss_weights, sample_weight_mode, weighted_metrics, target_tensors: accepted only with their
                neutral values (one output, per-sample weights), as are tf.keras's `run_eagerly`,
                `steps_per_execution` and `jit_compile` (see `keras_arguments.NEUTRAL_VALUES`).

        Raises:
            ValueError: unknown optimizer, loss, metric or engine; a model with several outputs; an argument
                value fastfit cannot carry out.
        """
        class_mode = kwargs.pop("class_mode", None)
        if weighted_metrics is not None:
            kwargs["weighted_metrics"] = weighted_metrics
        keras_arguments.pop_neutral("compile", kwargs)
        if kwargs:
            raise TypeError(f"compile: unexpected keyword arguments {sorted(kwargs)}")
        deferred = not self.outputs
        if deferred and not self._builds_from_data():
            raise ValueError(f"compile: model '{self.name}' has no input shape yet: give the first layer "
                             "`input_shape=` or `input_dim=`, or call `model.build(input_shape)` first")
        if len(self.outputs) > 1:
            raise ValueError(f"compile: model '{self.name}' has {len(self.outputs)} outputs; fastfit trains models "
                             "with one output (multi-output models can still `predict`)")
        if target_tensors is not None or sample_weight_mode not in (None, "samplewise"):
            raise ValueError("compile: `target_tensors` and temporal `sample_weight_mode` are not supported")
        if loss_weights not in (None, [1], [1.0], {}) and not (isinstance(loss_weights, dict)
                                                                and set(loss_weights.values()) <= {1, 1.0}):
            raise ValueError(f"compile: `loss_weights` is only meaningful for several outputs, got {loss_weights!r}")
        if loss is None:
            raise ValueError("compile: `loss` is required, e.g. loss='categorical_crossentropy'")
        if isinstance(loss, (list, tuple)) and len(loss) == 1:
            loss = loss[0]
        if isinstance(loss, dict) and len(loss) == 1:
            loss = next(iter(loss.values()))
        canonical_loss = losses.engine_loss(loss, len(self.output_shape) if self.outputs else 2)
        units = None if deferred else self.output_shape[-1]  # deferred: metrics are checked again at build
        if class_mode is not None and units is not None:
            keras_arguments.check_class_mode(class_mode, canonical_loss, units)
        metric_list = [] if metrics is None else metrics
        if isinstance(metric_list, dict):
            metric_list = [m for value in metric_list.values() for m in (value if isinstance(value, list) else [value])]
        if isinstance(metric_list, (str,)) or not isinstance(metric_list, (list, tuple)):
            raise TypeError(f"compile: `metrics` must be a list, got {metric_list!r}")
        resolved = [metrics_module.resolve(m, canonical_loss, units) for m in metric_list]
        keys = [key for key, _ in resolved]
        if len(set(keys)) != len(keys) or "loss" in keys:
            raise ValueError(f"compile: metric names must be unique and not 'loss', got {keys}")
        chosen_core = resolve_core(engine)
        new_optimizer = optimizers.get(optimizer)
        # Everything checked: now change the model.
        self.optimizer = new_optimizer
        if isinstance(loss, dict):
            loss = losses.deserialize(loss)
        self.loss = loss if isinstance(loss, (str, losses.Loss)) else canonical_loss
        self._canonical_loss = canonical_loss
        self.metrics = list(metric_list)
        self._resolved_metrics = resolved
        self._readout = Readout(resolved, canonical_loss, units)
        self.metrics_names = MetricNames(["loss"] + keys)
        custom = {key: metric for key, metric in resolved
                  if not isinstance(metric, (str, metrics_module.EngineMetric))}
        self._custom_metrics = CustomMetrics(self.metrics_names, custom) if custom else None
        self._core = chosen_core
        # As in Keras 2, `layer.trainable` takes effect at compile: training leaves these layers' weights alone
        # until the next compile, whatever their flag says meanwhile.
        self._frozen = frozenset(layer for layer in self.layers if not layer.trainable and layer.weights)
        self._invalidate()
        self.compiled = True
        # A model without an input shape compiles again, with these arguments, once it is built
        # (`_compile_pending`): the metrics that depend on the output units are resolved then.
        # Metric objects made from a class name ('AUC') are passed on, so the build keeps their names.
        self._pending_compile = None if not deferred else dict(
            optimizer=new_optimizer, loss=loss, engine=chosen_core, user_metrics=list(metric_list),
            metrics=[obj if isinstance(given, str) and isinstance(obj, metrics_module.EngineMetric) else given
                     for given, (_, obj) in zip(metric_list, resolved)])

    # -- deferred build ------------------------------------------------------------------------------------
    def _builds_from_data(self):
        """True for a model that takes its input shape from the first data it sees (`Sequential` without one)."""
        return False

    def _build_from(self, x):
        """Build a model that has no input shape yet from `x`'s shape (`(None,) + x.shape[1:]`), as tf.keras
        does at the first `fit`/`evaluate`/`predict`; a model already built is left alone."""
        if self.outputs or not self._builds_from_data() or x is None:
            return
        shape = data.as_numeric_array(x, "x").shape
        if len(shape) < 2:
            raise ValueError(f"model '{self.name}' has no input shape yet and builds from `x`, which must have "
                             f"a samples axis and a features axis; got shape {shape} (reshape it to "
                             f"{(shape[0] if shape else 1, 1)} or give the first layer `input_shape=` or `input_dim=`)")
        self.build((None,) + tuple(shape[1:]))

    def _compile_pending(self):
        """Run the compile that waited for the build (called by `build`)."""
        if self._pending_compile is not None and self.outputs:
            pending, self._pending_compile = dict(self._pending_compile), None
            user_metrics = pending.pop("user_metrics")
            try:
                self.compile(**pending)
                self.metrics = user_metrics  # as the user gave them (saved in training_config)
            except Exception:  # e.g. a metric that does not fit the output: the model is built, not compiled
                self.compiled = False
                raise

    def _require_built(self, what):
        """tf.keras's error for an unbuilt model (`summary`, `get_weights`, saving before the first build)."""
        if not self.outputs and self._builds_from_data():
            raise ValueError(f"{what}: This model has not yet been built. Build the model first by calling "
                             "`build()` or by calling the model on a batch of data (`fit`, `evaluate` or "
                             "`predict`), or give the first layer an `input_shape` argument for automatic build.")

    def summary(self, line_length: int | None = None, positions: Sequence[float] | None = None,
                print_fn: Callable[[str], Any] | None = None) -> None:
        self._require_built("summary")
        super().summary(line_length=line_length, positions=positions, print_fn=print_fn)

    summary.__doc__ = Network.summary.__doc__

    def get_weights(self) -> list[np.ndarray]:
        self._require_built("get_weights")
        return super().get_weights()

    get_weights.__doc__ = Network.get_weights.__doc__

    def _training_config(self):
        """The `training_config` dict of Keras 2 HDF5 files."""
        return {"optimizer_config": optimizers.serialize(self.optimizer),
                "loss": losses.training_config_entry(self.loss),
                "metrics": [m if isinstance(m, str) else metrics_module.serialize(m)
                            if isinstance(m, metrics_module.EngineMetric) else getattr(m, "__name__", None) or m.name
                            for m in self.metrics],
                "weighted_metrics": None, "loss_weights": None, "sample_weight_mode": None}

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"{method}: you must compile the model before using it, e.g. "
                               "model.compile(optimizer='rmsprop', loss='categorical_crossentropy')")

    def _train_network(self):
        params = trained_params(lowering.model_ops(self))
        if not self.optimizer.is_built_for(params):
            self.optimizer.build(params)
        readout = self._readout
        network = lowering.core_network(self, self._core, self._canonical_loss, readout.engine_metrics,
                                          confusion=readout.confusion)
        readout.bind(network)
        if distributed.reducer() is not None and self._custom_metrics is not None:
            distributed.check_supported("a custom metric function or Metric object (it would see this rank's "
                                        "rows only)", "use the built-in metrics ('acc', 'mae', 'AUC', ...)")
        network.distribute(distributed.reducer())  # None: one process
        return network

    # -- data -------------------------------------------------------------------------------------------
    def _dtype(self):
        return lowering.model_dtype(self.layers)

    def _units(self):
        return self.outputs[0].shape[-1]

    def _metric_pass(self, y, order, batch_size):
        """A fresh pass of the custom metrics over targets `y` (None when the model has none)."""
        if self._custom_metrics is None:
            return None
        width = int(np.prod(self.outputs[0].shape[1:]))
        return self._custom_metrics.new_pass(y, order, batch_size, self._dtype(), width)

    def _prepare_xy(self, x, y, sample_weight=None, class_weight=None, names=("x", "y", "sample_weight")):
        dtype = self._dtype()
        x = data.prepare_inputs(x, self.input_shape, dtype, names[0])
        y = data.prepare_targets(y, self._canonical_loss, self._units(), dtype, names[1])
        data.check_sample_count(x, y, names[0], names[1])
        weights = data.prepare_sample_weight(sample_weight, class_weight, y, self._canonical_loss, self._units(),
                                             dtype, names[2])
        return x, y, weights

    def _prepare_validation(self, validation_data, validation_split, x, y, sample_weight, class_weight):
        """Return (training triple, validation triple or None, validation arrays for callbacks)."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("`validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
                                 f"val_sample_weight), got {_short(validation_data)}")
            xv, yv = validation_data[0], validation_data[1]
            swv = validation_data[2] if len(validation_data) == 3 else None
            train = self._prepare_xy(x, y, sample_weight, class_weight)
            val = self._prepare_xy(xv, yv, swv, None, ("validation_data[0]", "validation_data[1]",
                                                       "validation_data[2]"))
            return train, val, [xv, yv]
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"`validation_split` must be a number in [0, 1), got {validation_split!r}")
        train = self._prepare_xy(x, y, sample_weight, class_weight)
        if not validation_split:
            return train, None, None
        n = len(train[0])
        split = int(n * (1.0 - validation_split))
        if split == 0 or split == n:
            raise ValueError(f"`validation_split`={validation_split} leaves {'no training' if split == 0 else 'no validation'} "
                             f"samples out of {n}")
        xs, ys, ws = train
        val = (xs[split:], ys[split:], None if ws is None else ws[split:])
        train = (xs[:split], ys[:split], None if ws is None else ws[:split])
        return train, val, [val[0].reshape((-1,) + tuple(self.input_shape[1:])), val[1]]

    def _fixed_batch_size(self):
        """The batch size fixed by the model input (`batch_input_shape=(32, 784)`), or None."""
        return self.inputs[0].shape[0] if self.inputs else None

    def _batch_size_for(self, batch_size, method, argument="batch_size"):
        """Checked `batch_size`; a model input with a fixed batch size takes batches of exactly that size (as
        in Keras, where another size fails), and `batch_size=None` then means that size."""
        fixed = self._fixed_batch_size()
        if fixed is not None:
            if batch_size is None:
                batch_size = fixed
            elif batch_size != fixed:
                raise ValueError(f"{method}: {argument} {batch_size!r} does not match the batch size {fixed} fixed "
                                 f"by the model input (batch input shape {self.inputs[0].shape}); use {fixed}, or "
                                 "build the model with `input_shape=` (any batch size)")
        return data.check_batch_size(batch_size, argument)

    def _steps_batch_size(self, requested, checked, n, steps):
        """The batch size of a call given `steps` (tf.keras): without `batch_size` (and no fixed input batch
        size), the data split into `steps` batches."""
        if requested is None and self._fixed_batch_size() is None:
            return -(-n // steps)  # ceil(n / steps)
        return checked

    def _check_full_batches(self, n, method, what):
        fixed = self._fixed_batch_size()
        if fixed is not None and n % fixed:
            raise ValueError(f"{method}: {what} has {n} samples, not a multiple of the batch size {fixed} fixed by "
                             f"the model input (batch input shape {self.inputs[0].shape}): every batch must "
                             f"have {fixed} samples; pass a multiple of {fixed} samples, or build the model with "
                             "`input_shape=` (any batch size)")

    # -- fit ----------------------------------------------------------------------------------------------
    def fit(self, x: Data | None = None, y: Data | None = None, batch_size: int | None = None,
            epochs: int | None = None, verbose: int | str = 1, callbacks: Sequence[Callback] | None = None,
            validation_split: float = 0.0, validation_data: tuple[Any, ...] | list[Any] | Batches | None = None,
            shuffle: bool | str = True, class_weight: ClassWeight | None = None,
            sample_weight: npt.ArrayLike | None = None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_freq: int | Sequence[int] = 1, validation_batch_size: int | None = None,
            **kwargs: Any) -> History:
        """Train for `epochs - initial_epoch` epochs and return the `History`.

        Arguments follow Keras 2 (`batch_size=None` means 32; `validation_split` takes the last samples before
        shuffling; `shuffle='batch'` shuffles whole batches; `epochs=None` means 1). The legacy `nb_epoch` and
        Keras 0.x's `show_accuracy` are accepted with a DeprecationWarning.

        `steps_per_epoch` (tf.keras, with arrays): each epoch trains that many batches of `batch_size` (default
        then: the data split into that many batches), drawn from a stream of shuffled passes over the data (a
        new pass starts where the previous one ends); as in tf.keras the stream holds `epochs - initial_epoch`
        passes, and training stops with a warning when it runs out. `validation_steps`: each validation uses
        the first that many batches (of `validation_batch_size`, default `batch_size`) of the validation data.

        `x` may also be a generator or a `fastfit.utils.Sequence` (tf.keras: `steps_per_epoch`, `workers`,
        `use_multiprocessing`, `max_queue_size`), or an on-disk array (`np.memmap`, `h5py.Dataset`,
        `HDF5Matrix`) streamed in two buffers of `buffer_size` bytes (default 256 MiB): see the guide
        "Data larger than memory".

        Raises:
            RuntimeError: not compiled, or `fit` already running on this model in another thread.
            TypeError, ValueError: bad arguments or data (the model is left unchanged).
        """
        show_accuracy = keras_arguments.pop_show_accuracy(kwargs, "fit")
        if "nb_epoch" in kwargs:
            if epochs is not None:
                raise TypeError("fit received both the legacy keyword argument `nb_epoch` and `epochs`; "
                                "pass only `epochs`")
            warnings.warn("The `nb_epoch` argument in `fit` has been renamed `epochs`.", DeprecationWarning,
                          stacklevel=2)
            epochs = kwargs.pop("nb_epoch")
        epochs = 1 if epochs is None else epochs
        if streaming.takes_fit(x, y, validation_data):  # generators, Sequences, on-disk arrays
            distributed.check_supported("fit over a generator, Sequence or on-disk array",
                                        "load the data into NumPy arrays on every rank")
            if validation_batch_size is not None:
                kwargs["validation_batch_size"] = validation_batch_size
            with self._accuracy_shown(show_accuracy):
                return streaming.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                     validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                                     steps_per_epoch, validation_steps, validation_freq, **kwargs)
        keras_arguments.pop_neutral("fit", kwargs)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        self._build_from(x)
        self._require_compiled("fit")
        keras_arguments.refuse_generator(x, "fit")
        keras_arguments.refuse_generator(validation_data, "fit", "validation_data")
        steps_per_epoch = keras_arguments.check_steps(steps_per_epoch, "steps_per_epoch")
        validation_steps = keras_arguments.check_steps(validation_steps, "validation_steps")
        requested_batch_size = batch_size
        batch_size = self._batch_size_for(batch_size, "fit")
        if validation_batch_size is not None:
            validation_batch_size = self._batch_size_for(validation_batch_size, "fit", "validation_batch_size")
        epochs = data.check_non_negative_int(epochs, "epochs")
        initial_epoch = data.check_non_negative_int(initial_epoch, "initial_epoch")
        verbose = distributed.rank_verbose(_check_verbose(verbose))  # rank 0 prints
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"`shuffle` must be True, False or 'batch', got {shuffle!r}")
        validation_epochs = _validation_epochs(validation_freq)
        train, val, val_for_callbacks = self._prepare_validation(validation_data, validation_split, x, y,
                                                                 sample_weight, class_weight)
        if steps_per_epoch is not None:
            batch_size = self._steps_batch_size(requested_batch_size, batch_size, len(train[0]), steps_per_epoch)
        if validation_batch_size is None:
            validation_batch_size = batch_size
        if val is not None and validation_steps is not None:
            val = tuple(None if a is None else a[:validation_steps * validation_batch_size] for a in val)
        if steps_per_epoch is None:
            self._check_full_batches(len(train[0]), "fit", "x")
        if val is not None:
            self._check_full_batches(len(val[0]), "fit", "the validation data")
        user_callbacks = CallbackList(distributed.rank_callbacks(callbacks))  # rank 0 writes files
        with self._exclusive("fit"), self._accuracy_shown(show_accuracy), distributed.watching("fit"), \
                self._fit_scope(user_callbacks):  # fit adds built-ins
            return self._fit_loop(train, val, val_for_callbacks, user_callbacks, batch_size, epochs, verbose,
                                  shuffle, initial_epoch, validation_epochs,
                                  BatchStream(self, len(train[0]), batch_size, shuffle, steps_per_epoch,
                                               initial_epoch, epochs),
                                  validation_batch_size)

    def _fit_scope(self, user_callbacks, reads_user_code=False):
        """The context every fit-like loop runs its callbacks in (`checkpoint_writer.during_fit`: when a
        checkpoint is complete, waiting for the writes at the end). User code runs during the fit when the model
        has custom metrics or the loop reads user code (`reads_user_code`: a generator, a Sequence)."""
        return checkpoint_writer.during_fit(user_callbacks, reads_user_code or self._custom_metrics is not None)

    def _fit_loop(self, train, val, val_for_callbacks, user_callbacks, batch_size, epochs, verbose, shuffle,
                  initial_epoch, validation_epochs, stream, validation_batch_size):
        net = self._train_network()
        x, y, weights = train
        n = stream.samples_per_epoch
        self.history = History()
        listed = list(user_callbacks)
        progbar = [] if not verbose or any(isinstance(cb, ProgbarLogger) for cb in listed) else \
            [ProgbarLogger(count_mode="samples" if stream.steps is None else "steps")]  # as Keras 2.2 picks
        cbks = CallbackList(progbar + listed + [self.history])
        metric_keys = self.metrics_names
        params = {"batch_size": batch_size, "epochs": epochs, "steps": stream.steps_per_epoch,
                  "samples": n, "verbose": verbose, "do_validation": val is not None,
                  "metrics": metric_keys + (["val_" + k for k in metric_keys] if val is not None else [])}
        cbks.set_validation_data(val_for_callbacks)
        cbks.set_model(self)
        cbks.set_params(params)
        if verbose and val is not None:
            print(f"Train on {len(x)} samples, validate on {len(val[0])} samples")
        self.stop_training = False
        cbks.on_train_begin({})
        # Distributed: every rank starts from rank 0's state (weights, optimizer, seeds, restored resume point).
        start_epoch, skip_batches = distributed.sync_fit_start(self, *_resume_point(cbks, initial_epoch))
        if (start_epoch, skip_batches) != (initial_epoch, 0):
            self._invalidate()  # a restored backup may carry other dropout seeds: rebuild the engine network
        net = self._train_network()  # the same network unless a restore or rank 0's seeds changed the model
        epoch_logs = {}
        try:
            for epoch in range(start_epoch, epochs):
                if stream.exhausted(epoch):
                    stream.warn_exhausted()
                    break
                cbks.on_epoch_begin(epoch, {})
                order = stream.order(epoch)
                if epoch == start_epoch and skip_batches:
                    order = order[skip_batches * batch_size:]  # resumed mid-epoch: those batches are done
                metric_pass = self._metric_pass(y, order, batch_size)
                hook = callbacks_module.make_batch_hook(cbks, "train", metric_keys, self, metric_pass=metric_pass,
                                       readout=self._readout)
                sums = net.train_epoch(x, y, weights, order, batch_size, self.optimizer, hook)
                epoch_logs = _logs_from_sums(self._readout, sums, metric_pass)
                finished = int(sums[0]) == len(order)
                if finished and not math.isfinite(epoch_logs.get("loss", 0.0)):
                    bad = net.first_nonfinite_batch
                    where = "" if bad is None else f" at batch {bad + (skip_batches if epoch == start_epoch else 0)}"
                    warnings.warn(f"Epoch {epoch + 1}: the training loss became {epoch_logs['loss']} (NaN or "
                                  f"infinite){where}; add fastfit.callbacks.TerminateOnNaN() to stop at the first "
                                  "such batch", RuntimeWarning, stacklevel=3)
                if finished and val is not None and (epoch + 1) in validation_epochs:
                    results = self._evaluate_arrays(val, validation_batch_size, cbks)
                    epoch_logs.update(("val_" + k, v) for k, v in results.items())
                cbks.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            cbks.on_train_end(Logs(epoch_logs))
            raise  # any other exception skips on_train_end, as in Keras (`during_fit` waits for the checkpoints)
        cbks.on_train_end(Logs(epoch_logs))
        return self.history

    def _epoch_order(self, epoch, n, batch_size, shuffle):
        """The epoch's batch order, derived from the model seed and the epoch (so resumed runs repeat it)."""
        if not shuffle:
            return np.arange(n, dtype=np.int64)
        generator = np.random.default_rng([self._seed, epoch])
        if shuffle == "batch":
            starts = generator.permutation(np.arange(0, n, batch_size))
            order = np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts])
        else:
            order = generator.permutation(n)
        # No copy where numpy's default integer is already int64 (the engines take int64 row indices)
        return order.astype(np.int64, copy=False)

    def _evaluate_arrays(self, arrays, batch_size, cbks):
        """Run the test loop over prepared arrays with `cbks`' test hooks; return {metric key: mean}."""
        net = self._train_network()
        x, y, weights = arrays
        cbks.on_test_begin({})
        metric_pass = self._metric_pass(y, None, batch_size)
        hook = callbacks_module.make_batch_hook(cbks, "test", self.metrics_names, self, metric_pass=metric_pass,
                               readout=self._readout)
        # A batch's loss is sum(w * loss) / (its count of non-zero weights), as in Keras 2: with zero weights,
        # which rows share a batch changes the result, so the batches stay the user's.
        per_batch = hook is not None or (weights is not None and np.count_nonzero(weights) != len(weights))
        rows = batch_size if per_batch else lowering.forward_block(self, batch_size, x.dtype)
        sums = net.evaluate(x, y, weights, rows, hook)
        results = _logs_from_sums(self._readout, sums, metric_pass)
        cbks.on_test_end(Logs(results))
        return results

    @contextlib.contextmanager
    def _accuracy_shown(self, show_accuracy):
        """Keras 0.x `show_accuracy=True`: the call reports the accuracy metric `acc` (added for this call only
        when the model does not already compute an accuracy)."""
        accuracies = ("binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy")
        if not show_accuracy or any(entry in accuracies for entry in self._readout.engine_metrics):
            yield
            return
        saved = self.metrics, self._readout, self.metrics_names
        key, name = metrics_module.resolve("acc", self._canonical_loss, self._units())
        self.metrics = self.metrics + ["acc"]
        self._readout = Readout(self._resolved_metrics + [(key, name)], self._canonical_loss, self._units())
        self.metrics_names = MetricNames(self.metrics_names + [key])
        try:
            yield
        finally:
            self.metrics, self._readout, self.metrics_names = saved

    # -- evaluate / predict ----------------------------------------------------------------------------------
    def evaluate(self, x: Data | None = None, y: Data | None = None, batch_size: int | None = None,
                 verbose: int | str = 1, sample_weight: npt.ArrayLike | None = None, steps: int | None = None,
                 callbacks: Sequence[Callback] | None = None, return_dict: bool = False, **kwargs: Any) -> Scores:
        """Return the loss (no metrics) or `[loss, *metrics]` in `metrics_names` order, sample-weighted means;
        with `return_dict=True` (tf.keras), `{name: value}` in that order. `steps` (tf.keras, with arrays):
        evaluate the first `steps` batches (without `batch_size`: the data split into that many batches)."""
        show_accuracy = keras_arguments.pop_show_accuracy(kwargs, "evaluate")
        if streaming.takes(x, y):  # generators, Sequences, on-disk arrays
            distributed.check_supported("evaluate over a generator, Sequence or on-disk array",
                                        "load the data into NumPy arrays on every rank")
            with self._accuracy_shown(show_accuracy):
                return streaming.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks,
                                          return_dict=return_dict, **kwargs)
        keras_arguments.pop_neutral("evaluate", kwargs)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        self._build_from(x)
        self._require_compiled("evaluate")
        keras_arguments.refuse_generator(x, "evaluate")
        steps = keras_arguments.check_steps(steps, "steps")
        requested_batch_size = batch_size
        batch_size = self._batch_size_for(batch_size, "evaluate")
        verbose = distributed.rank_verbose(_check_verbose(verbose))  # rank 0 prints
        arrays = self._prepare_xy(x, y, sample_weight)
        if steps is not None:
            batch_size = self._steps_batch_size(requested_batch_size, batch_size, len(arrays[0]), steps)
            arrays = tuple(None if a is None else a[:steps * batch_size] for a in arrays)
        self._check_full_batches(len(arrays[0]), "evaluate", "x")
        cbks = CallbackList(callbacks)
        with self._exclusive("evaluate"), self._accuracy_shown(show_accuracy), distributed.watching("evaluate"):
            cbks.set_model(self)
            cbks.set_params({"batch_size": batch_size, "steps": None, "samples": len(arrays[0]),
                             "verbose": verbose, "metrics": list(self.metrics_names)})
            results = self._evaluate_arrays(arrays, batch_size, cbks)
            names = list(self.metrics_names)
        if verbose:
            bar = Progbar(target=len(arrays[0]), verbose=verbose)
            bar.update(len(arrays[0]), list(results.items()))
        if return_dict:
            return {k: results[k] for k in names}
        values = [results[k] for k in names]
        return values[0] if len(values) == 1 else values

    def predict(self, x: Data, batch_size: int | None = None, verbose: int | str = 0, steps: int | None = None,
                callbacks: Sequence[Callback] | None = None, **kwargs: Any) -> Outputs:
        """Return the model output for `x`: an array, or a list of arrays for a model with a list of outputs.

        `verbose=1` shows a progress bar over the samples (2: one line at the end). `steps` (tf.keras, with
        arrays): predict the first `steps` batches (without `batch_size`: the data split into that many)."""
        # A plain NumPy array (never a stream) without callbacks, progress bar, steps or extra arguments.
        if (type(x) is np.ndarray and callbacks is None and steps is None and not kwargs
                and (verbose is False or (type(verbose) is int and verbose == 0))):
            result = self._predict_plain(x, batch_size)
            if result is not None:
                return result
        if streaming.takes(x):  # generators, Sequences, on-disk arrays
            return streaming.predict(self, x, batch_size, verbose, steps, callbacks, **kwargs)
        keras_arguments.pop_neutral("predict", kwargs)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        self._build_from(x)
        self._require_graph("output (predict needs a built model)")
        keras_arguments.refuse_generator(x, "predict")
        steps = keras_arguments.check_steps(steps, "steps")
        requested_batch_size = batch_size
        batch_size = self._batch_size_for(batch_size, "predict")
        verbose = _check_verbose(verbose)
        dtype = self._dtype()
        x = data.prepare_inputs(x, self.input_shape, dtype)
        if steps is not None:
            batch_size = self._steps_batch_size(requested_batch_size, batch_size, len(x), steps)
            x = x[:steps * batch_size]
        self._check_full_batches(len(x), "predict", "x")
        cbks = CallbackList(callbacks)
        if verbose:
            cbks.append(PredictProgbar(len(x), verbose))
        engine = self._core or resolve_core(None)
        outputs = []
        with self._exclusive("predict"):
            cbks.set_model(self)
            cbks.set_params({"batch_size": batch_size, "steps": None, "samples": len(x), "verbose": verbose})
            cbks.on_predict_begin({})
            single_chain = len(self.outputs) == 1
            for index, tensor in enumerate(self.outputs):
                out = np.empty((len(x), int(np.prod(tensor.shape[1:]))), dtype=dtype)
                net = lowering.core_network(self, engine, "mean_squared_error", [], index)
                hook = callbacks_module.make_batch_hook(cbks, "predict", [], self, out=out) if single_chain else None
                rows = batch_size if hook is not None else lowering.forward_block(self, batch_size, dtype)
                net.predict(x, rows, out, hook)
                outputs.append(out.reshape((len(x),) + tuple(tensor.shape[1:])))
            if not single_chain:
                _replay_predict_hooks(cbks, outputs, batch_size)
            cbks.on_predict_end({})
        return outputs[0] if self._single_output else outputs

    # -- Keras 2 generator methods (fastfit.engine.streaming does the work) --------------------------------------
    def fit_generator(self, generator: Batches, steps_per_epoch: int | None = None, epochs: int = 1,
                      verbose: int | str = 1, callbacks: Sequence[Callback] | None = None,
                      validation_data: tuple[Any, ...] | list[Any] | Batches | None = None,
                      validation_steps: int | None = None, class_weight: ClassWeight | None = None,
                      max_queue_size: int = 10, workers: int = 1, use_multiprocessing: bool = False,
                      shuffle: bool = True, initial_epoch: int = 0,
                      validation_freq: int | Sequence[int] = 1) -> History:
        """Train on batches from a generator or a `fastfit.utils.Sequence` (Keras 2.2 arguments).

        `steps_per_epoch` is required for a generator (a Sequence defaults to its length); `validation_data`
        is a generator, a Sequence or arrays; `shuffle` shuffles a Sequence's batch order per epoch.
        """
        distributed.check_supported("fit_generator", "load the data into NumPy arrays on every rank and use fit")
        return streaming.fit(self, generator, None, None, epochs, verbose, callbacks, 0.0, validation_data,
                             shuffle, class_weight, None, initial_epoch, steps_per_epoch, validation_steps,
                             validation_freq, max_queue_size=max_queue_size, workers=workers,
                             use_multiprocessing=use_multiprocessing, keras2_generator=True)

    def evaluate_generator(self, generator: Batches, steps: int | None = None, max_queue_size: int = 10,
                           workers: int = 1, use_multiprocessing: bool = False, verbose: int | str = 0,
                           callbacks: Sequence[Callback] | None = None) -> Scores:
        """Evaluate on batches from a generator or a Sequence; the batch-size-weighted means of `evaluate`."""
        distributed.check_supported("evaluate_generator", "load the data into NumPy arrays and use evaluate")
        return streaming.evaluate(self, generator, None, None, verbose, None, steps, callbacks,
                                  max_queue_size=max_queue_size, workers=workers,
                                  use_multiprocessing=use_multiprocessing, keras2_generator=True)

    def predict_generator(self, generator: Batches, steps: int | None = None, max_queue_size: int = 10,
                          workers: int = 1, use_multiprocessing: bool = False, verbose: int | str = 0,
                          callbacks: Sequence[Callback] | None = None) -> Outputs:
        """Predict on batches from a generator or a Sequence; the outputs in batch order."""
        return streaming.predict(self, generator, None, verbose, steps, callbacks, max_queue_size=max_queue_size,
                                 workers=workers, use_multiprocessing=use_multiprocessing, keras2_generator=True)

    def _predict_plain(self, x, batch_size):
        """`predict` without callbacks, progress bar or steps, of a C-contiguous array of the model dtype and
        input shape: the same checks and result as the general path, without its per-call Python work (the
        model's checked state is cached in `_core_cache`, which every change of the layers empties).
        Returns None where the general path must run (it then raises for bad arguments)."""
        plan = self._core_cache.get("predict")
        if plan is None:
            if not self.outputs or len(self.outputs) != 1 or self._fixed_batch_size() is not None:
                return None
            engine = self._core or resolve_core(None)
            dtype = self._dtype()
            net = lowering.core_network(self, engine, "mean_squared_error", [], 0)
            plan = (net, engine, dtype, tuple(self.input_shape[1:]), tuple(self.outputs[0].shape[1:]),
                    lowering.forward_block(self, 1, dtype), self._single_output)
            self._core_cache["predict"] = plan
        net, engine, dtype, in_shape, out_shape, block, single = plan
        if (x.dtype != dtype or x.shape[1:] != in_shape or not x.flags.c_contiguous or not len(x)
                or engine != (self._core or resolve_core(None))):
            return None
        batch_size = data.check_batch_size(batch_size)
        data.check_finite(x, "x")
        out = np.empty((len(x),) + out_shape, dtype=dtype)
        with self._exclusive("predict"):
            net.predict(x.reshape(len(x), -1), max(batch_size, block), out.reshape(len(x), -1), None)
        return out if single else [out]

    # -- single batches --------------------------------------------------------------------------------------
    def train_on_batch(self, x: Data, y: Data, sample_weight: npt.ArrayLike | None = None,
                       class_weight: ClassWeight | None = None, reset_metrics: bool = True,
                       return_dict: bool = False) -> Scores:
        """One update on one batch; returns the loss or `[loss, *metrics]` measured before the update
        (`return_dict=True`: a dict). `reset_metrics` (tf.keras) must be True: values are this batch's."""
        self._build_from(x)
        self._require_compiled("train_on_batch")
        keras_arguments.check_reset_metrics(reset_metrics, "train_on_batch")
        x, y, weights = self._prepare_xy(x, y, sample_weight, class_weight)
        self._batch_size_for(len(x), "train_on_batch", "the number of samples")
        order = np.arange(len(x), dtype=np.int64)
        with self._exclusive("train_on_batch"), distributed.watching("train_on_batch"):
            metric_pass, hook = self._single_batch_hook("train", y, order, len(x))
            sums = self._train_network().train_epoch(x, y, weights, order, len(x), self.optimizer, hook)
        return _batch_result(self, sums, return_dict, metric_pass)

    def test_on_batch(self, x: Data, y: Data, sample_weight: npt.ArrayLike | None = None,
                      reset_metrics: bool = True, return_dict: bool = False) -> Scores:
        """The loss or `[loss, *metrics]` of one batch (`return_dict=True`: a dict)."""
        self._build_from(x)
        self._require_compiled("test_on_batch")
        keras_arguments.check_reset_metrics(reset_metrics, "test_on_batch")
        x, y, weights = self._prepare_xy(x, y, sample_weight)
        self._batch_size_for(len(x), "test_on_batch", "the number of samples")
        with self._exclusive("test_on_batch"), distributed.watching("test_on_batch"):
            metric_pass, hook = self._single_batch_hook("test", y, None, len(x))
            sums = self._train_network().evaluate(x, y, weights, len(x), hook)
        return _batch_result(self, sums, return_dict, metric_pass)

    def _single_batch_hook(self, mode, y, order, rows):
        """(metric pass, hook) of a train/test_on_batch: no hook unless the model has custom metrics."""
        metric_pass = self._metric_pass(y, order, max(rows, 1))
        if metric_pass is None:
            return None, None
        return metric_pass, callbacks_module.make_batch_hook((), mode, self.metrics_names, self, metric_pass=metric_pass)

    def predict_on_batch(self, x: Data) -> Outputs:
        x = np.asarray(x) if not isinstance(x, np.ndarray) else x
        return self.predict(x, batch_size=max(1, len(x)))

    # -- concurrency ---------------------------------------------------------------------------------------------
    def _exclusive(self, method):
        return _ExclusiveUse(self._busy, self.name, method)

    # -- saving (fastfit.saving.model_file does the work; imported on use: `import fastfit` loads no h5py) ------
    def save(self, filepath: PathLike, overwrite: bool = True, include_optimizer: bool = True) -> None:
        """Save architecture, weights, training config and optimizer state to an HDF5 file (atomically)."""
        from fastfit.saving import model_file
        self._require_built("save")
        model_file.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath: PathLike, overwrite: bool = True) -> None:
        from fastfit.saving import model_file
        self._require_built("save_weights")
        model_file.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: PathLike, by_name: bool = False, skip_mismatch: bool = False) -> None:
        from fastfit.saving import model_file
        model_file.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)

    def _saves_with_fastfit(self, method: str) -> bool:
        """True when `self.<method>` ('save' or 'save_weights') is fastfit's own, not a subclass override: the
        checkpoint writer may then capture the file's content itself instead of calling the method."""
        return getattr(type(self), method, None) is getattr(Model, method)

    @classmethod
    def from_config(cls, config: Config, custom_objects: dict[str, Any] | None = None) -> Self:
        """Rebuild a functional model from `get_config()` (Keras 2 layout: layers with inbound nodes)."""
        return functional.from_config(cls, config, custom_objects)

    # -- pickling (fastfit.saving.pickling does the work) -------------------------------------------------------
    def __reduce__(self):
        """`pickle.dumps(model)` / `copy.deepcopy(model)`: the model travels as its HDF5 file image, optimizer
        state and seeds included, so the copy continues training bit for bit (see `fastfit.saving.pickling`)."""
        from fastfit.saving import pickling  # h5py, imported on use
        return pickling.model_from_image, (pickling.model_image(self), pickling.model_extras(self))


class _ExclusiveUse:
    """Refuses a fit/evaluate/predict on a model that another thread is using, instead of corrupting it.

    The lock is re-entrant, so a callback may call its own model's evaluate/predict from the training thread;
    the engines themselves refuse a call that would overlap a running loop on the same network."""

    def __init__(self, lock, name, method):
        self.lock, self.name, self.method = lock, name, method

    def __enter__(self):
        if not self.lock.acquire(blocking=False):
            raise RuntimeError(f"{self.method}: model '{self.name}' is already being used by another thread "
                               "(fit, evaluate or predict); a model runs one of them at a time")

    def __exit__(self, *exc):
        self.lock.release()


def _replay_predict_hooks(cbks, outputs, batch_size):
    """Batch hooks of a multi-output predict: each output chain ran on its own, so the batches are reported
    afterwards, each with the list of all outputs' rows (Keras 2 `outputs`)."""
    for batch, start in enumerate(range(0, len(outputs[0]), batch_size)):
        size = min(batch_size, len(outputs[0]) - start)
        cbks.on_predict_batch_begin(batch, {"batch": batch, "size": size})
        cbks.on_predict_batch_end(batch, {"batch": batch, "size": size,
                                          "outputs": [out[start:start + size] for out in outputs]})


def _batch_result(model, sums, return_dict, metric_pass=None):
    keys = model.metrics_names
    logs = _logs_from_sums(model._readout, sums, metric_pass)
    if return_dict:
        return {k: logs[k] for k in keys}
    values = [logs[k] for k in keys]
    return values[0] if len(values) == 1 else values


def _short(value):
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
