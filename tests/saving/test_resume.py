"""Resuming from a saved model: bit-identical to an uninterrupted run (weights, optimizer state, seeds)."""
import numpy as np
import pytest

from fastfit.models import load_model

from saving_helpers import assert_same_weights, data, mlp


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "nadam", "rmsprop"])
def test_save_load_continue_is_bit_identical(tmp_path, core, optimizer):
    x, y = data(n=50)
    straight = mlp(core, optimizer=optimizer)
    straight.fit(x, y, epochs=4, batch_size=8, verbose=0)

    first = mlp(core, optimizer=optimizer)
    first.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "half.h5")
    first.save(path)
    del first
    resumed = load_model(path)
    history = resumed.fit(x, y, epochs=4, batch_size=8, verbose=0, initial_epoch=2)
    assert len(history.history["loss"]) == 2
    assert_same_weights(resumed, straight)
    assert resumed.optimizer.iterations == straight.optimizer.iterations
    for a, b in zip(resumed.optimizer.get_weights(), straight.optimizer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_without_optimizer_state_the_run_differs(tmp_path):
    """The check above is not vacuous: dropping the optimizer state changes the result."""
    x, y = data(n=50)
    straight = mlp()
    straight.fit(x, y, epochs=4, batch_size=8, verbose=0)
    first = mlp()
    first.fit(x, y, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "half.h5")
    first.save(path, include_optimizer=False)
    resumed = load_model(path, compile=False)
    resumed.compile("adam", "categorical_crossentropy", metrics=["acc"])
    resumed.fit(x, y, epochs=4, batch_size=8, verbose=0, initial_epoch=2)
    assert not np.array_equal(resumed.get_weights()[0], straight.get_weights()[0])
