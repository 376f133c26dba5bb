"""Digits (ships with scikit-learn) and a tiny MLP: fast, real data for the training-loop tests."""

from __future__ import annotations

import pytest

from mobilekd.config import DataConfig
from mobilekd.data.registry import load_dataset


@pytest.fixture(scope="session")
def digits():
    return load_dataset(DataConfig(dataset="digits"), None, 0)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every training-loop test runs on one torch thread (see tests/conftest.py)."""
