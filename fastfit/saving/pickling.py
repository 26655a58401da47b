"""`pickle.dumps(model)` and `copy.deepcopy(model)`: a model travels as its HDF5 model file, made in memory.

`Model.__reduce__` hands pickle `(model_from_image, (image, extras))`: `image` is the bytes of what
`model.save` would write (architecture, weights, training configuration, optimizer state with `iterations`,
and the shuffling and dropout seeds in `fastfit_state`), `extras` what the file does not hold (the model's
class, which rebuilds it with its `from_config`, the engine the model was compiled for, and the classes of
custom layers). So an unpickled model continues training exactly
as the original would, bit for bit: the same state that `BackupAndRestore` relies on to resume.

Trust: pickle bytes are made by a process for itself or for its workers (joblib, multiprocessing,
`copy.deepcopy`); unpickling data from anyone else already runs whatever code that data names, so this path
gives no protection against a hostile pickle and claims none. The image itself is still read by the reader of
`fastfit.saving.load_model` (`model_file.read_model`, from a private temporary file), so whatever checks that
function applies to files apply to pickled models too, and nothing in the image is executed.
"""
import io
import os
import tempfile

import h5py

from fastfit.saving import isolation, model_file


def model_image(model) -> bytes:
    """The bytes of the HDF5 file `model.save` would write (optimizer included), built in memory.

    Raises:
        ValueError: the model is not built yet (tf.keras's message).
    """
    model._require_built("pickle")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5file:
        model_file.write_model(h5file, model, include_optimizer=True)
    return buffer.getvalue()


def model_extras(model) -> dict:
    """What an unpickled model needs besides its file: the engine, and custom layer classes by Keras name
    (pickled by reference, as pickle does for any class)."""
    custom = {}
    for layer in model.layers:
        cls = type(layer)
        if not cls.__module__.startswith("fastfit."):
            custom[model_file._class_name(layer)] = cls
    return {"compiled": bool(model.compiled), "engine": model._core, "custom_objects": custom,
            "model_class": type(model)}


def model_from_image(image: bytes, extras: dict):
    """Rebuild a pickled model: read the image as `load_model` does, building the model with its class's
    `from_config`, then set the engine it was compiled for.

    Raises:
        ValueError: the pickle names no model class (made by an earlier fastfit build, which did not record
            it): load such a model from a file written with `model.save` instead.
    """
    from_config = getattr(extras.get("model_class"), "from_config", None)
    if not isinstance(extras.get("model_class"), type) or not callable(from_config):
        cls = extras.get("model_class")
        raise ValueError(f"unpickling a fastfit model: the pickle names no model class (got {cls!r:.100}); "
                         "it was made by an earlier fastfit build: save the model with model.save and load_model it")
    with tempfile.TemporaryDirectory(prefix="fastfit-unpickle-") as folder:
        path = os.path.join(folder, "model.h5")
        with open(path, "wb") as file:
            file.write(image)
        # The bytes came with the pickle, which is trusted as far as unpickling runs its code anyway: they take
        # the in-process reading path (structure and shape checks, no reader child), like a file of this process.
        isolation.remember_written(path)
        model = model_file.read_model(path, lambda config, custom: from_config(config["config"], custom),
                                      custom_objects=extras.get("custom_objects") or None,
                                      compile=bool(extras.get("compiled")))
    if model.compiled and extras.get("engine") is not None:
        model._core = extras["engine"]
        model._invalidate()
    return model
