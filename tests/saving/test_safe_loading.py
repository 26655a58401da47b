"""Loading files someone else made: crafted files of every class the threat model names (docs/saving.md,
"Safety") are refused with a clear ValueError naming the file, nothing outside the file is read, libhdf5's
crashes and hangs stay in the reader child, and seeded byte mutants never crash, hang or raise raw errors."""
import json
import os
import signal
import sys

import h5py
import numpy as np
import pytest
from saving_helpers import REPO, data, mlp

import fastfit
from fastfit.models import load_model
from fastfit.saving import config_limits, isolation

sys.path.insert(0, REPO)
from benchmarks import load_safety


@pytest.fixture
def saved(tmp_path):
    model = mlp()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "good.h5")
    model.save(path)
    return model, path


def _edit(path, change):
    """Change a saved file with h5py and drop its fastfit checksum, as someone crafting a file would."""
    with h5py.File(path, "r+") as f:
        change(f)
    with open(path, "r+b") as f:
        f.write(bytes(512))
    assert not isolation.known_intact(path)


def _kernel(model, index=0):
    name = model.layers[index].name
    return f"model_weights/{name}/{name}/kernel:0"


def _bias(model, index=0):
    name = model.layers[index].name
    return f"model_weights/{name}/{name}/bias:0"


def _replace(f, path, make):
    del f[path]
    make(f, path)


# -- the two paths -------------------------------------------------------------------------------------------
@pytest.fixture
def children(monkeypatch):
    """The reader children started (their paths)."""
    started = []
    real = isolation._Child.__init__

    def spy(self, path, where, timeout):
        started.append(path)
        real(self, path, where, timeout)
    monkeypatch.setattr(isolation._Child, "__init__", spy)
    return started


def test_own_files_load_in_process_and_others_through_the_reader_child(saved, tmp_path, children):
    model, path = saved
    assert isolation.known_intact(path)
    load_model(path)
    assert children == []
    copy = tmp_path / "copy.h5"
    with open(path, "rb") as original:
        copy.write_bytes(original.read())  # same bytes, not written by fastfit's writer
    loaded = load_model(str(copy))
    assert children == [str(copy)]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.optimizer.get_weights()[1], model.optimizer.get_weights()[1])


def test_a_changed_own_file_goes_through_the_reader_child(saved, children):
    _, path = saved
    with h5py.File(path, "r+") as f:
        f.attrs["note"] = b"changed"
    assert not isolation.known_intact(path)
    with pytest.raises(ValueError, match="checksum"):
        load_model(path)


def test_backup_and_restore_reads_a_foreign_backup_through_the_reader_child(saved, tmp_path, children):
    from fastfit.callbacks import BackupAndRestore
    model, _ = saved
    x, y = data()
    backup = BackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[backup])
    isolation._written.clear()  # as if another process wrote it
    resumed = mlp()
    resumed.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(str(tmp_path / "backup"))])
    assert children == [os.path.join(str(tmp_path / "backup"), "backup.h5")]


# -- nothing outside the file --------------------------------------------------------------------------------
def test_external_raw_storage_is_refused(saved, tmp_path):
    model, path = saved
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(8, dtype="float32").tobytes())
    _edit(path, lambda f: _replace(f, _bias(model), lambda f, p: f.create_dataset(
        p, shape=(8,), dtype="float32", external=[(str(secret), 0, 32)])))
    with pytest.raises(ValueError, match="good.h5.*external files"):
        load_model(path)
    with pytest.raises(ValueError, match="external files"):
        mlp().load_weights(path)


def test_links_to_other_files_and_objects_are_refused(saved, tmp_path):
    model, path = saved
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["k"] = np.full((6, 8), 7, dtype="float32")
    _edit(path, lambda f: _replace(f, _kernel(model), lambda f, p: f.__setitem__(p, h5py.ExternalLink(other, "k"))))
    with pytest.raises(ValueError, match="ExternalLink"):
        load_model(path)
    _edit(path, lambda f: _replace(f, _kernel(model), lambda f, p: f.__setitem__(p, h5py.SoftLink("/x"))))
    with pytest.raises(ValueError, match="SoftLink"):
        load_model(path)


