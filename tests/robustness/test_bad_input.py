"""The bad-input matrix (issue 7, and the "Bad input" lists of issues 2 and 3), on both engines.

Each case asserts the exception type, that the message names the argument, what was expected and what was
given, that the rejected call left the weights and optimizer state unchanged, and that the model still trains.
"""
import numpy as np
import pytest

from fastfit import callbacks, optimizers
from fastfit.layers import Activation, Dense, Dropout
from fastfit.models import Sequential

from .helpers import FEATURES, N, assert_trains, data, model, rejected

X, LABELS, ONEHOT = data()
CCE, SCCE, BCE = "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"


def fit(**kwargs):
    """A call that fits the model with good data, overridden by `kwargs`."""
    arguments = dict(x=X, y=ONEHOT, batch_size=8, epochs=1, verbose=0)
    arguments.update(kwargs)
    return lambda net: net.fit(**arguments)


def with_nan(array, value=np.nan):
    array = np.array(array, dtype="float32")
    array[3, 0] = value
    return array


# (id, loss, call, exception type, message fragments)
CASES = [
    # -- layers --------------------------------------------------------------------------------------------
    ("dense-units-0", CCE, lambda net: Dense(0), ValueError, ["units", "positive", "0"]),
    ("dense-units-negative", CCE, lambda net: Dense(-3), ValueError, ["units", "positive", "-3"]),
    ("dense-units-float", CCE, lambda net: Dense(2.5), ValueError, ["units", "integer", "2.5"]),
    ("dense-units-string", CCE, lambda net: Dense("ten"), ValueError, ["units", "integer", "ten"]),
    ("dense-activation-unknown", CCE, lambda net: Dense(3, activation="relux"), ValueError,
     ["activation", "relux", "softmax", "relu"]),
    ("dense-initializer-unknown", CCE, lambda net: Dense(3, kernel_initializer="glorot_unifrom"), ValueError,
     ["initializer", "glorot_unifrom", "glorot_uniform", "he_normal"]),
    ("activation-unknown", CCE, lambda net: Activation("sigmoidal"), ValueError,
     ["activation", "sigmoidal", "sigmoid", "tanh"]),
    ("dropout-rate-1", CCE, lambda net: Dropout(1.0), ValueError, ["rate", "[0, 1)", "1.0"]),
    ("dropout-rate-negative", CCE, lambda net: Dropout(-0.1), ValueError, ["rate", "[0, 1)", "-0.1"]),
    ("dropout-rate-string", CCE, lambda net: Dropout("half"), ValueError, ["rate", "[0, 1)", "half"]),
    # -- compile and optimizers ----------------------------------------------------------------------------------
    ("compile-loss-unknown", CCE, lambda net: net.compile("sgd", "categorical_crossentropyy"), ValueError,
     ["loss", "categorical_crossentropyy", "mean_squared_error", "binary_crossentropy"]),
    ("compile-loss-missing", CCE, lambda net: net.compile("sgd"), ValueError, ["loss", "required"]),
    ("compile-optimizer-unknown", CCE, lambda net: net.compile("adamw", CCE), ValueError,
     ["optimizer", "adamw", "rmsprop", "sgd"]),
    ("compile-metric-unknown", CCE, lambda net: net.compile("sgd", CCE, metrics=["accuracyy"]), ValueError,
     ["metric", "accuracyy", "acc", "categorical_accuracy"]),
    ("compile-metrics-not-list", CCE, lambda net: net.compile("sgd", CCE, metrics="acc"), TypeError,
     ["metrics", "list", "acc"]),
    ("compile-engine-unknown", CCE, lambda net: net.compile("sgd", CCE, engine="gpu"), ValueError,
     ["engine", "cython", "python", "gpu"]),
    ("optimizer-lr-negative", CCE, lambda net: optimizers.SGD(lr=-0.1), ValueError, ["lr", ">= 0", "-0.1"]),
    ("optimizer-lr-string", CCE, lambda net: optimizers.Adam(learning_rate="fast"), TypeError,
     ["lr", "number", "fast"]),
    ("optimizer-lr-assigned-negative", CCE, lambda net: setattr(net.optimizer, "lr", -1.0), ValueError,
     ["lr", ">= 0", "-1.0"]),
    # -- fit: arguments ------------------------------------------------------------------------------------------
    ("batch-size-0", CCE, fit(batch_size=0), ValueError, ["batch_size", "positive integer", "0"]),
    ("batch-size-negative", CCE, fit(batch_size=-4), ValueError, ["batch_size", "positive integer", "-4"]),
    ("batch-size-float", CCE, fit(batch_size=2.5), ValueError, ["batch_size", "positive integer", "2.5"]),
    ("batch-size-string", CCE, fit(batch_size="32"), ValueError, ["batch_size", "positive integer", "'32'"]),
    ("epochs-negative", CCE, fit(epochs=-1), ValueError, ["epochs", "non-negative integer", "-1"]),
    ("epochs-float", CCE, fit(epochs=1.5), ValueError, ["epochs", "non-negative integer", "1.5"]),
    ("initial-epoch-negative", CCE, fit(initial_epoch=-2), ValueError, ["initial_epoch", "non-negative", "-2"]),
    ("verbose-3", CCE, fit(verbose=3), ValueError, ["verbose", "0, 1 or 2", "3"]),
    ("shuffle-string", CCE, fit(shuffle="yes"), ValueError, ["shuffle", "True, False or 'batch'", "yes"]),
    ("fit-unknown-keyword", CCE, fit(epoch=3), TypeError, ["keyword", "epoch"]),
    ("validation-split-1", CCE, fit(validation_split=1.0), ValueError, ["validation_split", "[0, 1)", "1.0"]),
    ("validation-split-negative", CCE, fit(validation_split=-0.1), ValueError,
     ["validation_split", "[0, 1)", "-0.1"]),
    ("validation-split-string", CCE, fit(validation_split="0.1"), ValueError,
     ["validation_split", "[0, 1)", "'0.1'"]),
    ("validation-data-array", CCE, fit(validation_data=X), ValueError,
     ["validation_data", "(x_val, y_val)", "array"]),
    ("validation-data-4-tuple", CCE, fit(validation_data=(X, ONEHOT, None, None)), ValueError,
     ["validation_data", "(x_val, y_val)", "tuple"]),
    ("validation-data-features", CCE, fit(validation_data=(X[:, :3], ONEHOT)), ValueError,
     ["validation_data[0]", f"({FEATURES},)", "(24, 3)"]),
    ("validation-data-targets", CCE, fit(validation_data=(X, LABELS)), ValueError,
     ["validation_data[1]", "(n, 3)", "(24,)"]),
    ("validation-split-leaves-nothing", CCE, fit(x=X[:1], y=ONEHOT[:1], validation_split=0.5), ValueError,
     ["validation_split", "0.5", "no training", "1"]),
    ("validation-data-empty", CCE, fit(validation_data=(X[:0], ONEHOT[:0])), ValueError,
     ["validation_data[0]", "0 samples"]),
    ("validation-data-nan", CCE, fit(validation_data=(with_nan(X), ONEHOT)), ValueError,
     ["validation_data[0]", "NaN"]),
    # -- fit: data -----------------------------------------------------------------------------------------------
    ("x-none", CCE, fit(x=None), TypeError, ["`x`", "array of numbers", "None"]),
    ("x-complex", CCE, fit(x=X.astype(complex)), TypeError, ["`x`", "real numbers", "complex"]),
    ("x-strings", CCE, fit(x=X.astype(str)), TypeError, ["`x`", "real numbers", "strings"]),
    ("x-objects", CCE, fit(x=X.astype(object)), TypeError, ["`x`", "real numbers", "object"]),
    ("x-ragged-list", CCE, fit(x=[[1.0, 2.0], [3.0]]), TypeError, ["`x`", "rectangular"]),
    ("y-complex", CCE, fit(y=ONEHOT.astype(complex)), TypeError, ["`y`", "real numbers", "complex"]),
    ("y-strings", CCE, fit(y=ONEHOT.astype(str)), TypeError, ["`y`", "real numbers", "strings"]),
    ("x-zero-samples", CCE, fit(x=X[:0], y=ONEHOT[:0]), ValueError, ["`x`", "0 samples", "at least one"]),
    ("x-features", CCE, fit(x=X[:, :3]), ValueError, ["`x`", f"({FEATURES},)", "(24, 3)"]),
    ("x-rank-3", CCE, fit(x=X[:, :, None]), ValueError, ["`x`", f"({FEATURES},)", "(24, 4, 1)"]),
    ("x-y-count", CCE, fit(y=ONEHOT[:-1]), ValueError, ["`x`", "`y`", "same number of samples", "24", "23"]),
    ("y-rank-3", CCE, fit(y=ONEHOT[:, :, None]), ValueError, ["`y`", "(n, 3)", "(24, 3, 1)"]),
    ("y-width", CCE, fit(y=ONEHOT[:, :2]), ValueError, ["`y`", "(n, 3)", "(24, 2)"]),
    ("y-labels-with-categorical", CCE, fit(y=LABELS), ValueError,
     ["`y`", "(n, 3)", "(24,)", "sparse_categorical_crossentropy"]),
    ("x-nan", CCE, fit(x=with_nan(X)), ValueError, ["`x`", "1 NaN or infinite"]),
    ("x-inf", CCE, fit(x=with_nan(X, np.inf)), ValueError, ["`x`", "1 NaN or infinite"]),
    ("y-nan", CCE, fit(y=with_nan(ONEHOT)), ValueError, ["`y`", "NaN"]),
    ("x-overflows-float32", CCE, fit(x=np.where(X > 1, 1e39, X.astype(np.float64))), ValueError,
     ["`x`", "too large for float32", "1e+39"]),
    ("y-overflows-float32", "mean_squared_error", fit(y=ONEHOT.astype(np.float64) * 1e300), ValueError,
     ["`y`", "too large for float32", "1e+300"]),
    ("sample-weight-overflows-float32", CCE, fit(sample_weight=np.full(N, 1e40)), ValueError,
     ["sample_weight", "too large for float32", "1e+40"]),
    ("sparse-label-too-large", SCCE, fit(y=np.where(LABELS == 2, 3, LABELS)), ValueError,
     ["`y`", "[0, 2]", "to 3"]),
    ("sparse-label-negative", SCCE, fit(y=np.where(LABELS == 2, -1, LABELS)), ValueError,
     ["`y`", "[0, 2]", "-1"]),
    ("sparse-label-fraction", SCCE, fit(y=LABELS + 0.5), ValueError, ["`y`", "integer class labels", "non-integer"]),
    ("sparse-one-hot", SCCE, fit(y=ONEHOT), ValueError, ["`y`", "(n,)", "(24, 3)", "categorical_crossentropy"]),
    ("binary-target-above-1", BCE, fit(y=ONEHOT * 2), ValueError, ["`y`", "[0, 1]", "2.0"]),
    ("binary-target-negative", BCE, fit(y=ONEHOT - 1), ValueError, ["`y`", "[0, 1]", "-1.0"]),
    ("sample-weight-length", CCE, fit(sample_weight=np.ones(N - 2)), ValueError,
     ["sample_weight", f"({N},)", f"({N - 2},)"]),
    ("sample-weight-negative", CCE, fit(sample_weight=np.linspace(-1, 1, N)), ValueError,
     ["sample_weight", ">= 0", "-1.0"]),
    ("sample-weight-nan", CCE, fit(sample_weight=np.full(N, np.nan)), ValueError, ["sample_weight", "NaN"]),
    ("sample-weight-strings", CCE, fit(sample_weight=np.array(["a"] * N)), TypeError,
     ["sample_weight", "real numbers", "strings"]),
    ("class-weight-unknown-class", CCE, fit(class_weight={0: 1.0, 1: 2.0, 2: 1.0, 7: 1.0}), ValueError,
     ["class_weight", "7", "0..2"]),
    ("class-weight-missing-class", CCE, fit(class_weight={0: 1.0, 1: 2.0}), ValueError,
     ["class_weight", "[2]"]),
    ("class-weight-negative", CCE, fit(class_weight={0: 1.0, 1: -2.0, 2: 1.0}), ValueError,
     ["class_weight[1]", ">= 0", "-2.0"]),
    ("class-weight-list", CCE, fit(class_weight=[1.0, 2.0, 1.0]), TypeError, ["class_weight", "dict", "list"]),
    # -- evaluate / predict ----------------------------------------------------------------------------------------
    ("evaluate-features", CCE, lambda net: net.evaluate(X[:, :2], ONEHOT, verbose=0), ValueError,
     ["`x`", f"({FEATURES},)", "(24, 2)"]),
    ("evaluate-batch-size", CCE, lambda net: net.evaluate(X, ONEHOT, batch_size=0, verbose=0), ValueError,
     ["batch_size", "positive integer", "0"]),
    ("evaluate-y-missing", CCE, lambda net: net.evaluate(X, verbose=0), TypeError, ["`y`", "None"]),
    ("evaluate-sample-weight", CCE, lambda net: net.evaluate(X, ONEHOT, sample_weight=np.ones(3), verbose=0),
     ValueError, ["sample_weight", f"({N},)", "(3,)"]),
    ("predict-strings", CCE, lambda net: net.predict(X.astype(str)), TypeError, ["`x`", "real numbers", "strings"]),
    ("predict-features", CCE, lambda net: net.predict(X[:, :1]), ValueError, ["`x`", f"({FEATURES},)", "(24, 1)"]),
    ("predict-zero-samples", CCE, lambda net: net.predict(X[:0]), ValueError, ["`x`", "0 samples"]),
    ("predict-batch-size", CCE, lambda net: net.predict(X, batch_size=-5), ValueError,
     ["batch_size", "positive integer", "-5"]),
    ("predict-inf", CCE, lambda net: net.predict(with_nan(X, -np.inf)), ValueError, ["`x`", "infinite"]),
    # -- weights ---------------------------------------------------------------------------------------------------
    ("set-weights-shape", CCE, lambda net: net.set_weights([np.ones((3, 5))] + net.get_weights()[1:]),
     ValueError, ["set_weights", "dense", "(4, 5)", "(3, 5)"]),
    ("set-weights-count", CCE, lambda net: net.set_weights(net.get_weights()[:2]), ValueError,
     ["set_weights", "4 weight arrays", "got 2"]),
    ("layer-set-weights-complex", CCE,
     lambda net: net.layers[0].set_weights([w.astype(complex) for w in net.layers[0].get_weights()]),
     TypeError, ["weights", "real numbers", "complex"]),
    ("layer-set-weights-shape", CCE, lambda net: net.layers[1].set_weights([np.ones((5, 2)), np.ones(3)]),
     ValueError, ["(5, 2)", "(5, 3)"]),
    # -- callbacks (issue 3) ---------------------------------------------------------------------------------------
    ("callbacks-not-callback", CCE, fit(callbacks=[object()]), TypeError, ["callbacks", "Callback", "object"]),
    ("callbacks-string", CCE, fit(callbacks=["EarlyStopping"]), TypeError, ["callbacks", "Callback", "str"]),
    ("early-stopping-mode", CCE, lambda net: callbacks.EarlyStopping(mode="upward"), ValueError,
     ["mode", "upward", "min", "max", "auto"]),
    ("checkpoint-mode", CCE, lambda net: callbacks.ModelCheckpoint("m.h5", mode="best"), ValueError,
     ["mode", "best", "min", "max", "auto"]),
    ("plateau-mode", CCE, lambda net: callbacks.ReduceLROnPlateau(mode="lower"), ValueError,
     ["mode", "lower", "min", "max"]),
    ("plateau-factor", CCE, lambda net: callbacks.ReduceLROnPlateau(factor=1.0), ValueError, ["factor", "1.0"]),
    ("scheduler-returns-string", CCE, fit(callbacks=[callbacks.LearningRateScheduler(lambda epoch: "fast")]),
     ValueError, ["schedule", "float", "fast"]),
]

