"""Large arrays are written from their own buffers: same file content as HDF5 writes, still checksummed."""
import h5py
import numpy as np
import pytest

import fastfit
from fastfit.layers import Dense
from fastfit.models import Sequential, load_model
from fastfit.saving import image


def big_model():
    """A kernel of 256 KiB (above image._DIRECT_BYTES) next to small biases, trained one step for Adam slots."""
    fastfit.utils.set_random_seed(3)
    model = Sequential([Dense(256, input_dim=256, activation="relu"), Dense(4, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 256)).astype("float32")
    model.fit(x, fastfit.utils.to_categorical(rng.integers(0, 4, size=16), 4), epochs=1, verbose=0)
    return model


def test_direct_arrays_read_back_exactly_through_h5py(tmp_path):
    model = big_model()
    assert model.layers[0].kernel.nbytes >= image._DIRECT_BYTES
    path = str(tmp_path / "big.h5")
    model.save(path)
    with h5py.File(path, "r") as f:  # plain HDF5 reading, no fastfit code
        assert f.userblock_size == 512
        kernel = f["model_weights"][model.layers[0].name][model.layers[0].name]["kernel:0"]
        np.testing.assert_array_equal(kernel[()], model.layers[0].kernel)
    loaded = load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer.iterations == model.optimizer.iterations


def test_file_equals_what_hdf5_writes_itself():
    """HDF5 writing the arrays into the same file changes no byte: the direct segments hold what it writes."""
    import io
    arrays = {"a/kernel:0": np.arange(40000, dtype="float32").reshape(200, 200), "b": np.ones(3, "float64")}

    def fill(h5file, img):
        for name, value in arrays.items():
            img.create_dataset(h5file, name, value)
    built = image.build(fill, 400000, 512)
    try:
        assert len(built._direct) == 1
        content = b"".join(bytes(s) for s in built.segments())
    finally:
        built.close()
    rewritten = io.BytesIO(content)
    with h5py.File(rewritten, "r+") as f:
        for name, value in arrays.items():
            f[name][...] = value
    assert rewritten.getvalue() == content


def test_corruption_inside_a_direct_array_is_a_clean_error(tmp_path):
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
