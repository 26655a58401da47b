"""`Model`: compile, fit, evaluate, predict (Keras 2 signatures and semantics).

Python does the per-call and per-epoch work (checks, conversion, validation split, callbacks, epoch logs);
the engine runs each epoch's batch loop in one call and comes back into Python only through the batch hook,
and only when some callback implements a batch hook (docs/architecture.md).
"""
import math
import sys
import threading
import warnings

import numpy as np

from fastfit import backend, losses
from fastfit import metrics as metrics_module
from fastfit import optimizers
from fastfit.engine import compiled, data
from fastfit.engine.custom_metrics import CustomMetrics
from fastfit.engine.logs import Logs, MetricNames
from fastfit.engine.network import Network


class Model(Network):
    """A trainable graph of layers: `Model(inputs, outputs)` (functional API) or `Sequential`."""

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.metrics_names = MetricNames(["loss"])
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._engine = None
        self._canonical_metrics = []
        self._pending_compile = None  # compile arguments waiting for a deferred build (see `compile`)
        self._custom_metrics = None  # a CustomMetrics when compiled with custom metrics
        self._seed = backend.draw_seed()   # drives per-epoch shuffling; saved with the model
        self._busy = threading.RLock()  # re-entrant: a callback may evaluate/predict its own model

    # -- compile -----------------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, sample_weight_mode=None,
                weighted_metrics=None, target_tensors=None, engine=None, **kwargs):
        """Configure training.

        Arguments:
            optimizer: name ('rmsprop', 'adam', ...) or an optimizer instance.
            loss: name, alias or function of `fastfit.losses` (a one-item list or dict is accepted); a custom
                loss function raises ValueError (fastfit derives gradients for its built-in losses only).
            metrics: list of names, functions of `fastfit.metrics`/`fastfit.losses`, custom functions
                `f(y_true, y_pred)` or metric objects (`fastfit.metrics.Metric`); the log key is the string
                given ('acc' → `acc`), a function's `__name__` or an object's `name`.
            engine: 'cython' (default; `FASTFIT_ENGINE` overrides the default) or 'python' (NumPy reference).
            loss_weights, sample_weight_mode, weighted_metrics, target_tensors: Keras arguments that only
                accept their neutral values (one output, per-sample weights).

        Raises:
            ValueError: unknown optimizer, loss, metric or engine; a model with several outputs.
        """
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
        canonical_loss = losses.get(loss)
        units = None if deferred else self.output_shape[-1]  # deferred: metrics are checked again at build
        metric_list = [] if metrics is None else metrics
        if isinstance(metric_list, dict):
            metric_list = [m for value in metric_list.values() for m in (value if isinstance(value, list) else [value])]
        if isinstance(metric_list, (str,)) or not isinstance(metric_list, (list, tuple)):
            raise TypeError(f"compile: `metrics` must be a list, got {metric_list!r}")
        resolved = [metrics_module.resolve(m, canonical_loss, units) for m in metric_list]
        keys = [key for key, _ in resolved]
        if len(set(keys)) != len(keys) or "loss" in keys:
            raise ValueError(f"compile: metric names must be unique and not 'loss', got {keys}")
        chosen_engine = compiled.resolve_engine(engine)
        new_optimizer = optimizers.get(optimizer)
        # Everything checked: now change the model.
        self.optimizer = new_optimizer
        self.loss = loss if isinstance(loss, str) else canonical_loss
        self._canonical_loss = canonical_loss
        self.metrics = list(metric_list)
        self._canonical_metrics = [metric for _, metric in resolved if isinstance(metric, str)]
        self.metrics_names = MetricNames(["loss"] + keys)
        custom = {key: metric for key, metric in resolved if not isinstance(metric, str)}
        self._custom_metrics = CustomMetrics(self.metrics_names, custom) if custom else None
        self._engine = chosen_engine
        # As in Keras 2, `layer.trainable` takes effect at compile: training leaves these layers' weights alone
        # until the next compile, whatever their flag says meanwhile.
        self._frozen = frozenset(layer for layer in self.layers if not layer.trainable and layer.weights)
        self._invalidate()
        self.compiled = True
        # A model without an input shape compiles again, with these arguments, once it is built
        # (`_compile_pending`): the metrics that depend on the output units are resolved then.
        self._pending_compile = None if not deferred else dict(
            optimizer=new_optimizer, loss=loss, metrics=metric_list, engine=chosen_engine)

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
            pending, self._pending_compile = self._pending_compile, None
            try:
                self.compile(**pending)
            except Exception:  # e.g. a metric that does not fit the output: the model is built, not compiled
                self.compiled = False
                raise

    def _require_built(self, what):
        """tf.keras's error for an unbuilt model (`summary`, `get_weights`, saving before the first build)."""
        if not self.outputs and self._builds_from_data():
            raise ValueError(f"{what}: This model has not yet been built. Build the model first by calling "
                             "`build()` or by calling the model on a batch of data (`fit`, `evaluate` or "
                             "`predict`), or give the first layer an `input_shape` argument for automatic build.")

    def summary(self, line_length=None, positions=None, print_fn=None):
        self._require_built("summary")
        super().summary(line_length=line_length, positions=positions, print_fn=print_fn)

    summary.__doc__ = Network.summary.__doc__

    def get_weights(self):
        self._require_built("get_weights")
        return super().get_weights()

    get_weights.__doc__ = Network.get_weights.__doc__

    def _training_config(self):
        """The `training_config` dict of Keras 2 HDF5 files."""
        return {"optimizer_config": optimizers.serialize(self.optimizer), "loss": self.loss,
                "metrics": [m if isinstance(m, str) else getattr(m, "__name__", None) or m.name
                            for m in self.metrics],
                "weighted_metrics": None, "loss_weights": None, "sample_weight_mode": None}

    def _require_compiled(self, method):
        if not self.compiled:
            raise RuntimeError(f"{method}: you must compile the model before using it, e.g. "
                               "model.compile(optimizer='rmsprop', loss='categorical_crossentropy')")

    def _train_network(self):
        params = compiled.chain_params(compiled.model_ops(self))
        if not self.optimizer.is_built_for(params):
            self.optimizer.build(params)
        return compiled.engine_network(self, self._engine, self._canonical_loss, self._canonical_metrics)

    # -- data -------------------------------------------------------------------------------------------
    def _dtype(self):
        return compiled.model_dtype(self.layers)

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

    # -- fit ----------------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=None, verbose=1, callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_freq=1, **kwargs):
        """Train for `epochs - initial_epoch` epochs and return the `History`.

        Arguments follow Keras 2 (`batch_size=None` means 32; `validation_split` takes the last samples before
        shuffling; `shuffle='batch'` shuffles whole batches; `epochs=None` means 1). The legacy `nb_epoch` is accepted with a warning.

        Raises:
            RuntimeError: not compiled, or `fit` already running on this model in another thread.
            TypeError, ValueError: bad arguments or data (the model is left unchanged).
        """
        if "nb_epoch" in kwargs:
            if epochs is not None:
                raise TypeError("fit received both the legacy keyword argument `nb_epoch` and `epochs`; "
                                "pass only `epochs`")
            warnings.warn("The `nb_epoch` argument in `fit` has been renamed `epochs`.", DeprecationWarning,
                          stacklevel=2)
            epochs = kwargs.pop("nb_epoch")
        epochs = 1 if epochs is None else epochs
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        self._build_from(x)
        self._require_compiled("fit")
        if steps_per_epoch is not None or validation_steps is not None:
            raise ValueError("fit: `steps_per_epoch`/`validation_steps` are for generator input, which fastfit does "
                             "not take; pass arrays and `batch_size`")
        batch_size = data.check_batch_size(batch_size)
        epochs = data.check_non_negative_int(epochs, "epochs")
        initial_epoch = data.check_non_negative_int(initial_epoch, "initial_epoch")
        verbose = _check_verbose(verbose)
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"`shuffle` must be True, False or 'batch', got {shuffle!r}")
        validation_epochs = _validation_epochs(validation_freq)
        train, val, val_for_callbacks = self._prepare_validation(validation_data, validation_split, x, y,
                                                                 sample_weight, class_weight)
        from fastfit.callbacks import CallbackList  # late import: callbacks import models for type checks
        user_callbacks = CallbackList(callbacks)
        with self._exclusive("fit"):
            return self._fit_loop(train, val, val_for_callbacks, user_callbacks, batch_size, epochs, verbose,
                                  shuffle, initial_epoch, validation_epochs)

    def _fit_loop(self, train, val, val_for_callbacks, user_callbacks, batch_size, epochs, verbose, shuffle,
                  initial_epoch, validation_epochs):
        from fastfit.callbacks import CallbackList, History, ProgbarLogger, make_batch_hook
        net = self._train_network()
        x, y, weights = train
        n = len(x)
        self.history = History()
        listed = list(user_callbacks)
        progbar = [] if not verbose or any(isinstance(cb, ProgbarLogger) for cb in listed) else \
            [ProgbarLogger(count_mode="samples")]
        cbks = CallbackList(progbar + listed + [self.history])
        metric_keys = self.metrics_names
        params = {"batch_size": batch_size, "epochs": epochs, "steps": int(math.ceil(n / batch_size)),
                  "samples": n, "verbose": verbose, "do_validation": val is not None,
                  "metrics": metric_keys + (["val_" + k for k in metric_keys] if val is not None else [])}
        cbks.set_validation_data(val_for_callbacks)
        cbks.set_model(self)
        cbks.set_params(params)
        if verbose and val is not None:
            print(f"Train on {n} samples, validate on {len(val[0])} samples")
        self.stop_training = False
        cbks.on_train_begin({})
        start_epoch, skip_batches = _resume_point(cbks, initial_epoch)
        if (start_epoch, skip_batches) != (initial_epoch, 0):
            self._invalidate()  # a restored backup may carry other dropout seeds: rebuild the engine network
            net = self._train_network()
        epoch_logs = {}
        try:
            for epoch in range(start_epoch, epochs):
                cbks.on_epoch_begin(epoch, {})
                _release_writes()  # the shuffle below releases the GIL: a write behind can run meanwhile
                order = self._epoch_order(epoch, n, batch_size, shuffle)
                if epoch == start_epoch and skip_batches:
                    order = order[skip_batches * batch_size:]  # resumed mid-epoch: those batches are done
                metric_pass = self._metric_pass(y, order, batch_size)
                hook = make_batch_hook(cbks, "train", metric_keys, self, metric_pass=metric_pass)
                sums = net.train_epoch(x, y, weights, order, batch_size, self.optimizer, hook)
                epoch_logs = _logs_from_sums(metric_keys, sums, metric_pass)
                finished = int(sums[0]) == len(order)
                if finished and not math.isfinite(epoch_logs.get("loss", 0.0)):
                    bad = net.first_nonfinite_batch
                    where = "" if bad is None else f" at batch {bad + (skip_batches if epoch == start_epoch else 0)}"
                    warnings.warn(f"Epoch {epoch + 1}: the training loss became {epoch_logs['loss']} (NaN or "
                                  f"infinite){where}; add fastfit.callbacks.TerminateOnNaN() to stop at the first "
                                  "such batch", RuntimeWarning, stacklevel=3)
                if finished and val is not None and (epoch + 1) in validation_epochs:
                    results = self._evaluate_arrays(val, batch_size, cbks)
                    epoch_logs.update(("val_" + k, v) for k, v in results.items())
                _hold_writes()
                cbks.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            _release_writes()
            cbks.on_train_end(Logs(epoch_logs))
            raise
        except BaseException:
            # No on_train_end (as in Keras), but checkpoints written behind must be on disk when fit raises.
            from fastfit.saving import write_behind
            write_behind.finish_pending()
            raise
        _release_writes()
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
        # Already int64 where that is numpy's default integer: a copy cost 0.4 ms per W1 epoch (fresh pages)
        return order.astype(np.int64, copy=False)

    def _evaluate_arrays(self, arrays, batch_size, cbks):
        """Run the test loop over prepared arrays with `cbks`' test hooks; return {metric key: mean}."""
        from fastfit.callbacks import make_batch_hook
        net = self._train_network()
        x, y, weights = arrays
        cbks.on_test_begin({})
        metric_pass = self._metric_pass(y, None, batch_size)
        hook = make_batch_hook(cbks, "test", self.metrics_names, self, metric_pass=metric_pass)
        # A batch's loss is sum(w * loss) / (its count of non-zero weights), as in Keras 2: with zero weights,
        # which rows share a batch changes the result, so the batches stay the user's.
        per_batch = hook is not None or (weights is not None and np.count_nonzero(weights) != len(weights))
        rows = batch_size if per_batch else compiled.forward_block(self, batch_size, x.dtype)
        sums = net.evaluate(x, y, weights, rows, hook)
        results = _logs_from_sums(self.metrics_names, sums, metric_pass)
        cbks.on_test_end(Logs(results))
        return results

    # -- evaluate / predict ----------------------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, steps=None, callbacks=None,
                 **kwargs):
        """Return the loss (no metrics) or `[loss, *metrics]` in `metrics_names` order, sample-weighted means."""
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        self._build_from(x)
        self._require_compiled("evaluate")
        if steps is not None:
            raise ValueError("evaluate: `steps` is for generator input; pass arrays and `batch_size`")
        batch_size = data.check_batch_size(batch_size)
        verbose = _check_verbose(verbose)
        arrays = self._prepare_xy(x, y, sample_weight)
        from fastfit.callbacks import CallbackList
        cbks = CallbackList(callbacks)
        with self._exclusive("evaluate"):
            cbks.set_model(self)
            cbks.set_params({"batch_size": batch_size, "steps": None, "samples": len(arrays[0]),
                             "verbose": verbose, "metrics": list(self.metrics_names)})
            results = self._evaluate_arrays(arrays, batch_size, cbks)
        if verbose:
            from fastfit.utils.progbar import Progbar
            bar = Progbar(target=len(arrays[0]), verbose=verbose)
            bar.update(len(arrays[0]), list(results.items()))
        values = [results[k] for k in self.metrics_names]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None, **kwargs):
        """Return the model output for `x`: an array, or a list of arrays for a model with a list of outputs."""
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        quiet = verbose is False or (type(verbose) is int and verbose == 0)
        if quiet and callbacks is None and steps is None and type(x) is np.ndarray:
            result = self._predict_plain(x, batch_size)
            if result is not None:
                return result
        self._build_from(x)
        self._require_graph("output (predict needs a built model)")
        if steps is not None:
            raise ValueError("predict: `steps` is for generator input; pass arrays and `batch_size`")
        batch_size = data.check_batch_size(batch_size)
        _check_verbose(verbose)
        dtype = self._dtype()
        x = data.prepare_inputs(x, self.input_shape, dtype)
        from fastfit.callbacks import CallbackList, make_batch_hook
        cbks = CallbackList(callbacks)
        engine = self._engine or compiled.resolve_engine(None)
        outputs = []
        with self._exclusive("predict"):
            cbks.set_model(self)
            cbks.set_params({"batch_size": batch_size, "steps": None, "samples": len(x), "verbose": verbose})
            cbks.on_predict_begin({})
            single_chain = len(self.outputs) == 1
            for index, tensor in enumerate(self.outputs):
                out = np.empty((len(x), int(np.prod(tensor.shape[1:]))), dtype=dtype)
                net = compiled.engine_network(self, engine, "mean_squared_error", [], index)
                hook = make_batch_hook(cbks, "predict", [], self, out=out) if single_chain else None
                rows = batch_size if hook is not None else compiled.forward_block(self, batch_size, dtype)
                net.predict(x, rows, out, hook)
                outputs.append(out.reshape((len(x),) + tuple(tensor.shape[1:])))
            if not single_chain:
                _replay_predict_hooks(cbks, outputs, batch_size)
            cbks.on_predict_end({})
        return outputs[0] if self._single_output else outputs

    def _predict_plain(self, x, batch_size):
        """`predict` without callbacks, progress bar or steps, of a C-contiguous array of the model dtype and
        input shape: the same checks and result as the general path, without its per-call Python work (the
        model's checked state is cached in `_engine_cache`, which every change of the layers empties).
        Returns None where the general path must run (it then raises for bad arguments)."""
        plan = self._engine_cache.get("predict")
        if plan is None:
            if not self.outputs or len(self.outputs) != 1:
                return None
            engine = self._engine or compiled.resolve_engine(None)
            dtype = self._dtype()
            net = compiled.engine_network(self, engine, "mean_squared_error", [], 0)
            plan = (net, engine, dtype, tuple(self.input_shape[1:]), tuple(self.outputs[0].shape[1:]),
                    compiled.forward_block(self, 1, dtype), self._single_output)
            self._engine_cache["predict"] = plan
        net, engine, dtype, in_shape, out_shape, block, single = plan
        if (x.dtype != dtype or x.shape[1:] != in_shape or not x.flags.c_contiguous or not len(x)
                or engine != (self._engine or compiled.resolve_engine(None))):
            return None
        batch_size = data.check_batch_size(batch_size)
        data.check_finite(x, "x")
        out = np.empty((len(x),) + out_shape, dtype=dtype)
        with self._exclusive("predict"):
            net.predict(x.reshape(len(x), -1), max(batch_size, block), out.reshape(len(x), -1), None)
        return out if single else [out]

    # -- single batches --------------------------------------------------------------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One update on one batch; returns the loss or `[loss, *metrics]` measured before the update."""
        self._build_from(x)
        self._require_compiled("train_on_batch")
        x, y, weights = self._prepare_xy(x, y, sample_weight, class_weight)
        order = np.arange(len(x), dtype=np.int64)
        with self._exclusive("train_on_batch"):
            metric_pass, hook = self._single_batch_hook("train", y, order, len(x))
            sums = self._train_network().train_epoch(x, y, weights, order, len(x), self.optimizer, hook)
        return _scalar_or_list(self.metrics_names, sums, metric_pass)

    def test_on_batch(self, x, y, sample_weight=None):
        self._build_from(x)
        self._require_compiled("test_on_batch")
        x, y, weights = self._prepare_xy(x, y, sample_weight)
        with self._exclusive("test_on_batch"):
            metric_pass, hook = self._single_batch_hook("test", y, None, len(x))
            sums = self._train_network().evaluate(x, y, weights, len(x), hook)
        return _scalar_or_list(self.metrics_names, sums, metric_pass)

    def _single_batch_hook(self, mode, y, order, rows):
        """(metric pass, hook) of a train/test_on_batch: no hook unless the model has custom metrics."""
        metric_pass = self._metric_pass(y, order, max(rows, 1))
        if metric_pass is None:
            return None, None
        from fastfit.callbacks import make_batch_hook
        return metric_pass, make_batch_hook((), mode, self.metrics_names, self, metric_pass=metric_pass)

    def predict_on_batch(self, x):
        x = np.asarray(x) if not isinstance(x, np.ndarray) else x
        return self.predict(x, batch_size=max(1, len(x)))

    # -- concurrency ---------------------------------------------------------------------------------------------
    def _exclusive(self, method):
        return _ExclusiveUse(self._busy, self.name, method)

    # -- saving (fastfit.saving does the work) -----------------------------------------------------------------
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, training config and optimizer state to an HDF5 file (atomically)."""
        from fastfit import saving
        self._require_built("save")
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        from fastfit import saving
        self._require_built("save_weights")
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False):
        from fastfit import saving
        saving.load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)

    # -- pickling (fastfit.saving.pickling does the work) -------------------------------------------------------
    def __reduce__(self):
        """`pickle.dumps(model)` / `copy.deepcopy(model)`: the model travels as its HDF5 file image, optimizer
        state and seeds included, so the copy continues training bit for bit (see `fastfit.saving.pickling`)."""
        from fastfit.saving import pickling
        return pickling.model_from_image, (pickling.model_image(self), pickling.model_extras(self))

    # cthulhu spellings (fastfit.cthulhu), plain aliases like upstream's `Pile.summon = Pile.fit`
    summon = fit
    conjure = compile


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


def _hold_writes():
    """Checkpoints the epoch-end callbacks write behind start once the next epoch runs (see write_behind)."""
    module = sys.modules.get("fastfit.saving.write_behind")  # not loaded: nothing is written behind
    if module is not None:
        module.hold()


def _release_writes():
    module = sys.modules.get("fastfit.saving.write_behind")
    if module is not None:
        module.release()


def _resume_point(cbks, initial_epoch):
    """Where training resumes: a callback such as BackupAndRestore may set `resume_point = (epoch, batches
    done)` in `on_train_begin`; otherwise at `initial_epoch`."""
    for cb in cbks:
        point = getattr(cb, "resume_point", None)
        if point is not None and point[0] >= initial_epoch:
            return int(point[0]), int(point[1])
    return initial_epoch, 0


def _replay_predict_hooks(cbks, outputs, batch_size):
    """Batch hooks of a multi-output predict: each output chain ran on its own, so the batches are reported
    afterwards, each with the list of all outputs' rows (Keras 2 `outputs`)."""
    for batch, start in enumerate(range(0, len(outputs[0]), batch_size)):
        size = min(batch_size, len(outputs[0]) - start)
        cbks.on_predict_batch_begin(batch, {"batch": batch, "size": size})
        cbks.on_predict_batch_end(batch, {"batch": batch, "size": size,
                                          "outputs": [out[start:start + size] for out in outputs]})


