"""Normalise model and training configs written by tf.keras / Keras 3 so fastfit's classes accept them.

Only keys whose value is neutral (the default that means "feature not used") are removed; a key that
asks for a feature fastfit lacks is left in place so the layer raises a clear error naming it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastfit import losses
from fastfit.metrics import ENGINE_METRIC_CLASSES

# key -> neutral values, per place they appear. Keras 3 adds these to configs that fastfit writes without.
_NEUTRAL_LAYER_KEYS = {"optional": (False,), "quantization_config": (None,), "lora_rank": (None,),
                       "lora_alpha": (None,), "synchronized": (False,), "autocast": (True,)}
_NEUTRAL_INITIALIZER_KEYS = {"input_axes": (None,), "output_axes": (None,)}
_NEUTRAL_OPTIMIZER_KEYS = {"weight_decay": (None, 0, 0.0), "clipnorm": (None,), "global_clipnorm": (None,),
                           "clipvalue": (None,), "use_ema": (False,), "ema_momentum": None,
                           "ema_overwrite_frequency": (None,), "loss_scale_factor": (None,),
                           "gradient_accumulation_steps": (None,), "jit_compile": None, "is_legacy_optimizer": None}


def _drop_neutral(config, neutral):
    for key, values in neutral.items():
        if key in config and (values is None or _is_in(config[key], values)):
            del config[key]


def _is_in(value, values):
    return any(value is v or (type(value) is type(v) and value == v) for v in values)


def model_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model config `{'class_name', 'config'}` with Keras 3 neutral extras removed."""
    if not isinstance(config, dict):
        raise ValueError(f"model_config must be a JSON object, got {type(config).__name__}")
    config = dict(config)
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
        inner = dict(inner)
        inner["layers"] = [_layer_entry(entry) for entry in inner["layers"]]
        config["config"] = inner
    return config


def _layer_entry(entry):
    if not isinstance(entry, dict):
        return entry
    entry = dict(entry)
    layer = entry.get("config")
    if isinstance(layer, dict):
        layer = dict(layer)
        _drop_neutral(layer, _NEUTRAL_LAYER_KEYS)
        for key, value in list(layer.items()):
            if key.endswith("_initializer") and isinstance(value, dict) and isinstance(value.get("config"), dict):
                init_config = dict(value["config"])
                _drop_neutral(init_config, _NEUTRAL_INITIALIZER_KEYS)
                layer[key] = dict(value, config=init_config)
        entry["config"] = layer
    return entry


def optimizer_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of `{'class_name', 'config'}` for `optimizers.deserialize`, without Keras 3 neutral extras."""
    config = dict(config)
    inner = dict(config.get("config") or {})
    _drop_neutral(inner, _NEUTRAL_OPTIMIZER_KEYS)
    config["config"] = inner
    return config


def for_keras_readers(optimizer_config_dict: dict[str, Any]) -> dict[str, Any]:
    """The optimizer config fastfit writes: `learning_rate`, and `decay` only when it is used.

    Keras 3 rejects unknown optimizer keys but accepts (and ignores, with a warning) `decay`.
    """
    config = dict(optimizer_config_dict)
    inner = dict(config.get("config") or {})
    if "lr" in inner and "learning_rate" not in inner:
        inner["learning_rate"] = inner.pop("lr")
    if inner.get("decay", None) in (0, 0.0):
        del inner["decay"]
    config["config"] = inner
    return config


def loss_name(loss: Any) -> str | Callable[..., Any] | losses.Loss | None:
    """A saved loss as `compile` takes it: names pass through, serialised loss objects (tf.keras or Keras 3)
    become loss objects (`fastfit.losses.deserialize`, which raises ValueError on anything malformed)."""
    if isinstance(loss, dict):
        return losses.deserialize(loss)
    if isinstance(loss, list) and len(loss) == 1:
        return loss_name(loss[0])
    return loss


def metric_names(metrics: Any) -> list[Any]:
    """Metrics as fastfit names; Keras 3 may nest them per output or serialise metric objects."""
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = [m for value in metrics.values() for m in (value if isinstance(value, list) else [value])]
    names = []
    for metric in metrics:
        if isinstance(metric, list):
            names.extend(metric_names(metric))
        elif isinstance(metric, dict) and metric.get("class_name") in ENGINE_METRIC_CLASSES:
            names.append(metric)  # a fastfit metric object: rebuilt from its config (metrics.deserialize)
        elif isinstance(metric, dict) and "class_name" in metric:
            inner = metric.get("config") or {}
            names.append(inner.get("name") or _snake(metric["class_name"]))
        elif metric is not None:
            names.append(metric)
    return names


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", str(name)).lower()
