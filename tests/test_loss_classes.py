"""tf.keras loss classes: values against the function forms and tf.keras's reductions, from-logits training
on both engines (loss value and gradient against NumPy, learning on separable data, tf.keras's accuracy
choice), config round trips, saving and loading, and the clear errors for what fastfit cannot train."""
import json

import h5py
import numpy as np
import pytest

import fastfit as keras
from fastfit import losses
from fastfit.models import load_model

RNG = np.random.default_rng(3)
P = RNG.uniform(0.05, 0.95, size=(5, 4))
Z = RNG.normal(scale=3, size=(5, 4))
LABELS = RNG.integers(0, 4, 5)
ONE_HOT = np.eye(4)[LABELS]
SOFT = RNG.uniform(0.1, 0.9, size=(5, 4))
SIGN = np.where(RNG.random((5, 4)) < 0.5, -1.0, 1.0)

# class -> (function name, y_true, y_pred)
FUNCTION_FORMS = {
    losses.MeanSquaredError: ("mean_squared_error", SOFT, P),
    losses.MeanAbsoluteError: ("mean_absolute_error", SOFT, P),
    losses.MeanAbsolutePercentageError: ("mean_absolute_percentage_error", SOFT, P),
    losses.MeanSquaredLogarithmicError: ("mean_squared_logarithmic_error", SOFT, P),
    losses.Hinge: ("hinge", SIGN, Z),
    losses.SquaredHinge: ("squared_hinge", SIGN, Z),
    losses.CategoricalHinge: ("categorical_hinge", ONE_HOT, Z),
    losses.LogCosh: ("logcosh", SOFT, Z),
    losses.KLDivergence: ("kullback_leibler_divergence", SOFT / SOFT.sum(1, keepdims=True), P),
    losses.Poisson: ("poisson", SOFT, P),
    losses.CosineSimilarity: ("cosine_proximity", SOFT, Z),
    losses.CategoricalCrossentropy: ("categorical_crossentropy", ONE_HOT, P),
    losses.SparseCategoricalCrossentropy: ("sparse_categorical_crossentropy", LABELS, P),
    losses.BinaryCrossentropy: ("binary_crossentropy", SOFT, P),
}
TF_NAMES = {losses.LogCosh: "log_cosh", losses.KLDivergence: "kl_divergence",
            losses.CosineSimilarity: "cosine_similarity"}


def log_softmax(z):
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("cls", list(FUNCTION_FORMS), ids=lambda c: c.__name__)
def test_class_value_is_the_mean_of_the_function_form(cls):
    name, y, p = FUNCTION_FORMS[cls]
    per_sample = getattr(losses, name)(y, p)
    loss = cls()
    assert loss.name == TF_NAMES.get(cls, name) and loss.reduction == "auto"
    assert loss(y, p) == pytest.approx(per_sample.mean(), rel=1e-12)
    np.testing.assert_allclose(cls(reduction="none")(y, p), per_sample, rtol=1e-12)
    assert cls(reduction="sum")(y, p) == pytest.approx(per_sample.sum(), rel=1e-12)


def test_sample_weight_follows_tf_keras_sum_over_batch_size():
    w = np.array([1.0, 0.0, 2.0, 0.5, 1.0])
    per_sample = losses.mean_squared_error(SOFT, P)
    assert losses.MeanSquaredError()(SOFT, P, sample_weight=w) == pytest.approx((w * per_sample).sum() / 5)
    assert losses.MeanSquaredError()(SOFT, P, sample_weight=w[:, None]) == pytest.approx((w * per_sample).sum() / 5)
    assert losses.MeanSquaredError()(SOFT, P, sample_weight=2.0) == pytest.approx(2 * per_sample.mean())
    with pytest.raises(ValueError, match="sample_weight"):
        losses.MeanSquaredError()(SOFT, P, sample_weight=np.ones(3))


