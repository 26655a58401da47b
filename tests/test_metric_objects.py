"""Metric objects (tf.keras `Precision()`, `AUC()`, ...): computed by both engines inside their loop, checked
against scikit-learn on the same predictions, against a replay of the training batches, and standalone."""
import copy

import numpy as np
import pytest
from sklearn import metrics as skm

import fastfit
import fastfit.callbacks
from fastfit import metrics as M
from fastfit._reference import metrics as twin
from fastfit.callbacks.monitor import higher_is_better
from fastfit.contract.checks import histogram_size


def _binary_data(n=203, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = ((x[:, 0] + 0.7 * rng.normal(size=n)) > 0).astype(np.float64)[:, None]
    return x, y


def _binary_model(engine, metrics, dtype="float64"):
    model = fastfit.Sequential([fastfit.layers.Dense(8, activation="tanh", input_dim=5, dtype=dtype),
                                fastfit.layers.Dense(1, activation="sigmoid", dtype=dtype)])
    model.compile(fastfit.optimizers.SGD(lr=0.05), "binary_crossentropy", metrics=metrics, engine=engine)
    return model


def _tie_bound(y, p, thresholds):
    """Half the share of (positive, negative) pairs whose scores fall in one threshold bucket: the most the
    trapezoid ROC-AUC over these thresholds can differ from the exact one (a shared bucket scores 1/2)."""
    bucket = np.searchsorted(thresholds, p, side="left")
    pos = np.bincount(bucket[y == 1], minlength=len(thresholds) + 1)
    neg = np.bincount(bucket[y == 0], minlength=len(thresholds) + 1)
    return 0.5 * float(np.sum(pos * neg)) / (pos.sum() * neg.sum())


def test_evaluate_matches_scikit_learn(core):
    x, y = _binary_data()
    objects = [M.Precision(), M.Recall(), M.AUC(), M.AUC(curve="PR"), M.TruePositives(), M.FalsePositives(),
               M.TrueNegatives(), M.FalseNegatives(name="fn"), M.BinaryAccuracy(), M.MeanSquaredError(),
               M.MeanAbsoluteError()]
    model = _binary_model(core, objects)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert model.metrics_names == ["loss", "precision", "recall", "auc", "auc_1", "true_positives",
                                   "false_positives", "true_negatives", "fn", "binary_accuracy",
                                   "mean_squared_error", "mean_absolute_error"]
    values = dict(zip(model.metrics_names, model.evaluate(x, y, batch_size=32, verbose=0)))  # last batch: 11
    p = model.predict(x)[:, 0]
    truth, predicted = y[:, 0], p > 0.5
    assert values["precision"] == pytest.approx(skm.precision_score(truth, predicted), abs=1e-12)
    assert values["recall"] == pytest.approx(skm.recall_score(truth, predicted), abs=1e-12)
    tn, fp, fn, tp = skm.confusion_matrix(truth, predicted).ravel()
    assert (values["true_positives"], values["false_positives"], values["true_negatives"], values["fn"]) == \
        (tp, fp, tn, fn)
    thresholds = np.array(M.AUC().thresholds)
    exact = skm.roc_auc_score(truth, p)
    assert abs(values["auc"] - exact) <= _tie_bound(truth, p, thresholds) + 1e-12
    assert values["auc"] != exact or _tie_bound(truth, p, thresholds) == 0  # buckets, not the exact ranking
    # PR-AUC interpolates precision between 200 thresholds; average precision is a step sum over every
    # distinct score: two estimators of one area, within a few hundredths on 203 samples.
    assert values["auc_1"] == pytest.approx(skm.average_precision_score(truth, p), abs=0.03)
    assert values["binary_accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted), abs=1e-12)
    assert values["mean_squared_error"] == pytest.approx(skm.mean_squared_error(truth, p), abs=1e-12)
    assert values["mean_absolute_error"] == pytest.approx(skm.mean_absolute_error(truth, p), abs=1e-12)
    # The objects hold the last pass's counts: result() is the value evaluate returned.
    assert objects[0].result() == values["precision"]
    assert objects[2].result() == values["auc"]


def test_auc_matches_scikit_learn_with_the_exact_thresholds(core):
    """With a threshold between every pair of distinct scores, the trapezoid AUC is the exact one."""
    x, y = _binary_data(n=60)
    model = _binary_model(core, [])
    p = np.sort(np.unique(model.predict(x)[:, 0]))
    thresholds = ((p[1:] + p[:-1]) / 2).tolist()
    model.compile("sgd", "binary_crossentropy", metrics=[M.AUC(thresholds=thresholds)], engine=core)
    _, auc = model.evaluate(x, y, batch_size=7, verbose=0)
    assert auc == pytest.approx(skm.roc_auc_score(y[:, 0], model.predict(x)[:, 0]), abs=1e-12)


def _replay(model, x, y, batch_size, objects):
    """Feed each batch's predictions, taken before that batch's update, to standalone copies of `objects`."""
    twin_model = copy.deepcopy(model)
    standalone = [copy.deepcopy(m) for m in objects]
    for m in standalone:
        m.reset_state()
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        p = twin_model.predict(xb, batch_size=len(xb))
        for m in standalone:
            m.update_state(yb, p)
        twin_model.train_on_batch(xb, yb)
    return [m.result() for m in standalone]


def test_train_logs_are_the_epoch_counts_of_a_replay(core):
    x, y = _binary_data()
    objects = [M.Precision(), M.Recall(), M.AUC(), M.FalseNegatives(), M.BinaryAccuracy(threshold=0.4)]
    model = _binary_model(core, objects)
    expected = _replay(model, x, y, 32, objects)
    history = model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for m, value in zip(objects, expected):
        assert history.history[m.name][0] == pytest.approx(value, abs=1e-12), m.name


def test_batch_logs_carry_the_running_value_and_val_logs_the_validation_pass(core):
    x, y = _binary_data()
    xv, yv = _binary_data(n=41, seed=1)
    objects = [M.Precision(), M.AUC(), M.BinaryAccuracy()]
    model = _binary_model(core, objects + ["acc"])
    first_predictions = model.predict(x[:32])
    seen = []
    record = fastfit.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(dict(logs)))
    history = model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0, callbacks=[record],
                        validation_data=(xv, yv))
    first = M.Precision()
    first.update_state(y[:32], first_predictions)
    assert seen[0]["precision"] == pytest.approx(first.result(), abs=1e-12)
    last_batch = seen[len(seen) // 2 - 1]  # the first epoch's last batch: the running value is the epoch's
    for key in ("precision", "auc", "binary_accuracy"):
        assert last_batch[key] == pytest.approx(history.history[key][0], abs=1e-12)
    # 'acc' (a name) logs each batch's own value, as Keras 2 does; the object logs the running value.
    assert any(log["acc"] != log["binary_accuracy"] for log in seen[1:])
    values = dict(zip(model.metrics_names, model.evaluate(xv, yv, batch_size=32, verbose=0)))
    for key in ("precision", "auc", "binary_accuracy"):
        assert history.history["val_" + key][-1] == pytest.approx(values[key], abs=1e-12)


def test_sample_weights_weigh_the_loss_only(core):
    """tf.keras passes sample weights to `weighted_metrics` only; `metrics=[...]` objects count every row."""
    x, y = _binary_data()
    weights = np.random.default_rng(3).uniform(0, 2, size=len(x))
    model = _binary_model(core, [M.Precision(), M.AUC(), M.BinaryAccuracy()])
    plain = model.evaluate(x, y, verbose=0)
    weighted = model.evaluate(x, y, sample_weight=weights, verbose=0)
    assert weighted[0] != pytest.approx(plain[0])
    assert weighted[1:] == pytest.approx(plain[1:], abs=1e-12)


def _softmax_data(n=150, units=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    labels = np.argmax(x[:, :units] + rng.normal(size=(n, units)), axis=1)
    return x, np.eye(units)[labels], labels


def test_class_id_top_k_and_thresholds(core):
    x, y, labels = _softmax_data()
    model = fastfit.Sequential([fastfit.layers.Dense(4, activation="softmax", input_dim=6, dtype="float64")])
    objects = [M.Precision(class_id=1), M.Recall(class_id=2, thresholds=0.3), M.Precision(top_k=2, name="p2"),
               M.Recall(top_k=1, class_id=0, name="r0"), M.TopKCategoricalAccuracy(k=2),
               M.CategoricalAccuracy(), M.AUC(name="pooled_auc")]
    model.compile("adam", "categorical_crossentropy", metrics=objects, engine=core)
    values = dict(zip(model.metrics_names, model.evaluate(x, y, batch_size=32, verbose=0)))
    p = model.predict(x)
    assert values["precision"] == pytest.approx(skm.precision_score(y[:, 1], p[:, 1] > 0.5, zero_division=0))
    assert values["recall"] == pytest.approx(skm.recall_score(y[:, 2], p[:, 2] > 0.3))
    assert values["top_k_categorical_accuracy"] == pytest.approx(skm.top_k_accuracy_score(labels, p, k=2))
    assert values["categorical_accuracy"] == pytest.approx(skm.accuracy_score(labels, p.argmax(1)))
    top2 = np.argsort(-p, axis=1, kind="stable")[:, :2]
    hits = np.take_along_axis(y, top2, axis=1)
    assert values["p2"] == pytest.approx(hits.mean())  # every top-2 prediction is a positive
    assert values["r0"] == pytest.approx(np.mean(p[labels == 0].argmax(1) == 0))
    pooled = np.array(M.AUC().thresholds)
    assert abs(values["pooled_auc"] - skm.roc_auc_score(y.ravel(), p.ravel())) <= \
        _tie_bound(y.ravel(), p.ravel(), pooled) + 1e-12


def test_sparse_objects(core):
    x, _, labels = _softmax_data()
    model = fastfit.Sequential([fastfit.layers.Dense(4, activation="softmax", input_dim=6)])
    model.compile("adam", "sparse_categorical_crossentropy", engine=core,
                  metrics=[M.SparseCategoricalAccuracy(), M.SparseTopKCategoricalAccuracy(k=3)])
    _, accuracy, top3 = model.evaluate(x, labels, verbose=0)
    p = model.predict(x)
    assert accuracy == pytest.approx(skm.accuracy_score(labels, p.argmax(1)))
    assert top3 == pytest.approx(skm.top_k_accuracy_score(labels, p, k=3))
    with pytest.raises(ValueError, match="targets of the output's shape"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=[M.Precision()], engine=core)
    with pytest.raises(ValueError, match="integer targets need a sparse metric"):
        model.compile("adam", "sparse_categorical_crossentropy", metrics=[M.CategoricalAccuracy()], engine=core)


def test_compile_refuses_what_logs_cannot_hold_or_the_model_cannot_give(core):
    model = _binary_model(core, [])
    with pytest.raises(ValueError, match="one value per threshold"):
        model.compile("sgd", "binary_crossentropy", metrics=[M.Precision(thresholds=[0.3, 0.6])], engine=core)
    with pytest.raises(ValueError, match="class_id 1 is not one of the model's 1 outputs"):
        model.compile("sgd", "binary_crossentropy", metrics=[M.Recall(class_id=1)], engine=core)
    with pytest.raises(ValueError, match="top_k 2 is larger"):
        model.compile("sgd", "binary_crossentropy", metrics=[M.Recall(top_k=2)], engine=core)


def test_predictions_outside_0_1_fail_loudly(core):
    x, y = _binary_data(n=40)
    model = fastfit.Sequential([fastfit.layers.Dense(1, input_dim=5)])
    model.compile("sgd", "mse", metrics=[M.AUC()], engine=core)
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        model.evaluate(x, y, verbose=0)


def test_standalone_use_follows_tf_keras_examples():
    m = M.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.result() == pytest.approx(0.75)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == pytest.approx(1.0)
    p = M.Precision()
    assert p([0, 1, 1, 1], [1, 0, 1, 1]) == pytest.approx(2 / 3)
    p.reset_state()
    p.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
    assert p.result() == pytest.approx(1.0)
    assert M.Precision(top_k=2)([0, 0, 1, 1], [1, 1, 1, 1]) == 0.0
    assert M.Precision(top_k=4)([0, 0, 1, 1], [1, 1, 1, 1]) == pytest.approx(0.5)
    assert M.FalsePositives()([0, 1, 0, 0], [0, 0, 1, 1]) == 2.0
    assert M.TrueNegatives()([0, 1, 0, 0], [1, 1, 0, 0]) == 2.0
    assert M.FalseNegatives()([0, 1, 1, 1], [0, 1, 0, 0]) == 2.0
    assert M.TruePositives()([0, 1, 1, 1], [1, 0, 1, 1]) == 2.0
    recall = M.Recall(thresholds=[0.6, 0.3])  # one value per threshold, in the given order
    assert np.allclose(recall([0, 1, 1, 1], [1, 0, 0.5, 0.9]), [1 / 3, 2 / 3])
    assert M.BinaryAccuracy()([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]) == pytest.approx(0.75)
    assert M.CategoricalAccuracy()([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]) == 0.5
    assert M.SparseCategoricalAccuracy()([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]) == 0.5
    assert M.TopKCategoricalAccuracy(k=1)([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]) == 0.5
    mse = M.MeanSquaredError()
    mse.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]], sample_weight=[1, 0])
    assert mse.result() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="predictions must be in \\[0, 1\\]"):
        M.AUC().update_state([0, 1], [0.5, 1.5])


