"""A tiny Linear-ReLU-Linear model (16 -> 8 -> 4) exported once per session to ONNX and to an
XNNPACK .pte, with one fixed batch-1 input and the eager output to compare against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn


@dataclass(frozen=True)
class TinyModel:
    module: nn.Module
    onnx: Path
    pte: Path
    x: np.ndarray
    y: np.ndarray


def build_tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    out = tmp_path_factory.mktemp("tiny")
    module = build_tiny()
    x = torch.randn(1, 16, generator=torch.Generator().manual_seed(1))
    program = torch.export.export(module, (x,))
    torch.onnx.export(module, (x,), str(out / "tiny.onnx"), dynamo=True, input_names=["x"], verbose=False)
    pte = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    (out / "tiny.pte").write_bytes(pte.buffer)
    with torch.no_grad():
        y = module(x).numpy()
    return TinyModel(module=module, onnx=out / "tiny.onnx", pte=out / "tiny.pte", x=x.numpy(), y=y)
