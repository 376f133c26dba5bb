"""The shared real datasets: $MOBILEKD_DATA_DIR, else ../shared/datasets beside the repository."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    env = os.environ.get("MOBILEKD_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
    if not (path / "online-retail").is_dir():
        pytest.skip(f"shared datasets not found at {path}")
    return path
