"""Custom metrics (functions and the class form) in fit, validation, evaluate and the single-batch calls, on
both engines; the GIL-free path without them; custom losses refused; saving and loading."""
import json

import h5py
import numpy as np
import pytest

import fastfit
from fastfit import callbacks
from fastfit.metrics import Metric

N, BATCH = 45, 16  # batches of 16, 16 and 13 rows


def top_class_hit(y_true, y_pred):
    """Per-sample: 1 where the largest prediction is the target class."""
    return (np.argmax(y_true, axis=1) == np.argmax(y_pred, axis=1)).astype(np.float64)


def batch_max(y_true, y_pred):
    """A scalar per batch: its largest prediction."""
    return float(y_pred.max())


class SquaredErrorSum(Metric):
    """Streaming: the sum of squared errors over the pass divided by the number of rows."""

    def __init__(self, name="sq_err"):
        super().__init__(name=name)
        self.calls = []
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.calls.append((y_true.shape, y_pred.shape, sample_weight))
        self.total += float(((y_true - y_pred) ** 2).sum())
        self.rows += len(y_true)

    def result(self):
        return self.total / self.rows if self.rows else 0.0

    def reset_state(self):
        self.total, self.rows = 0.0, 0


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, N)
    x = (rng.normal(0, 1, (3, 6))[labels] + rng.normal(0, 1, (N, 6))).astype("float32")
    weights = rng.uniform(0.1, 3.0, N)
    return x, fastfit.utils.to_categorical(labels, 3), weights


def _model(engine, metrics):
    fastfit.utils.set_random_seed(7)
    model = fastfit.models.Sequential([fastfit.layers.Dense(5, activation="relu", input_shape=(6,)),
                                       fastfit.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=fastfit.optimizers.SGD(lr=0.05), loss="categorical_crossentropy", metrics=metrics,
                  engine=engine)
    return model


def _expected(predictions, y, batch):
    """NumPy values over one pass: functions as Keras 2.2 (batch means weighted by batch size), the object
    as its streaming definition."""
    hits, maxima, sizes = [], [], []
    for start in range(0, len(y), batch):
        p, t = predictions[start:start + batch], y[start:start + batch]
        hits.append(top_class_hit(t, p).mean())
        maxima.append(p.max())
        sizes.append(len(t))
    sizes = np.array(sizes)
    return {"top_class_hit": float(np.dot(hits, sizes) / sizes.sum()),
            "batch_max": float(np.dot(maxima, sizes) / sizes.sum()),
            "sq_err": float(((y - predictions) ** 2).sum() / len(y))}


def test_evaluate_matches_numpy_with_weights_and_uneven_last_batch(core, data):
    x, y, weights = data
    metric = SquaredErrorSum()
    model = _model(core, ["acc", top_class_hit, batch_max, metric])
    assert model.metrics_names == ["loss", "acc", "top_class_hit", "batch_max", "sq_err"]
    expected = _expected(model.predict(x, batch_size=BATCH), y, BATCH)
    _, acc, hit, maximum, sq_err = model.evaluate(x, y, batch_size=BATCH, sample_weight=weights, verbose=0)
    assert hit == pytest.approx(expected["top_class_hit"], abs=1e-12) and hit == pytest.approx(acc, abs=1e-12)
    assert maximum == pytest.approx(expected["batch_max"], abs=1e-6)
    assert sq_err == pytest.approx(expected["sq_err"], rel=1e-6)
    # as for the built-in metrics (Keras 2.2), sample weights weigh the loss only
    assert model.evaluate(x, y, batch_size=BATCH, verbose=0)[1:] == [acc, hit, maximum, sq_err]
    assert metric.calls[-1] == ((N - 2 * BATCH, 3), (N - 2 * BATCH, 3), None)


def test_fit_logs_train_and_validation_values(core, data):
    x, y, weights = data
    metric = SquaredErrorSum()
    model = _model(core, [top_class_hit, metric])
    seen = []

    class Snapshot(callbacks.Callback):
        """The weights before each training epoch: the epoch's metrics are on its batches' forward passes."""

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.model.get_weights())

    history = model.fit(x[:36], y[:36], batch_size=BATCH, epochs=2, verbose=0, shuffle=False,
                        sample_weight=weights[:36], validation_data=(x[36:], y[36:]), callbacks=[Snapshot()])
    assert list(history.history) == ["loss", "top_class_hit", "sq_err", "val_loss", "val_top_class_hit",
                                     "val_sq_err"]
    # validation: the model at the epoch's end
    expected_val = _expected(model.predict(x[36:], batch_size=BATCH), y[36:], BATCH)
    assert history.history["val_top_class_hit"][-1] == pytest.approx(expected_val["top_class_hit"], abs=1e-12)
    assert history.history["val_sq_err"][-1] == pytest.approx(expected_val["sq_err"], rel=1e-6)
    # training, batch by batch: replay the epoch from the saved weights with the same updates
    replay = _model(core, [top_class_hit, SquaredErrorSum()])
    replay.set_weights(seen[1])
    batch_values = []
    for start in range(0, 36, BATCH):
        stop = min(start + BATCH, 36)  # the last batch has 4 rows
        xb, yb = x[start:stop], y[start:stop]
        batch_values.append((len(xb), top_class_hit(yb, replay.predict(xb)).mean()))
        replay.train_on_batch(xb, yb, sample_weight=weights[start:stop])
    expected_hit = sum(size * value for size, value in batch_values) / 36
    assert history.history["top_class_hit"][-1] == pytest.approx(expected_hit, abs=1e-12)
    assert metric.result() == history.history["val_sq_err"][-1]  # reset for validation, its last pass


