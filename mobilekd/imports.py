"""Resolve `module.path:function` strings, the one way a user's own code enters a pipeline."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from mobilekd.errors import ModelError


def import_object(spec: str, *, what: str) -> Callable[..., Any]:
    """Import `module.path:attr`; errors name the spec and what was expected."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"{what}: expected 'module.path:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelError(f"{what}: cannot import module {module_name!r} from {spec!r}: {e}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{what}: module {module_name!r} has no attribute {attr!r} (from {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"{what}: {spec!r} is not callable")
    return obj