def _logs_from_sums(keys, sums, metric_pass=None):
    """The epoch logs (a `Logs`, so every alias of a key answers) from the engine's sums (and the custom
    metrics of `metric_pass`)."""
    if metric_pass is not None:
        return metric_pass.epoch_logs(sums)
    seen = float(sums[0])
    if seen == 0:
        return Logs()
    return Logs({key: float(sums[i + 1] / seen) for i, key in enumerate(keys)})


def _scalar_or_list(keys, sums, metric_pass=None):
    logs = _logs_from_sums(keys, sums, metric_pass)
    values = [logs[k] for k in keys]
    return values[0] if len(values) == 1 else values


def _check_verbose(verbose):
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"`verbose` must be 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _validation_epochs(validation_freq):
    """The set of 1-based epochs that validate, as a container supporting `in`."""
    if isinstance(validation_freq, (int, np.integer)) and not isinstance(validation_freq, bool):
        if validation_freq < 1:
            raise ValueError(f"`validation_freq` must be a positive integer or a list of epochs, got {validation_freq!r}")
        return _EveryNth(int(validation_freq))
    if isinstance(validation_freq, (list, tuple, set)):
        return set(int(e) for e in validation_freq)
    raise ValueError(f"`validation_freq` must be a positive integer or a list of epochs, got {validation_freq!r}")


class _EveryNth:
    def __init__(self, n):
        self.n = n

    def __contains__(self, epoch):
        return epoch % self.n == 0


def _short(value):
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
