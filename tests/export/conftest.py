"""Shared helpers for the export tests: verify feeds and the PyTorch reference of each tiny net."""

from __future__ import annotations

import numpy as np
import pytest

from mobilekd.export.runtime import random_feeds
from mobilekd.export.verify import torch_reference

from .nets import NETS, build

SAMPLES = 16


@pytest.fixture(scope="module")
def nets() -> dict:
    """name -> (model, input specs, task, feeds, reference outputs (N, C))."""
    out = {}
    for name, (_, specs, task) in NETS.items():
        model = build(name)
        feeds = random_feeds(specs, SAMPLES, seed=1)
        ref = torch_reference(model, [s.name for s in specs])
        out[name] = (model, specs, task, feeds, np.concatenate([ref(f) for f in feeds]))
    return out