def test_from_logits_values_use_log_sum_exp():
    expected = -np.take_along_axis(log_softmax(Z), LABELS[:, None], 1)[:, 0]
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, Z) == pytest.approx(expected.mean())
    assert losses.CategoricalCrossentropy(from_logits=True)(ONE_HOT, Z) == pytest.approx(expected.mean())
    bce = np.maximum(Z, 0) - Z * SOFT + np.log1p(np.exp(-np.abs(Z)))
    assert losses.BinaryCrossentropy(from_logits=True)(SOFT, Z) == pytest.approx(bce.mean())
    big = np.array([[1e4, -1e4, 0.0]])  # no clipping: the loss of the far-off label is 2e4
    assert losses.SparseCategoricalCrossentropy(from_logits=True)([1], big) == pytest.approx(2e4)


def test_label_smoothing_and_axis_in_call():
    smoothing = 0.2
    smoothed = ONE_HOT * (1 - smoothing) + smoothing / 4
    want = losses.categorical_crossentropy(smoothed, P).mean()
    assert losses.CategoricalCrossentropy(label_smoothing=smoothing)(ONE_HOT, P) == pytest.approx(want)
    want = losses.binary_crossentropy(SOFT * (1 - smoothing) + 0.5 * smoothing, P).mean()
    assert losses.BinaryCrossentropy(label_smoothing=smoothing)(SOFT, P) == pytest.approx(want)
    assert losses.CategoricalCrossentropy(axis=0)(ONE_HOT.T, P.T) == pytest.approx(
        losses.CategoricalCrossentropy()(ONE_HOT, P))


@pytest.mark.parametrize("cls", list(FUNCTION_FORMS), ids=lambda c: c.__name__)
def test_config_round_trip(cls):
    extra = {"from_logits": True} if "Crossentropy" in cls.__name__ else {}
    loss = cls(name="mine", **extra)
    config = loss.get_config()
    assert config["name"] == "mine" and config["reduction"] == "auto"
    again = cls.from_config(config)
    assert type(again) is cls and again.get_config() == config
    assert losses.deserialize(losses.serialize(loss)).get_config() == config


def test_tf_keras_configs():
    assert losses.CategoricalCrossentropy(from_logits=True).get_config() == {
        "reduction": "auto", "name": "categorical_crossentropy", "from_logits": True, "label_smoothing": 0.0,
        "axis": -1}
    assert losses.SparseCategoricalCrossentropy().get_config() == {
        "reduction": "auto", "name": "sparse_categorical_crossentropy", "from_logits": False, "ignore_class": None}
    assert losses.CosineSimilarity().get_config() == {"reduction": "auto", "name": "cosine_similarity", "axis": -1}


def test_get_and_deserialize():
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get(None) is None
    loss = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    assert type(losses.get("SparseCategoricalCrossentropy")) is losses.SparseCategoricalCrossentropy
    keras3 = {"module": "keras.losses", "class_name": "CategoricalCrossentropy", "registered_name": None,
              "config": {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                         "from_logits": True, "label_smoothing": 0.0, "axis": -1}}
    restored = losses.get(keras3)
    assert type(restored) is losses.CategoricalCrossentropy and restored.from_logits


@pytest.mark.parametrize("config, match", [
    (3, "Could not interpret"),
    ({"class_name": "Huber", "config": {}}, "Unknown loss class 'Huber'"),
    ({"class_name": "Poisson", "config": []}, "'config' must be a dict"),
    ({"class_name": "Poisson", "config": {}, "extra": 1}, "unknown keys"),
    ({"class_name": "Poisson", "config": {"delta": 1.0}}, "does not fit Poisson"),
    ({"class_name": "Poisson", "config": {"reduction": "mean_with_sample_weight"}}, "reduction"),
    ({"class_name": "BinaryCrossentropy", "config": {"from_logits": "yes"}}, "from_logits"),
    ({"config": {}}, "class_name"),
])
def test_deserialize_refuses_malformed_configs(config, match):
    with pytest.raises(ValueError, match=match):
        losses.deserialize(config)


def mlp(units, engine, last_activation=None):
    model = keras.Sequential([keras.layers.Dense(16, activation="tanh", input_shape=(6,)),
                              keras.layers.Dense(units, activation=last_activation)])
    return model