UNTRAINED = {"fit-before-compile": lambda net: net.fit(X, ONEHOT, verbose=0),
             "evaluate-before-compile": lambda net: net.evaluate(X, ONEHOT, verbose=0),
             "train-on-batch-before-compile": lambda net: net.train_on_batch(X, ONEHOT)}


def test_matrix_is_large_enough():
    assert len(CASES) + len(UNTRAINED) >= 50


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_rejected_and_model_still_trains(core, case):
    name, loss, call, error_type, fragments = case
    activation = "sigmoid" if loss == BCE else "softmax"
    net = model(core, loss=loss, activation=activation, metrics=())
    rejected(net, call, error_type, fragments, loss=loss)


@pytest.mark.parametrize("name", sorted(UNTRAINED))
def test_use_before_compile_is_rejected(core, name):
    net = model(core, compiled=False)
    with pytest.raises(RuntimeError) as error:
        UNTRAINED[name](net)
    assert "compile" in str(error.value) and name.split("-before")[0].replace("-", "_") in str(error.value)
    net.compile("sgd", CCE, engine=core)
    assert_trains(net)


def test_model_without_input_shape_builds_from_x_or_says_why_not(core):
    # tf.keras's deferred build (was: fit refused); a 1-D x gives no input shape and is refused clearly.
    net = Sequential([Dense(3, activation="softmax")])
    net.compile("sgd", CCE, engine=core)
    with pytest.raises(ValueError) as error:
        net.fit(X[:, 0], ONEHOT, verbose=0)
    assert "input_shape" in str(error.value) and "input_dim" in str(error.value) and not net.built
    net.fit(X, ONEHOT, verbose=0)
    assert net.input_shape == (None, X.shape[1])


