"""Any model in, one shape out: the exporters and runtimes take positional tensor inputs and a flat
tuple of named tensor outputs. `FlatModel` wraps a user's module so that models returning a tensor,
a tuple/list, a dict, a dataclass or a `transformers.ModelOutput`, and models taking keyword inputs
(`input_ids`, `attention_mask`, ...), all export the same way, with stable output names."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any, Sequence

import torch
from torch import nn

from mobilekd.errors import ExportError

SINGLE_OUTPUT = "output"  # the name of a lone tensor output when the user names none


def flatten_outputs(result: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs in a stable order. Mappings (dict, ModelOutput, which drops its None
    fields) keep their keys; dataclasses their field names; tuples/lists their index ('0', '1');
    nested structures join names with '_' ('0_hidden'). None entries are skipped."""
    if isinstance(result, torch.Tensor):
        return [(prefix or SINGLE_OUTPUT, result)]
    if result is None:
        return []
    if isinstance(result, Mapping):
        items = list(result.items())
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        items = [(f.name, getattr(result, f.name)) for f in dataclasses.fields(result)]
    elif isinstance(result, (tuple, list)):
        items = [(str(i), v) for i, v in enumerate(result)]
    else:
        raise ExportError(f"output {prefix or '<root>'!r} is a {type(result).__name__}; an exported model "
                          "returns tensors, or tuples/lists/dicts/dataclasses of tensors")
    flat: list[tuple[str, torch.Tensor]] = []
    for key, value in items:
        flat.extend(flatten_outputs(value, f"{prefix}_{key}" if prefix else str(key)))
    return flat


def keyword_inputs(model: nn.Module, names: Sequence[str]) -> bool:
    """Whether to call `model` by keyword: every input name is a parameter of its forward() and the
    names are not simply its leading positional parameters in order (then positional is the same)."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return False
    named = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not names or not all(n in named for n in names):
        return False
    return list(names) != named[: len(names)]


class FlatModel(nn.Module):
    """`model` with inputs passed by name where its forward() declares them, and outputs flattened
    to a tuple of the tensors named `keep` (all of them, in `names` order, when keep is empty)."""

    def __init__(self, model: nn.Module, input_names: Sequence[str], output_names: Sequence[str],
                 *, by_keyword: bool) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.by_keyword = by_keyword

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.by_keyword:
            result = self.model(**dict(zip(self.input_names, args)))
        else:
            result = self.model(*args)
        flat = dict(flatten_outputs(result))
        return tuple(flat[n] for n in self.output_names)


def adapt(model: nn.Module, input_names: Sequence[str], example: tuple[torch.Tensor, ...],
          keep: Sequence[str] = ()) -> FlatModel:
    """Wrap `model` after one run on `example`, which fixes the output names. `keep` names must be
    among them; a single unnamed tensor output is called `keep[0]` when exactly one name is given."""
    by_keyword = keyword_inputs(model, input_names)
    with torch.no_grad():
        result = model(**dict(zip(input_names, example))) if by_keyword else model(*example)
    flat = flatten_outputs(result)
    names = [n for n, _ in flat]
    if not flat:
        raise ExportError(f"{type(model).__name__} returned no tensor; an exported model must return at least one")
    if isinstance(result, torch.Tensor) and len(keep) == 1:
        return _Renamed(FlatModel(model, input_names, names, by_keyword=by_keyword), keep[0])
    unknown = [k for k in keep if k not in names]
    if unknown:
        raise ExportError(f"--output {unknown}: the model's outputs are {names}; name some of those")
    return FlatModel(model, input_names, list(keep) or names, by_keyword=by_keyword)


class _Renamed(FlatModel):
    """A single-tensor model whose output the user named (e.g. 'logits')."""

    def __init__(self, inner: FlatModel, name: str) -> None:
        super().__init__(inner.model, inner.input_names, [name], by_keyword=inner.by_keyword)

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        result = self.model(**dict(zip(self.input_names, args))) if self.by_keyword else self.model(*args)
        return (result,)


def dynamic_shapes_for(model: nn.Module, shapes: Any) -> Any:
    """torch.export matches dynamic_shapes to forward()'s parameters: a `forward(*args)` (FlatModel)
    takes the per-input tuple as its one parameter."""
    if shapes is None or not isinstance(shapes, tuple):
        return shapes
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return shapes
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return (shapes,)
    return shapes
