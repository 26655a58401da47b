"""Streamed input (generators, Sequences, on-disk arrays) with what main's other branches added to fit/evaluate:
metric objects read from the engine's confusion counts over several engine calls, custom metrics,
Keras arguments (workers, show_accuracy, return_dict, validation_batch_size), the checkpoint rule of fit."""
import contextlib

import numpy as np
import pytest

import fastfit
from fastfit import metrics as M
from fastfit.callbacks import Callback
from fastfit.layers import Dense
from fastfit.models import Sequential
from fastfit.saving import checkpoint_writer

N, BATCH, FEATURES = 100, 16, 6
ROW_BYTES = FEATURES * 4 + 4 + 8  # a buffer row of the binary model: inputs, target, row order


def _data():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    y = (x[:, :2].sum(axis=1) + rng.normal(scale=0.5, size=N) > 0).astype("float32")[:, None]
    return x, y


def _model(engine, metrics=("acc",)):
    fastfit.backend.clear_session()  # metric objects get their default names ('auc', not 'auc_1')
    fastfit.utils.set_random_seed(3)
    model = Sequential([Dense(8, activation="relu", input_shape=(FEATURES,)), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=list(metrics), engine=engine)
    return model


class Batches(fastfit.utils.Sequence):
    def __init__(self, *arrays, batch_size=BATCH):
        self.arrays, self.batch_size = arrays, batch_size

    def __len__(self):
        return -(-len(self.arrays[0]) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return tuple(a[rows] for a in self.arrays)


class BatchLogs(Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append((batch, dict(logs)))

    def on_test_batch_end(self, batch, logs=None):
        self.logs.append(("test", batch, dict(logs)))


def _memmap(tmp_path, array, name):
    mm = np.memmap(tmp_path / name, dtype=array.dtype, mode="w+", shape=array.shape)
    mm[:] = array
    mm.flush()
    return np.memmap(tmp_path / name, dtype=array.dtype, mode="r", shape=array.shape)


def test_metric_objects_over_several_engine_calls_equal_the_array_fit(core):
    """max_queue_size=2 joins at most two batches per engine call: the 7 batches of an epoch (and the
    validation pass) run as several calls, whose confusion counts are carried into one pass's counts."""
    x, y = _data()
    xv, yv = x[:48], y[:48]
    arrays, seen_a = _model(core, ["acc", M.AUC(), M.Precision()]), BatchLogs()
    history_a = arrays.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, validation_data=(xv, yv),
                           callbacks=[seen_a])
    streamed, seen_s = _model(core, ["acc", M.AUC(), M.Precision()]), BatchLogs()
    history_s = streamed.fit(Batches(x, y), epochs=2, shuffle=False, verbose=0, validation_data=Batches(xv, yv),
                             callbacks=[seen_s], max_queue_size=2, workers=2)
    assert history_s.history == history_a.history
    assert seen_s.logs == seen_a.logs  # running AUC/precision in every batch log, across engine calls
    assert set(history_s.history) == {"loss", "acc", "auc", "precision", "val_loss", "val_acc", "val_auc",
                                      "val_precision"}
    got = streamed.evaluate(Batches(x, y), verbose=0, max_queue_size=2, return_dict=True)
    # batches from the Sequence against the array path's forward blocks: equal up to the last bits of the loss
    assert got == pytest.approx(arrays.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True), rel=1e-7)
    assert streamed.metrics[1].result() == pytest.approx(got["auc"], abs=0)  # the object holds the last pass


def test_metric_objects_over_several_buffers_equal_the_array_fit(core, tmp_path):
    x, y = _data()
    xm, ym = _memmap(tmp_path, x, "x.dat"), _memmap(tmp_path, y, "y.dat")
    arrays = _model(core, ["acc", M.AUC()])
    history_a = arrays.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, validation_split=0.3)
    streamed = _model(core, ["acc", M.AUC()])
    history_s = streamed.fit(xm, ym, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, validation_split=0.3,
                             buffer_size=2 * BATCH * ROW_BYTES)  # two batches per buffer
    assert set(history_s.history) == set(history_a.history)
    for key in history_a.history:
        np.testing.assert_allclose(history_s.history[key], history_a.history[key], rtol=1e-6, err_msg=key)
    expected = arrays.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    got = streamed.evaluate(xm, ym, batch_size=BATCH, verbose=0, return_dict=True,
                            buffer_size=2 * BATCH * ROW_BYTES)
    assert list(got) == list(expected) == ["loss", "acc", "auc"]
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-6)


def doubled_error(y_true, y_pred):
    """Per sample: twice the absolute error."""
    return 2 * np.abs(y_true - y_pred).mean(axis=-1)


def batch_max(y_true, y_pred):
    """A scalar per batch."""
    return float(y_pred.max())


class RowCount(M.Metric):
    """The class form: rows seen and the sum of targets over the pass."""

    def __init__(self, name="rows_seen"):
        super().__init__(name=name)
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.rows += len(y_true)
        self.total += float(np.sum(y_true)) + float(np.sum(y_pred))

    def result(self):
        return self.total / self.rows if self.rows else 0.0

    def reset_state(self):
        self.rows, self.total = 0, 0.0


