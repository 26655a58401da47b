"""`cthulhu.pantheon`: the models under their cthulhu names (`Pile` = Sequential, `Lump` = Model).

Upstream attaches the renamed methods to its model classes when `cthulhu.pantheon` is imported
(`Pile.summon = Pile.fit`, `Pile.conjure = Pile.compile`). `Pile` and `Lump` *are* `Sequential` and `Model`
(spec: every alias is the original object), so this module does the same to `Model`: once `fastfit.cthulhu`
is imported, every model has `summon` (= `fit`) and `conjure` (= `compile`). This is the one place fastfit
sets an attribute of another module's class at import, because being a skin over those classes is the job of
this package.
"""
from fastfit.models import Model, Sequential, load_model, model_from_config, model_from_json, save_model

Pile = Sequential
Lump = Model
Model.summon = Model.fit  # type: ignore[attr-defined]
Model.conjure = Model.compile  # type: ignore[attr-defined]

__all__ = ["Pile", "Lump", "load_model", "save_model", "model_from_json", "model_from_config"]
