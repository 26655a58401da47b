"""On-disk arrays (np.memmap, h5py.Dataset, HDF5Matrix) streamed through fit/evaluate/predict in buffers."""
import threading

import h5py
import numpy as np
import pytest
from test_generators import Recorder, _same_weights, _within

import fastfit
from fastfit.callbacks import BackupAndRestore, LambdaCallback
from fastfit.engine import streams
from fastfit.layers import Dense, Dropout
from fastfit.models import Sequential

N, BATCH, FEATURES = 300, 32, 8
ROW_BYTES = FEATURES * 4 + 3 * 4 + 8  # a buffer row: inputs, one-hot targets, row order (float32 model)


def _arrays():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    y = fastfit.utils.to_categorical(rng.integers(0, 3, N), 3)
    return x, y


@pytest.fixture
def files(tmp_path):
    """x and y as a memmap, an HDF5 file (x chunked by 16 rows) and HDF5Matrix objects of it."""
    x, y = _arrays()
    mm = np.memmap(tmp_path / "x.dat", dtype="float32", mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    path = str(tmp_path / "data.h5")
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=x, chunks=(16, FEATURES))
        handle.create_dataset("y", data=y)
    handle = h5py.File(path, "r")
    yield {"x": x, "y": y, "path": path,
           "memmap": np.memmap(tmp_path / "x.dat", dtype="float32", mode="r", shape=x.shape),
           "dataset": handle["x"], "y_dataset": handle["y"],
           "matrix": fastfit.utils.HDF5Matrix(path, "x")}
    handle.close()
    fastfit.utils.HDF5Matrix.refs.pop(path, None)