def test_automatic_names_follow_tf_keras():
    assert [M.AUC().name, M.AUC().name, M.Precision().name, M.AUC(name="x").name] == ["auc", "auc_1", "precision", "x"]
    fastfit.backend.clear_session()
    assert M.AUC().name == "auc"
    assert M.BinaryAccuracy().name == M.BinaryAccuracy().name == "binary_accuracy"


def test_engine_histograms_match_the_numpy_twin(core):
    """Both engines' threshold histograms (top_k ties, class_id, out-of-range count) equal the NumPy twin's."""
    from fastfit.core import core_class
    rng = np.random.default_rng(5)
    x = rng.normal(size=(45, 3))
    W = rng.normal(size=(3, 4))
    W[:, 3] = W[:, 2]  # outputs 2 and 3 tie exactly: top_k must take the lower index
    y = (rng.random((45, 4)) > 0.6).astype(np.float64)
    thresholds = np.linspace(-0.2, 1.2, 9)
    specs = [(thresholds, -1, 0), (thresholds, 2, 0), (np.array([0.1]), -1, 2), (np.array([-1e10]), 1, 1)]
    net = core_class(core)([("dense", W, None)], "mean_squared_error", [], np.float64, confusion=specs)
    net.evaluate(x, y, None, 8, None)
    p = x @ W
    expected = np.concatenate([twin.threshold_histogram(y, p, t, None if c < 0 else c, k or None)
                               for t, c, k in specs])
    assert np.array_equal(net.confusion_counts, expected)
    assert net.confusion_counts[histogram_size(thresholds) - 1] > 0  # linear outputs leave [0, 1]