def separable(n=240, classes=3):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 6)).astype("float32")
    labels = np.argmax(x[:, :classes], axis=1) if classes > 1 else (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, labels


@pytest.mark.parametrize("loss, classes", [
    (losses.SparseCategoricalCrossentropy(from_logits=True), 3),
    (losses.CategoricalCrossentropy(from_logits=True), 3),
    (losses.BinaryCrossentropy(from_logits=True), 1),
], ids=["sparse", "categorical", "binary"])
def test_from_logits_fit_learns_and_predict_returns_logits(core, loss, classes):
    x, labels = separable(classes=classes)
    y = labels if "Sparse" in type(loss).__name__ else (np.eye(classes)[labels] if classes > 1 else labels[:, None])
    model = mlp(classes, core)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss, metrics=["accuracy"], engine=core)
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    z = model.predict(x)
    assert (z < 0).any() and (z > 1).any()  # logits, not probabilities
    value, accuracy = model.evaluate(x, y, batch_size=len(x), verbose=0)
    assert value == pytest.approx(float(loss(y, z)), rel=1e-4)
    if classes == 1:  # tf.keras's binary_accuracy thresholds the logits at 0.5
        assert accuracy == pytest.approx(np.mean((z[:, 0] > 0.5) == labels))
    else:
        assert accuracy == pytest.approx(np.mean(z.argmax(1) == labels))


@pytest.mark.parametrize("name", ["sparse", "categorical", "binary"])
def test_from_logits_loss_and_gradient_against_numpy(core, name):
    """One SGD step on a linear model: the step is -lr * x^T dL/dz with dL/dz = (softmax(z) - y) / n
    (or (sigmoid(z) - y) / n)."""
    x, labels = separable(n=8, classes=1 if name == "binary" else 3)
    units = 1 if name == "binary" else 3
    model = keras.Sequential([keras.layers.Dense(units, input_shape=(6,))])
    loss = {"sparse": losses.SparseCategoricalCrossentropy, "categorical": losses.CategoricalCrossentropy,
            "binary": losses.BinaryCrossentropy}[name](from_logits=True)
    y = labels if name == "sparse" else (labels[:, None].astype("float32") if name == "binary"
                                         else np.eye(3, dtype="float32")[labels])
    model.compile(optimizer=keras.optimizers.SGD(lr=0.1), loss=loss, engine=core)
    kernel, bias = [w.astype(np.float64) for w in model.get_weights()]
    z = x.astype(np.float64) @ kernel + bias
    if name == "binary":
        expected_loss = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        dz = (1 / (1 + np.exp(-z)) - y) / len(x)
    else:
        target = np.eye(3)[labels]
        expected_loss = -np.mean(np.sum(target * log_softmax(z), axis=1))
        dz = (np.exp(log_softmax(z)) - target) / len(x)
    value = model.train_on_batch(x, y)
    assert value == pytest.approx(expected_loss, rel=1e-5)
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - 0.1 * x.T.astype(np.float64) @ dz, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - 0.1 * dz.sum(0), rtol=1e-4, atol=1e-6)


def test_plain_loss_objects_train_like_their_strings(core):
    x, labels = separable()
    runs = []
    for loss in ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy()):
        keras.utils.set_random_seed(9)
        model = mlp(3, core, "softmax")
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"], engine=core)
        runs.append(model.fit(x, labels, epochs=2, batch_size=32, verbose=0).history)
    assert runs[0] == runs[1]


def test_linear_last_layer_with_the_string_loss_still_trains(core):
    x, labels = separable()
    model = mlp(3, core)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", engine=core)
    assert np.isfinite(model.fit(x, labels, epochs=1, verbose=0).history["loss"][0])


@pytest.mark.parametrize("loss, match", [
    (losses.SparseCategoricalCrossentropy(reduction="sum"), "reduction='sum'"),
    (losses.MeanSquaredError(reduction="none"), "reduction='none'"),
    (losses.CategoricalCrossentropy(label_smoothing=0.1), "label_smoothing=0.1"),
    (losses.BinaryCrossentropy(axis=0), "axis=0"),
    (losses.CategoricalCrossentropy, "is a class; pass an instance"),
])
def test_compile_refuses_what_fastfit_cannot_train(core, loss, match):
    model = mlp(3, core)
    with pytest.raises(ValueError, match=match):
        model.compile(optimizer="adam", loss=loss, engine=core)
    assert not model.compiled


