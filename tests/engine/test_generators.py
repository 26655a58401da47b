"""Generators and `Sequence`s: fit/evaluate/predict (Keras 2 `*_generator` and tf.keras forms), hooks and logs
equal to the array path, exactness, workers (threads, processes), errors that surface without a hang."""
import multiprocessing
import threading
import traceback

import numpy as np
import pytest

import fastfit
from fastfit.callbacks import BackupAndRestore, Callback, LambdaCallback
from fastfit.layers import Dense, Dropout
from fastfit.models import Sequential

N, BATCH = 100, 32


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 3, N), 3)
    w = rng.uniform(0.5, 2.0, N).astype("float32")
    return x, y, w


def _model(engine, dropout=False):
    fastfit.utils.set_random_seed(7)
    model = Sequential([Dense(16, activation="relu", input_shape=(8,))] + ([Dropout(0.3)] if dropout else [])
                       + [Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"], engine=engine)
    return model


class Batches(fastfit.utils.Sequence):
    """The batches of an array fit with shuffle=False; records the indices served and the epoch ends."""

    def __init__(self, *arrays, batch_size=BATCH, fail_at=None, error=KeyError):
        self.arrays, self.batch_size, self.fail_at, self.error = arrays, batch_size, fail_at, error
        self.served, self.epoch_ends = [], 0

    def __len__(self):
        return int(-(-len(self.arrays[0]) // self.batch_size))

    def __getitem__(self, index):
        if index == self.fail_at:
            raise self.error(f"batch {index} is broken")
        self.served.append(index)
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return tuple(a[rows] for a in self.arrays)

    def on_epoch_end(self):
        self.epoch_ends += 1


def _generator(*arrays, batch_size=BATCH, fail_at=None):
    step = 0
    while True:
        for start in range(0, len(arrays[0]), batch_size):
            if step == fail_at:
                raise KeyError(f"generator broke at step {step}")
            step += 1
            yield tuple(a[start:start + batch_size] for a in arrays)


class Recorder(Callback):
    """Every hook call with its logs."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _record(name):
        def record(self, *args):
            self.calls.append((name,) + tuple(dict(a) if isinstance(a, dict) else a for a in args))
        return record

    on_epoch_begin = _record("epoch_begin")
    on_epoch_end = _record("epoch_end")
    on_train_batch_begin = _record("train_batch_begin")
    on_train_batch_end = _record("train_batch_end")
    on_test_begin = _record("test_begin")
    on_test_end = _record("test_end")
    on_test_batch_end = _record("test_batch_end")
    on_train_end = _record("train_end")


def _same_weights(a, b):
    for p, q in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(p, q)


def _within(seconds, function):
    """Run `function` in a thread; fail if it has not returned after `seconds`; return (result, exception)."""
    box = {}

    def run():
        try:
            box["result"] = function()
        except BaseException as error:  # noqa: BLE001 - inspected by the test
            box["error"] = error
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a hang"
    return box.get("result"), box.get("error")


def _no_workers_left():
    assert not [t for t in threading.enumerate() if t.name.startswith(("fastfit-sequence", "fastfit-generator"))]
    # (joblib's reusable Loky workers, started by other tests, are not ours)
    assert [p for p in multiprocessing.active_children() if "Loky" not in type(p).__name__] == []


@pytest.mark.parametrize("workers, processes", [(0, False), (2, False), (2, True)])
def test_sequence_gives_the_array_fit_bits_hooks_and_logs(core, workers, processes):
    x, y, w = _data()
    xv, yv = x[:40], y[:40]
    arrays, record_a = _model(core, dropout=True), Recorder()
    history_a = arrays.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0, sample_weight=w,
                           validation_data=(xv, yv), callbacks=[record_a])
    sequence, record_s = _model(core, dropout=True), Recorder()
    train, val = Batches(x, y, w), Batches(xv, yv)
    history_s = sequence.fit_generator(train, epochs=3, shuffle=False, verbose=0, validation_data=val,
                                       callbacks=[record_s], workers=workers, use_multiprocessing=processes)
    _same_weights(arrays, sequence)
    assert history_a.history == history_s.history
    assert record_a.calls == record_s.calls
    assert sequence.optimizer.iterations == arrays.optimizer.iterations == 12
    if not processes:
        assert train.served == [0, 1, 2, 3] * 3 and train.epoch_ends == 3 and val.epoch_ends == 3
    _no_workers_left()


def test_tf_keras_fit_forms_match_fit_generator(core):
    x, y, w = _data()
    reference = _model(core)
    reference.fit_generator(_generator(x, y, w), steps_per_epoch=4, epochs=2, verbose=0)
    for source in (_generator(x, y, w), Batches(x, y, w)):
        model = _model(core)
        model.fit(source, steps_per_epoch=4, epochs=2, verbose=0, shuffle=False)
        _same_weights(reference, model)
    model = _model(core)
    model.fit(Batches(x, y, w), epochs=2, verbose=0, shuffle=False)  # a Sequence needs no steps
    _same_weights(reference, model)


def test_generator_with_class_weight_matches_arrays(core):
    x, y, _ = _data()
    weights = {0: 1.0, 1: 2.0, 2: 0.5}
    arrays = _model(core)
    arrays.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, class_weight=weights)
    model = _model(core)
    model.fit_generator(_generator(x, y), steps_per_epoch=4, epochs=2, verbose=0, class_weight=weights)
    _same_weights(arrays, model)


def test_shuffled_sequence_order_comes_from_the_seed_and_epoch(core):
    x, y, _ = _data()
    served = []
    for workers, processes in [(0, False), (2, False), (0, False)]:
        model = _model(core)
        sequence = Batches(x, y)
        model.fit(sequence, epochs=3, verbose=0, workers=workers, use_multiprocessing=processes)
        served.append(sequence.served)
        assert sorted(sequence.served[:4]) == [0, 1, 2, 3]
    assert served[0] == served[1] == served[2]
    assert served[0] != [0, 1, 2, 3] * 3
    assert served[0][:4] != served[0][4:8] or served[0][4:8] != served[0][8:]


def test_evaluate_and_predict_forms_match_arrays(core):
    x, y, w = _data()
    model = _model(core)
    expected = model.evaluate(x, y, batch_size=BATCH, sample_weight=w, verbose=0)
    # Arrays are forwarded in blocks of up to 1024 rows, batches from a generator or a Sequence one batch (or
    # group) at a time: equal up to the last bits (the forward-block rule, docs/guide/performance-and-threads.md).
    close = pytest.approx(expected, rel=1e-7)
    assert model.evaluate_generator(Batches(x, y, w)) == close
    assert model.evaluate_generator(_generator(x, y, w), steps=4, workers=2) == close
    assert model.evaluate(Batches(x, y, w), verbose=0) == close
    assert model.evaluate(_generator(x, y, w), steps=4, verbose=0) == close
    outputs = model.predict(x, batch_size=BATCH)
    np.testing.assert_allclose(model.predict_generator(Batches(x), workers=2), outputs, rtol=1e-6)
    np.testing.assert_allclose(model.predict_generator(_generator(x, y), steps=4), outputs, rtol=1e-6)
    np.testing.assert_allclose(model.predict(Batches(x, y), use_multiprocessing=True), outputs, rtol=1e-6)
    seen = []
    hooks = LambdaCallback(on_predict_batch_end=lambda batch, logs: seen.append((batch, len(logs["outputs"]))))
    model.predict(_generator(x), steps=4, callbacks=[hooks])
    assert seen == [(0, 32), (1, 32), (2, 32), (3, 4)]
    _no_workers_left()


def test_generator_running_out_warns_and_stops(core):
    x, y, _ = _data()
    model = _model(core)

    def four_batches():
        for start in range(0, N, BATCH):
            yield x[start:start + BATCH], y[start:start + BATCH]
    with pytest.warns(RuntimeWarning, match="ran out of data"):
        history = model.fit(four_batches(), steps_per_epoch=4, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1 and model.optimizer.iterations == 4
    model = _model(core)
    history = model.fit(four_batches(), epochs=1, verbose=0)  # tf.keras: no steps, until exhausted
    assert model.optimizer.iterations == 4 and len(history.history["loss"]) == 1


@pytest.mark.parametrize("workers, processes", [(0, False), (1, False), (2, False), (2, True)])
def test_an_error_in_a_sequence_surfaces_with_its_traceback(core, workers, processes):
    x, y, _ = _data()
    model = _model(core)
    _, error = _within(60, lambda: model.fit(Batches(x, y, fail_at=2), epochs=2, shuffle=False, verbose=0,
                                             workers=workers, use_multiprocessing=processes))
    assert isinstance(error, KeyError) and "batch 2 is broken" in str(error)
    text = "".join(traceback.format_exception(error))
    assert "__getitem__" in text  # the worker's frames (a process's come as the exception's cause)
    assert model.optimizer.iterations == 2
    _no_workers_left()


@pytest.mark.parametrize("processes", [False, True])
def test_a_timeout_error_in_a_sequence_surfaces_too(core, processes):
    """A `__getitem__` that gives up on slow storage with the builtin TimeoutError stops `fit` with it (the
    wait for a worker's batch must not take it for its own timeout and wait on forever)."""
    x, y, _ = _data()
    model = _model(core)
    _, error = _within(60, lambda: model.fit(Batches(x, y, fail_at=2, error=TimeoutError), epochs=2,
                                             shuffle=False, verbose=0, workers=2, use_multiprocessing=processes))
    assert isinstance(error, TimeoutError) and "batch 2 is broken" in str(error)
    assert "__getitem__" in "".join(traceback.format_exception(error))
    assert model.optimizer.iterations == 2
    _no_workers_left()


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_an_error_in_a_generator_surfaces_with_its_traceback(core, workers):
    x, y, _ = _data()
    model = _model(core)
    _, error = _within(60, lambda: model.fit_generator(_generator(x, y, fail_at=5), steps_per_epoch=4, epochs=3,
                                                       verbose=0, workers=workers))
    assert isinstance(error, KeyError) and "step 5" in str(error)
    assert "_generator" in "".join(traceback.format_exception(error))
    assert model.optimizer.iterations == 5
    _no_workers_left()


def test_an_error_in_a_callback_stops_the_workers(core):
    x, y, _ = _data()
    model = _model(core)

    def boom(batch, logs):
        if batch == 1:
            raise RuntimeError("callback failed")
    for source, extra in [(_generator(x, y), {"steps_per_epoch": 4}), (Batches(x, y), {"workers": 2}),
                          (Batches(x, y), {"workers": 2, "use_multiprocessing": True})]:
        def fit(source=source, extra=extra):
            return model.fit(source, epochs=2, verbose=0, callbacks=[LambdaCallback(on_batch_end=boom)], **extra)
        _, error = _within(60, fit)
        assert isinstance(error, RuntimeError) and "callback failed" in str(error)
        _no_workers_left()


def test_bad_arguments_and_batches_are_refused(core):
    x, y, _ = _data()
    model = _model(core)
    with pytest.raises(ValueError, match="steps_per_epoch=None"):
        model.fit_generator(_generator(x, y))
    with pytest.raises(ValueError, match="validation_steps=None"):
        model.fit_generator(_generator(x, y), steps_per_epoch=2, validation_data=_generator(x, y))
    with pytest.raises(ValueError, match="`y` must not be given"):
        model.fit(Batches(x, y), y)
    with pytest.raises(ValueError, match="`batch_size` must not be given"):
        model.fit(Batches(x, y), batch_size=4)
    with pytest.raises(ValueError, match="use_multiprocessing"):
        model.fit(_generator(x, y), steps_per_epoch=2, workers=2, use_multiprocessing=True)
    with pytest.raises(ValueError, match="at most 4 steps"):
        model.fit(Batches(x, y), steps_per_epoch=5)
    with pytest.raises(ValueError, match="`workers`"):
        model.fit(Batches(x, y), workers=-1)
    with pytest.raises(ValueError, match="Output of generator should be a tuple"):
        model.fit(iter([x[:4]]), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="y of batch 0 of x"):
        model.fit(iter([(x[:4], y[:3])]), steps_per_epoch=1, verbose=0)
    bad = x[:4].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(iter([(bad, y[:4])]), steps_per_epoch=1, verbose=0)
    assert model.optimizer.iterations == 0
    _no_workers_left()


def test_backup_and_restore_resumes_a_sequence_mid_epoch(core, tmp_path):
    x, y, _ = _data()
    straight = _model(core, dropout=True)
    straight.fit(Batches(x, y), epochs=3, verbose=0)

    count = {"epochs": 0}

    def crash(batch, logs):
        if count["epochs"] == 1 and batch == 1:
            raise KeyboardInterrupt

    interrupted = _model(core, dropout=True)
    stopper = LambdaCallback(on_epoch_end=lambda e, l: count.update(epochs=count["epochs"] + 1), on_batch_end=crash)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(Batches(x, y), epochs=3, verbose=0,
                        callbacks=[BackupAndRestore(str(tmp_path), save_freq=1), stopper])
    resumed = _model(core, dropout=True)
    resumed.fit(Batches(x, y), epochs=3, verbose=0, callbacks=[BackupAndRestore(str(tmp_path), save_freq=1)])
    _same_weights(straight, resumed)
    assert resumed.optimizer.iterations == 12


def test_keras2_import_paths():
    from fastfit.utils.data_utils import Sequence
    from fastfit.utils.io_utils import HDF5Matrix
    assert Sequence is fastfit.utils.Sequence and HDF5Matrix is fastfit.utils.HDF5Matrix
    with pytest.raises(NotImplementedError):
        len(Sequence())


def test_a_generator_without_steps_validates_each_epoch_it_completes(core):
    x, y, _ = _data()
    model = _model(core)

    def four_batches():
        for start in range(0, N, BATCH):
            yield x[start:start + BATCH], y[start:start + BATCH]
    history = model.fit(four_batches(), epochs=1, verbose=0, validation_data=(x[:10], y[:10]))
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}


CTRL_C_SCRIPT = """
import faulthandler, multiprocessing, sys, threading, time
faulthandler.dump_traceback_later(50, exit=True)  # a hang shows every thread's stack in the test's failure
import numpy as np
import fastfit
from fastfit.layers import Dense
from fastfit.models import Sequential

class Slow(fastfit.utils.Sequence):
    def __len__(self):
        return 1000
    def __getitem__(self, index):
        time.sleep(0.02)
        rng = np.random.default_rng(index)
        return rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")

model = Sequential([Dense(1, input_shape=(4,))])
model.compile("sgd", "mse", engine=sys.argv[1])
started = fastfit.callbacks.LambdaCallback(on_batch_end=lambda b, l: b == 5 and print("started", flush=True))
try:
    model.fit(Slow(), epochs=5, verbose=0, workers=2, use_multiprocessing=sys.argv[2] == "processes",
              callbacks=[started])
except KeyboardInterrupt:
    left = multiprocessing.active_children() + [t for t in threading.enumerate() if t.name.startswith("fastfit-s")]
    print("interrupted", left, flush=True)
"""


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_ctrl_c_stops_fit_and_its_workers(core, kind, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), core, kind], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert process.stdout.readline().strip() == "started"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert out.strip() == "interrupted []", err


class Dies(Batches):
    def __getitem__(self, index):
        if index == 2:
            import os
            os._exit(3)  # a worker killed outright
        return super().__getitem__(index)


def test_a_worker_process_that_dies_stops_fit_without_a_hang(core):
    x, y, _ = _data()
    model = _model(core)
    _, error = _within(60, lambda: model.fit(Dies(x, y), epochs=1, shuffle=False, verbose=0, workers=2,
                                             use_multiprocessing=True))
    assert isinstance(error, RuntimeError) and "worker process" in str(error)
    _no_workers_left()


# -- Keras 2.2 behaviours of the generator API (keras/engine/training_generator.py) ----------------------------
class Tracing(Batches):
    """Records the thread of every read, and how many batches were read when each training batch began."""

    def __init__(self, *arrays, **kwargs):
        super().__init__(*arrays, **kwargs)
        self.threads = []

    def __getitem__(self, index):
        self.threads.append(threading.current_thread().name)
        return super().__getitem__(index)


def _traced_generator(threads, *arrays, batch_size=BATCH):
    for batch in _generator(*arrays, batch_size=batch_size):
        threads.append(threading.current_thread().name)
        yield batch


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_workers_0_reads_in_the_calling_thread(core, call):
    x, y, _ = _data()
    model = _model(core)
    sequence, generator_threads = Tracing(x, y), []
    generator = _traced_generator(generator_threads, x, y)
    if call == "fit":
        model.fit_generator(sequence, epochs=2, workers=0, verbose=0)
        model.fit_generator(generator, steps_per_epoch=4, epochs=2, workers=0, verbose=0)
    elif call == "evaluate":
        model.evaluate_generator(sequence, workers=0)
        model.evaluate_generator(generator, steps=4, workers=0)
    else:
        model.predict_generator(sequence, workers=0)
        model.predict_generator(generator, steps=4, workers=0)
    me = threading.current_thread().name
    assert sequence.threads and set(sequence.threads) == {me}
    assert generator_threads and set(generator_threads) == {me}
    threaded = Tracing(x, y)
    model.evaluate_generator(threaded, workers=1)
    assert me not in threaded.threads  # for contrast: workers=1 reads in a worker thread


def test_a_generator_with_use_multiprocessing_and_one_worker_serves_its_batches_once(core):
    """Keras 2.2 runs the generator in one process (it warns only for several workers, whose copies would
    serve every batch several times, which fastfit refuses): fastfit drains it in one thread, same batches."""
    x, y, w = _data()
    reference = _model(core)
    reference.fit_generator(_generator(x, y, w), steps_per_epoch=4, epochs=2, verbose=0)
    model = _model(core)
    model.fit_generator(_generator(x, y, w), steps_per_epoch=4, epochs=2, verbose=0, workers=1,
                        use_multiprocessing=True)
    _same_weights(reference, model)
    assert model.evaluate_generator(_generator(x, y, w), steps=4, use_multiprocessing=True) == \
        reference.evaluate_generator(_generator(x, y, w), steps=4)
    np.testing.assert_array_equal(model.predict_generator(_generator(x), steps=4, use_multiprocessing=True),
                                  reference.predict_generator(_generator(x), steps=4))
    for method, extra in [("fit_generator", {"steps_per_epoch": 4}), ("evaluate_generator", {"steps": 4}),
                          ("predict_generator", {"steps": 4})]:
        with pytest.raises(ValueError, match="use_multiprocessing=True` with several workers"):
            getattr(model, method)(_generator(x, y), workers=2, use_multiprocessing=True, **extra)
    _no_workers_left()


@pytest.mark.parametrize("kind", ["sequence", "generator"])
def test_max_queue_size_bounds_the_batches_read_ahead(core, kind):
    """Reading runs at most 2 x max_queue_size - 1 batches ahead of the one training: the engine takes up to
    max_queue_size batches per call while up to max_queue_size more are read (a generator's thread may hold
    one more, waiting for room in the queue)."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(120, 8)).astype("float32"), fastfit.utils.to_categorical(rng.integers(0, 3, 120), 3)
    queue_size, ahead = 2, []
    model = _model(core)
    if kind == "sequence":
        source, extra = Tracing(x, y, batch_size=4), {}
        threads = source.threads
    else:
        threads = []
        source, extra = _traced_generator(threads, x, y, batch_size=4), {"steps_per_epoch": 30}
    probe = LambdaCallback(on_batch_begin=lambda batch, logs: ahead.append(len(threads) - batch - 1))
    model.fit(source, epochs=1, verbose=0, max_queue_size=queue_size, workers=1, shuffle=False, callbacks=[probe],
              **extra)
    assert len(ahead) == 30
    assert max(ahead) <= 2 * queue_size - 1 + (kind == "generator")


class Gated(Batches):
    """Serves batch `index > 0` only once `trained` is set (by a callback after batch 0 trained)."""

    def __init__(self, trained, *arrays, **kwargs):
        super().__init__(*arrays, **kwargs)
        self.trained = trained

    def __getitem__(self, index):
        if index > 0 and not self.trained.wait(timeout=10):
            raise TimeoutError(f"batch {index} was needed before batch 0 trained")
        return super().__getitem__(index)


@pytest.mark.parametrize("kind", ["threads", "processes", "generator"])
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_the_engine_starts_on_the_first_batch_while_the_workers_read(core, kind, call):
    """The first engine call takes the first batch alone (the groups then double up to max_queue_size), so a
    pass does not wait for a queue's worth of batches before training: here every later batch waits until
    batch 0 has gone through the engine."""
    x, y, _ = _data()
    trained = multiprocessing.get_context("fork").Event()  # the forked workers share it
    gated = Gated(trained, x, y)
    source = gated if kind != "generator" else iter(gated)
    options = {"workers": 2, "use_multiprocessing": kind == "processes", "max_queue_size": 10}
    if kind == "generator":
        options = {"workers": 1, "steps": 4} if call != "fit" else {"workers": 1, "steps_per_epoch": 4}
    model, reference = _model(core), _model(core)
    if call == "fit":
        probe = LambdaCallback(on_train_batch_end=lambda batch, logs: trained.set())
        history, error = _within(60, lambda: model.fit(source, epochs=1, shuffle=False, verbose=0,
                                                       callbacks=[probe], **options))
        assert error is None and len(history.history["loss"]) == 1
    elif call == "evaluate":
        probe = LambdaCallback(on_test_batch_end=lambda batch, logs: trained.set())
        got, error = _within(60, lambda: model.evaluate(source, verbose=0, callbacks=[probe], **options))
        assert error is None and got == pytest.approx(reference.evaluate(x, y, batch_size=BATCH, verbose=0),
                                                      rel=1e-6)
    else:
        probe = LambdaCallback(on_predict_batch_end=lambda batch, logs: trained.set())
        got, error = _within(60, lambda: model.predict(source, callbacks=[probe], **options))
        assert error is None
        np.testing.assert_allclose(got, reference.predict(x, batch_size=BATCH), rtol=1e-6)
    assert trained.is_set()
    _no_workers_left()


def test_engine_calls_take_1_2_4_batches_and_so_on_up_to_max_queue_size(core):
    """The groups of batches per engine call double from one batch up to max_queue_size; the last batch
    never goes alone (here 27 batches of 4 rows, then a partial one of 2: 1, 2, 4, 8, 10, then 3)."""
    from fastfit.engine.streaming import BatchFeed
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(110, 8)).astype("float32"), fastfit.utils.to_categorical(rng.integers(0, 3, 110), 3)
    feed = BatchFeed(_model(core), Batches(x, y, batch_size=4), None, "x", workers=2, max_queue_size=10)
    parts = list(feed.train_parts(0, 0))
    assert [len(part[0]) for part in parts] == [4, 8, 16, 32, 40, 4 + 4 + 2]
    assert [part[4] for part in parts] == [4] * 6  # each walked in batches of 4 rows
    np.testing.assert_array_equal(np.concatenate([part[0] for part in parts]), x)
    skipped = list(feed.train_parts(0, 20))  # a resumed epoch starts over at one batch
    assert [len(part[0]) for part in skipped] == [4, 8, 4 * 4 + 2]
    np.testing.assert_array_equal(np.concatenate([part[0] for part in skipped]), x[80:])
    full = BatchFeed(_model(core), Batches(x[:64], y[:64], batch_size=4), None, "x", workers=2, max_queue_size=2)
    # 16 batches: 1, 2, ..., 2, and the last one alone rather than a group above max_queue_size (the read-ahead
    # bound of the docs holds)
    assert [len(part[0]) // 4 for part in full.train_parts(0, 0)] == [1] + [2] * 7 + [1]


def test_initial_epoch_continues_the_epoch_numbers_and_the_sequence_order(core):
    """Epochs run from initial_epoch; a shuffled Sequence's order comes from the seed and the epoch number,
    so a fit started at epoch 1 serves the batches a fit from 0 serves in epochs 1 and 2."""
    x, y, _ = _data()
    whole = Batches(x, y)
    _model(core).fit_generator(whole, epochs=3, verbose=0)
    later, epochs = Batches(x, y), []
    model = _model(core)
    history = model.fit_generator(later, epochs=3, initial_epoch=1, verbose=0,
                                  callbacks=[LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e))])
    assert epochs == [1, 2] and len(history.history["loss"]) == 2 and history.epoch == [1, 2]
    assert later.served == whole.served[4:]
    assert model.optimizer.iterations == 8
    model = _model(core)
    assert model.fit_generator(_generator(x, y), steps_per_epoch=4, epochs=2, initial_epoch=2, verbose=0) \
        .history == {}  # nothing left to run, as in Keras 2.2
    assert model.optimizer.iterations == 0


def test_validation_steps_of_a_validation_sequence(core):
    """validation_steps=None takes the Sequence's length; a number takes that many of its batches."""
    x, y, _ = _data()
    for steps, batches in [(None, 4), (2, 2)]:
        seen = []
        _model(core).fit_generator(Batches(x, y), epochs=2, verbose=0, validation_data=Batches(x, y),
                                     validation_steps=steps,
                                     callbacks=[LambdaCallback(on_test_batch_end=lambda b, logs: seen.append(b))])  # noqa: B023
        assert seen == list(range(batches)) * 2


def test_evaluate_generator_averages_the_batches_weighted_by_their_size(core):
    """Keras 2.2: the mean of each batch's test_on_batch values, weighted by the batch's number of rows (the
    sample weights weigh the rows inside a batch); the last, partial batch counts for its 4 rows."""
    x, y, w = _data()
    model = _model(core)
    sizes = [32, 32, 32, 4]
    per_batch = [model.test_on_batch(x[s:s + BATCH], y[s:s + BATCH], sample_weight=w[s:s + BATCH])
                 for s in range(0, N, BATCH)]
    expected = list(np.average(per_batch, axis=0, weights=sizes))
    got = model.evaluate_generator(_generator(x, y, w), steps=4)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(model.evaluate_generator(Batches(x, y, w), max_queue_size=1), expected, rtol=1e-6)
    assert not np.allclose(got[0], np.mean([loss for loss, _ in per_batch]), rtol=1e-6)  # not a plain mean


def test_predict_generator_concatenates_each_output(core):
    """Keras 2.2: the batches' outputs concatenated, per output for a model with several (a list); one step
    gives that batch's output; items may be x alone or (x, y[, sample_weight]) tuples."""
    from fastfit.layers import Input
    from fastfit.models import Model
    x, y, w = _data()
    fastfit.utils.set_random_seed(2)
    inputs = Input(shape=(8,))
    hidden = Dense(5, activation="relu")(inputs)
    model = Model(inputs, [Dense(2)(hidden), Dense(3, activation="softmax")(hidden)])
    expected = model.predict(x, batch_size=BATCH)
    for source, steps in [(_generator(x), 4), (_generator(x, y), 4), (_generator(x, y, w), 4), (Batches(x), None)]:
        got = model.predict_generator(source, steps=steps)
        assert isinstance(got, list) and [o.shape for o in got] == [(N, 2), (N, 3)]
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    one = model.predict_generator(_generator(x), steps=1)
    assert [o.shape for o in one] == [(BATCH, 2), (BATCH, 3)]
    single = _model(core)
    got = single.predict_generator(_generator(x, y), steps=3)
    assert got.shape == (96, 3)
    np.testing.assert_allclose(got, single.predict(x[:96], batch_size=BATCH), rtol=1e-6)


def test_a_fallback_to_one_thread_lasts_until_the_pass_ends():
    """An engine call that fell back to one thread (a busy core) leaves the rest of the pass on one thread
    with the same row blocks (`serial`), as one engine call over the pass would; the flag is put back."""
    from types import SimpleNamespace

    from fastfit.engine.part_loops import OneThreadAfterFallback
    network = SimpleNamespace(threads=2, serial=False)
    keeper = OneThreadAfterFallback(network)
    keeper.after_part()
    assert network.serial is False  # the call kept its two threads
    network.threads = 1
    keeper.after_part()
    assert network.serial is True
    network.threads = 2
    keeper.after_part()
    assert network.serial is True  # until the pass ends
    keeper.finish()
    assert network.serial is False
    OneThreadAfterFallback(SimpleNamespace(threads=1)).after_part()  # a network without the flag: left alone


def test_a_sequence_fit_gives_the_array_fit_bits_whatever_the_threads(core):
    """Per pass the flag goes back to what it was; a fallback never changes the weights."""
    x, y, _ = _data()
    arrays = _model(core)
    arrays.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    model = _model(core)
    seen = []
    network = model._train_network()
    probe = LambdaCallback(on_batch_end=lambda b, logs: seen.append(getattr(network, "serial", None)))
    model.fit(Batches(x, y), epochs=2, shuffle=False, verbose=0, max_queue_size=1, callbacks=[probe])
    _same_weights(arrays, model)
    assert getattr(network, "serial", False) in (False, None)
    if core == "cython":  # this small model's batches run on one thread: later parts run serial
        assert seen[0] is False and seen[1:4] == [True] * 3
