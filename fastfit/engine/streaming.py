"""`fit`/`evaluate`/`predict` over data that is not one in-memory array: generators and `Sequence`s
(`fit_generator` & co., `BatchFeed` here) and on-disk arrays streamed in buffers (`fastfit.engine.streams`).
Both cut an epoch into parts that `fastfit.engine.part_loops` runs through the engine; every worker started
for a call is stopped and joined before the call returns or raises.
"""
import numpy as np

from fastfit.callbacks.callback_list import CallbackList
from fastfit.engine import data, feeding, loop_helpers, part_loops
from fastfit.utils.data_utils import is_sequence
from fastfit.utils.progbar import Progbar


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
        items = self.items(epoch, skip)
        batches = (self._prepare(item, number + skip, self.class_weight) for number, item in enumerate(items))
        try:
            for x, y, weights, batch_size, last_size in self._groups(batches, skip):
                self.last_batch_size = last_size
                yield x, y, weights, part_loops.identity(len(x)), batch_size
        finally:
            items.close()  # stops the workers now, even while an exception's traceback holds the generators

    def test_parts(self):
        """(x, y, sample_weight, batch_size) per group of batches of one pass."""
        items = self.items()
        batches = (self._prepare(item, number, None) for number, item in enumerate(items))
        try:
            for x, y, weights, batch_size, _ in self._groups(batches, 0):
                yield x, y, weights, batch_size
        finally:
            items.close()  # stops the workers now (see train_parts)

    def predict_parts(self):
        """(x, batch_size) per group of batches of one pass (an item may be x alone, or a tuple whose first
        entry is x)."""
        model = self.model

        items = self.items()

        def inputs():
            for number, item in enumerate(items):
                if isinstance(item, (tuple, list)) and len(item) in (2, 3) and not _looks_like_rows(item):
                    item = item[0]
                yield data.prepare_inputs(item, model.input_shape, model._dtype(), self._name(number, "x")), \
                    None, None
        try:
            for x, _, _, batch_size, _ in self._groups(inputs(), 0):
                yield x, batch_size
        finally:
            items.close()  # stops the workers now (see train_parts)

    def _groups(self, batches, skip):
        """Join consecutive batches into one engine part each (one call instead of one per batch): a group
        holds batches of one size, the last of them possibly smaller (as an array fit's last batch), with the
        same fields (weights or none), at most `limit` batches (one more rather than leave a single batch
        for the end, but never more than `group_size`: that bounds how far reading runs ahead of training).
        The engine walks a group in batches of its first batch's size: the same batches.
        `limit` starts at 1 and doubles after each full group up to `group_size`, so the engine starts on the
        first batch while the workers read the next ones; the groups depend on the batch sizes only, never on
        timing.

        Yields (x, y, sample_weight, batch_size, last batch size)."""
        group = []
        limit = 1
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
            if len(group) >= limit and (left != 1 or len(group) >= self.group_size):
                yield _joined(group)
                group = []
                limit = min(2 * limit, self.group_size)
        if group:
            yield _joined(group)

    def _prepare(self, item, number, class_weight):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(f"Output of generator should be a tuple `(x, y, sample_weight)` or `(x, y)`. "
                             f"Found: {part_loops.short(item)} ({self._name(number, 'batch')})")
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


def _with_worker_options(kwargs, max_queue_size, workers, use_multiprocessing):
    """`kwargs` with the generator options put back, for on-disk arrays (they take neutral values only)."""
    return dict(kwargs, max_queue_size=max_queue_size, workers=workers, use_multiprocessing=use_multiprocessing)


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
                              steps_per_epoch, validation_steps, validation_freq,
                              _with_worker_options(kwargs, max_queue_size, workers, use_multiprocessing))
    what = "fit_generator" if keras2_generator else "fit"
    if kwargs.get("validation_batch_size") is not None:
        raise ValueError(f"{what}: `validation_batch_size` must not be given when `x` is a generator or a "
                         "Sequence (validation arrays run in batches of the last training batch's size, as "
                         "in Keras 2.2; a validation generator's batches are its own)")
    kwargs.pop("validation_batch_size", None)
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    for name, value in (("y", y), ("sample_weight", sample_weight), ("batch_size", batch_size)):
        if value is not None:
            raise ValueError(f"{what}: `{name}` must not be given when `x` is a generator or a Sequence (its "
                             f"batches carry the targets, weights and batch size), got {part_loops.short(value)}")
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
    epochs, initial_epoch, verbose, validation_epochs = loop_helpers.check_epoch_arguments(
        epochs, initial_epoch, verbose, shuffle, validation_freq)
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
                    return part_loops.evaluate_parts(model, val_feed.test_parts(), cbks, exact=True)
            else:
                val, val_for_callbacks = _validation_arrays(model, validation_data)

                def validate(cbks, last_batch_size):
                    # Keras 2.2: arrays validate in batches of the last training batch's size
                    return model._evaluate_arrays(val, last_batch_size or 32, cbks)
        user_callbacks = CallbackList(callbacks)
        params = {"steps": feed.steps} if keras2_generator else {"steps": feed.steps, "samples": None}
        with model._exclusive(what):
            return part_loops.train(model, feed, validate, val_for_callbacks, user_callbacks, epochs, verbose,
                                    initial_epoch, validation_epochs, params, "steps",
                                    runs_user_code=True)  # the generator's or the Sequence's code
    finally:
        feed.close()
        if val_feed is not None:
            val_feed.close()