def test_top_k_ties_take_the_lower_index():
    assert twin.top_k_mask(np.array([[0.5, 0.5, 0.5, 0.2]]), 2).tolist() == [[True, True, False, False]]


def test_monitors_follow_the_declared_direction(core, tmp_path):
    x, y = _binary_data()
    model = _binary_model(core, [M.Precision(name="prec"), M.FalseNegatives(), M.AUC()])
    assert higher_is_better("auto", "val_prec", "t", model)
    assert higher_is_better("auto", "prec", "t", model)
    assert not higher_is_better("auto", "val_false_negatives", "t", model)
    assert not higher_is_better("auto", "val_prec", "t")  # without the model: Keras 2's name rule
    assert higher_is_better("auto", "val_auc", "t", model)
    # A constant val_auc (lr 0) never improves: patience 0 stops after the second epoch.
    model.compile(fastfit.optimizers.SGD(lr=0.0), "binary_crossentropy", metrics=model.metrics, engine=core)
    stop = fastfit.callbacks.EarlyStopping(monitor="val_auc", patience=0)
    history = model.fit(x, y, epochs=5, validation_split=0.25, verbose=0, callbacks=[stop])
    assert len(history.epoch) == 2
    # save_best_only on val_prec (max): with lr 0 only the first epoch improves, so one file per fit.
    path = tmp_path / "best-{epoch}.h5"
    check = fastfit.callbacks.ModelCheckpoint(str(path), monitor="val_prec", save_best_only=True)
    model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[check])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-1.h5"]
    assert check._higher
    plateau = fastfit.callbacks.ReduceLROnPlateau(monitor="val_false_negatives")
    model.fit(x, y, epochs=1, validation_split=0.25, verbose=0, callbacks=[plateau])
    assert plateau._higher is False