def test_batch_logs_show_batch_values_for_functions_and_running_results_for_objects(core, data):
    x, y, _ = data
    metric = SquaredErrorSum()
    model = _model(core, [batch_max, metric])
    logs_seen = []
    test_logs = []
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[callbacks.LambdaCallback(
        on_batch_end=lambda batch, logs: logs_seen.append(dict(logs)))])
    assert [logs["size"] for logs in logs_seen] == [16, 16, 13]
    assert list(logs_seen[0]) == ["batch", "size", "loss", "batch_max", "sq_err"]
    assert len({logs["batch_max"] for logs in logs_seen}) == 3  # one value per batch

    class TestProbe(callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            test_logs.append((logs["sq_err"], metric.result()))

    model.evaluate(x, y, batch_size=BATCH, verbose=0, callbacks=[TestProbe()])
    assert [value for value, _ in test_logs] == [result for _, result in test_logs]  # running result()
    assert len(test_logs) == 3


def test_train_and_test_on_batch_report_custom_values(core, data):
    x, y, _ = data
    model = _model(core, [top_class_hit, SquaredErrorSum()])
    before = model.predict(x)
    _, hit, sq_err = model.train_on_batch(x, y)
    assert hit == pytest.approx(top_class_hit(y, before).mean(), abs=1e-12)
    assert sq_err == pytest.approx(((y - before) ** 2).sum() / N, rel=1e-6)
    after = model.predict(x)
    assert model.test_on_batch(x, y)[1] == pytest.approx(top_class_hit(y, after).mean(), abs=1e-12)


def test_engines_agree_on_custom_values(data):
    x, y, weights = data
    if fastfit.core.compiled_core() is None:
        pytest.skip("compiled engine not built")
    histories = [_model(engine, [top_class_hit, batch_max, SquaredErrorSum()]).fit(
        x, y, batch_size=BATCH, epochs=2, verbose=0, sample_weight=weights, validation_split=0.2).history
        for engine in ("python", "cython")]
    for key in histories[0]:
        assert histories[1][key] == pytest.approx(histories[0][key], rel=1e-5), key


def test_no_custom_metric_keeps_the_hook_away(core, data, monkeypatch):
    """Without custom metrics (and callbacks with batch hooks) the engine gets no hook: epochs stay GIL-free."""
    hooks = []
    original = callbacks.make_batch_hook

    def spy(*args, **kwargs):
        hook = original(*args, **kwargs)
        hooks.append(hook)
        return hook

    monkeypatch.setattr(callbacks, "make_batch_hook", spy)
    x, y, _ = data
    model = _model(core, ["acc", "mse"])
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, validation_split=0.2)
    model.evaluate(x, y, verbose=0)
    assert hooks and all(hook is None for hook in hooks)
    assert model._custom_metrics is None
    hooks.clear()
    _model(core, [top_class_hit]).fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert hooks[0] is not None and hooks[0].predictions is not None and hooks[0].end_interval == 0


def test_metric_subclass_with_the_older_reset_name(core, data):
    class Rows(Metric):
        def update_state(self, y_true, y_pred, sample_weight=None):
            self.rows += len(y_true)

        def result(self):
            return self.rows

        def reset_states(self):
            self.rows = 0

    x, y, _ = data
    metric = Rows()
    assert metric.name == "rows"
    model = _model(core, [metric])
    assert model.evaluate(x, y, batch_size=BATCH, verbose=0)[1] == N
    assert model.evaluate(x, y, batch_size=BATCH, verbose=0)[1] == N  # reset between passes


def test_metric_errors(core):
    model = fastfit.models.Sequential([fastfit.layers.Dense(3, activation="softmax", input_shape=(6,))])
    with pytest.raises(ValueError, match="SquaredErrorSum is a class; pass an instance"):
        model.compile("sgd", "categorical_crossentropy", metrics=[SquaredErrorSum], engine=core)
    with pytest.raises(ValueError, match="pass the function or object itself"):
        model.compile("sgd", "categorical_crossentropy", metrics=["top_class_hit"], engine=core)

    def text_metric(y_true, y_pred):
        return "high"

    model.compile("sgd", "categorical_crossentropy", metrics=[text_metric], engine=core)
    with pytest.raises(TypeError, match="'text_metric' must return a number"):
        model.evaluate(np.zeros((4, 6), "float32"), np.eye(3)[[0, 1, 2, 0]], verbose=0)


