"""One adapter per engine: build the workload's model, then train it for one epoch per call.

Every adapter trains the same network (widths, activations, optimizer, batch size, shuffling each epoch)
on the same float32 arrays and computes the loss and accuracy of every batch, as Keras `fit` does. An
engine whose library is missing is reported as unavailable with a note instead of failing the run.

Engines:
    fastfit      fastfit, Cython engine (`compile(..., engine='cython')`)
    fastfit-ref  fastfit, pure-NumPy reference engine (`engine='python'`)
    torch        PyTorch eager, a plain training loop, `torch.set_num_threads(cores)`
    keras        Keras 3 `fit` on the backend in KERAS_BACKEND (default here: torch)
    sklearn      scikit-learn `MLPClassifier.partial_fit` (Adam; W1 = `hidden_layer_sizes=()`)
"""
import importlib
import importlib.metadata
import importlib.util
import os

import numpy as np

from .workloads import N_CLASSES, N_FEATURES

FASTFIT_ENGINES = ("fastfit", "fastfit-ref")
PEER_ENGINES = ("torch", "keras", "sklearn")
ALL_ENGINES = FASTFIT_ENGINES + PEER_ENGINES


def _has(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):   # a parent package is missing or fails to import
        return False


def _import_error(module):
    """Returns why `module` cannot be imported, or None (used for fastfit only: it is cheap to import)."""
    try:
        importlib.import_module(module)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means the engine is unavailable
        return f"{type(exc).__name__}: {exc}"


def _major(dist):
    try:
        return int(importlib.metadata.version(dist).split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def availability(engine):
    """Says, without importing the engine's library, whether `engine` can run here.

    The import itself happens in the engine's worker process; a failure there is reported as that
    engine's error in the results.

    Arguments:
        engine: a name from `ALL_ENGINES`.

    Returns:
        `(ok, note)`: `note` explains a skip (or names the Keras backend), else `''`.

    Raises:
        ValueError: unknown engine name.
    """
    if engine not in ALL_ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ALL_ENGINES)}; got {engine!r}")
    if engine in FASTFIT_ENGINES:
        error = _import_error("fastfit.models")
        if error:
            return False, f"fastfit not importable ({error})"
        if engine == "fastfit":
            error = _import_error("fastfit._ext._loop")
            if error:
                return False, f"Cython engine not built: python setup.py build_ext --inplace ({error})"
        return True, ""
    if engine == "torch":
        return (True, "") if _has("torch") else (False, "torch not installed (pip install torch)")
    if engine == "keras":
        major = _major("keras")
        if major is None:
            return False, "keras not installed (pip install keras)"
        if major < 3:
            return False, f"keras {importlib.metadata.version('keras')} found; the benchmark uses Keras 3"
        backend = os.environ.setdefault("KERAS_BACKEND", "torch")
        needs = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}.get(backend)
        if needs and not _has(needs):
            return False, f"KERAS_BACKEND={backend} but {needs} is not installed"
        return True, f"backend {backend}"
    return (True, "") if _has("sklearn") else (False, "scikit-learn not installed")


class FastfitTrainer:
    """fastfit `Sequential` with `compile(engine=...)` and `fit(epochs=1, verbose=0)` per epoch."""

    def __init__(self, workload, data, engine="cython"):
        from fastfit import optimizers, regularizers
        from fastfit.layers import Activation, BatchNormalization, Dense
        from fastfit.models import Sequential

        model = Sequential()
        widths = [*workload.hidden, N_CLASSES]
        for i, width in enumerate(widths):
            kwargs = {"input_dim": N_FEATURES} if i == 0 else {}
            if workload.l2:
                kwargs["kernel_regularizer"] = regularizers.l2(workload.l2)
            model.add(Dense(width, **kwargs))
            last = i == len(widths) - 1
            if workload.batchnorm and not last:
                model.add(BatchNormalization())
            model.add(Activation("softmax" if last else "relu"))
        opt_cls = optimizers.RMSprop if workload.optimizer == "rmsprop" else optimizers.Adam
        model.compile(loss="categorical_crossentropy", optimizer=opt_cls(lr=workload.lr),
                      metrics=["accuracy"], engine=engine)
        self.model = model
        self.x, self.y = data["x"], data["y"]
        self.batch_size = workload.batch_size

    def input_check(self):
        """The check each `fit` call makes before training: no NaN or inf in x and y (one read of each)."""
        from fastfit.engine import data
        data.check_finite(self.x, "x")
        data.check_finite(self.y, "y")

    def epoch(self, **fit_kwargs):
        """Trains one epoch; extra keyword arguments go to `fit` (callbacks, verbose, epochs); returns the History."""
        kwargs = {"batch_size": self.batch_size, "epochs": 1, "verbose": 0, "shuffle": True}
        kwargs.update(fit_kwargs)
        return self.model.fit(self.x, self.y, **kwargs)


