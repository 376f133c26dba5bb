"""Built-in models and the one way to build a model by name or import path.

A factory is called as `factory(num_outputs=N, **args)`; if it takes `in_channels`, `image_size`
or `max_len` and the YAML did not set them, they are filled from the dataset's input spec.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from mobilekd.data import DatasetInfo
from mobilekd.errors import ModelError
from mobilekd.imports import import_object

BUILTIN_MODELS: dict[str, str] = {
    "cnn": "mobilekd.models.vision:build_cnn",
    "mlp": "mobilekd.models.vision:build_mlp",
    "sasrec": "mobilekd.models.recsys:build_sasrec_teacher",
    "rec_student": "mobilekd.models.recsys:build_rec_student",
}


def check_model_name(key: str, name: str) -> None:
    """Refuse a model that is neither built in nor an import path, at validation time."""
    if name not in BUILTIN_MODELS and ":" not in name:
        raise ModelError(
            f"{key}: unknown model {name!r}; expected one of {', '.join(BUILTIN_MODELS)} or 'module.path:function'"
        )


def factory_for(name: str, key: str) -> Callable[..., nn.Module]:
    check_model_name(key, name)
    return import_object(BUILTIN_MODELS.get(name, name), what=key)


def build_model(name: str, args: dict[str, Any], info: DatasetInfo, *, key: str) -> nn.Module:
    """Build a model for `info`'s inputs and outputs; bad arguments name the model and the key."""
    factory = factory_for(name, key)
    kwargs = dict(args)
    params = inspect.signature(factory).parameters
    shape = info.inputs[0].shape
    derived = {"in_channels": shape[1] if len(shape) == 4 else None,
               "image_size": shape[-1] if len(shape) == 4 else None,
               "max_len": shape[1] if len(shape) == 2 else None}
    for pname, value in derived.items():
        if pname in params and pname not in kwargs and value is not None:
            kwargs[pname] = value
    try:
        model = factory(num_outputs=info.num_outputs, **kwargs)
    except TypeError as e:
        raise ModelError(f"{key}: cannot build {name!r} with args {args}: {e}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{key}: {name!r} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_state(model: nn.Module, path: Any, *, key: str) -> nn.Module:
    """Load a state dict saved with torch.save, never unpickling code (weights_only=True)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{key}: checkpoint {path} not found") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file; all mean the same to a user
        raise ModelError(f"{key}: cannot read checkpoint {path}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    result = model.load_state_dict(state, strict=False)
    own = model.state_dict()
    wrong_shape = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if result.missing_keys or result.unexpected_keys or wrong_shape:
        raise ModelError(
            f"{key}: checkpoint {path} does not fit the model: missing keys {result.missing_keys[:10]}, "
            f"unexpected keys {result.unexpected_keys[:10]}, wrong shapes {wrong_shape[:10]}"
        )
    return model
