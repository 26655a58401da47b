"""Arrays go to the file from their own buffers, and a model's layout is reused: same bytes as HDF5 writes."""
import io

import h5py
import numpy as np
import pytest

import fastfit
from fastfit.layers import Dense
from fastfit.models import Sequential, load_model
from fastfit.saving import image, model_file, snapshot


def big_model(lr=0.001):
    """A 256 KiB kernel next to small biases, trained one step so the file has Adam slots."""
    fastfit.utils.set_random_seed(3)
    model = Sequential([Dense(256, input_dim=256, activation="relu"), Dense(4, activation="softmax")])
    model.compile(fastfit.optimizers.Adam(lr=lr), "categorical_crossentropy")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 256)).astype("float32")
    model.fit(x, fastfit.utils.to_categorical(rng.integers(0, 4, size=16), 4), epochs=1, verbose=0)
    return model


def file_bytes(content):
    layout = image.layout_for(content, 512)
    return b"".join(bytes(s) for s in layout.segments(list(content.arrays())))


def test_arrays_read_back_exactly_through_plain_h5py(tmp_path):
    model = big_model()
    path = str(tmp_path / "big.h5")
    model.save(path)
    with h5py.File(path, "r") as f:  # plain HDF5 reading, no fastfit code
        assert f.userblock_size == 512
        name = model.layers[0].name
        np.testing.assert_array_equal(f["model_weights"][name][name]["kernel:0"][()], model.layers[0].kernel)
    loaded = load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_file_equals_what_hdf5_writes_itself():
    """HDF5 writing every array into the file changes no byte: the slots hold exactly what it writes."""
    content = snapshot.Snapshot()
    arrays = {"a/kernel:0": np.arange(40000, dtype="float32").reshape(200, 200), "b": np.ones(3, "float64"),
              "iter:0": np.array(7, dtype="int64"), "empty": np.zeros(0, "float32"),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    for name, value in arrays.items():
        content.create_dataset(name, data=value)
    data = file_bytes(content)
    rewritten = io.BytesIO(data)
    with h5py.File(rewritten, "r+") as f:
        for name, value in arrays.items():
            f[name][...] = value
            np.testing.assert_array_equal(f[name][()], value)
    assert rewritten.getvalue() == data


def test_a_reused_layout_gives_the_bytes_of_a_fresh_build(monkeypatch):
    model = big_model()
    first = model_file.model_snapshot(model)
    assert image.layout_for(first, 512) is image.layout_for(model_file.model_snapshot(model), 512)
    model.fit(np.ones((4, 256), "float32"), np.eye(4, dtype="float32"), epochs=1, verbose=0)
    later = model_file.model_snapshot(model)
    cached = file_bytes(later)
    monkeypatch.setattr(image, "_cache", type(image._cache)())
    assert file_bytes(later) == cached != file_bytes(first)


def test_another_structure_gets_its_own_layout(tmp_path):
    model = big_model()
    model.save(str(tmp_path / "a.h5"))
    model.optimizer.lr = 0.25  # as a scheduler would: the training config attribute changes
    model.save(str(tmp_path / "b.h5"))
    assert load_model(str(tmp_path / "b.h5")).optimizer.lr == pytest.approx(0.25)
    assert load_model(str(tmp_path / "a.h5")).optimizer.lr == pytest.approx(0.001)


def test_a_dataset_hdf5_must_write_itself_is_not_reused():
    content = snapshot.Snapshot()
    content.create_dataset("names", data=np.array([b"ab", b"cd"]))
    content.create_dataset("x", data=np.arange(3.0))
    layout = image.layout_for(content, 512)
    assert not layout.reusable and image.layout_for(content, 512) is not layout
    with h5py.File(io.BytesIO(file_bytes(content)), "r") as f:
        assert list(f["names"][()]) == [b"ab", b"cd"] and list(f["x"][()]) == [0.0, 1.0, 2.0]


def test_corruption_inside_an_array_is_a_clean_error(tmp_path):
    model = big_model()
    path = tmp_path / "big.h5"
    model.save(str(path))
    raw = bytearray(path.read_bytes())
    offset = raw.find(model.layers[0].kernel.tobytes()[:64])
    assert offset > 512
    raw[offset + 1000] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupted"):
        load_model(str(path))