def test_bad_compile_keeps_previous_configuration(core):
    net = model(core, loss=CCE, metrics=("acc",))
    with pytest.raises(ValueError):
        net.compile("sgd", "no_such_loss", metrics=["acc"])
    assert net.loss == CCE and net.metrics_names == ["loss", "acc"]
    history = net.fit(X, ONEHOT, epochs=1, verbose=0)
    assert sorted(history.history) == ["acc", "loss"]


def test_checkpoint_placeholder_without_log_key(core, tmp_path):
    net = model(core)
    path = str(tmp_path / "w-{epoch:02d}-{val_los:.2f}.h5")
    with pytest.raises(KeyError) as error:
        net.fit(X, ONEHOT, epochs=1, verbose=0, validation_split=0.25,
                callbacks=[callbacks.ModelCheckpoint(path)])
    assert "val_los" in str(error.value)
    assert list(tmp_path.iterdir()) == []
    assert_trains(net)


def test_checkpoint_folder_missing(core, tmp_path):
    """Issue 3 allows either a clear OSError at the first save or creating the folder; fastfit documents
    (ModelCheckpoint docstring) that it creates it. Either way training must not be broken by it."""
    net = model(core)
    path = tmp_path / "missing" / "best.h5"
    try:
        net.fit(X, ONEHOT, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(path))])
    except OSError as error:
        assert "missing" in str(error)
        assert not path.exists()
    else:
        assert path.exists()
    assert_trains(net)