def _model(engine, dropout=True, input_shape=(FEATURES,)):
    fastfit.utils.set_random_seed(5)
    model = Sequential([Dense(16, activation="relu", input_shape=input_shape)] + ([Dropout(0.2)] if dropout else [])
                       + [Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", metrics=["acc"], engine=engine)
    return model


@pytest.fixture
def reads(monkeypatch):
    """Every contiguous read of an h5py dataset (indexing or `read_direct`) or a memmap: (name, first row, rows)."""
    log = []
    for kind in (h5py.Dataset, np.memmap):
        original = kind.__getitem__

        def record(self, key, original=original, kind=kind):
            if isinstance(key, slice) and threading.current_thread().name in ("fastfit-reader", "MainThread"):
                start, stop, _ = key.indices(len(self))
                log.append((kind.__name__, start, stop - start))
            return original(self, key)
        monkeypatch.setattr(kind, "__getitem__", record)
    read_direct = h5py.Dataset.read_direct

    def record_direct(self, dest, source_sel=None, dest_sel=None):
        if isinstance(source_sel, slice) and threading.current_thread().name in ("fastfit-reader", "MainThread"):
            start, stop, _ = source_sel.indices(len(self))
            log.append(("Dataset", start, stop - start))
        return read_direct(self, dest, source_sel, dest_sel)
    monkeypatch.setattr(h5py.Dataset, "read_direct", record_direct)
    return log


def _no_reader_left():
    assert not [t for t in threading.enumerate() if t.name == "fastfit-reader"]


@pytest.mark.parametrize("source", ["memmap", "dataset", "matrix"])
def test_a_stream_that_fits_the_buffer_gives_the_in_memory_bits_hooks_and_logs(core, files, source):
    x, y = files["x"], files["y"]
    arrays, record_a = _model(core), Recorder()
    history_a = arrays.fit(x, y, batch_size=BATCH, epochs=3, verbose=0, validation_split=0.25, callbacks=[record_a])
    stream, record_s = _model(core), Recorder()
    history_s = stream.fit(files[source], files["y_dataset"], batch_size=BATCH, epochs=3, verbose=0,
                           validation_split=0.25, callbacks=[record_s])
    _same_weights(arrays, stream)
    assert history_a.history == history_s.history
    assert record_a.calls == record_s.calls
    assert stream.evaluate(files[source], y, verbose=0) == arrays.evaluate(x, y, verbose=0)
    # Several 10-row buffers: the array path forwards in blocks of up to 1024 rows, which round differently in the
    # last bit (the forward-block rule, docs/guide/performance-and-threads.md); one buffer gives the same bits.
    np.testing.assert_allclose(stream.predict(files[source], buffer_size=10 * ROW_BYTES), arrays.predict(x),
                               rtol=1e-6)
    np.testing.assert_array_equal(stream.predict(files[source]), arrays.predict(x))


def test_a_stream_that_fits_is_read_once_per_fit(core, files, reads):
    model = _model(core)
    model.fit(files["dataset"], files["y"], batch_size=BATCH, epochs=3, verbose=0)
    assert sum(rows for kind, _, rows in reads if kind == "Dataset") == N  # the NaN check included


@pytest.mark.parametrize("shuffle", [False, "batch"])
def test_buffers_smaller_than_the_data_keep_the_in_memory_batches(core, files, reads, shuffle, monkeypatch):
    x, y = files["x"], files["y"]
    arrays = _model(core)
    arrays.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=shuffle)
    stream, record = _model(core), Recorder()
    scans = []
    check_finite = streams.data.check_finite
    monkeypatch.setattr(streams.data, "check_finite",
                        lambda array, argument, threads=None: (scans.append((argument, len(array))),
                                                               check_finite(array, argument, threads)))
    stream.fit(files["memmap"], y, batch_size=BATCH, epochs=2, verbose=0, shuffle=shuffle,
               buffer_size=70 * ROW_BYTES, callbacks=[record])  # two batches per buffer
    if shuffle is False or core == "python":
        _same_weights(arrays, stream)
    else:  # the compiled engine gathers shuffled rows with another kernel than contiguous ones
        for p, q in zip(arrays.get_weights(), stream.get_weights()):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    batches = [call[1] for call in record.calls if call[0] == "train_batch_end"]
    assert batches == list(range(10)) * 2  # continuous across buffers
    # float32 rows are read in place (no copy): the reader checks each buffer's rows before the engine sees them
    assert not [read for read in reads if read[0] == "memmap"]
    x_scans = [rows for argument, rows in scans if argument.startswith("x (")]
    assert max(x_scans) <= 64
    assert sum(x_scans) == 2 * N  # every row once per epoch


def test_shuffled_streams_read_blocks_in_an_order_from_the_seed(core, files, reads, monkeypatch):
    monkeypatch.setattr(streams, "_BLOCK_BYTES", 16 * 4 * FEATURES)  # one HDF5 chunk (16 rows) per block
    runs = []
    for _ in range(2):
        model = _model(core)
        reads.clear()
        history = model.fit(files["dataset"], files["y"], batch_size=BATCH, epochs=2, verbose=0,
                            buffer_size=100 * ROW_BYTES)
        runs.append((model.get_weights(), history.history, list(reads)))
        covered = sorted((start, rows) for kind, start, rows in reads if kind == "Dataset")
        rows_read = np.concatenate([np.arange(start, start + rows) for start, rows in covered])
        assert sorted(rows_read.tolist()) == sorted(list(range(N)) * 2)  # each row once per epoch
        assert max(rows for _, rows in covered) <= 96  # one buffer at most
    (w1, h1, r1), (w2, h2, r2) = runs
    assert r1 == r2 and h1 == h2
    for p, q in zip(w1, w2):
        np.testing.assert_array_equal(p, q)
    starts = [start for kind, start, _ in r1 if kind == "Dataset"]
    assert starts != sorted(starts)
    _no_reader_left()


def test_validation_and_evaluate_stream_in_buffers(core, files, reads):
    x, y = files["x"], files["y"]
    arrays = _model(core, dropout=False)
    expected = arrays.evaluate(x, y, batch_size=BATCH, verbose=0)
    reads.clear()
    got = arrays.evaluate(files["dataset"], files["y_dataset"], batch_size=BATCH, verbose=0,
                          buffer_size=64 * ROW_BYTES)
    np.testing.assert_allclose(got, expected, rtol=1e-7)  # buffers of 64 rows against forward blocks: last bits
    assert max(rows for kind, _, rows in reads if kind == "Dataset") <= 64
    history = _model(core).fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
                                 validation_data=(files["memmap"], files["y_dataset"]), buffer_size=64 * ROW_BYTES)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}