def test_virtual_dataset_is_refused(saved, tmp_path):
    model, path = saved
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["k"] = np.full((6, 8), 7, dtype="float32")

    def virtual(f, p):
        layout = h5py.VirtualLayout(shape=(6, 8), dtype="float32")
        layout[:] = h5py.VirtualSource(other, "k", shape=(6, 8))
        f.create_virtual_dataset(p, layout)
    _edit(path, lambda f: _replace(f, _kernel(model), virtual))
    with pytest.raises(ValueError, match="virtual dataset"):
        load_model(path)


@pytest.mark.parametrize("where", ["model_weights", "layer", "optimizer_weights"])
def test_a_group_replaced_by_a_huge_dataset_is_refused_at_once(saved, where):
    model, path = saved
    target = {"model_weights": "model_weights", "layer": f"model_weights/{model.layers[0].name}",
              "optimizer_weights": "optimizer_weights"}[where]

    def huge(f):
        attrs = dict(f[target].attrs) if where == "layer" else {}
        del f[target]
        f.create_dataset(target, shape=(2 ** 40,), dtype="float32")
        for key, value in attrs.items():
            f[target].attrs[key] = value
    _edit(path, huge)
    with pytest.raises(ValueError, match="must be a group"):
        load_model(path)
    if where != "optimizer_weights":
        with pytest.raises(ValueError, match="must be a group"):
            mlp().load_weights(path)


@pytest.mark.parametrize("options, code", [({"compression": "lzf"}, 32000), ({"scaleoffset": 0}, 6)])
def test_filters_beyond_the_builtin_ones_are_refused(saved, options, code):
    model, path = saved
    value = model.layers[0].kernel
    _edit(path, lambda f: _replace(f, _kernel(model), lambda f, p: f.create_dataset(p, data=value, **options)))
    with pytest.raises(ValueError, match=f"filter {code}"):
        load_model(path)


def test_gzip_shuffle_fletcher32_weights_load(saved):
    model, path = saved
    value = model.layers[0].kernel
    _edit(path, lambda f: _replace(f, _kernel(model), lambda f, p: f.create_dataset(
        p, data=value, compression="gzip", shuffle=True, fletcher32=True)))
    np.testing.assert_array_equal(load_model(path).layers[0].kernel, value)


def test_a_declared_weight_the_file_does_not_store_is_refused(saved):
    model, path = saved
    _edit(path, lambda f: _replace(f, _kernel(model), lambda f, p: f.create_dataset(p, shape=(6, 8), dtype="f4")))
    with pytest.raises(ValueError, match="stores only 0 bytes"):
        load_model(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_and_devices_are_refused_without_waiting(tmp_path):
    fifo = str(tmp_path / "model.h5")
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        load_model(fifo)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="not a regular file"):
            mlp().load_weights("/dev/zero")


# -- bounded work --------------------------------------------------------------------------------------------
def _config_edit(path, change, attr="model_config"):
    def edit(f):
        config = json.loads(f.attrs[attr])
        config = change(config) or config
        f.attrs[attr] = json.dumps(config).encode()
    _edit(path, edit)


def test_a_config_asking_for_more_weights_than_the_file_holds_is_refused_before_building(saved, monkeypatch):
    _, path = saved

    def huge(config):
        config["config"]["layers"][1]["config"]["units"] = 10 ** 12
    _config_edit(path, huge)
    from fastfit.layers import core
    monkeypatch.setattr(core.Dense, "build", lambda *a: pytest.fail("built before the check"))
    with pytest.raises(ValueError, match="good.h5.*file's weights hold only"):
        load_model(path)


def test_a_20000_layer_config_loads(tmp_path):
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}}]
    layers += [{"class_name": "Activation", "config": {"activation": "relu", "name": f"a{i}"}} for i in range(20000)]
    path = str(tmp_path / "deep.h5")
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": layers}}).encode()
        f.create_group("model_weights").attrs["layer_names"] = np.array([], dtype="S1")
    assert len(load_model(path, compile=False).layers) == 20000


@pytest.mark.parametrize("text, match", [
    ("[" * 100 + "]" * 100, "deeper than 64"),
    ('{"class_name": "Sequential", "config": {"layers": [], "seed": 1' + "0" * 30 + "}}", "too large"),
])
def test_config_bounds(saved, text, match):
    _, path = saved
    _edit(path, lambda f: f.attrs.__setitem__("model_config", text.encode()))
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_layer_count_is_bounded(saved, monkeypatch):
    _, path = saved
    monkeypatch.setattr(config_limits, "MAX_LAYERS", 3)
    with pytest.raises(ValueError, match="at most 3 are loaded"):
        load_model(path)


