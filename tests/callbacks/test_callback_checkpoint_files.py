"""ModelCheckpoint through the real fit and the HDF5 saving layer: files load back and hold the right weights."""
import os

import numpy as np
import pytest

import fastfit
import fastfit.saving
from fastfit.callbacks import LambdaCallback, ModelCheckpoint

from callback_helpers import tiny_classifier

pytestmark = pytest.mark.skipif(not hasattr(fastfit.saving, "save_model"), reason="saving layer not present")


def test_best_only_full_model_loads_and_matches_the_best_epoch(tmp_path):
    model, x, y = tiny_classifier()
    path = tmp_path / "models" / "best.h5"
    snapshots = {}
    keep = LambdaCallback(on_epoch_end=lambda e, l: snapshots.__setitem__(e, (l["val_loss"], model.get_weights())))
    model.fit(x[:30], y[:30], epochs=4, batch_size=8, verbose=0, validation_data=(x[30:], y[30:]),
              callbacks=[keep, ModelCheckpoint(path, save_best_only=True)])
    best = min(snapshots, key=lambda e: snapshots[e][0])
    loaded = fastfit.models.load_model(str(path))
    for saved, expected in zip(loaded.get_weights(), snapshots[best][1]):
        np.testing.assert_array_equal(saved, expected)
    assert loaded.evaluate(x[30:], y[30:], verbose=0)[0] == pytest.approx(snapshots[best][0], rel=1e-5)
    assert os.listdir(path.parent) == ["best.h5"]  # no temporary files left behind


def test_weights_only_every_epoch_with_formatted_names(tmp_path):
    model, x, y = tiny_classifier()
    pattern = str(tmp_path / "w.{epoch:02d}-{loss:.3f}.h5")
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[ModelCheckpoint(pattern, save_weights_only=True)])
    names = sorted(os.listdir(tmp_path))
    assert names == [f"w.{e + 1:02d}-{history.history['loss'][e]:.3f}.h5" for e in range(2)]
    fresh, _, _ = tiny_classifier()
    fresh.load_weights(str(tmp_path / names[-1]))
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_freq_in_batches_end_to_end(tmp_path):
    model, x, y = tiny_classifier()
    model.fit(x, y, epochs=2, batch_size=10, verbose=0,
              callbacks=[ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.h5"), save_freq=3,
                                         save_weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.h5", "e2-b2.h5"]


def test_val_loss_placeholder_without_validation_is_a_key_error(tmp_path):
    model, x, y = tiny_classifier()
    with pytest.raises(KeyError, match="val_loss"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(str(tmp_path / "{val_loss:.2f}.h5"))])


def test_a_model_class_with_its_own_save_is_called_for_a_folder_target(tmp_path):
    """A custom `save` may write a folder (as SavedModel does): fastfit's file checks are not applied to it."""
    model, x, y = tiny_classifier()
    calls = []

    class FolderSaving(type(model)):
        def save(self, path, overwrite=True):
            os.makedirs(path, exist_ok=True)
            calls.append(path)

    model.__class__ = FolderSaving
    target = str(tmp_path / "sub" / "model_dir")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[ModelCheckpoint(target)])
    assert calls == [target, target] and os.path.isdir(target)


def test_a_folder_in_the_way_fails_the_fit_with_its_name(tmp_path):
    model, x, y = tiny_classifier()
    target = tmp_path / "m.h5"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match="m.h5"):
        model.fit(x, y, epochs=3, verbose=0, callbacks=[ModelCheckpoint(str(target))])
    assert target.is_dir() and os.listdir(target) == [] and os.listdir(tmp_path) == ["m.h5"]
    model.fit(x, y, epochs=1, verbose=0)  # still usable
