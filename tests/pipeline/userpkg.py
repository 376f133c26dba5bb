"""Write a throwaway user package (factories and loaders, good and broken) into a folder on
sys.path, as a user's own code would sit next to their pipeline file."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

NETS = '''
import torch
from torch import nn
from mobilekd.models.vision import build_cnn


def build_student(num_outputs, in_channels=1, hidden=16):
    return build_cnn(num_outputs, in_channels, channels=(4, 8), hidden=hidden)


def build_bad(num_outputs, in_channels=1):
    raise ValueError("width must be even, got 7")


class Pair(nn.Module):
    def __init__(self, num_outputs):
        super().__init__()
        self.fc = nn.Linear(64, num_outputs)

    def forward(self, image):
        y = self.fc(image.flatten(1))
        return y, y


def build_tuple(num_outputs, in_channels=1):
    return Pair(num_outputs)
'''

DATA = '''
import numpy as np
from mobilekd.data import Dataset, Split
from mobilekd.data import digits


def load_tuple(data_dir=None, *, seed):
    ds = digits.load(seed=seed)
    return ds.train, ds.val


def load_float64(data_dir=None, *, seed):
    ds = digits.load(seed=seed)
    ds.train.inputs["image"] = ds.train.inputs["image"].astype(np.float64)
    return ds


def load_labels_out_of_range(data_dir=None, *, seed):
    ds = digits.load(seed=seed)
    ds.train.targets[0] = 42
    return ds


def load_npz(data_dir=None, *, seed, path=""):
    ds = digits.load(seed=seed)
    with np.load(path) as z:
        scale = float(z["scale"][0])
    ds.train.inputs["image"] = (ds.train.inputs["image"] * scale).astype(np.float32)
    return ds
'''


def write_userpkg(root: Path, name: str) -> str:
    """Create package `name` (nets.py, data.py) under `root`, put root on sys.path; returns name."""
    pkg = root / name
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(NETS))
    (pkg / "data.py").write_text(textwrap.dedent(DATA))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return name
