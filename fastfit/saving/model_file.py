"""The HDF5 model file: `save_model`, `save_weights`, `load_weights` and `read_model`, which reads a whole model
with a function the caller gives to build it from its config (`fastfit.saving.loading.load_model` passes
`model_from_config`). This module knows models only through their attributes and imports no model class, so
`Model.save` can use it; choosing the class a config names is `loading`'s job.

File layout (docs/saving.md): the tf.keras 2.x flavour of the Keras 2 HDF5 layout, which Keras 2, tf-keras
and Keras 3 read, plus two fastfit attributes that other readers ignore: `fastfit_version` and
`fastfit_state` (the model's shuffling seed and the dropout seeds, so a loaded model resumes training
exactly where the saved one stopped).
"""
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from fastfit import metrics as metrics_module
from fastfit import optimizers
from fastfit._version import __version__
from fastfit.saving import (
    attributes,
    config_compat,
    config_limits,
    files,
    image,
    optimizer_state,
    snapshot,
    weights,
)


# -- writing -------------------------------------------------------------------------------------------------
def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Save the architecture, weights, training configuration and optimizer state to an HDF5 file.

    The file is written atomically (temporary file + rename): a crash or error never leaves a partial file,
    and the previous file stays intact.

    Arguments:
        model: a fastfit `Sequential` or `Model`.
        filepath: str or path-like (the folder must exist).
        overwrite: if False and the file exists, raise instead of replacing it (fastfit never prompts).
        include_optimizer: also save the optimizer state (needed to resume training exactly).

    Raises:
        FileExistsError: the file exists and `overwrite` is False.
        FileNotFoundError: the folder does not exist. OSError: not writable, disk full, ...
    """
    files.write_snapshot(filepath, model_snapshot(model, include_optimizer, copy=False), overwrite, "model file")


def model_snapshot(model, include_optimizer=True, copy=True):
    """What `save_model` writes, for `files.write_snapshot`; `copy`: capture the arrays as they are now."""
    content = snapshot.Snapshot(copy)
    write_model(content, model, include_optimizer)
    return content


def write_model(h5file, model, include_optimizer=True):
    """Write the whole model into an empty `h5py.File` or `Snapshot` (what `save_model` puts in the file)."""
    model_config = {"class_name": _class_name(model), "config": model.get_config()}
    attributes.write_short_text(h5file.attrs, "keras_version", weights.KERAS_VERSION)
    attributes.write_short_text(h5file.attrs, "backend", weights.BACKEND)
    attributes.write_short_text(h5file.attrs, "fastfit_version", __version__)
    attributes.write_json(h5file.attrs, "model_config", model_config)
    attributes.write_json(h5file.attrs, "fastfit_state", fastfit_state(model))
    weights.write_layers(h5file.create_group("model_weights"), model.layers)
    if _includes_optimizer(model, include_optimizer):
        training_config = dict(model._training_config())
        training_config["optimizer_config"] = config_compat.for_keras_readers(training_config["optimizer_config"])
        attributes.write_json(h5file.attrs, "training_config", training_config)
        optimizer_state.write(h5file, model)


def _includes_optimizer(model, include_optimizer):
    return include_optimizer and getattr(model, "compiled", False) and model.optimizer is not None


class Capture:
    """Captures what `save_model` (or `save_weights`) would write, again and again, for a checkpoint callback.

    A file's metadata depends only on the model's configs and seeds and on the names, shapes and dtypes of
    its arrays. When those are what they were at the previous capture, the previous file is reused and only
    the arrays are copied: into an `image.FileImage` of the whole file once the writer has laid the first
    one out (then a save allocates nothing and its write is one buffer, and the copy checks the arrays'
    shapes and dtypes), else into a refilled snapshot. Whether anything changed is first checked by
    identity (`_attribute_signature`); the configs are compared when some attribute was set, and at the
    first capture after `recheck`. The
    reuse is checked once per new template: the arrays this class collects must be the very objects
    `write_model` wrote, else every capture is a full one.
    """

    def __init__(self, weights_only=False):
        self.weights_only = bool(weights_only)
        self._key = None       # the metadata key of the reusable file; None: the next capture is a full one
        self._template = None  # the last full capture (a Snapshot), until `_image` replaces it
        self._image = None
        self._shapes = None    # the shapes and dtypes of the template's arrays
        self._signature = None  # `_attribute_signature` when the metadata was last compared

    def __call__(self, model):
        """What saving `model` now would write, for `files.write_snapshot`: a `snapshot.Snapshot` (arrays
        copied) or this capture's `image.FileImage`, which the next call refills (write it before that)."""
        arrays = self._arrays(model)
        signature, key = _attribute_signature(model), None
        if self._key is not None and self._signature is not None and _equal(signature, self._signature):
            same = True
        else:
            key = self._metadata_key(model)
            same = self._key is not None and _equal(key, self._key)
        if same:
            self._signature = signature
            if self._image is not None:
                if self._image.fill(arrays):  # checks the arrays' shapes and dtypes against the slots
                    return self._image
            elif _shapes(arrays) == self._shapes:
                layout = image.cached_layout(self._template, files.USERBLOCK)
                if layout is None:  # not written yet (the writer lays it out): copy into a snapshot again
                    return self._template.refilled([np.array(a, order="C", copy=True) for a in arrays])
                self._image, self._template = image.FileImage(layout, arrays), None
                return self._image
        if key is None:  # the attributes were unchanged, but the arrays no longer fit the image
            key = self._metadata_key(model)
        content = weights_snapshot(model) if self.weights_only else model_snapshot(model)
        reusable = _same_sources(content.source_ids, arrays)
        self._key, self._template, self._image = (key, content, None) if reusable else (None, None, None)
        self._shapes, self._signature = _shapes(arrays), signature
        return content

    def recheck(self):
        """Compare the full metadata at the next capture, whatever the attribute signature says (a `fit`
        starts: something may have changed in place since the last one)."""
        self._signature = None

    def _arrays(self, model):
        """The arrays `write_model` / `write_weights` write, in creation order (optimizer head freshly made)."""
        arrays = [w for layer in model.layers for w in layer.weights]
        if not self.weights_only and _includes_optimizer(model, True) and getattr(model.optimizer, "slots", None):
            arrays += optimizer_state._state_arrays(model.optimizer)
        return arrays

    def _metadata_key(self, model):
        """What the file's metadata depends on besides the arrays' shapes and dtypes."""
        key = [_class_name(model), model.get_config(), [weights.weight_names(layer) for layer in model.layers]]
        if not self.weights_only:
            key.append(fastfit_state(model))
            if _includes_optimizer(model, True):
                optimizer = model.optimizer
                key += [model._training_config(), type(optimizer).__name__, getattr(optimizer, "kind", None),
                        optimizer_state._slot_names(optimizer), frozenset(getattr(model, "_frozen", ()))]
        return key