def _custom_metrics():
    return ["acc", doubled_error, batch_max, RowCount()]


def _h5(tmp_path, **arrays):
    h5py = pytest.importorskip("h5py")
    handle = h5py.File(tmp_path / "data.h5", "w")
    for name, array in arrays.items():
        handle.create_dataset(name, data=array, chunks=(8,) + array.shape[1:])
    return handle


@pytest.mark.parametrize("kind", ["memmap", "memmap in buffers", "dataset", "matrix", "sequence", "generator"])
def test_custom_metrics_over_streamed_input_give_the_array_fit_logs(core, tmp_path, kind):
    """Custom metrics (a per-sample function, a scalar one, the class form) over a fit with validation and an
    evaluate: the streamed fit's history, batch logs and evaluate results are the array fit's."""
    x, y = _data()
    xv, yv = x[:40], y[:40]
    arrays, seen_a = _model(core, _custom_metrics()), BatchLogs()
    history_a = arrays.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0, validation_data=(xv, yv),
                           callbacks=[seen_a])
    expected = arrays.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    streamed, seen_s = _model(core, _custom_metrics()), BatchLogs()
    fit = dict(epochs=2, shuffle=False, verbose=0, callbacks=[seen_s])
    handle = None
    if kind.startswith("memmap"):
        sx, sy, sxv = _memmap(tmp_path, x, "x.dat"), _memmap(tmp_path, y, "y.dat"), _memmap(tmp_path, xv, "xv.dat")
        # in buffers: two batches per buffer, so each pass runs as several engine calls
        buffer = {"buffer_size": 2 * BATCH * ROW_BYTES} if kind == "memmap in buffers" else {}
        history_s = streamed.fit(sx, sy, batch_size=BATCH, validation_data=(sxv, yv), **fit, **buffer)
        got = streamed.evaluate(sx, sy, batch_size=BATCH, verbose=0, return_dict=True, **buffer)
    elif kind in ("dataset", "matrix"):
        handle = _h5(tmp_path, x=x, y=y, xv=xv)
        if kind == "dataset":
            sx, sy, sxv = handle["x"], handle["y"], handle["xv"]
        else:
            handle.close()
            path = str(tmp_path / "data.h5")
            sx, sy, sxv = (fastfit.utils.HDF5Matrix(path, name) for name in ("x", "y", "xv"))
        history_s = streamed.fit(sx, sy, batch_size=BATCH, validation_data=(sxv, yv), **fit)
        got = streamed.evaluate(sx, sy, batch_size=BATCH, verbose=0, return_dict=True)
    elif kind == "sequence":  # several batches per engine call, validation from a Sequence
        history_s = streamed.fit(Batches(x, y), validation_data=Batches(xv, yv), max_queue_size=2, workers=2,
                                 **fit)
        got = streamed.evaluate(Batches(x, y), verbose=0, return_dict=True, max_queue_size=3)
    else:
        def batches(*arrays):
            while True:
                yield from Batches(*arrays)
        history_s = streamed.fit_generator(batches(x, y), steps_per_epoch=len(Batches(x, y)),
                                           validation_data=batches(xv, yv), validation_steps=len(Batches(xv, yv)),
                                           **fit)
        got = streamed.evaluate_generator(batches(x, y), steps=len(Batches(x, y)))
        got = dict(zip(streamed.metrics_names, got))
    if handle is not None:
        handle.close()
    fastfit.utils.HDF5Matrix.refs.pop(str(tmp_path / "data.h5"), None)
    assert list(history_s.history) == list(history_a.history) == [
        "loss", "acc", "doubled_error", "batch_max", "rows_seen",
        "val_loss", "val_acc", "val_doubled_error", "val_batch_max", "val_rows_seen"]
    for key in history_a.history:
        np.testing.assert_allclose(history_s.history[key], history_a.history[key], rtol=1e-6, err_msg=key)
    if kind != "memmap in buffers":  # one buffer, or whole batches summed in order: the array fit's bits
        assert history_s.history == history_a.history
    assert [entry[:2] for entry in seen_s.logs] == [entry[:2] for entry in seen_a.logs]
    for (*_, logs_s), (*_, logs_a) in zip(seen_s.logs, seen_a.logs):
        assert list(logs_s) == list(logs_a)
        np.testing.assert_allclose(list(logs_s.values()), list(logs_a.values()), rtol=1e-6)
    assert list(got) == list(expected)
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-6)


class TargetsSeen(M.Metric):
    """Records the targets of every batch."""

    def __init__(self, name="targets_seen"):
        super().__init__(name=name)
        self.batches = []

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.batches.append(np.array(y_true))

    def result(self):
        return 0.0

    def reset_state(self):
        self.batches = []


