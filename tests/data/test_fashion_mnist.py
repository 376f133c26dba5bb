import gzip
import hashlib
import struct

import numpy as np
import pytest

from mobilekd.data import fashion_mnist as fm
from mobilekd.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    """IDX bytes: 0, 0, dtype code 0x08 (uint8), ndim, big-endian uint32 dims, values."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_read_idx_roundtrip_and_errors():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(fm.read_idx(_idx(images)), images)
    labels = np.array([7, 1], dtype=np.uint8)
    assert np.array_equal(fm.read_idx(_idx(labels)), labels)
    with pytest.raises(DataError, match="not an IDX"):
        fm.read_idx(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="needs 24 bytes"):
        fm.read_idx(_idx(images)[:-1])


def test_loads_official_idx_files(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    md5 = {}
    for part, n in (("train", 20), ("test", 10)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labs = (np.arange(n) % 10).astype(np.uint8)
        for fname, arr in zip(fm.IDX_FILES[part], (imgs, labs)):
            (folder / fname).write_bytes(gzip.compress(_idx(arr)))
            md5[fname] = hashlib.md5((folder / fname).read_bytes()).hexdigest()
    monkeypatch.setattr(fm, "IDX_MD5", md5)  # tiny stand-ins for the official files
    ds = fm.load(tmp_path, seed=0)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18, 2, 10)  # val = round(0.1 * 20)
    monkeypatch.setattr(fm, "IDX_MD5", {**md5, fm.IDX_FILES["test"][1]: "0" * 32})
    with pytest.raises(DataError, match="0" * 32):
        fm.load(tmp_path, seed=0)


def test_shared_copy(shared_data_dir):
    ds = fm.load(shared_data_dir, seed=0, limit_train=2000, limit_test=500)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (2000, 200, 500)  # val = 10% of the limit
    x = ds.train.inputs["image"]
    assert x.dtype == np.float32 and x.shape == (2000, 1, 28, 28)
    # normalised: background 0 -> (0 - 0.2860) / 0.3530 = -0.8102
    assert x.min() == pytest.approx(-0.2860 / 0.3530, abs=1e-5)
    assert abs(float(x.mean())) < 0.1  # the mean pixel is 0.2860, so the normalised mean is ~0
    assert len(np.unique(ds.train.targets)) == 10  # shuffled: every class in the first 2,000
    assert ds.info.labels[0] == "T-shirt/top" and ds.info.labels[9] == "Ankle boot"
    assert ds.info.preprocessing["mean"] == 0.2860 and ds.info.preprocessing["std"] == 0.3530