# Optimizer attributes that training changes; they are saved as arrays, not in the metadata.
_OPTIMIZER_STATE = ("iterations", "m_schedule")


def _attribute_signature(model):
    """The model's, its layers' and its optimizer's attributes (names and the objects they hold).

    When it is the previous capture's, no attribute was set since, so nothing the metadata is made of can have
    changed, short of an in-place change inside an attribute's object; comparing it takes identity checks
    only, so a checkpoint computes no config while nothing was set.
    """
    signature = [type(model), tuple(model.layers)]
    for owner in (model,) + signature[1]:
        attributes = vars(owner)
        signature += (tuple(attributes), tuple(attributes.values()))
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        attributes = dict(vars(optimizer))
        for name in _OPTIMIZER_STATE:
            attributes.pop(name, None)
        signature += (type(optimizer), tuple(attributes), tuple(attributes.values()))
    return signature


def _shapes(arrays):
    return [(np.shape(a), np.asarray(a).dtype.str) for a in arrays]


def _equal(a, b):
    try:
        return bool(a == b)
    except (ValueError, TypeError):  # numpy arrays inside a config: compare as different (full capture)
        return False


def _same_sources(source_ids, arrays):
    """True when `arrays` are the objects written (`source_ids`), fresh 0-d ones (iterations) aside."""
    return len(source_ids) == len(arrays) and all(
        source == id(array) or (isinstance(array, np.ndarray) and array.ndim == 0)
        for source, array in zip(source_ids, arrays))


