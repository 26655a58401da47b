"""KerasClassifier / KerasRegressor with scikit-learn's model selection tools, on both engines."""
import math
import pickle
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
try:
    from joblib.externals import cloudpickle  # older joblib vendors it
except ImportError:
    import cloudpickle  # newer joblib depends on it instead
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from fastfit.layers import Dense
from fastfit.models import Sequential
from fastfit.wrappers.scikit_learn import KerasClassifier, KerasRegressor

# joblib's worker processes (n_jobs=2) cannot import this test module by name: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def binary_model(engine="python", units=6, optimizer="adam", metrics=("accuracy",)):
    model = Sequential([Dense(units, activation="relu", input_dim=5), Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=list(metrics), engine=engine)
    return model


def softmax_model(engine="python", loss="categorical_crossentropy", classes=3):
    model = Sequential([Dense(8, activation="relu", input_dim=5), Dense(classes, activation="softmax")])
    model.compile(optimizer="adam", loss=loss, metrics=["acc"], engine=engine)
    return model


def regression_model(engine="python", units=8):
    model = Sequential([Dense(units, activation="relu", input_dim=5), Dense(1)])
    model.compile(optimizer="adam", loss="mse", engine=engine)
    return model


def _binary_data(n=60, labels=("no", "yes")):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = np.where(x[:, 0] + x[:, 1] > 0, labels[1], labels[0])
    return x, y


def _three_class_data(n=60):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = np.array([3, 7, 11])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)]
    return x, y


def test_cross_val_score_with_stratified_folds_keeps_string_labels(core):
    x, y = _binary_data()
    clf = KerasClassifier(build_fn=binary_model, engine=core, epochs=3, batch_size=10, verbose=0)
    scores = cross_val_score(clf, x, y, cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=7))
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    clf.fit(x, y)
    assert list(clf.classes_) == ["no", "yes"] and clf.n_classes_ == 2
    predicted = clf.predict(x)
    assert predicted.shape == (60, 1) and set(predicted.ravel()) <= {"no", "yes"}  # Keras: (n, 1) for sigmoid
    assert clf.score(x, y) == pytest.approx(np.mean(predicted.ravel() == y), abs=1e-6)
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba[:, 0], 1 - proba[:, 1])
    np.testing.assert_array_equal(proba[:, 1:], clf.model.predict(x))


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_labels_are_encoded_for_the_loss_and_given_back(core, loss):
    x, y = _three_class_data()
    clf = KerasClassifier(build_fn=softmax_model, engine=core, loss=loss, epochs=20, batch_size=8, verbose=0)
    clf.fit(x, y)
    assert list(clf.classes_) == [3, 7, 11]
    predicted = clf.predict(x)
    assert predicted.shape == (60,) and set(predicted) <= {3, 7, 11}
    assert clf.predict_proba(x).shape == (60, 3)
    assert clf.score(x, y) == pytest.approx(np.mean(predicted == y), abs=1e-6)
    assert clf.score(x, y) > 0.5


def test_one_hot_targets_give_index_classes(core):
    x, y = _three_class_data()
    one_hot = np.eye(3, dtype="float32")[np.searchsorted([3, 7, 11], y)]
    clf = KerasClassifier(build_fn=softmax_model, engine=core, epochs=2, verbose=0)
    clf.fit(x, one_hot)
    assert list(clf.classes_) == [0, 1, 2] and set(clf.predict(x)) <= {0, 1, 2}


def test_score_on_a_fold_missing_the_last_class(core):
    x, y = _three_class_data()
    estimator = KerasClassifier(build_fn=softmax_model, engine=core, epochs=2, verbose=0)
    estimator.fit(x, y)
    keep = y != 11
    assert 0 <= estimator.score(x[keep], y[keep]) <= 1


