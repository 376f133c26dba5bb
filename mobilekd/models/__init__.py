"""Built-in models and the one way to build a model by name or import path.

A factory is called as `factory(num_outputs=N, **args)`; if it takes `in_channels`, `image_size`
or `max_len` and the YAML did not set them, they are filled from the dataset's input spec.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mobilekd.data import DatasetInfo
from mobilekd.errors import ModelError
from mobilekd.imports import import_object
from mobilekd.usercode import calling

if TYPE_CHECKING:  # torch is imported where a model is built: name checks stay light
    import torch
    from torch import nn

BUILTIN_MODELS: dict[str, str] = {
    "cnn": "mobilekd.models.vision:build_cnn",
    "mlp": "mobilekd.models.vision:build_mlp",
    "sasrec": "mobilekd.models.recsys:build_sasrec_teacher",
    "rec_student": "mobilekd.models.recsys:build_rec_student",
    "rec_teacher": "mobilekd.models.recsys:build_rec_teacher",
    "kws_resnet": "mobilekd.models.audio:build_kws_resnet",
    "ds_cnn": "mobilekd.models.audio:build_ds_cnn",
    "text_transformer": "mobilekd.models.text:build_text_transformer",
    "text_pooled": "mobilekd.models.text:build_pooled_embedding",
}


def check_model_name(key: str, name: str) -> None:
    """Refuse a model that is neither built in nor an import path, at validation time."""
    if name not in BUILTIN_MODELS and ":" not in name:
        raise ModelError(
            f"{key}: unknown model {name!r}; expected one of {', '.join(BUILTIN_MODELS)} or 'module.path:function'"
        )


def factory_for(name: str, key: str) -> "Callable[..., nn.Module]":
    check_model_name(key, name)
    return import_object(BUILTIN_MODELS.get(name, name), what=key)


def build_model(name: str, args: dict[str, Any], info: DatasetInfo, *, key: str) -> "nn.Module":
    """Build a model for `info`'s inputs and outputs; bad arguments name the model and the key."""
    from torch import nn

    factory = factory_for(name, key)
    kwargs = dict(args)
    params = inspect.signature(factory).parameters
    shape = info.inputs[0].shape
    derived = {"in_channels": shape[1] if len(shape) == 4 else None,
               "image_size": shape[-1] if len(shape) == 4 else None,
               "max_len": shape[1] if len(shape) == 2 else None,
               "vocab_size": int(info.inputs[0].high) if info.task == "retrieval" and info.inputs[0].high else None,
               "item_text": info.item_text or None}
    for pname, value in derived.items():
        if pname in params and pname not in kwargs and value is not None:
            kwargs[pname] = value
    unknown = [] if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) else \
        [k for k in kwargs if k not in params]
    if unknown:
        raise ModelError(f"{key}: {name!r} takes no argument(s) {', '.join(unknown)}; it takes "
                         f"{', '.join(p for p in params if p != 'num_outputs') or '(none)'}")
    if name in BUILTIN_MODELS:
        try:
            model = factory(num_outputs=info.num_outputs, **kwargs)
        except (TypeError, ValueError, RuntimeError) as e:  # a bad argument value, e.g. hidden: -5
            raise ModelError(f"{key}: cannot build {name!r} with args {args}: {e}") from None
    else:
        with calling(key, name):
            model = factory(num_outputs=info.num_outputs, **kwargs)
    if not isinstance(model, nn.Module):
        raise ModelError(f"{key}: {name!r} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def check_output(model: "nn.Module", example: "tuple[torch.Tensor, ...]", info: DatasetInfo, *, key: str,
                 name: str) -> None:
    """The contract every model meets before training: on a real batch, one float tensor of shape
    (batch, num_outputs). A forward that raises is the user's code failing (exit 2, named)."""
    import torch

    with torch.no_grad(), calling(key, name, action="failed on a real batch of the dataset with"):
        out = model(*example)
    batch = int(example[0].shape[0])
    # retrieval: a sentence embedding of any width (batch, dim); otherwise scores (batch, num_outputs)
    width = out.shape[-1] if info.task == "retrieval" and isinstance(out, torch.Tensor) and out.ndim == 2 else info.num_outputs
    expected = (f"one float tensor of shape ({batch}, dim) (batch, embedding)" if info.task == "retrieval"
                else f"one float tensor of shape ({batch}, {info.num_outputs}) (batch, num_outputs)")
    if not isinstance(out, torch.Tensor):
        kind = type(out).__name__ + (f" of {len(out)}" if isinstance(out, (tuple, list, dict)) else "")
        raise ModelError(f"{key}: {name!r} returned a {kind} on a real batch; expected {expected}")
    if not out.is_floating_point():
        raise ModelError(f"{key}: {name!r} returned dtype {out.dtype}; expected {expected}")
    if tuple(out.shape) != (batch, width):
        raise ModelError(f"{key}: {name!r} returned shape {tuple(out.shape)}; expected {expected}")


def load_state(model: "nn.Module", path: Any, *, key: str) -> "nn.Module":
    """Load a state dict saved with torch.save, never unpickling code (weights_only=True); a
    checkpoint that does not fit names the missing, unexpected and wrongly shaped keys."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{key}: checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as e:
        raise ModelError(f"{key}: {path} cannot be read as a weights-only torch file ({e})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{key}: {path}: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state)
                   if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:10]}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:10]}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(
                f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:10]))
        raise ModelError(f"{key}: checkpoint {path} does not fit the model: " + "; ".join(parts))
    model.load_state_dict(state)
    return model