def test_a_bad_row_stops_fit_naming_it_without_a_hang(core, files, tmp_path):
    x, y = files["x"].copy(), files["y"]
    x[250, 3] = np.nan
    bad = np.memmap(tmp_path / "bad.dat", dtype="float32", mode="w+", shape=x.shape)
    bad[:] = x
    bad.flush()
    model = _model(core)
    _, error = _within(60, lambda: model.fit(bad, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False,
                                             buffer_size=64 * ROW_BYTES))
    assert isinstance(error, ValueError) and "NaN" in str(error) and "rows 192 to 255" in str(error)
    assert 0 < model.optimizer.iterations < 10
    _no_reader_left()
    labels = np.memmap(tmp_path / "labels.dat", dtype="float32", mode="w+", shape=y.shape)
    labels[:] = y
    labels[200, 0] = 2.0  # not a probability: refused as it is read
    model.compile("adam", "binary_crossentropy")
    _, error = _within(60, lambda: model.fit(files["memmap"], labels, epochs=1, verbose=0, shuffle=False,
                                             buffer_size=64 * ROW_BYTES))
    assert isinstance(error, ValueError) and "targets in [0, 1]" in str(error)
    _no_reader_left()


def test_an_error_in_a_callback_stops_the_reader(core, files):
    def boom(batch, logs):
        if batch == 3:
            raise RuntimeError("callback failed")
    model = _model(core)
    _, error = _within(60, lambda: model.fit(files["dataset"], files["y"], epochs=2, verbose=0,
                                             buffer_size=64 * ROW_BYTES, callbacks=[LambdaCallback(on_batch_end=boom)]))
    assert isinstance(error, RuntimeError)
    _no_reader_left()


def test_backup_and_restore_resumes_a_stream_mid_epoch(core, files, tmp_path):
    straight = _model(core)
    straight.fit(files["dataset"], files["y"], epochs=3, verbose=0, buffer_size=64 * ROW_BYTES)
    state = {"epochs": 0}

    def crash(batch, logs):
        if state["epochs"] == 1 and batch == 4:
            raise KeyboardInterrupt
    interrupted = _model(core)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(files["dataset"], files["y"], epochs=3, verbose=0, buffer_size=64 * ROW_BYTES,
                        callbacks=[BackupAndRestore(str(tmp_path), save_freq=1), LambdaCallback(
                            on_epoch_end=lambda e, l: state.update(epochs=state["epochs"] + 1), on_batch_end=crash)])
    resumed = _model(core)
    resumed.fit(files["dataset"], files["y"], epochs=3, verbose=0, buffer_size=64 * ROW_BYTES,
                callbacks=[BackupAndRestore(str(tmp_path), save_freq=1)])
    _same_weights(straight, resumed)
    _no_reader_left()


def test_sample_and_class_weights_and_sparse_labels(core, files):
    x, y = files["x"], files["y"]
    weights = np.random.default_rng(1).uniform(0.5, 2, N).astype("float32")
    arrays = _model(core)
    arrays.fit(x, y, epochs=1, verbose=0, sample_weight=weights, class_weight={0: 1, 1: 2, 2: 0.5})
    stream = _model(core)
    stream.fit(files["memmap"], y, epochs=1, verbose=0, sample_weight=weights, class_weight={0: 1, 1: 2, 2: 0.5})
    _same_weights(arrays, stream)
    labels = y.argmax(1)
    for model in (arrays, stream):
        model.compile("sgd", "sparse_categorical_crossentropy", engine=core)
    arrays.fit(x, labels, epochs=1, verbose=0, shuffle=False)
    stream.fit(files["dataset"], labels, epochs=1, verbose=0, shuffle=False, buffer_size=64 * ROW_BYTES)
    _same_weights(arrays, stream)