def test_no_batch_hook_when_only_engine_metrics_are_compiled(core, monkeypatch):
    made = []
    real = fastfit.callbacks.make_batch_hook

    def spy(*args, **kwargs):
        hook = real(*args, **kwargs)
        made.append(hook)
        return hook
    monkeypatch.setattr(fastfit.callbacks, "make_batch_hook", spy)
    x, y = _binary_data()
    model = _binary_model(core, [M.Precision(), M.AUC(), M.BinaryAccuracy(), "acc"])
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.2)
    model.evaluate(x, y, verbose=0)
    assert made and all(hook is None for hook in made)


def test_save_and_load_restore_the_objects(core, tmp_path):
    import h5py
    import json
    x, y = _binary_data()
    model = _binary_model(core, [M.Precision(thresholds=0.3), M.AUC(curve="PR", num_thresholds=50, name="pr"),
                                   M.BinaryAccuracy(threshold=0.6), "acc"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "r") as f:
        saved = json.loads(f.attrs["training_config"])["metrics"]
    assert saved[0] == {"class_name": "Precision", "config": {"name": "precision", "dtype": "float32",
                                                              "thresholds": 0.3, "top_k": None, "class_id": None}}
    assert saved[1]["class_name"] == "AUC" and saved[1]["config"]["num_thresholds"] == 50
    assert saved[3] == "acc"
    loaded = fastfit.models.load_model(path)
    assert loaded.metrics_names == model.metrics_names
    assert [type(m).__name__ for m in loaded.metrics[:3]] == ["Precision", "AUC", "BinaryAccuracy"]
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), abs=1e-12)


