"""`fastfit.cthulhu`: the cthulhu names (spec cthulhu-names §4.1, plus LumpCheckpoint and LuKthuCallback) are
the fastfit objects themselves, and models built under those names save and load as Keras classes."""
import json

import h5py
import numpy as np
import pytest

import fastfit
import fastfit.cthulhu as cthulhu
from fastfit import callbacks as keras_callbacks
from fastfit import layers, models

# cthulhu name -> the fastfit object it must *be* (names.py entries within fastfit's scope)
ALIASES = {
    "Pile": models.Sequential,
    "Lump": models.Model,
    "Daoloth": layers.Dense,
    "Azatoth": layers.Activation,
    "Darkness": layers.Dropout,
    "LumpCheckpoint": keras_callbacks.ModelCheckpoint,
    "LuKthuCallback": keras_callbacks.LambdaCallback,
}
# names.py entries for layers fastfit does not have: absent, never half-working
OUT_OF_SCOPE = ["LuKthu", "SpatialDarkness1D", "Cthalpa1D", "Cthalpa2D", "Cthalpa3D", "SucNaath2D", "Dendrrah2D",
                "UbboSathla2D", "Xexanoth2D", "Mlandoth2D", "AiuebGnshal2D", "GhrothMlandoth2D",
                "GrothAiuebGnshal2D", "LuKthu2D", "ShabithKa", "Groth", "Laldagorth", "Cxaxukluth", "TheHydra",
                "BlacknessFromTheStars"]


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_alias_is_the_fastfit_object(name):
    assert getattr(cthulhu, name) is ALIASES[name]


def test_star_import_gives_the_seed_names():
    namespace = {}
    exec("from fastfit.cthulhu import *", namespace)
    for name in ("Pile", "Lump", "Daoloth", "Azatoth", "Darkness", "LumpCheckpoint", "LuKthuCallback"):
        assert namespace[name] is ALIASES[name]


@pytest.mark.parametrize("cls", [models.Sequential, models.Model])
def test_summon_and_conjure_are_fit_and_compile(cls):
    assert cls.summon is cls.fit
    assert cls.conjure is cls.compile
    assert cthulhu.Pile.summon is models.Sequential.fit


def test_pantheon_and_deities_modules():
    assert cthulhu.pantheon.Pile is models.Sequential and cthulhu.pantheon.Lump is models.Model
    assert cthulhu.pantheon.load_model is models.load_model
    assert cthulhu.deities.Daoloth is layers.Dense
    assert cthulhu.deities.Azatoth is layers.Activation
    assert cthulhu.deities.Darkness is layers.Dropout
    assert cthulhu.deities.Input is layers.Input and cthulhu.deities.Flatten is layers.Flatten
    assert cthulhu.losses is fastfit.losses and cthulhu.optimizers is fastfit.optimizers


def test_callbacks_module_has_every_keras_callback_under_its_keras_name():
    for name in keras_callbacks.__all__:
        assert getattr(cthulhu.callbacks, name) is getattr(keras_callbacks, name), name
    for name in ("Callback", "BaseLogger", "TerminateOnNaN", "ProgbarLogger", "History", "ModelCheckpoint",
                 "EarlyStopping", "RemoteMonitor", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
                 "LambdaCallback"):
        assert getattr(cthulhu.callbacks, name) is getattr(keras_callbacks, name)
    assert cthulhu.callbacks.LumpCheckpoint is keras_callbacks.ModelCheckpoint
    assert cthulhu.callbacks.LuKthuCallback is keras_callbacks.LambdaCallback
    from fastfit.cthulhu.callbacks import LumpCheckpoint
    assert LumpCheckpoint is keras_callbacks.ModelCheckpoint


@pytest.mark.parametrize("name", OUT_OF_SCOPE)
def test_names_outside_fastfits_scope_are_absent(name):
    assert not hasattr(cthulhu, name)
    assert not hasattr(cthulhu.deities, name)


def test_pile_is_a_sequential():
    model = cthulhu.Pile([cthulhu.Daoloth(3, input_dim=4), cthulhu.Azatoth("softmax")])
    assert isinstance(model, models.Sequential)
    assert [type(l).__name__ for l in model.layers] == ["Dense", "Activation"]
    assert json.loads(model.to_json())["class_name"] == "Sequential"


def test_saved_pile_says_sequential_and_loads_either_way(core, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 32)]
    model = cthulhu.Pile()
    model.add(cthulhu.Daoloth(6, input_dim=4, kernel_initializer="uniform"))
    model.add(cthulhu.Darkness(0.2))
    model.add(cthulhu.Azatoth("relu"))
    model.add(cthulhu.Daoloth(3, activation="softmax"))
    model.conjure(loss="categorical_crossentropy", optimizer="rmsprop", metrics=["acc"], engine=core)
    history = model.summon(x, y, batch_size=8, epochs=2, verbose=0)
    assert history.epoch == [0, 1]
    path = str(tmp_path / "pile.h5")
    model.save(path)

    with h5py.File(path, "r") as f:
        config = f.attrs["model_config"]
        config = json.loads(config.decode() if isinstance(config, bytes) else config)
    assert config["class_name"] == "Sequential"
    class_names = [entry["class_name"] for entry in config["config"]["layers"]]
    assert "Dense" in class_names and "Dropout" in class_names and "Activation" in class_names
    assert not {"Daoloth", "Darkness", "Azatoth"} & set(class_names)

    for loader in (models.load_model, cthulhu.load_model, cthulhu.pantheon.load_model):
        loaded = loader(path)
        assert type(loaded) is models.Sequential and isinstance(loaded, cthulhu.Pile)
        np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)
        loaded.summon(x, y, batch_size=8, epochs=1, verbose=0)  # recompiled from the file


def test_lump_functional_model_with_cthulhu_layers():
    inputs = cthulhu.Input(shape=(4,))
    outputs = cthulhu.Daoloth(2, activation="softmax")(cthulhu.Daoloth(3)(inputs))
    model = cthulhu.Lump(inputs, outputs)
    assert isinstance(model, models.Model)
    assert model.predict(np.zeros((2, 4), dtype="float32")).shape == (2, 2)


def test_lump_summon_takes_callbacks(core):
    """The cthulhu docs: callbacks go to the `.summon()` method of the `Pile` or `Lump` classes."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(24, 4)).astype("float32")
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 24)]
    inputs = cthulhu.Input(shape=(4,))
    model = cthulhu.Lump(inputs, cthulhu.Daoloth(2, activation="softmax")(inputs))
    model.conjure(loss="categorical_crossentropy", optimizer="sgd", engine=core)
    seen = []
    history = model.summon(x, y, batch_size=8, epochs=2, verbose=0,
                           callbacks=[cthulhu.LuKthuCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))])
    assert seen == [0, 1] and history.epoch == [0, 1]
