"""`fit`/`evaluate`/`predict` over data that is not one in-memory array: generators, `Sequence`s
(`fit_generator` & co.) and on-disk arrays streamed in buffers (`fastfit.engine.streams`).

An epoch is a series of *parts* (one generator batch, or one buffer of rows read from disk), each run through
the engine's own epoch function (`train_epoch`/`evaluate`/`predict`, without the GIL in the compiled engine).
What stays true across parts, so callbacks cannot tell the difference from one array:
- batch indices continue from part to part, and the throttled running means of the progress bar include the
  earlier parts (`ContinuedHook`);
- the epoch logs are the sample-weighted means of the whole epoch; one part per batch accumulates them in
  the engine's own order, so a `Sequence` serving the batches of an array fit gives that fit's bits;
- every worker started for a call is stopped and joined before the call returns or raises.
"""
import math
import time
import warnings

import numpy as np

from fastfit.engine import data, feeding
from fastfit.utils.data_utils import is_sequence


# -- what goes where ---------------------------------------------------------------------------------------
def is_batch_source(value):
    """True for a generator/iterator or a `Sequence` (a source of whole batches)."""
    if value is None or isinstance(value, (np.ndarray, list, tuple, dict, str, bytes)):
        return False
    return is_sequence(value) or (callable(getattr(type(value), "__next__", None))
                                  and callable(getattr(value, "__iter__", None)))


def takes_fit(x, y, validation_data):
    """True when `fit` must run here instead of on in-memory arrays."""
    return is_batch_source(x) or is_batch_source(validation_data) or _streams().any_stream(x, y, validation_data)


def takes(x, y=None):
    return is_batch_source(x) or _streams().any_stream(x, y)


def _streams():
    from fastfit.engine import streams  # late: imports h5py only when streams are used
    return streams


# -- the hook bridge ------------------------------------------------------------------------------------------
class ContinuedHook:
    """Wraps the `BatchHook` of one epoch (or one evaluate/predict; None when no callback listens) so that
    engine calls over successive parts look like one call: batch indices continue, the running sums behind
    throttled means include the earlier parts (train/test), and throttled callbacks are still called at most
    every `end_interval` seconds plus on `final_batch` (predict hooks are made per part, with that part's
    outputs).

    `exact=True` (generator and Sequence parts): the engine calls back after every batch and this object
    adds the batch into `sums` ([seen, loss sum, metric sums...]) with the engine's own operations, in batch
    order, so the epoch's sums are those of one engine call over all its batches, bit for bit.
    """

    def __init__(self, hook, metric_count, model=None, exact=False):
        self._hook = hook
        self._interval = 0.0 if hook is None else hook.end_interval
        self.batch_begin = hook is not None and hook.batch_begin
        self.batch_end = exact or (hook is not None and hook.batch_end)
        # the engine throttles inside a part, this object across parts
        self.end_interval = 0.0 if exact else self._interval
        self.end_calls = None
        self._count = metric_count
        self._model = model
        self._carried = None
        self._last_end = time.monotonic()
        self.batch_offset = 0
        self.final_batch = None
        self.sums = [0.0] * (metric_count + 1) if exact else None

    def __call__(self, phase, batch, size, stats):
        batch = int(batch) + self.batch_offset
        if phase and self.sums is not None:
            sums = self.sums
            sums[0] += size
            for index in range(self._count):
                sums[index + 1] += stats.item(index) * size
        if self._hook is None or phase and not self._hook.batch_end:
            return phase and self._stop()
        if phase and self._interval > 0:
            now = time.monotonic()
            if batch != self.final_batch and now - self._last_end < self._interval:
                return self._stop()
            self._last_end = now
        if self.sums is not None:
            stats = np.concatenate([stats[:self._count], self.sums])
        elif self._carried is not None:
            stats = stats.copy()
            stats[self._count:] += self._carried
        return self._hook(phase, batch, size, stats)

    def _stop(self):
        return self._model is not None and bool(self._model.stop_training)

    def advance(self, batches, sums=None):
        """Account for a finished part of `batches` batches (and its sums, train/test)."""
        self.batch_offset += batches
        if sums is not None:
            self._carried = sums.copy() if self._carried is None else self._carried + sums


def relay(hook, metric_count, model=None, exact=False):
    return ContinuedHook(hook, metric_count, model, exact) if hook is not None or exact else None


