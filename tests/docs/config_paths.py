"""Every key of a pipeline file as a dotted path, walked from the pydantic models: `a.b` for a
nested section, `a[].b` for the items of a list of sections, `a.<key>.b` for a mapping of them."""

from __future__ import annotations

import typing
from typing import Any, Iterator

from pydantic import BaseModel


def _models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """(suffix, model) for each section type inside an annotation: '' direct, '[]' list item,
    '.<key>' mapping value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and args:
        for suffix, m in _models(args[0]):
            yield "[]" + suffix, m
    elif origin is dict and len(args) == 2:
        for suffix, m in _models(args[1]):
            yield ".<key>" + suffix, m
    else:
        for a in args:
            yield from _models(a)


def config_paths(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, field in model.model_fields.items():
        path = prefix + name
        yield path, field
        for suffix, sub in _models(field.annotation):
            yield from config_paths(sub, path + suffix + ".")