def test_optimizer_state_that_does_not_fit_is_never_read(saved, monkeypatch):
    """A gzip bomb in optimizer_weights: its shape does not fit the model, so it is not read at all."""
    model, path = saved
    name = model.layers[0].name

    def bomb(f):
        group = f["optimizer_weights"]
        slot = next(n for n in group.attrs["weight_names"] if b"/m:0" in n).decode()
        del group[slot]
        group.create_dataset(slot, data=np.zeros((1024, 1024), dtype="float32"), compression="gzip")
    _edit(path, bomb)
    requested = []
    real = isolation.Contents.read
    monkeypatch.setattr(isolation.Contents, "read",
                        lambda self, weights: requested.extend(weights) or real(self, weights))
    with pytest.warns(UserWarning, match="not restored.*shape \\(1024, 1024\\)"):
        load_model(path)
    assert all(w.shape != (1024, 1024) for w in requested) and name


def test_impossible_iteration_count_is_refused(saved):
    _, path = saved

    def iterations(f):
        group = f["optimizer_weights"]
        name = group.attrs["weight_names"][0].decode()
        del group[name]
        group[name] = np.uint64(2 ** 64 - 1)
    _edit(path, iterations)
    with pytest.raises(ValueError, match="good.h5.*iteration count"):
        load_model(path)


def test_flatten_whose_size_overflows_64_bits_is_refused(tmp_path):
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4, 2 ** 62 + 1], "name": "in"}},
              {"class_name": "Flatten", "config": {"name": "f"}}]
    path = str(tmp_path / "flat.h5")
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": layers}}).encode()
        f.create_group("model_weights").attrs["layer_names"] = np.array([], dtype="S1")
    with pytest.raises(ValueError, match="flat.h5.*64-bit"):
        load_model(path)


# -- malformed configs: clear errors, never raw ones ---------------------------------------------------------
def _functional(saved_path):
    inputs = fastfit.layers.Input(shape=(6,), name="x_in")
    hidden = fastfit.layers.Dense(4, activation="relu", name="hidden")(inputs)
    outputs = fastfit.layers.Dense(3, activation="softmax", name="out")(hidden)
    model = fastfit.models.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["acc"])
    model.save(saved_path)
    return model


def _set(path_keys, value):
    def change(config):
        target = config
        for key in path_keys[:-1]:
            target = target[key]
        target[path_keys[-1]] = value
    return change


@pytest.mark.parametrize("change", [
    _set(["config", "layers", 1, "inbound_nodes"], [[]]),
    _set(["config", "layers", 1, "inbound_nodes"], [[[]]]),
    _set(["config", "layers", 1, "inbound_nodes"], "x"),
    _set(["config", "input_layers"], []),
    _set(["config", "output_layers"], [[]]),
    _set(["config", "output_layers"], [["nowhere", 0, 0]]),
    _set(["config", "layers", 0, "config"], "a string"),
    _set(["config", "layers", 0], "a string"),
    _set(["config", "layers"], {"a": 1}),
    _set(["config"], "a string"),
    _set(["class_name"], ["Model"]),
    _set(["config", "layers", 1, "config", "units"], -3),
    _set(["config", "layers", 1, "config", "units"], "8"),
])
def test_malformed_model_configs_raise_value_errors(tmp_path, change):
    path = str(tmp_path / "f.h5")
    _functional(path)
    _config_edit(path, change)
    with pytest.raises(ValueError, match="f.h5"):
        load_model(path)


@pytest.mark.parametrize("change", [
    _set(["metrics"], [{"class_name": "Acc", "config": "x"}]),
    _set(["metrics"], "acc"),
    _set(["loss"], {"no": "class"}),
    _set(["optimizer_config"], "sgd"),
    _set(["optimizer_config", "config"], "x"),
    _set(["optimizer_config", "class_name"], "NoSuchOptimizer"),
    lambda config: config.clear(),
])
def test_malformed_training_configs_raise_value_errors(tmp_path, change):
    path = str(tmp_path / "f.h5")
    _functional(path)
    _config_edit(path, change, attr="training_config")
    with pytest.raises(ValueError, match="f.h5"):
        load_model(path)