# -- batches from generators and Sequences ---------------------------------------------------------------------
class BatchFeed:
    """The batches of a generator or a `Sequence`, as engine parts.

    Arguments:
        steps: batches per pass (None: a Sequence's length; for a generator, until it is exhausted).
        shuffle: a Sequence's index order is shuffled per epoch from the model seed (resumes repeat it).
    """

    def __init__(self, model, source, steps, argument, workers=1, use_multiprocessing=False, max_queue_size=10,
                 shuffle=False, class_weight=None):
        self.model = model
        self.argument = argument
        self.source = source
        self.shuffle = bool(shuffle)
        self.class_weight = class_weight
        self.workers, self.use_multiprocessing, self.max_queue_size = feeding.check_workers(
            workers, use_multiprocessing, max_queue_size)
        self.sequence = is_sequence(source)
        if steps is not None:
            steps = data.check_non_negative_int(steps, f"steps for {argument}")
            if steps == 0:
                raise ValueError(f"the number of steps for `{argument}` must be positive, got 0")
        if self.sequence:
            length = len(source)
            if length < 1:
                raise ValueError(f"`{argument}` is a Sequence of length {length}: it serves no batches")
            if steps is not None and steps > length:
                raise ValueError(f"{steps} steps asked of `{argument}`, a Sequence of {length} batches; "
                                 f"give at most {length} steps per pass")
            self.steps = length if steps is None else steps
            self._generator = None
        else:
            if self.use_multiprocessing and self.workers > 1:
                raise ValueError(f"`{argument}` is a generator: `use_multiprocessing=True` with several workers "
                                 "would run a copy of it in each process and serve its batches several times; "
                                 "use a fastfit.utils.Sequence, or use_multiprocessing=False")
            self.steps = steps
            self._generator = feeding.GeneratorReader(source, self.workers, self.max_queue_size)
        self.exhausted = False
        self.last_batch_size = None
        self.group_size = max(1, min(self.max_queue_size, 16))

    def close(self):
        if self._generator is not None:
            self._generator.close()

    def items(self, epoch=None, skip=0):
        """Yield the raw items of one pass (the first `skip` of them left out); sets `exhausted` when a
        generator ends before `steps` items."""
        if self.sequence:
            if epoch is not None and self.shuffle:
                order = self.model._epoch_order(epoch, len(self.source), 1, True)
            else:
                order = np.arange(len(self.source))
            with feeding.SequenceReader(self.source, order[skip:self.steps], self.workers,
                                        self.use_multiprocessing, self.max_queue_size) as reader:
                yield from reader
            self.source.on_epoch_end()  # reached after a whole pass only, with no worker reading
            return
        count = 0
        while self.steps is None or count < self.steps:
            try:
                item = self._generator.next()
            except StopIteration:
                self.exhausted = True
                return
            if count >= skip:
                yield item
            count += 1

    exact_sums = True  # parts are groups of whole batches: ContinuedHook(exact=True) sums them in order

    def train_parts(self, epoch, skip):
        """(x, y, sample_weight, order, batch_size) per group of batches of the epoch."""
        batches = (self._prepare(item, number + skip, self.class_weight)
                   for number, item in enumerate(self.items(epoch, skip)))
        for x, y, weights, batch_size, last_size in self._groups(batches, skip):
            self.last_batch_size = last_size
            yield x, y, weights, _identity(len(x)), batch_size

    def test_parts(self):
        """(x, y, sample_weight, batch_size) per group of batches of one pass."""
        batches = (self._prepare(item, number, None) for number, item in enumerate(self.items()))
        for x, y, weights, batch_size, _ in self._groups(batches, 0):
            yield x, y, weights, batch_size

    def predict_parts(self):
        """(x, batch_size) per group of batches of one pass (an item may be x alone, or a tuple whose first
        entry is x)."""
        model = self.model

        def inputs():
            for number, item in enumerate(self.items()):
                if isinstance(item, (tuple, list)) and len(item) in (2, 3) and not _looks_like_rows(item):
                    item = item[0]
                yield data.prepare_inputs(item, model.input_shape, model._dtype(), self._name(number, "x")), \
                    None, None
        for x, _, _, batch_size, _ in self._groups(inputs(), 0):
            yield x, batch_size

    def _groups(self, batches, skip):
        """Join consecutive batches into one engine part each (one call instead of one per batch): a group
        holds batches of one size, the last of them possibly smaller (as an array fit's last batch), with the
        same fields (weights or none), at most `group_size` batches (one more rather than leave a single batch
        for the end). The engine walks a group in batches of its first batch's size: the same batches.

        Yields (x, y, sample_weight, batch_size, last batch size)."""
        group = []
        left = None if self.steps is None else self.steps - skip
        while True:
            try:
                x, y, weights = next(batches)
            except StopIteration:
                break
            except Exception:
                if group:  # the batches before a failing one train first, as without grouping
                    yield _joined(group)
                raise  # a generator keeps the exception being handled across the yield
            if group and (len(x) > len(group[0][0]) or len(group[-1][0]) != len(group[0][0])
                          or (weights is None) != (group[0][2] is None)):
                yield _joined(group)
                group = []
            group.append((x, y, weights))
            left = None if left is None else left - 1
            if len(group) >= self.group_size and left != 1:
                yield _joined(group)
                group = []
        if group:
            yield _joined(group)

    def _prepare(self, item, number, class_weight):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(f"Output of generator should be a tuple `(x, y, sample_weight)` or `(x, y)`. "
                             f"Found: {_short(item)} ({self._name(number, 'batch')})")
        weights = item[2] if len(item) == 3 else None
        names = tuple(self._name(number, part) for part in ("x", "y", "sample_weight"))
        return self.model._prepare_xy(item[0], item[1], weights, class_weight, names)

    def _name(self, number, part):
        return f"{part} of batch {number} of {self.argument}"