def save_weights(model, filepath, overwrite=True):
    """Save the layer weights only (Keras 2 `save_weights` layout: the weights group at the file root).

    Raises:
        FileExistsError: the file exists and `overwrite` is False.
        OSError: the folder does not exist or is not writable.
    """
    files.write_snapshot(filepath, weights_snapshot(model, copy=False), overwrite, "weights file")


def weights_snapshot(model, copy=True):
    """What `save_weights` writes, for `files.write_snapshot`; `copy`: capture the arrays as they are now."""
    content = snapshot.Snapshot(copy)
    write_weights(content, model)
    return content


def write_weights(h5file, model):
    """Write the layer weights at the root of an empty `h5py.File` or `Snapshot` (what `save_weights` writes)."""
    weights.write_layers(h5file, model.layers)
    attributes.write_short_text(h5file.attrs, "fastfit_version", __version__)


def fastfit_state(model):
    """Seeds that make a loaded model train exactly like the saved one (not part of Keras' config)."""
    state = {}
    seed = getattr(model, "_seed", None)
    if seed is not None:
        state["seed"] = int(seed)
    seeds = [getattr(layer, "_op_seed", None) for layer in model.layers]
    if any(seed is not None for seed in seeds):
        # By position in model.layers (like the weights): automatic layer names differ between processes.
        state["dropout_seeds"] = [None if seed is None else int(seed) for seed in seeds]
    return state


def restore_fastfit_state(model, state, where="load_model"):
    """Apply `fastfit_state` (seeds) to a model built from the same config.

    Raises:
        ValueError: a seed that is an integer outside 0..2**63-1 (no fastfit process draws one).
    """
    if not isinstance(state, dict):
        return
    seeds = state.get("dropout_seeds")
    for seed in [state.get("seed")] + (seeds if isinstance(seeds, list) else []):
        if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < 1 << 63:
            raise ValueError(f"{where}: the saved seed {seed} is outside 0..2**63-1: the file is corrupted or "
                             "crafted")
    if isinstance(state.get("seed"), int):
        model._seed = state["seed"]
    if isinstance(seeds, list) and len(seeds) == len(model.layers):
        for layer, seed in zip(model.layers, seeds):
            if isinstance(seed, int) and hasattr(layer, "_op_seed"):
                layer._op_seed = seed
    invalidate = getattr(model, "_invalidate", None)
    if callable(invalidate):
        invalidate()  # compiled engine networks captured the old dropout seeds


def _class_name(obj):
    return getattr(type(obj), "_keras_class_name", type(obj).__name__)


# -- reading -------------------------------------------------------------------------------------------------
def read_model(filepath: Any, build: Callable[[dict, Any], Any], custom_objects: dict | None = None,
               compile: bool = True) -> Any:
    """Read a model file written by `model.save` (fastfit, Keras 2, tf.keras or Keras 3's `.h5` writer).

    Arguments:
        filepath: str or path-like.
        build: `build(config, custom_objects)` returns the uncompiled model of a `{'class_name', 'config'}`
            model config (already converted to the Keras 2 form), e.g. `loading.model_from_config`.
        custom_objects, compile: as for `fastfit.saving.loading.load_model`.

    Raises:
        as `load_model`.
    """
    where = "load_model"
    with files.reading(filepath, where) as contents:
        label = f"{where} '{filepath}'"
        config = config_limits.parse(contents.attrs, "model_config", label)
        if config is None:
            raise ValueError(f"{where}: no model found in config of '{filepath}' (a file written by "
                             "save_weights holds weights only: build the model and call model.load_weights)")
        group = contents.groups.get("model_weights") or contents.groups.get("/")
        saved = weights.read_layers(group, label)
        budget = sum(_nbytes(weight) for _name, arrays in saved for weight in arrays)
        try:
            with config_limits.weight_budget(budget, label):
                model = build(config_compat.model_config(config), custom_objects)  # type: ignore[arg-type]  # checked inside
        except config_limits.TooLarge as error:
            raise ValueError(str(error)) from None
        except (TypeError, KeyError, AttributeError, IndexError, ValueError, OverflowError) as error:
            raise ValueError(f"{where}: cannot rebuild the model saved in '{filepath}' from its config: "
                             f"{type(error).__name__}: {error}") from None
        weights.assign(model, saved, contents.read, where=label)
        restore_fastfit_state(model, config_limits.parse(contents.attrs, "fastfit_state", label), label)
        training_config = config_limits.parse(contents.attrs, "training_config", label)
        if not compile:
            return model
        if training_config is None:
            warnings.warn(f"{where}: '{filepath}' has no training configuration, so the model was not "
                          "compiled; compile it yourself", UserWarning, stacklevel=3)
            return model
        _compile_from(model, training_config, custom_objects, label)
        saved_state = optimizer_state.read(contents, label)
        if saved_state is not None:
            optimizer_state.restore(model, saved_state, contents.read, label)
    return model


