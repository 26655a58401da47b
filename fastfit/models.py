"""Models: `Sequential`, functional `Model`, and loading them back from configs and files."""
from __future__ import annotations

from fastfit._types import PathLike
from fastfit.engine.sequential import Sequential
from fastfit.engine.training import Model
from fastfit.saving.loading import load_model, model_from_config, model_from_json


def save_model(model: Model, filepath: PathLike, overwrite: bool = True, include_optimizer: bool = True) -> None:
    model.save(filepath, overwrite=overwrite, include_optimizer=include_optimizer)


__all__ = ["Sequential", "Model", "load_model", "save_model", "model_from_json", "model_from_config"]
