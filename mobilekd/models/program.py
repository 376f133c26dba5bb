"""Loading torch.export programs (.pt2): how pruned and int8 models travel between stages."""

from __future__ import annotations

from pathlib import Path

import torch


def load_exported(path: Path | str) -> torch.export.ExportedProgram:
    """torch.export.load, with the quantized ops a PT2E int8 program uses registered first."""
    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401  registers quantized_decomposed ops

    return torch.export.load(str(path))


def load_program(path: Path | str) -> torch.nn.Module:
    return load_exported(path).module()
