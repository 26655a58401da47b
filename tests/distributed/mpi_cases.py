"""The training runs of tests/distributed, as one script per launch (each launch costs an interpreter per rank).

    python mpi_cases.py single OUT          every case in one process (the reference), and the resume starts
    mpiexec -n 2 python mpi_cases.py dist OUT   every case on two ranks, and the resumes across rank counts
    python mpi_cases.py resume OUT          resume in one process what two ranks backed up
    mpiexec -n 2 python mpi_cases.py fail   rank 1 raises in a callback: the job must end, not hang
    mpiexec -n 2 python mpi_cases.py hang ENGINE   rank 1 sleeps in a callback: the watchdog ends the job
    mpiexec -n 2 python mpi_cases.py kill   rank 1 is killed (SIGKILL) in a callback: the launcher ends the job

Results go to OUT/<mode>_<name>_r<rank>.npz (weights, flattened) and OUT/<mode>_<name>_r<rank>.json (history).
"""
import json
import os
import signal
import sys
import time

import numpy as np

import fastfit as keras
import fastfit.distributed as dist
from fastfit.callbacks import (BackupAndRestore, Callback, CSVLogger, EarlyStopping, ModelCheckpoint,
                               ReduceLROnPlateau, TerminateOnNaN)
from fastfit.layers import AlphaDropout, Dense, Dropout, GaussianNoise
from fastfit.models import Sequential, load_model

ENGINES = ("python", "cython")
OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: keras.optimizers.RMSprop(lr=0.01),
    "adagrad": lambda: keras.optimizers.Adagrad(lr=0.05),
    "adadelta": lambda: keras.optimizers.Adadelta(lr=1.0),
    "adam": lambda: keras.optimizers.Adam(lr=0.01),
    "amsgrad": lambda: keras.optimizers.Adam(lr=0.01, amsgrad=True),
    "adamax": lambda: keras.optimizers.Adamax(lr=0.01),
    "nadam": lambda: keras.optimizers.Nadam(lr=0.01),
}


def data(n=203, features=12, classes=3, dtype="float32"):
    rs = np.random.RandomState(0)
    x = rs.rand(n, features).astype(dtype)
    labels = rs.randint(0, classes, n)
    weights = rs.rand(n).astype(dtype)
    weights[::7] = 0
    return x, keras.utils.to_categorical(labels, classes).astype(dtype), labels, weights


