"""Digits (ships with scikit-learn) and a tiny MLP: fast, real data for the training-loop tests."""

from __future__ import annotations

import pytest
import torch

from mobilekd.config import DataConfig
from mobilekd.data.registry import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset(DataConfig(dataset="digits"), None, 0)


@pytest.fixture(autouse=True)
def one_thread():
    # The CPU is shared; one thread is faster than two contended ones for these tiny models.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