def test_missing_monitor_warns_and_training_continues(core):
    net = model(core)
    with pytest.warns(RuntimeWarning) as record:
        history = net.fit(X, ONEHOT, epochs=2, verbose=0,
                          callbacks=[callbacks.EarlyStopping(monitor="val_acc", patience=0)])
    assert len(history.history["loss"]) == 2
    text = " ".join(str(w.message) for w in record)
    assert "val_acc" in text and "loss" in text


# -- save and load ------------------------------------------------------------------------------------------------
def test_save_into_missing_folder(core, tmp_path):
    net = model(core)
    target = tmp_path / "nope" / "model.h5"
    rejected(net, lambda n: n.save(str(target)), OSError, ["nope"])
    assert not target.parent.exists()


def test_load_missing_file(core, tmp_path):
    from fastfit.models import load_model
    net = model(core)
    rejected(net, lambda n: load_model(str(tmp_path / "absent.h5")), OSError, ["absent.h5"])


def test_load_file_that_is_not_hdf5(core, tmp_path):
    from fastfit.models import load_model
    path = tmp_path / "notes.h5"
    path.write_text("this is not an HDF5 file")
    net = model(core)
    rejected(net, lambda n: load_model(str(path)), (OSError, ValueError), ["notes.h5"])


def test_load_weights_into_other_architecture(core, tmp_path):
    other = Sequential([Dense(7, input_dim=FEATURES), Dense(3, activation="softmax")])
    other.compile("sgd", CCE, engine=core)
    path = str(tmp_path / "other.h5")
    other.save_weights(path)
    net = model(core)
    rejected(net, lambda n: n.load_weights(path), ValueError, ["(4, 7)", "(4, 5)"])


def test_load_model_on_weights_only_file(core, tmp_path):
    from fastfit.models import load_model
    net = model(core)
    path = str(tmp_path / "weights.h5")
    net.save_weights(path)
    rejected(net, lambda n: load_model(path), ValueError, ["model"])


def test_layers_of_different_dtypes_are_refused_by_name(core):
    net = Sequential([Dense(5, input_dim=FEATURES, dtype="float32", name="single"),
                      Dense(3, activation="softmax", dtype="float64", name="double")])
    net.compile("sgd", CCE, engine=core)
    for call in (lambda: net.fit(X, ONEHOT, verbose=0), lambda: net.predict(X)):
        with pytest.raises(ValueError) as error:
            call()
        for fragment in ("dtype", "float32", "'single'", "float64", "'double'"):
            assert fragment in str(error.value)