# -- Keras 3 safe_mode's cases: nothing from the file is executed ---------------------------------------------
SENTINEL = "fastfit_safe_mode_sentinel"


def _lambda_layer(tmp_path):
    import base64
    import marshal
    code = compile(f"open({str(tmp_path / SENTINEL)!r}, 'w')", "<lambda>", "exec")
    return {"class_name": "Lambda", "config": {"name": "lam", "function": [
        base64.b64encode(marshal.dumps(code)).decode(), None, None], "function_type": "lambda"}}


@pytest.mark.parametrize("make", [
    _lambda_layer,
    lambda tmp: {"class_name": "Activation", "config": {"name": "act", "activation": {
        "module": "os", "class_name": "function", "config": "system", "registered_name": "function"}}},
    lambda tmp: {"class_name": "system", "module": "os", "config": {"name": "x"}},
    lambda tmp: {"class_name": "Activation", "config": {"name": "act", "activation": {
        "class_name": "__lambda__", "config": {"code": "lambda x: x", "defaults": None, "closure": None}}}},
    lambda tmp: {"class_name": "Dense", "config": {"name": "d", "units": 3, "kernel_initializer": {
        "module": "builtins", "class_name": "eval", "config": {"source": "1"}}}},
], ids=["lambda-bytecode", "module-function", "module-class", "__lambda__", "initializer-eval"])
def test_keras3_safe_mode_cases_are_refused_and_run_nothing(saved, tmp_path, make):
    _, path = saved

    def add(config):
        config["config"]["layers"].append(make(tmp_path))
    _config_edit(path, add)
    with pytest.raises(ValueError, match="good.h5"):
        load_model(path)
    assert not (tmp_path / SENTINEL).exists()


def test_pickled_object_datasets_are_refused(saved):
    model, path = saved
    _edit(path, lambda f: _replace(f, _kernel(model), lambda f, p: f.create_dataset(
        p, data=np.void(b"\x80\x04K\x01."))))  # an opaque blob (a pickle)
    with pytest.raises(ValueError, match="not a numeric array"):
        load_model(path)


# -- libhdf5's own failures stay in the reader child ---------------------------------------------------------
def _fake_reader(tmp_path, monkeypatch, source):
    script = tmp_path / "reader.py"
    script.write_text(source)
    monkeypatch.setattr(isolation, "_SCRIPT", str(script))


