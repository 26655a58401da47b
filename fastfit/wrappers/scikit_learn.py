"""`KerasClassifier` and `KerasRegressor`: fastfit models as scikit-learn estimators (Keras 2.2's wrappers).

`build_fn` makes and compiles a fresh model at every `fit`; `sk_params` go to whichever of `build_fn`,
`Model.fit`, `predict` and `evaluate` takes them by name, as in Keras 2.2::

    def make_model(units=16, optimizer="adam"):
        model = Sequential([Dense(units, activation="relu", input_dim=8), Dense(1, activation="sigmoid")])
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
        return model

    clf = KerasClassifier(build_fn=make_model, epochs=20, batch_size=16, verbose=0)
    cross_val_score(clf, x, y, cv=StratifiedKFold(5))
    GridSearchCV(clf, {"units": [8, 16], "epochs": [10, 20]}).fit(x, y)

Differences from Keras 2.2, each where Keras did something other than what the user asked: the Keras 1
spelling `nb_epoch` reaches `fit` (which warns and trains that many epochs; Keras 2.2 accepted it and trained
one epoch), `get_params` returns the parameters themselves (a deep copy broke scikit-learn's `clone` check),
`score` one-hot encodes test labels with all the classes seen in `fit` (Keras 2.2 failed on a test fold
missing the last class), and `build_fn` must return a compiled fastfit model (else a clear TypeError).
The estimators pickle with their fitted model (`Model.__reduce__`), so joblib's worker processes
(`n_jobs=2`) work.
"""
from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, cast

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import NotFittedError
except ImportError as error:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("fastfit.wrappers.scikit_learn needs scikit-learn: pip install 'fastfit[sklearn]' "
                      "(or pip install scikit-learn)") from error

from fastfit.engine.training import Model

# The arguments Keras 2.2 routes from sk_params to each model method (predict_classes / predict_proba /
# predict / evaluate took only these).
_PREDICT_CLASSES_ARGS = ("batch_size", "verbose")
_PREDICT_ARGS = ("batch_size", "verbose", "steps")
_EVALUATE_ARGS = ("batch_size", "verbose", "sample_weight", "steps")
_LEGACY_FIT_ARGS = {"nb_epoch"}  # Keras 1's name for `epochs`; `Model.fit` takes it (with a warning)