def test_constructor_errors():
    with pytest.raises(ValueError, match="ignore_class"):
        losses.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(ValueError, match="reduction"):
        losses.Poisson(reduction="mean")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.BinaryCrossentropy(label_smoothing=2)


def test_custom_loss_subclass_is_refused():
    class Mine(losses.MeanSquaredError):
        def call(self, y_true, y_pred):
            return np.abs(y_true - y_pred).max(-1)

    model = mlp(3, "python")
    with pytest.raises(ValueError, match="Custom loss"):
        model.compile(optimizer="adam", loss=Mine())


def test_save_and_load_keep_the_loss_object(core, tmp_path):
    x, labels = separable()
    model = mlp(3, core)
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], engine=core)
    model.fit(x, labels, epochs=1, verbose=0)
    path = str(tmp_path / "logits.h5")
    model.save(path)
    with h5py.File(path, "r") as f:
        entry = json.loads(f.attrs["training_config"])["loss"]
    assert entry == {"class_name": "SparseCategoricalCrossentropy",
                     "config": {"reduction": "sum_over_batch_size", "name": "sparse_categorical_crossentropy",
                                "from_logits": True, "ignore_class": None}}
    loaded = load_model(path)
    assert type(loaded.loss) is losses.SparseCategoricalCrossentropy and loaded.loss.from_logits
    np.testing.assert_allclose(loaded.evaluate(x, labels, verbose=0), model.evaluate(x, labels, verbose=0),
                               rtol=1e-6)


def test_large_logits_are_not_clipped_in_either_engine(core):
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(3,), use_bias=False)])
    model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True), engine=core)
    model.set_weights([np.eye(3, dtype="float32")])
    z = np.array([[1e4, -1e4, 0.0], [0.0, 3e4, -3e4]], dtype="float32")
    assert model.evaluate(z, np.array([1, 2]), verbose=0) == pytest.approx((2e4 + 6e4) / 2, rel=1e-6)


def test_tf_keras_basic_classification_script(core):
    """The tf.keras "basic classification" tutorial's model and compile call, verbatim but for the module."""
    tf_keras = keras
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    images = rng.uniform(0, 0.2, size=(200, 28, 28)).astype("float32")
    images[np.arange(200), labels, :] += 0.8  # class k lights row k: separable
    model = tf_keras.Sequential([tf_keras.layers.Flatten(input_shape=(28, 28)),
                                 tf_keras.layers.Dense(128, activation='relu'),
                                 tf_keras.layers.Dense(10)])
    model.compile(optimizer='adam', loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'], engine=core)
    model.fit(images, labels, epochs=5, verbose=0)
    test_loss, test_acc = model.evaluate(images, labels, verbose=0)
    assert test_acc > 0.9 and test_loss < 0.5
    assert model.predict(images[:3]).shape == (3, 10)


def test_metric_names_under_a_binary_from_logits_loss(core):
    x, labels = separable(n=64, classes=1)
    model = mlp(1, core)
    model.compile(optimizer="sgd", loss=losses.BinaryCrossentropy(from_logits=True),
                  metrics=["accuracy", "binary_accuracy", "crossentropy"], engine=core)
    y = labels[:, None].astype("float32")
    values = model.evaluate(x, y, batch_size=64, verbose=0)
    z = model.predict(x).astype(np.float64)
    thresholded = np.mean((z[:, 0] > 0.5) == labels)
    assert model.metrics_names == ["loss", "accuracy", "binary_accuracy", "crossentropy"]
    assert values[1] == pytest.approx(thresholded) and values[2] == pytest.approx(thresholded)
    # tf.keras's 'crossentropy' is the plain binary crossentropy of y_pred, here applied to the logits
    assert values[3] == pytest.approx(losses.binary_crossentropy(y, z).mean(), rel=1e-4)


def test_sparse_from_logits_loss_refuses_dense_metrics():
    model = mlp(3, "python")
    with pytest.raises(ValueError, match="binary_accuracy"):
        model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["binary_accuracy"])
