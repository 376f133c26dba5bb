"""Read intermediate outputs of a model by module name (forward hooks), for hints and RKD.

The YAML names layers as `named_modules()` does (`features.6`, `embedding`); a name that does not
exist fails before training with the list of names that do.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Self

import torch
from torch import nn

from mobilekd.errors import ConfigError


def find_module(model: nn.Module, name: str, key: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    names = [n for n in modules if n]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"{key}: no module named {name!r} in {type(model).__name__}{hint} "
                      f"(modules: {', '.join(names[:40])}{' ...' if len(names) > 40 else ''})")


class FeatureTaps:
    """Forward hooks that keep the latest output of each named module (a dict name -> tensor).

    Use as a context manager so the hooks are removed even if training stops with an error.
    """

    def __init__(self, model: nn.Module, names: Sequence[str], key: str):
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []
        for name in dict.fromkeys(names):
            module = find_module(model, name, key)
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            if not isinstance(output, torch.Tensor):
                raise ConfigError(f"module {name!r} returns {type(output).__name__}; hints need a tensor output")
            self.outputs[name] = output

        return hook

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.outputs[name]

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.outputs.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@torch.no_grad()
def probe_shapes(model: nn.Module, names: Sequence[str], example: tuple[torch.Tensor, ...],
                 key: str) -> dict[str, tuple[int, ...]]:
    """Shape (without batch) of each named module's output on one example batch."""
    was_training = model.training
    model.eval()
    try:
        with FeatureTaps(model, names, key) as taps:
            model(*example)
            return {n: tuple(taps[n].shape[1:]) for n in names}
    finally:
        model.train(was_training)