def _takes(fn: Callable, name: str) -> bool:
    """True when `fn` has a parameter `name` that can be passed by keyword (`**kwargs` does not count)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get(name)
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


class BaseWrapper(BaseEstimator):
    """Shared machinery of `KerasClassifier` and `KerasRegressor` (use those).

    Arguments:
        build_fn: a function returning a compiled model, an instance of a class with such a `__call__`, or
            None in a subclass that defines `__call__` itself.
        **sk_params: arguments of `build_fn`, `fit`, `predict` and `evaluate`, routed by name.

    Raises:
        ValueError: a parameter that none of them takes (a typo, as in Keras: "x is not a legal parameter").
    """

    def __init__(self, build_fn: Callable[..., Model] | None = None, **sk_params: Any) -> None:
        self.build_fn = build_fn
        self.sk_params = sk_params
        self.check_params(sk_params)

    # -- parameters --------------------------------------------------------------------------------------------
    def _build_callable(self) -> Callable[..., Model]:
        if self.build_fn is None:
            if not callable(self):
                raise TypeError(f"{type(self).__name__}: give `build_fn`, or define `__call__` in a subclass")
            return self.__call__
        if not callable(self.build_fn):
            raise TypeError(f"{type(self).__name__}: `build_fn` must be callable (a function, a class or an "
                            f"object with `__call__`), got {self.build_fn!r}")
        if isinstance(self.build_fn, (types.FunctionType, types.MethodType, type)):
            return self.build_fn
        return self.build_fn.__call__  # type: ignore[operator]  # an object's own __call__ (its signature routes)

    def _legal_functions(self) -> list[Callable]:
        return [Model.fit, Model.predict, Model.evaluate, self._build_callable()]

    def check_params(self, params: dict) -> None:
        """Raise ValueError for a parameter that neither `build_fn` nor `fit`/`predict`/`evaluate` takes."""
        functions = self._legal_functions()
        for name in params:
            if name not in _LEGACY_FIT_ARGS and not any(_takes(fn, name) for fn in functions):
                raise ValueError(f"{name} is not a legal parameter")

    def get_params(self, deep: bool = True, **params: Any) -> dict:
        """`build_fn` and the `sk_params` (the objects themselves, as scikit-learn's `clone` requires)."""
        result = dict(self.sk_params)
        result["build_fn"] = self.build_fn
        return result

    def set_params(self, **params: Any) -> BaseWrapper:
        """Update `build_fn` and `sk_params`; returns the estimator."""
        if "build_fn" in params:
            self.build_fn = params.pop("build_fn")
        self.check_params(params)
        self.sk_params.update(params)
        return self

    def filter_sk_params(self, fn: Callable, override: dict | None = None) -> dict:
        """The `sk_params` that `fn` takes by name, updated with `override`."""
        result = {name: value for name, value in self.sk_params.items() if _takes(fn, name)}
        result.update(override or {})
        return result

    def _filter_names(self, names: tuple, override: dict) -> dict:
        result = {name: value for name, value in self.sk_params.items() if name in names}
        result.update(override)
        return result

    # -- fitting -----------------------------------------------------------------------------------------------
    def _new_model(self) -> Model:
        build = self._build_callable()
        model = build(**self.filter_sk_params(build))
        if not isinstance(model, Model):
            raise TypeError(f"{type(self).__name__}: `build_fn` must return a compiled fastfit model, got "
                            f"{type(model).__name__}")
        if not model.compiled:
            raise TypeError(f"{type(self).__name__}: the model `build_fn` returned is not compiled; call "
                            "model.compile(...) in `build_fn` before returning it")
        return model

    def _fit_model(self, x, y, **kwargs):
        self.model = self._new_model()
        if self._categorical() and np.ndim(y) != 2:
            y = _one_hot(y, getattr(self, "n_classes_", None))
        fit_args = self.filter_sk_params(Model.fit)
        fit_args.update({name: self.sk_params[name] for name in _LEGACY_FIT_ARGS if name in self.sk_params})
        fit_args.update(kwargs)
        return self.model.fit(x, y, **fit_args)

    def _categorical(self) -> bool:
        return getattr(self.model, "_canonical_loss", None) in ("categorical_crossentropy",
                                                                "categorical_crossentropy_from_logits")

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once `fit` has made `self.model` (scikit-learn's `check_is_fitted`, used by `Pipeline`)."""
        return getattr(self, "model", None) is not None

    def _fitted_model(self) -> Model:
        model = getattr(self, "model", None)
        if model is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                 "appropriate arguments before using this estimator.")
        return model


class KerasClassifier(ClassifierMixin, BaseWrapper):
    """scikit-learn classifier around a fastfit model (Keras 2.2's `keras.wrappers.scikit_learn.KerasClassifier`).

    `fit` accepts labels of any sortable kind (`classes_` keeps them as given) or one-hot targets; with the
    `categorical_crossentropy` loss, labels are one-hot encoded for the model. `predict` returns labels from
    `classes_` (shape `(n, 1)` for a one-unit sigmoid output, as in Keras), `predict_proba` the model's
    probabilities (two columns for a one-unit output), `score` the model's accuracy metric.
    """

    def fit(self, x, y, sample_weight=None, **kwargs):
        """Build a new model with `build_fn` and train it on `(x, y)`; returns the `History`.

        Raises:
            ValueError: `y` is neither labels `(n,)`/`(n, 1)` nor one-hot `(n, classes)`.
        """
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            self.classes_ = np.arange(y.shape[1])
        elif y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
            self.classes_ = np.unique(y)
            y = np.searchsorted(self.classes_, y)
        else:
            raise ValueError("Invalid shape for y: " + str(y.shape))
        self.n_classes_ = len(self.classes_)
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        return self._fit_model(x, y, **kwargs)

    def predict(self, x, **kwargs) -> np.ndarray:
        """The predicted class labels, taken from `classes_`."""
        model = self._fitted_model()
        proba = np.asarray(model.predict(x, **self._filter_names(_PREDICT_CLASSES_ARGS, kwargs)))
        classes = proba.argmax(axis=-1) if proba.shape[-1] > 1 else (proba > 0.5).astype("int32")
        return self.classes_[classes]

    def predict_proba(self, x, **kwargs) -> np.ndarray:
        """Class probabilities `(n, classes)`; a one-unit output gives `[1 - p, p]`."""
        model = self._fitted_model()
        probs = np.asarray(model.predict(x, **self._filter_names(_PREDICT_CLASSES_ARGS, kwargs)))
        if probs.shape[1] == 1:
            probs = np.hstack([1 - probs, probs])
        return probs

    def score(self, x, y, **kwargs) -> float:
        """The model's accuracy on `(x, y)` (its 'acc' or 'accuracy' metric).

        Raises:
            ValueError: the model was not compiled with `metrics=['accuracy']` (or 'acc').
        """
        model = self._fitted_model()
        y = np.searchsorted(self.classes_, np.asarray(y))
        if self._categorical() and y.ndim != 2:
            y = _one_hot(y, self.n_classes_)
        # without return_dict: the loss, or [loss, *metrics]
        outputs = cast("float | list[float]", model.evaluate(x, y, **self._filter_names(_EVALUATE_ARGS, kwargs)))
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for name, output in zip(model.metrics_names, outputs):
            if name in ("accuracy", "acc"):
                return output
        raise ValueError('The model is not configured to compute accuracy. You should pass '
                         '`metrics=["accuracy"]` to the `model.compile()` method.')


class KerasRegressor(RegressorMixin, BaseWrapper):
    """scikit-learn regressor around a fastfit model (Keras 2.2's `KerasRegressor`): `score` is the negative
    loss, so that greater is better."""

    def fit(self, x, y, **kwargs):
        """Build a new model with `build_fn` and train it on `(x, y)`; returns the `History`."""
        return self._fit_model(x, y, **kwargs)

    def predict(self, x, **kwargs) -> np.ndarray:
        """The model's predictions, without the last axis when it has one unit."""
        model = self._fitted_model()
        predictions = np.asarray(model.predict(x, **self._filter_names(_PREDICT_ARGS, kwargs)))
        return np.squeeze(predictions, axis=-1) if predictions.shape[-1] == 1 else predictions

    def score(self, x, y, **kwargs) -> float:
        """Minus the model's loss on `(x, y)`."""
        model = self._fitted_model()
        loss = cast("float | list[float]", model.evaluate(x, y, **self._filter_names(_EVALUATE_ARGS, kwargs)))
        return -loss[0] if isinstance(loss, list) else -loss


def _one_hot(labels, n_classes=None) -> np.ndarray:
    """Integer labels `(n,)` or `(n, 1)` as one-hot float rows (what `to_categorical` gives)."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    n_classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    return np.eye(n_classes, dtype="float32")[labels]