def _joined(group):
    """One part from a list of (x, y, weights) batches: (x, y, weights, batch size, last batch size)."""
    first, last = len(group[0][0]), len(group[-1][0])
    if len(group) == 1:
        return group[0] + (first, last)
    x = np.concatenate([batch[0] for batch in group])
    y = None if group[0][1] is None else np.concatenate([batch[1] for batch in group])
    weights = None if group[0][2] is None else np.concatenate([batch[2] for batch in group])
    return x, y, weights, first, last


def _looks_like_rows(item):
    """A list of numbers (one tiny x) rather than an (x, y[, w]) tuple."""
    return isinstance(item, list) and not any(hasattr(v, "__len__") for v in item)


_IDENTITY: dict[int, np.ndarray] = {}


def _identity(size):
    """`arange(size)` as int64 (cached: generator batches share their few sizes)."""
    order = _IDENTITY.get(size)
    if order is None:
        order = _IDENTITY[size] = np.arange(size, dtype=np.int64)
    return order


# -- the loops ------------------------------------------------------------------------------------------------
def train(model, feed, validate, val_for_callbacks, callbacks, epochs, verbose, initial_epoch, validation_epochs,
          params, count_mode):
    """The fit loop over `feed.train_parts(epoch, skip)` (same callbacks, logs and resume as `_fit_loop`).

    Arguments:
        validate: None, or a function (callback list, training batch size) -> {metric key: mean}.
        params: the callbacks' params without 'metrics' and 'do_validation'.
    """
    from fastfit.callbacks import CallbackList, History, ProgbarLogger, make_batch_hook
    from fastfit.engine.training import (
        _hold_writes,
        _logs_from_sums,
        _release_writes,
        _resume_point,
    )
    net = model._train_network()
    model.history = History()
    listed = list(callbacks)
    progbar = [] if not verbose or any(isinstance(cb, ProgbarLogger) for cb in listed) else \
        [ProgbarLogger(count_mode=count_mode)]
    cbks = CallbackList(progbar + listed + [model.history])
    keys = model.metrics_names
    params = dict(params, epochs=epochs, verbose=verbose, do_validation=validate is not None,
                  metrics=keys + (["val_" + k for k in keys] if validate is not None else []))
    cbks.set_validation_data(val_for_callbacks)
    cbks.set_model(model)
    cbks.set_params(params)
    model.stop_training = False
    cbks.on_train_begin({})
    start_epoch, skip_batches = _resume_point(cbks, initial_epoch)
    if (start_epoch, skip_batches) != (initial_epoch, 0):
        model._invalidate()  # a restored backup may carry other dropout seeds: rebuild the engine network
        net = model._train_network()
    steps = params.get("steps")
    epoch_logs = {}
    try:
        for epoch in range(start_epoch, epochs):
            cbks.on_epoch_begin(epoch, {})
            skip = skip_batches if epoch == start_epoch else 0
            exact = getattr(feed, "exact_sums", False)
            hook = relay(make_batch_hook(cbks, "train", keys, model), len(keys), model, exact)
            if hook is not None and steps:
                hook.final_batch = steps - 1 - skip
            _release_writes()
            sums, batches, first_bad, completed = None, 0, None, False
            parts = feed.train_parts(epoch, skip)
            try:
                for x, y, weights, order, batch_size in parts:
                    part = net.train_epoch(x, y, weights, order, batch_size, model.optimizer, hook)
                    done = -(-int(part[0]) // batch_size)
                    if first_bad is None and net.first_nonfinite_batch is not None:
                        first_bad = batches + net.first_nonfinite_batch + skip
                    sums = part if sums is None else sums + part
                    batches += done
                    if hook is not None:
                        hook.advance(done, part)
                    if model.stop_training:
                        break
                else:
                    completed = True
            finally:
                parts.close()
            if exact and sums is not None:
                sums = np.array(hook.sums)  # batch by batch, as one engine call over the epoch adds them
            ran_out = feed.exhausted and (sums is None or steps is not None)
            if ran_out:
                warnings.warn("Your input ran out of data; interrupting training. Make sure that your generator "
                              "can generate at least `steps_per_epoch * epochs` batches.", RuntimeWarning,
                              stacklevel=4)
                model.stop_training = True
                if sums is None:
                    break
            epoch_logs = {} if sums is None else _logs_from_sums(keys, sums)
            finished = not ran_out and (completed or batches + skip == steps)
            if finished and not math.isfinite(epoch_logs.get("loss", 0.0)):
                where = "" if first_bad is None else f" at batch {first_bad}"
                warnings.warn(f"Epoch {epoch + 1}: the training loss became {epoch_logs['loss']} (NaN or "
                              f"infinite){where}; add fastfit.callbacks.TerminateOnNaN() to stop at the first "
                              "such batch", RuntimeWarning, stacklevel=4)
            if finished and validate is not None and (epoch + 1) in validation_epochs:
                results = validate(cbks, feed.last_batch_size)
                epoch_logs.update(("val_" + k, v) for k, v in results.items())
            _hold_writes()
            cbks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
    except KeyboardInterrupt:
        _release_writes()
        cbks.on_train_end(dict(epoch_logs))
        raise
    except BaseException:
        from fastfit.saving import write_behind
        write_behind.finish_pending()
        raise
    _release_writes()
    cbks.on_train_end(dict(epoch_logs))
    return model.history


def evaluate_parts(model, parts, cbks, exact=False):
    """Run the test loop over `parts` ((x, y, w, batch_size) tuples) with `cbks`' test hooks; return
    {metric key: mean}.

    Raises:
        ValueError: the parts held no batch.
    """
    from fastfit.callbacks import make_batch_hook
    from fastfit.engine.training import _logs_from_sums
    net = model._train_network()
    keys = model.metrics_names
    cbks.on_test_begin({})
    hook = relay(make_batch_hook(cbks, "test", keys, model), len(keys), None, exact)
    sums = None
    try:
        for x, y, weights, batch_size in parts:
            part = net.evaluate(x, y, weights, batch_size, hook)
            sums = part if sums is None else sums + part
            if hook is not None:
                hook.advance(-(-len(x) // batch_size), part)
    finally:
        parts.close()
    if sums is None:
        raise ValueError("evaluate: the data served no batches")
    if exact:
        sums = np.array(hook.sums)
    results = _logs_from_sums(keys, sums)
    cbks.on_test_end(dict(results))
    return results


def predict_parts(model, parts, cbks, total=None):
    """Run predict over `parts` ((x, batch_size) pairs); return the output (or list of outputs). With
    `total`, the outputs are allocated once for `total` rows and each part writes its rows."""
    from fastfit.callbacks import make_batch_hook
    from fastfit.engine import compiled
    engine = model._engine or compiled.resolve_engine(None)
    tensors = model.outputs
    nets = [compiled.engine_network(model, engine, "mean_squared_error", [], index) for index in range(len(tensors))]
    widths = [int(np.prod(t.shape[1:])) for t in tensors]
    dtype = model._dtype()
    single = len(tensors) == 1
    cbks.on_predict_begin({})
    pieces = [[] for _ in tensors]
    outputs = None if total is None else [np.empty((total, w), dtype) for w in widths]
    batch = 0
    row = 0
    try:
        for x, size in parts:
            if outputs is None:
                outs = [np.empty((len(x), w), dtype) for w in widths]
                for out, piece in zip(outs, pieces):
                    piece.append(out)
            else:
                outs = [out[row:row + len(x)] for out in outputs]
            for index, (net, out) in enumerate(zip(nets, outs)):
                hook = None
                if single:
                    hook = relay(make_batch_hook(cbks, "predict", [], model, out=out), 0)
                    if hook is not None:
                        hook.batch_offset = batch
                net.predict(x, size, out, hook)
            if not single:
                for k, start in enumerate(range(0, len(x), size)):
                    logs = {"batch": batch + k, "size": min(size, len(x) - start)}
                    cbks.on_predict_batch_begin(batch + k, logs)
                    cbks.on_predict_batch_end(batch + k, dict(logs, outputs=[o[start:start + size] for o in outs]))
            batch += -(-len(x) // size)
            row += len(x)
    finally:
        parts.close()
    if outputs is None:
        if not pieces[0]:
            raise ValueError("predict: the data served no batches")
        outputs = [np.concatenate(piece) if len(piece) > 1 else piece[0] for piece in pieces]
    cbks.on_predict_end({})
    shaped = [out.reshape((len(out),) + tuple(t.shape[1:])) for out, t in zip(outputs, tensors)]
    return shaped[0] if model._single_output else shaped


# -- the public entry points ----------------------------------------------------------------------------------
def fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
        class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_freq,
        max_queue_size=10, workers=1, use_multiprocessing=False, keras2_generator=False, **kwargs):
    """`fit` for a generator/Sequence `x`, or for on-disk arrays (see `Model.fit` and `Model.fit_generator`)."""
    if not is_batch_source(x):
        if is_batch_source(validation_data):
            raise ValueError("fit: a generator or Sequence as `validation_data` needs `x` to be one too; pass "
                             "validation arrays, or wrap the training arrays in a fastfit.utils.Sequence")
        return _streams().fit(model, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                              validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                              steps_per_epoch, validation_steps, validation_freq, kwargs)
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    what = "fit_generator" if keras2_generator else "fit"
    for name, value in (("y", y), ("sample_weight", sample_weight), ("batch_size", batch_size)):
        if value is not None:
            raise ValueError(f"{what}: `{name}` must not be given when `x` is a generator or a Sequence (its "
                             f"batches carry the targets, weights and batch size), got {_short(value)}")
    if validation_split:
        raise ValueError(f"{what}: `validation_split` is not supported for generator or Sequence input; pass "
                         "`validation_data`")
    if not model.outputs:
        raise ValueError(f"{what}: model '{model.name}' has no input shape yet: a generator cannot build it; "
                         "give the first layer `input_shape=` or call `model.build(input_shape)` first")
    model._require_compiled(what)
    if keras2_generator and steps_per_epoch is None and not is_sequence(x):
        raise ValueError("`steps_per_epoch=None` is only valid for a generator based on the "
                         "`fastfit.utils.Sequence` class. Please specify `steps_per_epoch` or use the "
                         "`fastfit.utils.Sequence` class.")
    from fastfit.engine.training import _check_verbose, _validation_epochs
    epochs = data.check_non_negative_int(epochs, "epochs")
    initial_epoch = data.check_non_negative_int(initial_epoch, "initial_epoch")
    verbose = _check_verbose(verbose)
    if shuffle not in (True, False, "batch"):
        raise ValueError(f"`shuffle` must be True, False or 'batch', got {shuffle!r}")
    validation_epochs = _validation_epochs(validation_freq)
    feed = BatchFeed(model, x, steps_per_epoch, "x" if not keras2_generator else "generator", workers,
                     use_multiprocessing, max_queue_size, shuffle, class_weight)
    validate, val_for_callbacks, val_feed = None, None, None
    try:
        if validation_data is not None:
            if is_batch_source(validation_data):
                if validation_steps is None and not is_sequence(validation_data) and keras2_generator:
                    raise ValueError("`validation_steps=None` is only valid for a generator based on the "
                                     "`fastfit.utils.Sequence` class. Please specify `validation_steps` or use "
                                     "the `fastfit.utils.Sequence` class.")
                val_feed = BatchFeed(model, validation_data, validation_steps, "validation_data", workers,
                                     use_multiprocessing, max_queue_size)

                def validate(cbks, _batch_size):
                    return evaluate_parts(model, val_feed.test_parts(), cbks, exact=True)
            else:
                val, val_for_callbacks = _validation_arrays(model, validation_data)

                def validate(cbks, last_batch_size):
                    # Keras 2.2: arrays validate in batches of the last training batch's size
                    return model._evaluate_arrays(val, last_batch_size or 32, cbks)
        from fastfit.callbacks import CallbackList
        user_callbacks = CallbackList(callbacks)
        params = {"steps": feed.steps} if keras2_generator else {"steps": feed.steps, "samples": None}
        with model._exclusive(what):
            return train(model, feed, validate, val_for_callbacks, user_callbacks, epochs, verbose, initial_epoch,
                         validation_epochs, params, "steps")
    finally:
        feed.close()
        if val_feed is not None:
            val_feed.close()


def _validation_arrays(model, validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("`validation_data` must be a generator, a Sequence or a tuple (x_val, y_val) or "
                         f"(x_val, y_val, val_sample_weight), got {_short(validation_data)}")
    xv, yv = validation_data[0], validation_data[1]
    swv = validation_data[2] if len(validation_data) == 3 else None
    val = model._prepare_xy(xv, yv, swv, None, ("validation_data[0]", "validation_data[1]", "validation_data[2]"))
    return val, [xv, yv]


def evaluate(model, x, y, batch_size, verbose, sample_weight, steps, callbacks, max_queue_size=10, workers=1,
             use_multiprocessing=False, keras2_generator=False, **kwargs):
    """`evaluate` for a generator/Sequence `x`, or on-disk arrays."""
    if not is_batch_source(x):
        return _streams().evaluate(model, x, y, batch_size, verbose, sample_weight, steps, callbacks, kwargs)
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    what = "evaluate_generator" if keras2_generator else "evaluate"
    for name, value in (("y", y), ("sample_weight", sample_weight), ("batch_size", batch_size)):
        if value is not None:
            raise ValueError(f"{what}: `{name}` must not be given when `x` is a generator or a Sequence, got "
                             f"{_short(value)}")
    model._require_compiled(what)
    if keras2_generator and steps is None and not is_sequence(x):
        raise ValueError("`steps=None` is only valid for a generator based on the `fastfit.utils.Sequence` "
                         "class. Please specify `steps` or use the `fastfit.utils.Sequence` class.")
    from fastfit.engine.training import _check_verbose, _scalar_or_list
    verbose = _check_verbose(verbose)
    feed = BatchFeed(model, x, steps, "x" if not keras2_generator else "generator", workers, use_multiprocessing,
                     max_queue_size)
    from fastfit.callbacks import CallbackList
    cbks = CallbackList(callbacks)
    try:
        with model._exclusive(what):
            cbks.set_model(model)
            cbks.set_params({"batch_size": None, "steps": feed.steps, "samples": None, "verbose": verbose,
                             "metrics": list(model.metrics_names)})
            results = evaluate_parts(model, feed.test_parts(), cbks, exact=True)
    finally:
        feed.close()
    if verbose:
        from fastfit.utils.progbar import Progbar
        Progbar(target=1, verbose=verbose).update(1, list(results.items()))
    sums = np.array([1.0] + [results[k] for k in model.metrics_names])
    return _scalar_or_list(model.metrics_names, sums)


def predict(model, x, batch_size, verbose, steps, callbacks, max_queue_size=10, workers=1,
            use_multiprocessing=False, keras2_generator=False, **kwargs):
    """`predict` for a generator/Sequence `x`, or on-disk arrays."""
    if not is_batch_source(x):
        return _streams().predict(model, x, batch_size, verbose, steps, callbacks, kwargs)
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    what = "predict_generator" if keras2_generator else "predict"
    if batch_size is not None:
        raise ValueError(f"{what}: `batch_size` must not be given when `x` is a generator or a Sequence, got "
                         f"{batch_size!r}")
    model._require_graph("output (predict needs a built model)")
    if keras2_generator and steps is None and not is_sequence(x):
        raise ValueError("`steps=None` is only valid for a generator based on the `fastfit.utils.Sequence` "
                         "class. Please specify `steps` or use the `fastfit.utils.Sequence` class.")
    from fastfit.engine.training import _check_verbose
    verbose = _check_verbose(verbose)
    feed = BatchFeed(model, x, steps, "x" if not keras2_generator else "generator", workers, use_multiprocessing,
                     max_queue_size)
    from fastfit.callbacks import CallbackList
    cbks = CallbackList(callbacks)
    try:
        with model._exclusive(what):
            cbks.set_model(model)
            cbks.set_params({"batch_size": None, "steps": feed.steps, "samples": None, "verbose": verbose})
            return predict_parts(model, feed.predict_parts(), cbks)
    finally:
        feed.close()


def _short(value):
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."
