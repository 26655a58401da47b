"""`pickle` and `copy.deepcopy` of models: through the HDF5 image, optimizer state and seeds included."""
import copy
import pickle

import numpy as np
import pytest

import fastfit
from fastfit.layers import Dense, Dropout, Input
from fastfit.models import Model, Sequential


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(45, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)]
    return x, y


def _model(engine, optimizer="adam"):
    model = Sequential([Dense(10, activation="relu", input_dim=6), Dropout(0.3), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["acc"], engine=engine)
    return model


def _same_weights(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights())) and \
        len(a.get_weights()) == len(b.get_weights())


@pytest.mark.parametrize("optimizer", ["adam", "nadam", "rmsprop"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_copy_continues_training_bit_for_bit(core, optimizer, how):
    x, y = _data()
    original = _model(core, optimizer)
    original.fit(x, y, epochs=2, batch_size=8, verbose=0)
    clone = pickle.loads(pickle.dumps(original)) if how == "pickle" else copy.deepcopy(original)
    assert clone is not original and clone._core == core
    assert clone.optimizer.iterations == original.optimizer.iterations == 12
    assert clone.metrics_names == original.metrics_names == ["loss", "acc"]
    assert _same_weights(clone, original)
    history_original = original.fit(x, y, epochs=3, batch_size=8, verbose=0).history
    history_clone = clone.fit(x, y, epochs=3, batch_size=8, verbose=0).history
    assert history_clone == history_original
    assert _same_weights(clone, original)


def test_copies_are_independent(core):
    x, y = _data()
    original = _model(core)
    clone = copy.deepcopy(original)
    clone.fit(x, y, epochs=1, verbose=0)
    assert not _same_weights(clone, original) and original.optimizer.iterations == 0


def test_uncompiled_and_functional_models_pickle(core):
    inputs = Input(shape=(6,))
    model = Model(inputs, Dense(2, activation="sigmoid")(Dense(4)(inputs)))
    clone = pickle.loads(pickle.dumps(model))
    assert not clone.compiled and type(clone) is Model and _same_weights(clone, model)
    x, _ = _data()
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_pickling_an_unbuilt_model_raises_keras_error():
    model = Sequential([Dense(2)])
    with pytest.raises(ValueError, match="not yet been built"):
        pickle.dumps(model)


def test_unpickling_goes_through_the_public_loaders_reader(monkeypatch, core):
    # The reader of `load_model` (model_file.read_model) reads the image, with the model's own class building
    # it (pickling cannot import the loader that knows every model class: that one imports the models).
    from fastfit.saving import model_file
    calls = []
    real = model_file.read_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_file, "read_model", counting)
    pickle.loads(pickle.dumps(_model(core)))
    assert len(calls) == 1


def test_a_pickled_model_is_the_saved_file(tmp_path, core):
    """The image is what model.save writes, minus fastfit's checksum userblock: load_model reads both alike."""
    x, y = _data()
    model = _model(core)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(str(tmp_path / "m.h5"))
    loaded = fastfit.models.load_model(str(tmp_path / "m.h5"))
    clone = pickle.loads(pickle.dumps(model))
    assert _same_weights(loaded, clone)
    assert clone.optimizer.get_config() == loaded.optimizer.get_config()


class _MySequential(Sequential):  # module level: pickle finds classes by name
    pass


def test_a_model_subclass_comes_back_as_itself(core):
    """The pickle records the model's class, whose `from_config` rebuilds it (Keras 2's `cls(...)`)."""
    x, _ = _data()
    model = _MySequential([Dense(3, activation="softmax", input_dim=6)])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", engine=core)
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is _MySequential and _same_weights(clone, model)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_a_pickle_without_the_model_class_is_refused_with_the_way_out():
    from fastfit.saving import pickling
    with pytest.raises(ValueError, match="names no model class.*model.save"):
        pickling.model_from_image(b"", {"compiled": False})


def test_a_layer_pickled_with_the_old_seed_attribute_keeps_its_seed():
    """A Dropout pickled while its seed attribute was `_engine_seed` unpickles with that seed as `_op_seed`."""
    layer = Dropout(0.5, seed=1234)
    new = pickle.dumps(layer, protocol=2)
    old = new.replace(b"X\x08\x00\x00\x00_op_seed", b"X\x0c\x00\x00\x00_engine_seed")
    assert old != new
    loaded = pickle.loads(old)
    assert loaded._op_seed == 1234 and not hasattr(loaded, "_engine_seed")
    assert loaded.core_ops() == [("dropout", 0.5, 1234)]