def test_a_crash_in_the_reader_is_a_value_error(saved, tmp_path, monkeypatch):
    _, path = saved
    isolation._written.clear()
    _fake_reader(tmp_path, monkeypatch, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    with pytest.raises(ValueError, match=r"good.h5.*crashed \(SIGSEGV\)"):
        load_model(path)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX")
def test_a_hang_in_the_reader_is_stopped(saved, tmp_path, monkeypatch):
    _, path = saved
    isolation._written.clear()
    monkeypatch.setenv("FASTFIT_LOAD_TIMEOUT", "1")
    _fake_reader(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    with pytest.raises(ValueError, match="good.h5.*longer than 1 s"):
        load_model(path)


@pytest.mark.parametrize("output", [
    b"garbage that is not a message",
    b"J" + (10 ** 12).to_bytes(8, "little"),
    b"J" + (4).to_bytes(8, "little") + b"[1]x",
    b"J" + (2).to_bytes(8, "little") + b"{}",
])
def test_what_the_reader_sends_is_checked(saved, tmp_path, monkeypatch, output):
    _, path = saved
    isolation._written.clear()
    _fake_reader(tmp_path, monkeypatch, f"import sys\nsys.stdout.buffer.write({output!r})\n")
    with pytest.raises(ValueError, match="good.h5.*(unexpected message|malformed|stopped)"):
        load_model(path)


def test_a_reader_that_lies_about_shapes_is_caught(saved, tmp_path, monkeypatch):
    model, path = saved
    isolation._written.clear()
    fake = {"attrs": {}, "groups": {"/": {"listed": True, "layers": [
        ["l", [["k", ["l", "k"], [-1, 8], "<f4"]]]]}}, "optimizer": None}
    payload = json.dumps(fake).encode()
    output = b"J" + len(payload).to_bytes(8, "little") + payload
    _fake_reader(tmp_path, monkeypatch, f"import sys\nsys.stdout.buffer.write({output!r})\n")
    with pytest.raises(ValueError, match="malformed"):
        model.load_weights(path)


# -- byte mutants --------------------------------------------------------------------------------------------
def _assert_clean(counts):
    assert counts["problems"] == [], counts
    assert counts["crash"] == counts["hang"] == counts["raw"] == 0
    assert counts["loaded"] + counts["error"] == counts["mutants"]


def test_byte_mutants_never_crash_hang_or_raise_raw_errors(tmp_path):
    _assert_clean(load_safety.mutation_run(24, seed=11, folder=str(tmp_path)))


@pytest.mark.slow
def test_500_byte_mutants_never_crash_hang_or_raise_raw_errors(tmp_path):
    _assert_clean(load_safety.mutation_run(500, seed=0, folder=str(tmp_path)))


def test_every_layer_class_predicts_the_weights_it_builds():
    """The seam for new layers: for every layer class fastfit exports, `weight_shapes` (what a load checks
    before building) names exactly the shapes `build` creates (docs/saving.md)."""
    from fastfit import layers
    classes = [getattr(layers, name) for name in layers.__all__]
    classes = [cls for cls in classes if isinstance(cls, type) and issubclass(cls, layers.Layer)
               and cls is not layers.Layer and cls.__name__ != "InputLayer"]
    assert classes
    examples = {"Dense": [dict(units=5), dict(units=5, use_bias=False)], "Activation": [dict(activation="relu")],
                "Dropout": [dict(rate=0.5)], "GaussianNoise": [dict(stddev=0.1)], "GaussianDropout": [dict(rate=0.1)],
                "AlphaDropout": [dict(rate=0.1)], "BatchNormalization": [{}, dict(center=False, scale=False)],
                "PReLU": [{}, dict(shared_axes=[1])]}
    for cls in classes:
        for kwargs in examples.get(cls.__name__, [{}]):
            layer = cls(**kwargs)
            shapes = config_limits.weight_shapes(layer, (None, 3))
            layer.build((None, 3))
            assert shapes == [w.shape for w in layer.weights], cls.__name__


@pytest.mark.parametrize("state", [{"seed": -1}, {"seed": 2 ** 63}, {"dropout_seeds": [None, -5, None, None]}])
def test_impossible_seeds_are_refused(saved, state):
    _, path = saved
    _edit(path, lambda f: f.attrs.__setitem__("fastfit_state", json.dumps(state).encode()))
    with pytest.raises(ValueError, match="good.h5.*seed"):
        load_model(path)


@pytest.mark.parametrize("position", [{"epoch": -1}, {"epoch": 1.5}, {"epoch": 0, "batch": 2 ** 60}, [0, 0]])
def test_impossible_backup_positions_are_refused(tmp_path, position):
    from fastfit.callbacks import BackupAndRestore
    model = mlp()
    x, y = data()
    folder = tmp_path / "backup"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(str(folder), delete_checkpoint=False)])
    path = str(folder / "backup.h5")
    _edit(path, lambda f: f.attrs.__setitem__("fastfit_backup", json.dumps(position).encode()))
    with pytest.raises(ValueError, match="backup.h5.*(training position|not a BackupAndRestore)"):
        mlp().fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(str(folder))])


def test_a_file_on_which_libhdf5_loops_forever_is_stopped(monkeypatch):
    """A one-byte mutant of a saved model (checksum recomputed; benchmarks.load_safety, seed 2, mutant 591) on
    which libhdf5 2.0 never returns: fastfit 0.1 hung in load_model; now the reader child is stopped."""
    path = os.path.join(os.path.dirname(__file__), "data", "libhdf5_hang_mutant.h5")
    monkeypatch.setenv("FASTFIT_LOAD_TIMEOUT", "3")
    with pytest.raises(ValueError, match="libhdf5_hang_mutant.h5.*longer than 3 s"):
        load_model(path)


def test_a_file_on_which_libhdf5_crashes_is_a_value_error():
    """A one-byte mutant (benchmarks.load_safety, seed 4, mutant 243) that made fastfit 0.1's load_model die
    with SIGSEGV inside libhdf5; its damaged training_config attribute is now refused in the reader child."""
    path = os.path.join(os.path.dirname(__file__), "data", "libhdf5_crash_mutant.h5")
    with pytest.raises(ValueError, match="libhdf5_crash_mutant.h5"):
        load_model(path)