def test_custom_loss_is_refused_listing_the_builtins(core):
    def focal(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean(axis=-1)

    model = fastfit.models.Sequential([fastfit.layers.Dense(3, activation="softmax", input_shape=(6,))])
    with pytest.raises(ValueError, match=r"Custom loss 'focal'.*gradients.*'categorical_crossentropy'") as info:
        model.compile("sgd", loss=focal, engine=core)
    assert "mean_squared_error" in str(info.value)
    assert not model.compiled

    def mean_squared_error(y_true, y_pred):  # a custom function with a built-in's name is still custom
        return 0.0

    with pytest.raises(ValueError, match="Custom loss 'mean_squared_error'"):
        model.compile("sgd", loss=mean_squared_error, engine=core)


def test_save_and_load_with_custom_metrics(core, data, tmp_path):
    x, y, _ = data
    model = _model(core, ["acc", top_class_hit, SquaredErrorSum()])
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "r") as handle:
        config = json.loads(handle.attrs["training_config"])
    assert config["metrics"] == ["acc", "top_class_hit", "sq_err"]
    with pytest.raises(ValueError, match=r"metric 'top_class_hit', which is not a fastfit built-in.*custom_objects"):
        fastfit.models.load_model(path)
    loaded = fastfit.models.load_model(path, custom_objects={"top_class_hit": top_class_hit,
                                                             "sq_err": SquaredErrorSum})
    assert loaded.metrics_names == ["loss", "acc", "top_class_hit", "sq_err"]
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6)
    assert fastfit.models.load_model(path, compile=False).compiled is False


class _Hook:
    """A bare engine hook that records the `predictions` rows of every batch end."""

    def __init__(self, predictions, end_interval=0.0):
        self.batch_begin, self.batch_end, self.end_interval = False, True, end_interval
        self.predictions = predictions
        self.seen = []

    def __call__(self, phase, batch, size, stats):
        self.seen.append(self.predictions[:size].copy())
        return False


def test_engine_copies_each_batch_output_into_hook_predictions(core, data):
    x, y, weights = data
    weights = weights.astype("float32")
    model = _model(core, [])
    net = model._train_network()
    hook = _Hook(np.zeros((BATCH, 3), "float32"))
    net.evaluate(x, y, weights, BATCH, hook)
    np.testing.assert_allclose(np.concatenate(hook.seen), model.predict(x, batch_size=BATCH), rtol=1e-6)
    order = np.arange(N, dtype=np.int64)[::-1].copy()
    before = model.predict(x)
    hook = _Hook(np.zeros((BATCH, 3), "float32"))
    net.train_epoch(x, y, weights, order, BATCH, model.optimizer, hook)
    np.testing.assert_allclose(hook.seen[0], before[order[:BATCH]], rtol=1e-6)  # forward pass before the update


@pytest.mark.parametrize("predictions, interval, message", [
    (np.zeros((BATCH, 3), "float64"), 0.0, "hook.predictions: expected dtype float32"),
    (np.zeros((BATCH, 4), "float32"), 0.0, "hook.predictions"),
    (np.zeros((BATCH, 3), "float32"), 0.5, "every batch end"),
])
def test_engine_checks_hook_predictions(core, data, predictions, interval, message):
    x, y, weights = data
    weights = weights.astype("float32")
    net = _model(core, [])._train_network()
    with pytest.raises(ValueError, match=message):
        net.evaluate(x, y, weights, BATCH, _Hook(predictions, interval))


def test_an_error_in_a_custom_metric_propagates_and_the_model_stays_usable(core, data):
    x, y, _ = data

    def broken(y_true, y_pred):
        raise ZeroDivisionError("metric bug")

    model = _model(core, [broken])
    with pytest.raises(ZeroDivisionError, match="metric bug"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["acc"], engine=core)
    assert len(model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0).history["acc"]) == 1


def test_sparse_targets_reach_custom_metrics_as_labels(core, data):
    x, y, _ = data
    labels = y.argmax(axis=1)

    def sparse_hit(y_true, y_pred):
        assert y_true.shape == (len(y_pred),)
        return (y_true == y_pred.argmax(axis=1)).astype(float)

    fastfit.utils.set_random_seed(7)
    model = fastfit.models.Sequential([fastfit.layers.Dense(3, activation="softmax", input_shape=(6,))])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["acc", sparse_hit], engine=core)
    _, acc, hit = model.evaluate(x, labels, batch_size=BATCH, verbose=0)
    assert hit == pytest.approx(acc, abs=1e-12)


def test_cython_engine_copies_row_blocks_of_a_split_batch():
    """A batch split in row blocks (here run one after the other) fills `predictions` block by block."""
    if fastfit.core.compiled_core() is None:
        pytest.skip("compiled engine not built")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 32)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 10, 200), 10)
    model = fastfit.models.Sequential([fastfit.layers.Dense(64, activation="relu", input_shape=(32,)),
                                       fastfit.layers.Dense(10, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", engine="cython")
    net = model._train_network()
    net.split_threads, net.serial = 2, True
    hook = _Hook(np.zeros((64, 10), "float32"))
    net.evaluate(x, y, None, 64, hook)
    np.testing.assert_allclose(np.concatenate(hook.seen), model.predict(x, batch_size=64), rtol=1e-5, atol=1e-7)