def seed():
    """The same initial weights, dropout seeds and shuffling in every process, whatever ran before."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(7)


def mlp(engine, optimizer, extra=list, loss="categorical_crossentropy", metrics=("acc",), dtype="float32"):
    """A small MLP; `extra()` makes the layers between its two Dense layers (after seeding: layers draw their
    dropout seeds when made)."""
    seed()
    keras.backend.set_floatx(dtype)
    model = Sequential([Dense(16, input_dim=12, activation="relu"), *extra(), Dense(3, activation="softmax")])
    model.compile(loss=loss, optimizer=optimizer, metrics=list(metrics), engine=engine)
    keras.backend.set_floatx("float32")
    return model


MODE = ""  # the launch mode, prefixed to every result file


def record(out, name, model, history=None, evaluated=None):
    """Weights to OUT/<mode>_<name>_r<rank>.npz; the history, with `evaluated` (an evaluate's results) under
    the key 'evaluate', to the .json."""
    name = f"{MODE}_{name}"
    weights = np.concatenate([w.ravel().astype(np.float64) for w in model.get_weights()])
    np.savez(os.path.join(out, f"{name}_r{dist.rank()}.npz"), weights=weights)
    logs = {} if history is None else dict(history.history)
    if evaluated is not None:
        logs["evaluate"] = list(np.atleast_1d(evaluated).astype(float))
    with open(os.path.join(out, f"{name}_r{dist.rank()}.json"), "w") as file:
        json.dump(logs, file)


def training_cases(out):
    """Every optimizer with dropout, sample weights, validation and a short last batch (162 training rows in
    batches of 32: the last has 2); then noise layers, penalties and a constraint, sparse labels, float64, an
    empty share (97 rows: the last batch has 1, rank 0 gets none), and callbacks with a confusion metric (AUC)."""
    x, y, labels, w = data()
    for engine in ENGINES:
        for name, make in OPTIMIZERS.items():
            model = mlp(engine, make(), lambda: [Dropout(0.3)])
            history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, sample_weight=w, validation_split=0.2)
            # The user's evaluate after a distributed fit: shared across the ranks, the global results on each
            evaluated = model.evaluate(x, y, batch_size=50, verbose=0, sample_weight=w)
            record(out, f"{engine}_{name}", model, history, evaluated)
        model = mlp(engine, "adam", lambda: [GaussianNoise(0.1), AlphaDropout(0.2)])
        record(out, f"{engine}_noise", model, model.fit(x, y, batch_size=24, epochs=3, verbose=0))
        seed()
        model = Sequential([Dense(16, input_dim=12, activation="tanh", kernel_regularizer="l2",
                                  kernel_constraint=keras.constraints.max_norm(1.0)),
                            Dense(3, activation="softmax", activity_regularizer=keras.regularizers.l1(0.01))])
        model.compile(loss="categorical_crossentropy", optimizer="rmsprop", engine=engine)
        record(out, f"{engine}_penalties", model, model.fit(x, y, batch_size=40, epochs=3, verbose=0))
        model = mlp(engine, "adam", loss="sparse_categorical_crossentropy",
                    metrics=["sparse_categorical_accuracy"])
        history = model.fit(x, labels.astype(np.int64), batch_size=32, epochs=3, verbose=0,
                            validation_data=(x[:50], labels[:50].astype(np.int64)))
        record(out, f"{engine}_sparse", model, history)
        x64, y64, _, w64 = data(dtype="float64")
        model = mlp(engine, "adam", lambda: [Dropout(0.2)], dtype="float64")
        history = model.fit(x64, y64, batch_size=32, epochs=3, verbose=0, sample_weight=w64, validation_split=0.2)
        record(out, f"{engine}_float64", model, history)
        model = mlp(engine, "sgd", lambda: [Dropout(0.2)])
        record(out, f"{engine}_empty_share", model, model.fit(x[:97], y[:97], batch_size=32, epochs=3, verbose=0))
        model = mlp(engine, keras.optimizers.Adam(lr=0.05), metrics=["acc", keras.metrics.AUC(name="auc")])
        history = model.fit(x, y, batch_size=32, epochs=8, verbose=0, validation_split=0.3,
                            callbacks=[ReduceLROnPlateau(patience=1, factor=0.5), EarlyStopping(patience=2),
                                       TerminateOnNaN(),
                                       CSVLogger(os.path.join(out, f"{engine}_log_r{dist.rank()}.csv"))])
        record(out, f"{engine}_callbacks", model, history)


def network_run(engine, dtype, reducer):
    """Two epochs and an evaluate of an engine network (Adam, dropout, sample weights with zeros) as one rank of
    `reducer` (None: one process). 21 rows in batches of 5 and 4: the last batch has one row, so rank 0's share
    of it is empty. Returns the arrays to compare: the epoch sums, the weights and the optimizer slots."""
    from fastfit._reference.loop import Network as Reference
    rs = np.random.default_rng(0)
    n = 21
    W1, b1 = (rs.normal(size=(6, 8)) * 0.4).astype(dtype), (rs.normal(size=8) * 0.1).astype(dtype)
    W2 = (rs.normal(size=(8, 4)) * 0.4).astype(dtype)
    x = rs.normal(size=(n, 6)).astype(dtype)
    y = np.eye(4, dtype=dtype)[rs.integers(0, 4, n)]
    w = rs.random(n).astype(dtype)
    w[:3] = 0
    if engine == "cython":
        from fastfit._ext._loop import Network
    else:
        Network = Reference
    net = Network([("dense", W1, b1), ("activation", "relu"), ("dropout", 0.3, 5), ("dense", W2, None),
                   ("activation", "softmax")], "categorical_crossentropy", ["categorical_accuracy"], dtype)
    if engine == "cython":
        net.split_threads = 1
    net.distribute(reducer)
    optimizer = keras.optimizers.Adam(lr=0.01, amsgrad=True)
    optimizer.build([W1, b1, W2])
    sums = [net.train_epoch(x, y, w, rs.permutation(n).astype(np.int64), 5, optimizer, None),
            net.train_epoch(x, y, None, np.arange(n, dtype=np.int64), 4, optimizer, None),
            net.evaluate(x, y, w, 7, None)]
    return [*sums, W1, b1, W2, *[slot for slots in optimizer.slots for slot in slots]]


def network_cases(out):
    """`network_run` of both engines in both dtypes on this rank, to OUT/network_<engine>_<dtype>_r<rank>.npz."""
    for engine in ENGINES:
        for dtype in ("float32", "float64"):
            arrays = network_run(engine, np.dtype(dtype), dist.reducer())
            np.savez(os.path.join(out, f"network_{engine}_{dtype}_r{dist.rank()}.npz"), *arrays)


class Interrupt(Exception):
    pass


class InterruptAt(Callback):
    """Stops the run at the end of an epoch, as a kill would (after the backup of that epoch)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt(f"interrupted after epoch {epoch}")


def resumable(engine="cython"):
    return mlp(engine, "adam", lambda: [Dropout(0.2)])


def interrupted_fit(model, backup, checkpoint=None):
    """Two epochs of a four-epoch fit, backed up (and checkpointed) at each epoch end, then interrupted."""
    x, y, _, w = data()
    callbacks = [BackupAndRestore(backup)] + ([ModelCheckpoint(checkpoint)] if checkpoint else []) + [InterruptAt(1)]
    try:
        model.fit(x, y, batch_size=32, epochs=4, verbose=0, sample_weight=w, callbacks=callbacks)
    except Interrupt:
        pass


def resumed_fit(model, backup):
    x, y, _, w = data()
    return model.fit(x, y, batch_size=32, epochs=4, verbose=0, sample_weight=w, callbacks=[BackupAndRestore(backup)])


def continued_fit(model):
    """Epochs 3 and 4 of a model loaded from the checkpoint written after epoch 2."""
    x, y, _, w = data()
    return model.fit(x, y, batch_size=32, epochs=4, initial_epoch=2, verbose=0, sample_weight=w)


def main(mode, out=None):
    global MODE
    MODE = mode
    if mode in ("dist", "fail", "hang", "kill"):
        dist.init()
    if mode == "fail":
        class Fail(Callback):
            def on_epoch_end(self, epoch, logs=None):
                if dist.rank() == 1:
                    raise RuntimeError("rank 1 fails on purpose")
        x, y, _, _ = data()
        model = resumable()
        model.fit(x, y, batch_size=32, epochs=50, verbose=0, callbacks=[Fail()])
        return
    if mode in ("hang", "kill"):
        class Stall(Callback):
            """Rank 1 stops taking part after the first epoch: it sleeps (outside any collective), or dies."""
            def on_epoch_end(self, epoch, logs=None):
                if dist.rank() == 1 and mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if dist.rank() == 1:
                    time.sleep(120)
        x, y, _, _ = data()
        model = resumable(out or "cython")
        model.fit(x, y, batch_size=32, epochs=50, verbose=0, validation_split=0.2, callbacks=[Stall()])
        return
    if mode == "single":
        training_cases(out)
        model = resumable()
        record(out, "full", model, resumed_fit(model, os.path.join(out, "unused_backup")))
        interrupted_fit(resumable(), os.path.join(out, "backup_1to2"), os.path.join(out, "ckpt_single.h5"))
    elif mode == "dist":
        network_cases(out)
        training_cases(out)
        model = resumable()
        interrupted_fit(model, os.path.join(out, "backup_2to1"), os.path.join(out, "ckpt_dist.h5"))
        record(out, "after_two_epochs", model)
        model = resumable()
        record(out, "resumed_1to2", model, resumed_fit(model, os.path.join(out, "backup_1to2")))
        model = load_model(os.path.join(out, "ckpt_single.h5"))
        record(out, "continued_1to2", model, continued_fit(model))
    elif mode == "resume":
        model = resumable()
        record(out, "resumed_2to1", model, resumed_fit(model, os.path.join(out, "backup_2to1")))
        model = load_model(os.path.join(out, "ckpt_dist.h5"))
        record(out, "loaded_ckpt_dist", model)
        record(out, "continued_2to1", model, continued_fit(model))


if __name__ == "__main__":
    main(*sys.argv[1:])