def test_grid_search_in_two_processes_routes_build_and_fit_parameters(core):
    x, y = _binary_data()
    clf = KerasClassifier(build_fn=binary_model, engine=core, batch_size=10, verbose=0)
    grid = GridSearchCV(clf, {"units": [2, 6], "epochs": [1, 3], "optimizer": ["adam", "sgd"]}, cv=2, n_jobs=2)
    grid.fit(x, y)
    assert set(grid.best_params_) == {"units", "epochs", "optimizer"}
    assert len(grid.cv_results_["mean_test_score"]) == 8
    best = grid.best_estimator_
    assert best.model.layers[0].units == best.sk_params["units"]
    assert best.model.optimizer.iterations == best.sk_params["epochs"] * math.ceil(60 / 10)
    assert set(grid.predict(x).ravel()) <= {"no", "yes"}


def test_randomized_search(core):
    x, y = _binary_data()
    clf = KerasClassifier(build_fn=binary_model, engine=core, epochs=1, verbose=0)
    search = RandomizedSearchCV(clf, {"units": [2, 4, 6], "batch_size": [5, 20]}, n_iter=3, cv=2, random_state=0)
    search.fit(x, y)
    assert search.best_params_["units"] in (2, 4, 6)


def test_pipeline_with_a_regressor(core):
    rng = np.random.default_rng(2)
    x = rng.normal(3, 2, size=(40, 5)).astype("float32")
    y = x @ np.arange(5, dtype="float32")
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", KerasRegressor(build_fn=regression_model, engine=core, epochs=3, batch_size=8,
                                            verbose=0))])
    scores = cross_val_score(pipe, x, y, cv=KFold(2))
    assert scores.shape == (2,) and np.all(scores < 0)
    pipe.set_params(mlp__units=4).fit(x, y)
    regressor = pipe.named_steps["mlp"]
    assert regressor.model.layers[0].units == 4
    scaled = pipe.named_steps["scale"].transform(x)
    assert pipe.predict(x).shape == (40,)
    assert regressor.score(scaled, y) == pytest.approx(-regressor.model.evaluate(scaled, y, verbose=0))


def test_clone_and_get_params_keep_the_objects():
    hidden = [4, 3]
    clf = KerasClassifier(build_fn=binary_model, epochs=2, metrics=hidden)
    params = clf.get_params()
    assert params["build_fn"] is binary_model and params["metrics"] is hidden
    copy = clone(clf)  # clone checks that the constructor keeps each parameter object as given
    assert copy is not clf and copy.sk_params == clf.sk_params and copy.build_fn is binary_model


def test_unknown_parameters_are_refused():
    with pytest.raises(ValueError, match="epoch is not a legal parameter"):
        KerasClassifier(build_fn=binary_model, epoch=3)
    clf = KerasClassifier(build_fn=binary_model)
    with pytest.raises(ValueError, match="unit is not a legal parameter"):
        clf.set_params(unit=3)


def test_build_fn_as_an_object_or_the_subclass_call(core):
    x, y = _binary_data()

    class Builder:
        def __call__(self, units=3):
            return binary_model(core, units=units)

    clf = KerasClassifier(build_fn=Builder(), units=5, epochs=1, verbose=0)
    clf.fit(x, y)
    assert clf.model.layers[0].units == 5

    class MyClassifier(KerasClassifier):
        def __call__(self, units=3):
            return binary_model(core, units=units)

    own = MyClassifier(units=4, epochs=1, verbose=0)
    own.fit(x, y)
    assert own.model.layers[0].units == 4


def test_build_fn_must_return_a_compiled_fastfit_model():
    x, y = _binary_data()
    with pytest.raises(TypeError, match="compiled fastfit model, got str"):
        KerasClassifier(build_fn=lambda: "model").fit(x, y)

    def uncompiled():
        return Sequential([Dense(1, input_dim=5)])

    with pytest.raises(TypeError, match="not compiled"):
        KerasRegressor(build_fn=uncompiled).fit(x, np.zeros(60))