def test_custom_metrics_see_each_row_once_from_shuffled_buffers(core, tmp_path):
    """shuffle=True over several buffers: each batch's targets are the rows the engine trained on, every row once."""
    x, _ = _data()
    y = np.arange(N, dtype="float32")[:, None] / N  # a distinct target per row
    seen = TargetsSeen()
    model = _model(core, [seen])
    model.compile("adam", "mean_squared_error", metrics=[seen], engine=core)
    model.fit(_memmap(tmp_path, x, "x.dat"), _memmap(tmp_path, y, "y.dat"), batch_size=BATCH, epochs=1, verbose=0,
              shuffle=True, buffer_size=3 * BATCH * ROW_BYTES)
    assert [len(batch) for batch in seen.batches] == [BATCH] * (N // BATCH) + [N % BATCH]
    targets = np.concatenate(seen.batches)[:, 0]
    np.testing.assert_array_equal(np.sort(targets), y[:, 0])
    assert not np.array_equal(targets, y[:, 0])  # shuffled


def test_generator_options_reach_streaming_and_arrays_keep_the_neutral_check(core, tmp_path):
    x, y = _data()
    model = _model(core)
    model.fit(Batches(x, y), verbose=0, workers=2, use_multiprocessing=False, max_queue_size=3)
    model.evaluate(Batches(x, y), verbose=0, workers=2, max_queue_size=3)
    model.predict(Batches(x), workers=2, max_queue_size=3)
    xm = _memmap(tmp_path, x, "x.dat")
    for call in (lambda: model.fit(x, y, verbose=0, workers=2),
                 lambda: model.fit(xm, y, verbose=0, workers=2),
                 lambda: model.evaluate(xm, y, verbose=0, max_queue_size=3),
                 lambda: model.predict(xm, use_multiprocessing=True)):
        with pytest.raises(ValueError, match="applies only to generator or `Sequence` input"):
            call()
    model.fit(xm, y, verbose=0, workers=1, max_queue_size=10)  # neutral values pass on on-disk arrays too


def test_show_accuracy_and_return_dict_with_streamed_input(core, tmp_path):
    x, y = _data()
    model = _model(core, [])
    with pytest.warns(DeprecationWarning, match="show_accuracy"):
        history = model.fit(Batches(x, y), epochs=1, verbose=0, show_accuracy=True)
    assert list(history.history) == ["loss", "acc"]
    assert model.metrics_names == ["loss"]  # for that call only
    with pytest.warns(DeprecationWarning, match="show_accuracy"):
        loss, acc = model.evaluate(Batches(x, y), verbose=0, show_accuracy=True)
    assert model.evaluate(Batches(x, y), verbose=0, return_dict=True) == {"loss": loss}
    xm = _memmap(tmp_path, x, "x.dat")
    assert model.evaluate(xm, y, batch_size=BATCH, verbose=0, return_dict=True) == \
        pytest.approx({"loss": loss}, rel=1e-6)


def test_validation_batch_size(core, tmp_path):
    x, y = _data()
    xm = _memmap(tmp_path, x, "x.dat")
    seen = BatchLogs()
    _model(core).fit(xm, y, batch_size=BATCH, epochs=1, verbose=0, validation_data=(xm[:40], y[:40]),
                       validation_batch_size=8, callbacks=[seen])
    assert [entry[1] for entry in seen.logs if entry[0] == "test"] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="validation_batch_size"):
        _model(core).fit(Batches(x, y), verbose=0, validation_data=(x, y), validation_batch_size=8)


@pytest.mark.parametrize("kind, user_code", [("sequence", True), ("generator", True), ("memmap", False),
                                             ("normalized matrix", True)])
def test_streamed_fits_run_in_the_checkpoint_rule_of_fit(core, tmp_path, monkeypatch, kind, user_code):
    """The checkpoint writer's `during_fit` wraps every streamed fit, told that user code runs when the fit
    reads a generator, a Sequence or an HDF5Matrix normalizer."""
    x, y = _data()
    scopes = []
    original = checkpoint_writer.during_fit

    @contextlib.contextmanager
    def recording(callbacks, runs_user_code=False):
        scopes.append((list(callbacks), runs_user_code))
        with original(callbacks, runs_user_code):
            yield
    monkeypatch.setattr(checkpoint_writer, "during_fit", recording)
    mine = Callback()
    model = _model(core)
    if kind == "sequence":
        model.fit(Batches(x, y), verbose=0, callbacks=[mine])
    elif kind == "generator":
        model.fit_generator(iter([(x, y)]), steps_per_epoch=1, verbose=0, callbacks=[mine])
    elif kind == "memmap":
        model.fit(_memmap(tmp_path, x, "x.dat"), y, verbose=0, callbacks=[mine])
    else:
        h5py = pytest.importorskip("h5py")
        path = str(tmp_path / "x.h5")
        with h5py.File(path, "w") as handle:
            handle.create_dataset("x", data=x)
        model.fit(fastfit.utils.HDF5Matrix(path, "x", normalizer=lambda rows: rows * 0.5), y, verbose=0,
                  callbacks=[mine])
        fastfit.utils.HDF5Matrix.refs.pop(path, None)
    assert scopes == [([mine], user_code)]