def test_custom_and_engine_metric_objects_together(core):
    class Count(M.Metric):
        def __init__(self):
            super().__init__(name="count")
            self.n = 0

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.n += len(y_true)

        def result(self):
            return float(self.n)

        def reset_state(self):
            self.n = 0
    x, y = _binary_data()
    model = _binary_model(core, [Count(), M.Precision(), "acc"])
    history = model.fit(x, y, epochs=1, batch_size=50, verbose=0)
    assert list(history.history) == ["loss", "count", "precision", "acc"]
    assert history.history["count"] == [len(x)]
    values = dict(zip(model.metrics_names, model.evaluate(x, y, verbose=0)))
    p = model.predict(x)[:, 0]
    assert values["precision"] == pytest.approx(skm.precision_score(y[:, 0], p > 0.5), abs=1e-12)


def test_deferred_build_resolves_objects_at_build(core):
    x, y = _binary_data()
    model = fastfit.Sequential([fastfit.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=[M.Recall(), M.AUC()], engine=core)
    history = model.fit(x, y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "recall", "auc"}


def test_progress_bar_and_single_batch_calls(core, capsys):
    x, y = _binary_data()
    model = _binary_model(core, [M.Precision(), M.AUC(num_thresholds=20)])
    history = model.fit(x, y, epochs=1, batch_size=50, verbose=1)
    out = capsys.readouterr().out
    assert f"precision: {history.history['precision'][0]:.4f}" in out
    assert f"auc: {history.history['auc'][0]:.4f}" in out
    p = model.predict(x[:40])[:, 0]
    _, precision, _ = model.test_on_batch(x[:40], y[:40])
    assert precision == pytest.approx(skm.precision_score(y[:40, 0], p > 0.5), abs=1e-12)
    _, precision, _ = model.train_on_batch(x[:40], y[:40])  # measured before the update
    assert precision == pytest.approx(skm.precision_score(y[:40, 0], p > 0.5), abs=1e-12)


def test_class_name_strings_make_objects(core, tmp_path):
    """tf.keras: `metrics=['AUC']` makes an `AUC()` (logged `auc`); Keras 3 also takes 'precision', 'recall'."""
    x, y = _binary_data()
    model = fastfit.Sequential([fastfit.layers.Dense(1, activation="sigmoid")])  # deferred build keeps names
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy", "AUC", "Precision", "recall"], engine=core)
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.2)
    assert list(history.history) == ["loss", "accuracy", "auc", "precision", "recall",
                                      "val_loss", "val_accuracy", "val_auc", "val_precision", "val_recall"]
    assert model.metrics == ["accuracy", "AUC", "Precision", "recall"]
    values = dict(zip(model.metrics_names, model.evaluate(x, y, verbose=0)))
    p = model.predict(x)[:, 0]
    assert values["precision"] == pytest.approx(skm.precision_score(y[:, 0], p > 0.5), abs=1e-12)
    model.save(tmp_path / "m.h5")
    fastfit.backend.clear_session()
    loaded = fastfit.models.load_model(tmp_path / "m.h5")
    assert loaded.metrics_names == model.metrics_names


def test_return_dict_and_csv_logger(core, tmp_path):
    x, y = _binary_data()
    model = _binary_model(core, [M.Precision(), M.AUC()])
    log = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.2,
                        callbacks=[fastfit.callbacks.CSVLogger(str(log))])
    header, *rows = log.read_text().splitlines()
    assert header.split(",") == ["epoch", "auc", "loss", "precision", "val_auc", "val_loss", "val_precision"]
    assert float(rows[-1].split(",")[1]) == pytest.approx(history.history["auc"][-1])
    values = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(values) == ["loss", "precision", "auc"]
    assert values["precision"] == pytest.approx(model.evaluate(x, y, verbose=0)[1], abs=1e-12)
