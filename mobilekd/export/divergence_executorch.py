"""The first layer where an ExecuTorch lowering departs from PyTorch, found by exporting prefixes.

Why prefixes and not ExecuTorch's devtools: ETRecord + ETDump + `Inspector.calculate_numeric_gap`
was tried with executorch 1.5.1. The XNNPACK delegate logs one profiling event per kernel but no
intermediate outputs, and `calculate_numeric_gap` on an XNNPACK-delegated program raises
("Expected a proper Tensor but got None"), so it cannot see inside the delegate, where every layer
of a phone model runs. A prefix is exact instead: for one leaf module, a wrapper returns that
module's output (a forward hook), goes through the very route of the exporter
(`export_executorch`: torch.export, XNNPACK lowering, the constant-folding fallbacks) and runs on
the ExecuTorch runtime; its output is compared with PyTorch's output of that module.

What it diagnoses is the lowering of this model (model -> .pte), which is what fails when a file
exported from the model does not match it: a mis-lowered op, a wrong kernel, a constant folded
wrong. A file built from other weights than the model's has no diverging prefix (None).

Cost: a prefix export takes about as long as the export itself, so the ordered leaf modules are
bisected (a prefix is "bad" once its error passes JUMP_FLOOR; fp32 kernels stay near 1e-6, so this
is the jump the ONNX finder looks for), 1 + ceil(log2 n) exports, capped by `max_exports`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from mobilekd.errors import MobileKDError
from mobilekd.export.divergence import JUMP_FLOOR, _module_outputs, relative_error
from mobilekd.export.types import ExecuTorchOptions
from mobilekd.specs import TensorSpec

log = logging.getLogger(__name__)

MAX_EXPORTS = 12  # 1 + log2: enough for 2048 leaf modules


class _Prefix(nn.Module):
    """`model` cut after `layer`: runs the model and returns what a forward hook saw `layer` return
    (the rest of the graph has no use and is dropped by torch.export's dead-code elimination)."""

    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        self.model = model
        self.layer = layer

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        seen: list[torch.Tensor] = []

        def record(_m: nn.Module, _args: Any, out: Any) -> None:
            seen.append(out[0] if isinstance(out, (tuple, list)) else out)

        handle = self.model.get_submodule(self.layer).register_forward_hook(record)
        try:
            self.model(*args)
        finally:
            handle.remove()
        return seen[0]


def leaf_layers(model: nn.Module, feed: dict[str, np.ndarray],
                input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """PyTorch outputs of the leaf modules called once with a tensor output, in forward order."""
    leaves = {n for n, m in model.named_modules() if n and next(m.children(), None) is None}
    return _module_outputs(model, feed, input_names, leaves)


def find_executorch_divergence(model: nn.Module, feed: dict[str, np.ndarray], inputs: Sequence[TensorSpec], *,
                               options: ExecuTorchOptions | None = None,
                               max_exports: int = MAX_EXPORTS) -> str | None:
    """Name the first leaf module (`path (Class)`) whose ExecuTorch output departs from PyTorch's
    on `feed` (an fp32 model; inputs positional in `inputs` order), or None when the last leaf
    module still agrees (the difference comes after it) or no prefix could be exported."""
    names = [s.name for s in inputs]
    reference = leaf_layers(model, feed, names)
    layers = list(reference)
    if not layers:
        return None
    with tempfile.TemporaryDirectory(prefix="mobilekd-prefix-") as tmp:
        budget = iter(range(max_exports))

        def bad(i: int) -> bool:
            if next(budget, None) is None:
                raise _OutOfBudget
            got = _run_prefix(model, layers[i], feed, inputs, Path(tmp) / f"prefix_{i}.pte", options)
            err = relative_error(reference[layers[i]], got) if got.size == reference[layers[i]].size else math.inf
            log.debug("executorch prefix %s: relative error %.3g", layers[i], err)
            return not err <= JUMP_FLOOR

        try:
            if not bad(len(layers) - 1):
                return None
            good, first_bad = -1, len(layers) - 1  # invariant: layers[first_bad] is bad, layers[good] is not
            while first_bad - good > 1:
                mid = (good + first_bad) // 2
                if bad(mid):
                    first_bad = mid
                else:
                    good = mid
        except _OutOfBudget:
            log.warning("executorch divergence: stopped after %d prefix exports", max_exports)
            return None
        except (MobileKDError, RuntimeError, ValueError, NotImplementedError) as e:  # a prefix that cannot lower
            log.warning("executorch divergence: a prefix could not be exported or run (%s)", e)
            return None
    layer = layers[first_bad]
    return f"{layer} ({type(model.get_submodule(layer)).__name__})"


class _OutOfBudget(Exception):
    pass


def _run_prefix(model: nn.Module, layer: str, feed: dict[str, np.ndarray], inputs: Sequence[TensorSpec],
                path: Path, options: ExecuTorchOptions | None) -> np.ndarray:
    """Export the prefix ending at `layer` as the exporter does and run it on the ExecuTorch runtime."""
    from mobilekd.export.executorch import export_executorch
    from mobilekd.export.runtime import open_runtime

    with _quiet():
        export_executorch(_Prefix(model, layer).eval(), inputs, ["prefix"], path, options or ExecuTorchOptions())
    return open_runtime("executorch", path, input_names=[s.name for s in inputs]).run(feed)[0]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
