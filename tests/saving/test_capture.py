"""`model_file.Capture`: a repeated checkpoint reuses the previous metadata only while it is still right."""
import numpy as np
import pytest

from fastfit.callbacks import LearningRateScheduler, ModelCheckpoint
from fastfit.layers import Dense
from fastfit.saving import files, image, model_file

from saving_helpers import data, mlp


def _bytes(tmp_path, content, name):
    path = tmp_path / name
    files.write_snapshot(str(path), content, True, "model file")
    return path.read_bytes()


def _same_file_as_save(tmp_path, model, capture, tag):
    """The captured file is byte for byte what `model.save` writes at this point."""
    model.save(str(tmp_path / f"saved-{tag}.h5"))
    assert _bytes(tmp_path, capture(model), f"captured-{tag}.h5") == (tmp_path / f"saved-{tag}.h5").read_bytes()


@pytest.mark.parametrize("weights_only", [False, True])
def test_repeated_captures_write_what_save_writes(tmp_path, weights_only):
    x, y = data()
    model = mlp(optimizer="rmsprop")
    capture = model_file.Capture(weights_only)
    save = model.save_weights if weights_only else model.save
    for epoch in range(3):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        content = capture(model)
        assert capture._key is not None and (epoch == 0 or content is not capture._template)
        # once the first file is written, later captures refill one image of the whole file
        assert isinstance(content, image.FileImage) == (epoch > 0)
        save(str(tmp_path / f"saved{epoch}.h5"))
        assert _bytes(tmp_path, content, f"captured{epoch}.h5") == (tmp_path / f"saved{epoch}.h5").read_bytes()


def test_a_capture_holds_the_arrays_of_its_time(tmp_path):
    x, y = data()
    model = mlp()
    capture = model_file.Capture()
    model.fit(x, y, epochs=1, verbose=0)
    capture(model)
    first = [w.copy() for w in model.get_weights()]
    reused = capture(model)  # reuses the template...
    model.fit(x, y, epochs=1, verbose=0)  # ... and the training that follows does not change it
    path = tmp_path / "m.h5"
    files.write_snapshot(str(path), reused, True, "model file")
    fresh = mlp()
    fresh.load_weights(str(path))
    for a, b in zip(fresh.get_weights(), first):
        np.testing.assert_array_equal(a, b)


def test_a_refilled_image_holds_the_arrays_of_its_time(tmp_path):
    x, y = data()
    model = mlp()
    capture = model_file.Capture()
    model.fit(x, y, epochs=1, verbose=0)
    files.write_snapshot(str(tmp_path / "first.h5"), capture(model), True, "model file")
    model.fit(x, y, epochs=1, verbose=0)
    reused = capture(model)
    assert isinstance(reused, image.FileImage)
    then = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, verbose=0)  # training in place does not reach the image
    files.write_snapshot(str(tmp_path / "m.h5"), reused, True, "model file")
    fresh = mlp()
    fresh.load_weights(str(tmp_path / "m.h5"))
    assert not np.array_equal(then[0], model.get_weights()[0])
    for a, b in zip(fresh.get_weights(), then):
        np.testing.assert_array_equal(a, b)


def test_a_changed_learning_rate_is_in_the_next_capture(tmp_path):
    model = mlp()
    model.fit(*data(), epochs=1, verbose=0)
    capture = model_file.Capture()
    capture(model)
    model.optimizer.lr = 0.5
    _same_file_as_save(tmp_path, model, capture, "lr")


def test_freezing_and_recompiling_renames_the_optimizer_state(tmp_path):
    x, y = data()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    capture = model_file.Capture()
    capture(model)
    model.layers[0].trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["acc"])
    model.fit(x, y, epochs=1, verbose=0)
    _same_file_as_save(tmp_path, model, capture, "frozen")


def test_a_renamed_layer_is_in_the_next_capture(tmp_path):
    model = mlp()
    model.fit(*data(), epochs=1, verbose=0)
    capture = model_file.Capture()
    capture(model)
    model.layers[0].name = "renamed_dense"
    _same_file_as_save(tmp_path, model, capture, "renamed")


class CopyingDense(Dense):
    """A layer whose `weights` are copies: the capture cannot tell what to copy later, so it never reuses."""

    @property
    def weights(self):
        return [w.copy() for w in super().weights]


def test_a_layer_that_returns_copies_gets_full_captures(tmp_path):
    from fastfit.models import Sequential
    model = Sequential([CopyingDense(3, input_dim=6, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(*data(), epochs=1, verbose=0)
    capture = model_file.Capture()
    capture(model)
    assert capture._template is None
    assert capture(model).structure() == model_file.model_snapshot(model).structure()


def test_checkpoints_follow_a_learning_rate_schedule(tmp_path):
    x, y = data()
    model = mlp()
    rates = [0.01, 0.005, 0.0025]
    model.fit(x, y, epochs=3, verbose=0,
              callbacks=[LearningRateScheduler(lambda epoch: rates[epoch]),
                         ModelCheckpoint(str(tmp_path / "e{epoch}.h5"))])
    from fastfit.models import load_model
    for epoch, rate in enumerate(rates):
        assert load_model(str(tmp_path / f"e{epoch + 1}.h5")).optimizer.lr == pytest.approx(rate)


def test_unchanged_attributes_skip_the_config_comparison(tmp_path, monkeypatch):
    calls = []
    original = model_file.Capture._metadata_key
    monkeypatch.setattr(model_file.Capture, "_metadata_key",
                        lambda self, model: calls.append(1) or original(self, model))
    x, y = data()
    checkpoint = ModelCheckpoint(str(tmp_path / "m.h5"))
    model = mlp()
    model.fit(x, y, epochs=4, verbose=0, callbacks=[checkpoint])
    assert len(calls) == 1  # the first save; the three after it found every attribute as it was
    model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
    assert len(calls) == 2  # a new fit compares the configs once again


def test_a_change_inside_an_attribute_is_in_the_first_capture_after_recheck(tmp_path):
    model = mlp()
    model.fit(*data(), epochs=1, verbose=0)
    capture = model_file.Capture()
    files.write_snapshot(str(tmp_path / "first.h5"), capture(model), True, "model file")
    capture(model)
    model.layers[0].kernel_initializer.seed = 123  # in place: no attribute of the layer was set
    capture.recheck()  # what ModelCheckpoint does when a fit begins
    _same_file_as_save(tmp_path, model, capture, "rechecked")
