"""`cthulhu.pantheon`: the models under their cthulhu names (`Pile` = Sequential, `Lump` = Model)."""
from fastfit.models import Model, Sequential, load_model, model_from_config, model_from_json, save_model

Pile = Sequential
Lump = Model

__all__ = ["Pile", "Lump", "load_model", "save_model", "model_from_json", "model_from_config"]