def _nbytes(weight):
    return int(np.prod(weight.shape, dtype=object)) * weight.dtype.itemsize


def _compile_from(model, training_config, custom_objects, where):
    try:
        optimizer_config = config_compat.optimizer_config(training_config["optimizer_config"])
        loss = config_compat.loss_name(training_config["loss"])
        metrics = config_compat.metric_names(training_config.get("metrics"))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise ValueError(f"{where}: the training configuration is incomplete or malformed "
                         f"({type(error).__name__}: {error}); load with compile=False and compile the model "
                         "yourself") from None
    resolved_metrics = _metrics_from(metrics, custom_objects, where)
    try:
        optimizer = optimizers.deserialize(optimizer_config, custom_objects)
        model.compile(optimizer=optimizer, loss=loss, metrics=resolved_metrics)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, OverflowError) as error:
        raise ValueError(f"{where}: cannot compile the model from its saved training configuration "
                         f"({type(error).__name__}: {error}); load with compile=False and compile the model "
                         "yourself") from None

def _metrics_from(names, custom_objects, where):
    """The saved metric names, custom ones replaced by their `custom_objects` entry (a function, a metric
    object, or a metric class, instantiated without arguments).

    Raises:
        ValueError: a name that is neither a built-in metric nor in `custom_objects`.
    """
    resolved = []
    for name in names:
        if isinstance(name, dict):  # a metric object's {'class_name', 'config'}
            try:
                resolved.append(metrics_module.deserialize(name))
            except ValueError as error:
                raise ValueError(f"{where}: {error}; load with compile=False and compile the model "
                                 "yourself") from None
            continue
        if isinstance(name, str) and not metrics_module.is_builtin(name):
            if name not in (custom_objects or {}):
                raise ValueError(f"{where}: the model was compiled with the metric {name!r}, which is not a "
                                 f"fastfit built-in: for a custom metric pass it to load_model(..., "
                                 f"custom_objects={{{name!r}: {name}}}), or load with compile=False and "
                                 "compile the model yourself")
            name = custom_objects[name]
            name = name() if isinstance(name, type) else name
        resolved.append(name)
    return resolved


def load_weights(model, filepath, by_name=False, skip_mismatch=False):
    """Load weights saved by `save_weights` or `model.save` (fastfit, Keras 2 or Keras 3 `.h5`) into `model`.

    Arguments:
        by_name: match layers by name (others keep their weights); default: by order among layers with weights.
        skip_mismatch: with `by_name`, skip (with a warning) layers whose weights do not fit.

    Raises:
        FileNotFoundError: no such file. ValueError: not a weights file, corrupted file, different layer count,
            or a weight shape that does not match (names the layer and both shapes); the model is unchanged.
    """
    where = "load_weights"
    with files.reading(filepath, where) as contents:
        group = contents.groups.get("/") or contents.groups.get("model_weights")
        saved = weights.read_layers(group, f"{where} '{filepath}'")
        weights.assign(model, saved, contents.read, by_name=by_name, skip_mismatch=skip_mismatch,
                       where=f"{where} '{filepath}'")