def test_an_unbuilt_model_builds_from_the_stream_shape(core, files):
    model = Sequential([Dense(4, activation="relu"), Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", engine=core)
    model.fit(files["matrix"], files["y"], epochs=1, verbose=0)
    assert model.input_shape == (None, FEATURES)


def test_bad_arguments(core, files):
    model = _model(core)
    with pytest.raises(ValueError, match="buffer_size"):
        model.fit(files["memmap"], files["y"], buffer_size=0)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit(files["memmap"], files["y"], steps_per_epoch=3)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit(files["memmap"], files["y"][:10])
    with pytest.raises(ValueError, match="expects samples of shape"):
        _model(core, input_shape=(4,)).fit(files["dataset"], files["y"])
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        model.predict(files["memmap"], buffer_sizes=3)
    assert model.optimizer.iterations == 0


def test_hdf5_matrix_keras2_semantics(files):
    path, x = files["path"], files["x"]
    matrix = fastfit.utils.HDF5Matrix(path, "x", start=10, end=50, normalizer=lambda rows: rows * 2)
    assert len(matrix) == 40 and matrix.shape == (40, FEATURES) and matrix.ndim == 2
    assert matrix.dtype == np.float32 and matrix.size == 40 * FEATURES
    np.testing.assert_array_equal(matrix[0:5], x[10:15] * 2)
    np.testing.assert_array_equal(matrix[3], x[13] * 2)
    np.testing.assert_array_equal(matrix[[1, 4]], x[[11, 14]] * 2)
    with pytest.raises(IndexError):
        matrix[40]
    with pytest.raises(ValueError, match="rows"):
        fastfit.utils.HDF5Matrix(path, "x", start=5, end=N + 1)
    model = _model("python", dropout=False)
    arrays = _model("python", dropout=False)
    model.fit(matrix, files["y"][10:50], epochs=1, verbose=0, shuffle="batch")
    arrays.fit(x[10:50] * 2, files["y"][10:50], epochs=1, verbose=0, shuffle="batch")
    _same_weights(model, arrays)


def test_progress_bar_across_buffers(core, files, capsys):
    model = _model(core)
    history = model.fit(files["memmap"], files["y"], epochs=2, verbose=1, buffer_size=64 * ROW_BYTES)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and f"loss: {history.history['loss'][-1]:.4f}" in out
    assert f"{N}/{N}" in out


def test_a_stream_is_never_held_whole_in_memory(core, tmp_path):
    import tracemalloc
    rows, features = 4000, 200  # 3.2 MB of inputs on disk
    x = np.random.default_rng(0).normal(size=(rows, features)).astype("float32")
    y = fastfit.utils.to_categorical(np.arange(rows) % 3, 3)
    path = str(tmp_path / "big.h5")
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=x, chunks=(64, features))
    del x
    model = _model(core, input_shape=(features,))
    buffer_size = 128 * 1024
    with h5py.File(path, "r") as handle:
        model.fit(handle["x"], y, batch_size=BATCH, epochs=1, verbose=0, buffer_size=buffer_size)  # warm-up
        tracemalloc.start()
        try:
            model.fit(handle["x"], y, batch_size=BATCH, epochs=1, verbose=0, buffer_size=buffer_size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * buffer_size < rows * features * 4 / 3  # two buffers and a read block, not the data


def _feed(model, x, y, sample_weight=None, class_weight=None):
    return streams.StreamFeed(model, streams.RowSource(x, "x"), streams.RowSource(y, "y"),
                              None if sample_weight is None else streams.RowSource(sample_weight, "sample_weight"),
                              BATCH, 64 * ROW_BYTES, True, class_weight)


def test_which_sources_are_read_in_place(files, tmp_path):
    model = _model("python")
    model.build((None, FEATURES))
    x, y = files["x"], files["y"]
    assert _feed(model, files["memmap"], y).in_place is not None  # float32 rows and one-hot targets as they are
    weights = np.ones(N, "float32")
    assert _feed(model, files["memmap"], y, weights).in_place[2] is not None
    assert _feed(model, files["memmap"], y, class_weight={0: 1, 1: 1, 2: 1}).in_place is None  # weights to compute
    assert _feed(model, files["memmap"], y.astype("float64")).in_place is None  # targets to convert
    assert _feed(model, files["memmap"], y[:, None, :]).in_place is None  # a shape the loss refuses: read, checked
    assert _feed(model, files["dataset"], y).in_place is None  # HDF5 is read into buffers
    wide = np.memmap(tmp_path / "x64.dat", dtype="float64", mode="w+", shape=x.shape)
    wide[:] = x
    assert _feed(model, wide, y).in_place is None  # float64 rows converted for a float32 model
    model.compile("adam", "sparse_categorical_crossentropy")
    assert _feed(model, files["memmap"], y.argmax(1)).in_place is not None  # int64 labels as they are
    assert _feed(model, files["memmap"], y.argmax(1).astype("int32")).in_place is None


@pytest.mark.parametrize("weighted", [False, True])
def test_rows_read_in_place_give_the_bits_of_rows_read_into_buffers(core, files, weighted):
    """The same rows in the same order: a float32 memmap read in place against the HDF5 copy of it read into
    buffers, shuffled over several buffers, with validation and sample weights."""
    y = files["y"]
    weights = np.random.default_rng(2).uniform(0.5, 2, N).astype("float32") if weighted else None
    runs = []
    for source in ("memmap", "dataset"):
        model, record = _model(core), Recorder()
        history = model.fit(files[source], y, batch_size=BATCH, epochs=3, verbose=0, sample_weight=weights,
                            validation_data=(files[source], y), buffer_size=64 * ROW_BYTES, callbacks=[record])
        runs.append((model, history.history, record.calls))
    (in_place, history_a, calls_a), (copied, history_b, calls_b) = runs
    _same_weights(in_place, copied)
    assert history_a == history_b and calls_a == calls_b
    np.testing.assert_array_equal(in_place.predict(files["memmap"], buffer_size=64 * ROW_BYTES),
                                  copied.predict(files["dataset"], buffer_size=64 * ROW_BYTES))
    _no_reader_left()


def test_rows_of_another_dtype_are_converted_into_buffers(core, files, tmp_path):
    x, y = files["x"], files["y"]
    wide = np.memmap(tmp_path / "x64.dat", dtype="float64", mode="w+", shape=x.shape)
    wide[:] = x
    with h5py.File(tmp_path / "x64.h5", "w") as handle:
        handle.create_dataset("x", data=x.astype("float64"), chunks=(16, FEATURES))
    expected = _model(core)
    expected.fit(files["memmap"], y, batch_size=BATCH, epochs=2, verbose=0, buffer_size=64 * ROW_BYTES)
    for source in (wide, str(tmp_path / "x64.h5")):
        model = _model(core)
        if isinstance(source, str):
            with h5py.File(source, "r") as handle:
                model.fit(handle["x"], y, batch_size=BATCH, epochs=2, verbose=0, buffer_size=64 * ROW_BYTES)
        else:
            model.fit(source, y, batch_size=BATCH, epochs=2, verbose=0, buffer_size=64 * ROW_BYTES)
        _same_weights(expected, model)  # float32 values stored as float64 convert back exactly


def test_contiguous_hdf5_datasets_of_read_only_files_are_mapped_in_place(core, files, tmp_path):
    x, y = files["x"], files["y"]
    path = str(tmp_path / "contiguous.h5")
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=x)  # h5py's default layout: contiguous
        handle.create_dataset("packed", data=x, compression="gzip")
        handle.create_dataset("y", data=y)
    model = _model(core)
    model.build((None, FEATURES))
    with h5py.File(path, "r") as handle:
        assert _feed(model, handle["x"], handle["y"]).in_place is not None
        assert _feed(model, handle["packed"], y).in_place is None  # compressed: read into buffers
        matrix = fastfit.utils.HDF5Matrix(path, "x", start=20, end=220)
        view = _feed(model, matrix, y[20:220]).in_place[0]
        np.testing.assert_array_equal(view, x[20:220])
        assert _feed(model, fastfit.utils.HDF5Matrix(path, "x", normalizer=lambda rows: rows), y).in_place is None
        mapped = _model(core)
        mapped.fit(handle["x"], handle["y"], batch_size=BATCH, epochs=2, verbose=0, buffer_size=64 * ROW_BYTES)
    fastfit.utils.HDF5Matrix.refs.pop(path).close()
    del matrix
    with h5py.File(path, "r+") as handle:  # a writable file is read through HDF5
        assert _feed(model, handle["x"], y).in_place is None
    copied = _model(core)
    copied.fit(files["dataset"], y, batch_size=BATCH, epochs=2, verbose=0, buffer_size=64 * ROW_BYTES)
    _same_weights(mapped, copied)


def test_targets_in_a_shape_the_loss_refuses_are_refused_as_for_arrays(core, files):
    x, y = files["x"], files["y"]
    model = _model(core)
    with pytest.raises(ValueError, match="expects targets of shape") as from_arrays:
        model.fit(x, y[:, None, :], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="expects targets of shape") as from_disk:
        model.fit(files["memmap"], y[:, None, :], epochs=1, verbose=0, buffer_size=64 * ROW_BYTES)
    assert "(300, 1, 3)" in str(from_arrays.value)
    assert "y (rows 0 to 63)" in str(from_disk.value) and ", 1, 3)" in str(from_disk.value)  # the first block
    _no_reader_left()