class TorchTrainer:
    """PyTorch eager: `nn.Sequential`, `CrossEntropyLoss` on logits (softmax fused), manual loop."""

    def __init__(self, workload, data):
        import torch
        from torch import nn

        torch.set_num_threads(os.cpu_count() or 1)
        torch.manual_seed(0)
        layers, widths = [], workload.widths
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                if workload.batchnorm:  # Keras 2 defaults: momentum 0.99 (torch counts 1 - it), epsilon 1e-3
                    layers.append(nn.BatchNorm1d(b, momentum=0.01, eps=1e-3))
                layers.append(nn.ReLU())
        self.torch = torch
        self.model = nn.Sequential(*layers)
        params = self.model.parameters()
        if workload.optimizer == "rmsprop":   # Keras 2 defaults: rho 0.9, epsilon 1e-7
            self.opt = torch.optim.RMSprop(params, lr=workload.lr, alpha=0.9, eps=1e-7)
        else:
            self.opt = torch.optim.Adam(params, lr=workload.lr, eps=1e-7)
        self.loss_fn = nn.CrossEntropyLoss()
        # Keras's l2 regularizer: l2 * sum(W ** 2) of every kernel joins the loss.
        self.l2 = workload.l2
        self.kernels = [m.weight for m in self.model if isinstance(m, nn.Linear)]
        self.x = torch.from_numpy(data["x"])
        self.y = torch.from_numpy(data["y_int"])
        self.batch_size = workload.batch_size

    def epoch(self):
        """Trains one epoch; returns `(mean loss, accuracy)`."""
        torch, n, bs = self.torch, self.x.shape[0], self.batch_size
        perm = torch.randperm(n)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for start in range(0, n, bs):
            idx = perm[start:start + bs]
            xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            self.opt.zero_grad(set_to_none=True)
            out = self.model(xb)
            loss = self.loss_fn(out, yb)
            if self.l2:
                loss = loss + self.l2 * sum((w * w).sum() for w in self.kernels)
            loss.backward()
            self.opt.step()
            with torch.no_grad():
                loss_sum += loss.detach() * xb.shape[0]
                correct += (out.argmax(1) == yb).sum()
        return float(loss_sum) / n, int(correct) / n


class KerasTrainer:
    """Keras 3 `Sequential` + `fit(epochs=1, verbose=0, shuffle=True)` per epoch."""

    def __init__(self, workload, data):
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        if keras.backend.backend() == "torch":
            import torch
            torch.set_num_threads(os.cpu_count() or 1)
        keras.utils.set_random_seed(0)
        layers = [keras.Input((N_FEATURES,))]
        penalty = keras.regularizers.l2(workload.l2) if workload.l2 else None
        for h in workload.hidden:
            if workload.batchnorm:
                layers += [keras.layers.Dense(h, kernel_regularizer=penalty),
                           keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3),
                           keras.layers.Activation("relu")]
            else:
                layers.append(keras.layers.Dense(h, activation="relu", kernel_regularizer=penalty))
        layers.append(keras.layers.Dense(N_CLASSES, activation="softmax", kernel_regularizer=penalty))
        self.model = keras.Sequential(layers)
        if workload.optimizer == "rmsprop":
            opt = keras.optimizers.RMSprop(learning_rate=workload.lr)
        else:
            opt = keras.optimizers.Adam(learning_rate=workload.lr)
        self.model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
        self.x, self.y = data["x"], data["y"]
        self.batch_size = workload.batch_size

    def epoch(self):
        """Trains one epoch."""
        return self.model.fit(self.x, self.y, batch_size=self.batch_size, epochs=1, verbose=0,
                              shuffle=True)


class SklearnTrainer:
    """scikit-learn `MLPClassifier(solver='adam', alpha=0)`; one `partial_fit` call = one epoch.

    scikit-learn has no RMSprop, so W1 runs Adam with the same learning rate; W1 has no hidden layer, which
    `hidden_layer_sizes=()` expresses (a softmax regression, exactly W1's network).
    """

    def __init__(self, workload, data):
        from sklearn.neural_network import MLPClassifier

        if workload.batchnorm:
            raise ValueError("scikit-learn's MLPClassifier has no batch normalization")
        self.model = MLPClassifier(hidden_layer_sizes=tuple(workload.hidden), activation="relu",
                                   solver="adam", alpha=0.0, batch_size=workload.batch_size,
                                   learning_rate_init=workload.lr, epsilon=1e-7, shuffle=True,
                                   random_state=0)
        self.x, self.y = data["x"], data["y_int"]
        self.classes = np.arange(N_CLASSES)

    def epoch(self):
        """Trains one epoch."""
        return self.model.partial_fit(self.x, self.y, classes=self.classes)


def preload(engine):
    """Worker side: import `engine`'s library (and SciPy's BLAS), so later timings exclude imports."""
    import scipy.linalg.blas  # noqa: F401
    modules = {"fastfit": "fastfit.models", "fastfit-ref": "fastfit.models", "torch": "torch",
               "keras": "keras", "sklearn": "sklearn.neural_network"}
    if engine == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")
    if engine in modules:
        importlib.import_module(modules[engine])
    return True


def make_trainer(engine, workload, data):
    """Builds the adapter for `engine` (see the module docstring) on `workload` and `data`.

    Arguments:
        engine: a name from `ALL_ENGINES`.
        workload: a `Workload`.
        data: dict with `x` (float32 (n,784)), `y` (float32 one-hot), `y_int` (int64 labels).

    Returns:
        an object whose `epoch()` trains one epoch.
    """
    if engine == "fastfit":
        return FastfitTrainer(workload, data, engine="cython")
    if engine == "fastfit-ref":
        return FastfitTrainer(workload, data, engine="python")
    if engine == "torch":
        return TorchTrainer(workload, data)
    if engine == "keras":
        return KerasTrainer(workload, data)
    if engine == "sklearn":
        return SklearnTrainer(workload, data)
    raise ValueError(f"engine must be one of {', '.join(ALL_ENGINES)}; got {engine!r}")
