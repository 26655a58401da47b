"""Frozen layers (`trainable=False`): training leaves their weights alone, as in Keras 2.

The flag takes effect at `compile`. A frozen layer still passes the gradient on to the layers before it;
the optimizer has no slots for it; saving and loading keep both.
"""
import numpy as np
import pytest

import fastfit
from fastfit.layers import Dense, Dropout
from fastfit.models import Sequential, load_model

ENGINES = pytest.mark.parametrize("engine", ["cython", "python"])


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype("float32")
    return x, fastfit.utils.to_categorical(rng.integers(0, 3, n), 3)


def model(engine, frozen, optimizer="adam", dtype="float32"):
    """6 -> 8 relu -> (dropout) -> 5 tanh -> 3 softmax; `frozen`: indices of the Dense layers to freeze."""
    fastfit.utils.set_random_seed(1)
    dense = [Dense(8, input_dim=6, activation="relu", dtype=dtype), Dense(5, activation="tanh", dtype=dtype),
             Dense(3, activation="softmax", dtype=dtype)]
    for i in frozen:
        dense[i].trainable = False
    net = Sequential([dense[0], Dropout(0.2), dense[1], dense[2]])
    net.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["acc"], engine=engine)
    return net


@ENGINES
@pytest.mark.parametrize("frozen", [(0,), (1,), (2,), (0, 2), (0, 1, 2)], ids=str)
def test_frozen_weights_do_not_move_and_the_others_do(engine, frozen):
    net = model(engine, frozen)
    x, y = data()
    before = net.get_weights()
    history = net.fit(x, y, epochs=2, batch_size=16, verbose=0)
    after = net.get_weights()
    for layer in range(3):
        for a, b in zip(before[2 * layer:2 * layer + 2], after[2 * layer:2 * layer + 2]):
            assert np.array_equal(a, b) == (layer in frozen), f"layer {layer}"
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("frozen", [(0,), (1,), (2,)], ids=str)
def test_both_engines_train_the_same_with_a_frozen_layer(frozen):
    x, y = data()
    results = []
    for engine in ("cython", "python"):
        net = model(engine, frozen, dtype="float64")
        net.fit(x, y, epochs=3, batch_size=16, verbose=0)
        results.append(net.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


@ENGINES
def test_a_frozen_middle_layer_still_passes_the_gradient_on(engine):
    # Freezing layer 1 must not stop layer 0 from learning: it trains exactly as with layer 1 trainable
    # up to layer 1's own update, so layer 0's weights move, and differ from a run where layer 1 moves too.
    x, y = data()
    frozen = model(engine, (1,), optimizer="sgd")
    free = model(engine, (), optimizer="sgd")
    start = frozen.get_weights()[0].copy()
    frozen.fit(x, y, epochs=1, batch_size=96, verbose=0, shuffle=False)   # one batch: same gradient for layer 0
    free.fit(x, y, epochs=1, batch_size=96, verbose=0, shuffle=False)
    assert not np.array_equal(frozen.get_weights()[0], start)
    np.testing.assert_allclose(frozen.get_weights()[0], free.get_weights()[0], rtol=1e-6)


@ENGINES
def test_the_optimizer_has_slots_only_for_trainable_weights(engine):
    net = model(engine, (1,))
    x, y = data()
    net.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert len(net.optimizer.get_weights()) == 1 + 2 * 4  # iterations, then m and v of 2 trained layers
    assert len(net.trainable_weights) == 4 and len(net.non_trainable_weights) == 2


@ENGINES
def test_the_flag_takes_effect_at_compile(engine):
    net = model(engine, ())
    x, y = data()
    net.layers[0].trainable = False          # not compiled again: still trained, as in Keras 2
    first = net.get_weights()[0].copy()
    net.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert not np.array_equal(net.get_weights()[0], first)
    net.compile(loss="categorical_crossentropy", optimizer="adam", engine=engine)
    frozen_now = net.get_weights()[0].copy()
    net.fit(x, y, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(net.get_weights()[0], frozen_now)


@ENGINES
def test_save_and_load_keep_the_frozen_layer_and_the_optimizer_state(engine, tmp_path):
    net = model(engine, (0,))
    x, y = data()
    net.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = str(tmp_path / "frozen.h5")
    net.save(path)
    loaded = load_model(path)
    assert [layer.trainable for layer in loaded.layers if layer.weights] == [False, True, True]
    for a, b in zip(net.optimizer.get_weights(), loaded.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)
    kept = loaded.get_weights()[0].copy()
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(loaded.get_weights()[0], kept)


@ENGINES
def test_an_all_frozen_model_fits_without_changing(engine):
    net = model(engine, (0, 1, 2), optimizer="sgd")
    x, y = data()
    before = net.get_weights()
    history = net.fit(x, y, epochs=2, batch_size=32, verbose=0)
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(history.history["loss"]).all()  # the loss is still computed (dropout varies it)
