"""The Keras 2.2 layers, regularizers and constraints beyond Dense/Dropout/Activation, through the model API
on both engines: what the user sees (losses, weights, predictions, configs, files, summary)."""
import contextlib
import io

import numpy as np
import pytest

import fastfit
from fastfit import constraints, regularizers
from fastfit.layers import (
    ELU,
    Activation,
    ActivityRegularization,
    AlphaDropout,
    BatchNormalization,
    Dense,
    GaussianDropout,
    GaussianNoise,
    LeakyReLU,
    PReLU,
    ReLU,
    Softmax,
    ThresholdedReLU,
    deserialize,
)
from fastfit.models import Sequential, load_model


def _data(n=64, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    return x, fastfit.utils.to_categorical(rng.integers(0, classes, n), classes)


def test_regularizers_have_keras_2_2_names_defaults_and_configs():
    assert regularizers.l2().get_config() == {"l1": 0.0, "l2": float(np.float32(0.01))}
    assert regularizers.l1(0.5).get_config() == {"l1": 0.5, "l2": 0.0}
    assert regularizers.l1_l2().get_config() == {"l1": float(np.float32(0.01)), "l2": float(np.float32(0.01))}
    assert regularizers.serialize(regularizers.L1L2(l2=0.5)) == {"class_name": "L1L2",
                                                                  "config": {"l1": 0.0, "l2": 0.5}}
    assert regularizers.get({"class_name": "L2", "config": {"l2": 0.25}}).l2 == 0.25  # Keras 3 spelling
    assert regularizers.l1_l2(0.5, 0.25)(np.array([[1.0, -2.0]])) == pytest.approx(0.5 * 3 + 0.25 * 5)
    with pytest.raises(ValueError, match="l2"):
        regularizers.l2(-1)
    with pytest.raises(ValueError, match="custom"):
        regularizers.get(lambda w: 0.0)


def test_constraints_follow_keras_2_2():
    w = np.array([[3.0, 0.1], [4.0, -0.2]])
    np.testing.assert_allclose(constraints.max_norm(1.0)(w)[:, 0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(constraints.max_norm(1.0)(w)[:, 1], w[:, 1], rtol=1e-5)
    np.testing.assert_array_equal(constraints.non_neg()(w), [[3.0, 0.1], [4.0, 0.0]])
    np.testing.assert_allclose(np.linalg.norm(constraints.unit_norm()(w), axis=0), 1, rtol=1e-5)
    assert constraints.MinMaxNorm(0.5, 1.0, rate=0.5).get_config() == {"min_value": 0.5, "max_value": 1.0,
                                                                       "rate": 0.5, "axis": 0}
    assert constraints.serialize(constraints.max_norm(3)) == {"class_name": "MaxNorm",
                                                              "config": {"max_value": 3.0, "axis": 0}}


def test_the_penalty_joins_the_reported_loss_as_keras_does(core):
    x, y = _data()
    fastfit.utils.set_random_seed(3)
    plain = Sequential([Dense(5, input_dim=6, activation="tanh"), Dense(3, activation="softmax")])
    fastfit.utils.set_random_seed(3)
    penalised = Sequential([Dense(5, input_dim=6, activation="tanh", kernel_regularizer=regularizers.l2(0.1),
                                  bias_regularizer=regularizers.l1(0.2)),
                            Dense(3, activation="softmax", activity_regularizer=regularizers.l1(0.01))])
    for model in (plain, penalised):
        model.compile(fastfit.optimizers.SGD(lr=0.0), "categorical_crossentropy", engine=core)
    kernel, bias = penalised.layers[0].get_weights()
    weights = 0.1 * float(np.sum(kernel.astype(np.float64) ** 2)) + 0.2 * float(np.abs(bias).sum())
    activity = 0.01 * float(np.abs(plain.predict(x)).sum())  # the whole set in one batch
    expected = plain.evaluate(x, y, batch_size=64, verbose=0) + weights + activity
    assert penalised.evaluate(x, y, batch_size=64, verbose=0) == pytest.approx(expected, rel=1e-5)
    history = penalised.fit(x, y, batch_size=64, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_the_penalty_gradient_shrinks_the_weights(core):
    x, y = _data()
    fastfit.utils.set_random_seed(3)
    model = Sequential([Dense(3, input_dim=6, kernel_regularizer=regularizers.l2(1.0), activation="softmax")])
    model.compile(fastfit.optimizers.SGD(lr=0.1), "categorical_crossentropy", engine=core)
    before = np.linalg.norm(model.get_weights()[0])
    model.fit(x, y, batch_size=64, epochs=20, verbose=0)
    assert np.linalg.norm(model.get_weights()[0]) < 0.2 * before


def test_constraints_hold_after_training(core):
    x, y = _data()
    model = Sequential([Dense(8, input_dim=6, kernel_constraint=constraints.max_norm(0.5),
                              bias_constraint=constraints.non_neg(), activation="relu"),
                        Dense(3, activation="softmax", kernel_constraint=constraints.unit_norm(axis=1))])
    model.compile(fastfit.optimizers.Adam(lr=0.1), "categorical_crossentropy", engine=core)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    kernel, bias = model.layers[0].get_weights()
    assert np.linalg.norm(kernel, axis=0).max() <= 0.5 + 1e-6 and bias.min() >= 0
    np.testing.assert_allclose(np.linalg.norm(model.layers[1].get_weights()[0], axis=1), 1, rtol=1e-5)


def _bn_model(engine, **bn):
    fastfit.utils.set_random_seed(2)
    model = Sequential([Dense(8, input_dim=6), BatchNormalization(**bn), Activation("relu"),
                        Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", engine=engine)
    return model


def test_batch_normalization_predicts_with_its_moving_statistics(core):
    x, y = _data()
    model = _bn_model(core, momentum=0.5)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    bn = model.layers[1]
    assert np.abs(bn.moving_mean).max() > 0 and np.abs(bn.moving_variance - 1).max() > 0
    kernel, bias = model.layers[0].get_weights()
    h = (x @ kernel + bias - bn.moving_mean) / np.sqrt(bn.moving_variance + 1e-3) * bn.gamma + bn.beta
    z = np.maximum(h, 0) @ model.layers[3].kernel + model.layers[3].bias
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-6)


def test_frozen_batch_normalization_keeps_everything_as_keras_2_2(core):
    x, y = _data()
    model = _bn_model(core)
    model.layers[1].trainable = False
    model.compile("adam", "categorical_crossentropy", engine=core)
    before = model.layers[1].get_weights()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for a, b in zip(model.layers[1].get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4


def test_batch_normalization_weights_config_and_summary():
    model = _bn_model("python", center=False)
    bn = model.layers[1]
    assert [w.shape for w in bn.weights] == [(8,)] * 3
    assert bn.weight_shapes((None, 8)) == {"gamma": (8,), "moving_mean": (8,), "moving_variance": (8,)}
    assert Dense(3).weight_shapes((None, 5)) == {"kernel": (5, 3), "bias": (3,)}
    assert PReLU(shared_axes=[1]).weight_shapes((None, 5)) == {"alpha": (1,)}
    assert LeakyReLU().weight_shapes((None, 5)) == {}
    config = bn.get_config()
    assert list(config)[-13:] == ["axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                                  "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                                  "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"]
    assert config["momentum"] == 0.99 and config["epsilon"] == 1e-3
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    text = out.getvalue()
    assert "batch_normalization_1 (Batch" in text and "Non-trainable params: 16" in text


def test_advanced_activations_compute_keras_2_2_formulas(core):
    x = np.linspace(-3, 3, 13, dtype="float32").reshape(1, 13)
    cases = [(LeakyReLU(0.2), np.where(x > 0, x, 0.2 * x)), (ELU(0.5), np.where(x > 0, x, 0.5 * np.expm1(x))),
             (ThresholdedReLU(1.0), np.where(x > 1.0, x, 0)),
             (ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5),
              np.clip(np.where(x > 0.5, x, 0), 0, 2) - 0.1 * np.maximum(0.5 - x, 0)),
             (Softmax(), np.exp(x) / np.exp(x).sum()), (PReLU(alpha_initializer="ones"), x)]
    for layer, expected in cases:
        model = Sequential([fastfit.layers.InputLayer(input_shape=(13,)), layer])
        model.compile("sgd", "mean_squared_error", engine=core)
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6, err_msg=type(layer).__name__)


def test_noise_layers_are_the_identity_outside_training_and_reproducible(core):
    x, y = _data()
    results = []
    for _ in range(2):
        fastfit.utils.set_random_seed(9)
        model = Sequential([Dense(8, input_dim=6, activation="selu"), AlphaDropout(0.2), GaussianNoise(0.5),
                            GaussianDropout(0.3), ActivityRegularization(l2=0.01), Dense(3, activation="softmax")])
        model.compile("adam", "categorical_crossentropy", engine=core)
        out = model.predict(x)
        dense = model.layers[0]
        h = x @ dense.kernel + dense.bias
        h = 1.0507009873554805 * np.where(h > 0, h, 1.6732632423543772 * np.expm1(h))
        z = h @ model.layers[-1].kernel + model.layers[-1].bias
        np.testing.assert_allclose(out, np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


LAYERS = [lambda: BatchNormalization(momentum=0.9, gamma_regularizer=regularizers.l2(0.1),
                                     beta_constraint=constraints.non_neg()),
          lambda: PReLU(shared_axes=[1], alpha_constraint=constraints.non_neg()),
          lambda: LeakyReLU(0.1), lambda: ELU(0.3), lambda: ThresholdedReLU(0.4), lambda: Softmax(),
          lambda: ReLU(6.0, 0.1, 0.2), lambda: GaussianNoise(0.2), lambda: GaussianDropout(0.1),
          lambda: AlphaDropout(0.1, seed=3), lambda: ActivityRegularization(0.1, 0.2),
          lambda: Dense(3, kernel_regularizer=regularizers.l1_l2(), activity_regularizer=regularizers.l2(),
                        bias_constraint=constraints.min_max_norm(0.1, 2.0))]


@pytest.mark.parametrize("make", LAYERS)
def test_configs_round_trip(make):
    layer = make()
    config = layer.get_config()
    again = deserialize({"class_name": type(layer).__name__, "config": config})
    assert again.get_config() == config


def test_models_with_every_new_layer_save_and_load(tmp_path, core):
    x, y = _data()
    fastfit.utils.set_random_seed(4)
    model = Sequential([Dense(8, input_dim=6, kernel_regularizer=regularizers.l2(1e-3),
                              kernel_constraint=constraints.max_norm(2.0)),
                        BatchNormalization(), PReLU(), LeakyReLU(), GaussianNoise(0.1), Dense(3),
                        Activation("softmax")])
    model.compile("adam", "categorical_crossentropy", engine=core)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    path = str(tmp_path / "m.h5")
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
    assert loaded.layers[0].kernel_regularizer.l2 == pytest.approx(1e-3)
    import h5py
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["model_weights/batch_normalization_1"].attrs["weight_names"]]
        slots = [n.decode() if isinstance(n, bytes) else n for n in f["optimizer_weights"].attrs["weight_names"]]
    assert names == [f"batch_normalization_1/{w}:0" for w in ("gamma", "beta", "moving_mean", "moving_variance")]
    # The optimizer's slots are named after the trained weights only (not the moving statistics).
    assert "Adam/batch_normalization_1/gamma/m:0" in slots and not any("moving" in n for n in slots)
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_unsupported_spellings_fail_loudly():
    with pytest.raises(ValueError, match="axis"):
        BatchNormalization(axis=0)
    with pytest.raises(ValueError, match="shared_axes"):
        PReLU(shared_axes=[2])
    with pytest.raises(ValueError, match="noise_shape"):
        AlphaDropout(0.1, noise_shape=(1, 3))
    with pytest.raises(ValueError, match="kernel_constraint"):
        Dense(3, kernel_constraint=lambda w: w)


@pytest.mark.parametrize("first", [lambda: BatchNormalization(input_shape=(6,)), lambda: PReLU(input_shape=(6,)),
                                   lambda: GaussianNoise(0.3, input_shape=(6,))])
def test_a_new_layer_first_in_the_model_trains_the_same_on_both_engines(first):
    x, y = _data()
    runs = []
    for engine in ("python", "cython"):
        fastfit.backend.set_floatx("float64")
        try:
            fastfit.utils.set_random_seed(6)
            model = Sequential([first(), Dense(3, activation="softmax")])
            model.compile("adam", "categorical_crossentropy", engine=engine)
            history = model.fit(x.astype("float64"), y, batch_size=16, epochs=2, verbose=0, validation_split=0.25)
        finally:
            fastfit.backend.set_floatx("float32")
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    for key in runs[0][1]:
        np.testing.assert_allclose(runs[0][1][key], runs[1][1][key], rtol=1e-8)