def test_score_needs_an_accuracy_metric():
    x, y = _binary_data()
    clf = KerasClassifier(build_fn=binary_model, metrics=(), epochs=1, verbose=0)
    clf.fit(x, y)
    with pytest.raises(ValueError, match=r'metrics=\["accuracy"\]'):
        clf.score(x, y)


def test_predict_before_fit_is_not_fitted():
    with pytest.raises(NotFittedError):
        KerasClassifier(build_fn=binary_model).predict(np.zeros((2, 5)))


def test_keras1_nb_epoch_trains_that_many_epochs():
    x, y = _binary_data()
    clf = KerasClassifier(build_fn=binary_model, nb_epoch=3, batch_size=20, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(x, y)
    assert clf.model.optimizer.iterations == 3 * 3
    assert any("epochs" in str(w.message) for w in caught)


def test_fit_passes_sample_weight_and_fit_arguments(core):
    x, y = _binary_data()
    clf = KerasClassifier(build_fn=binary_model, engine=core, epochs=2, batch_size=60, verbose=0)
    history = clf.fit(x, y, sample_weight=np.ones(60), epochs=4)
    assert len(history.history["loss"]) == 4 and clf.model.optimizer.iterations == 4


def test_a_fitted_estimator_pickles_with_its_model(core):
    x, y = _three_class_data()
    clf = KerasClassifier(build_fn=softmax_model, engine=core, epochs=3, verbose=0)
    clf.fit(x, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(x), clf.predict_proba(x))
    assert copy.model._core == core and list(copy.classes_) == [3, 7, 11]


# -- what published Keras 2 scripts do (ported by renaming the module; see the branch report) --------------------
def two_unit_sigmoid_model(engine="python"):
    model = Sequential([Dense(6, input_dim=5, kernel_initializer="normal", activation="relu"),
                        Dense(2, kernel_initializer="normal", activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"], engine=engine)
    return model


def test_one_hot_targets_with_two_sigmoid_units_and_plain_kfold(core, capsys):
    """The sonar script: LabelEncoder + to_categorical targets, 2 sigmoid units, KFold, verbose=1, nb_epoch."""
    x, y = _binary_data()
    one_hot = np.eye(2, dtype="float64")[(y == "yes").astype(int)]
    clf = KerasClassifier(build_fn=two_unit_sigmoid_model, engine=core, verbose=1, nb_epoch=2, batch_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scores = cross_val_score(clf, x, one_hot, cv=KFold(n_splits=3, shuffle=True, random_state=0))
    assert np.all((0 <= scores) & (scores <= 1))
    out = capsys.readouterr().out
    assert out.count("Epoch 2/2") == 3 and "accuracy:" in out  # verbose reaches fit and evaluate, as in Keras


def test_float_labels_from_loadtxt_stay_floats_and_optimizer_names_in_any_case(core):
    """The pima grid scripts: labels are 0.0/1.0 from np.loadtxt; the grid spells optimizers 'SGD', 'Adam'."""
    x, y = _binary_data()
    y = (y == "yes").astype("float64")
    clf = KerasClassifier(build_fn=binary_model, engine=core, verbose=0)
    grid = GridSearchCV(clf, {"optimizer": ["SGD", "Adam", "RMSprop"], "epochs": [1]}, cv=2)
    grid.fit(x, y)
    assert grid.best_params_["optimizer"] in ("SGD", "Adam", "RMSprop")
    assert grid.best_estimator_.classes_.dtype == np.float64
    assert set(grid.predict(x).ravel()) <= {0.0, 1.0}


def test_verbose_zero_in_sk_params_keeps_cross_validation_quiet(core, capsys):
    x, y = _binary_data()
    cross_val_score(KerasClassifier(build_fn=binary_model, engine=core, epochs=2, verbose=0), x, y, cv=2)
    assert capsys.readouterr().out == ""