def _validation_arrays(model, validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("`validation_data` must be a generator, a Sequence or a tuple (x_val, y_val) or "
                         f"(x_val, y_val, val_sample_weight), got {part_loops.short(validation_data)}")
    xv, yv = validation_data[0], validation_data[1]
    swv = validation_data[2] if len(validation_data) == 3 else None
    val = model._prepare_xy(xv, yv, swv, None, ("validation_data[0]", "validation_data[1]", "validation_data[2]"))
    return val, [xv, yv]


def evaluate(model, x, y, batch_size, verbose, sample_weight, steps, callbacks, max_queue_size=10, workers=1,
             use_multiprocessing=False, keras2_generator=False, return_dict=False, **kwargs):
    """`evaluate` for a generator/Sequence `x`, or on-disk arrays."""
    if not is_batch_source(x):
        return _streams().evaluate(model, x, y, batch_size, verbose, sample_weight, steps, callbacks,
                                   _with_worker_options(kwargs, max_queue_size, workers, use_multiprocessing),
                                   return_dict)
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    what = "evaluate_generator" if keras2_generator else "evaluate"
    for name, value in (("y", y), ("sample_weight", sample_weight), ("batch_size", batch_size)):
        if value is not None:
            raise ValueError(f"{what}: `{name}` must not be given when `x` is a generator or a Sequence, got "
                             f"{part_loops.short(value)}")
    model._require_compiled(what)
    verbose, feed = _batch_feed(model, x, steps, verbose, keras2_generator, workers, use_multiprocessing,
                                max_queue_size)
    cbks = CallbackList(callbacks)
    try:
        with model._exclusive(what):
            cbks.set_model(model)
            cbks.set_params({"batch_size": None, "steps": feed.steps, "samples": None, "verbose": verbose,
                             "metrics": list(model.metrics_names)})
            results = part_loops.evaluate_parts(model, feed.test_parts(), cbks, exact=True)
            names = list(model.metrics_names)
    finally:
        feed.close()
    if verbose:
        Progbar(target=1, verbose=verbose).update(1, list(results.items()))
    return part_loops.evaluate_result(results, names, return_dict)


def predict(model, x, batch_size, verbose, steps, callbacks, max_queue_size=10, workers=1,
            use_multiprocessing=False, keras2_generator=False, **kwargs):
    """`predict` for a generator/Sequence `x`, or on-disk arrays."""
    if not is_batch_source(x):
        return _streams().predict(model, x, batch_size, verbose, steps, callbacks,
                                  _with_worker_options(kwargs, max_queue_size, workers, use_multiprocessing))
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
    what = "predict_generator" if keras2_generator else "predict"
    if batch_size is not None:
        raise ValueError(f"{what}: `batch_size` must not be given when `x` is a generator or a Sequence, got "
                         f"{batch_size!r}")
    model._require_graph("output (predict needs a built model)")
    verbose, feed = _batch_feed(model, x, steps, verbose, keras2_generator, workers, use_multiprocessing,
                                max_queue_size)
    cbks = CallbackList(callbacks)
    try:
        with model._exclusive(what):
            cbks.set_model(model)
            cbks.set_params({"batch_size": None, "steps": feed.steps, "samples": None, "verbose": verbose})
            return part_loops.predict_parts(model, feed.predict_parts(), cbks)
    finally:
        feed.close()


def _batch_feed(model, x, steps, verbose, keras2_generator, workers, use_multiprocessing, max_queue_size):
    """(checked verbose, BatchFeed) of an evaluate/predict pass over a generator or a Sequence.

    Raises:
        ValueError: a Keras 2 `*_generator` call with a plain generator and no `steps`.
    """
    if keras2_generator and steps is None and not is_sequence(x):
        raise ValueError("`steps=None` is only valid for a generator based on the `fastfit.utils.Sequence` "
                         "class. Please specify `steps` or use the `fastfit.utils.Sequence` class.")
    return loop_helpers.check_verbose(verbose), BatchFeed(model, x, steps, "x" if not keras2_generator else "generator",
                                                          workers, use_multiprocessing, max_queue_size)
