import numpy as np
import pytest

from mobilekd.data import digits
from mobilekd.errors import ConfigError, DataError


def test_digits_split_and_scale():
    ds = digits.load(None, seed=0)
    # 1,797 images: test = ceil(0.2 * 1797) = 360; val share of the remaining 1,437 is
    # 0.1 / 0.8 = 0.125 -> ceil(179.6) = 180; train = 1437 - 180 = 1257.
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1257, 180, 360)
    x = ds.train.inputs["image"]
    assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8)
    assert x.min() == 0.0 and x.max() == 1.0  # 16 / 16
    assert ds.info.labels == tuple("0123456789") and ds.info.num_outputs == 10
    assert ds.info.inputs[0].shape == (1, 1, 8, 8)
    # stratified: every digit is in the test split with 35 or 36 images (about 360 / 10)
    assert set(np.bincount(ds.test.targets)) <= {35, 36, 37}
    again = digits.load(None, seed=0)
    assert np.array_equal(again.test.targets, ds.test.targets)
    assert not np.array_equal(digits.load(None, seed=1).test.inputs["image"], ds.test.inputs["image"])


def test_digits_options_checked(tmp_path):
    with pytest.raises(ConfigError, match="val_fraction"):
        digits.load(None, seed=0, val_fraction=1.5)
    with pytest.raises(DataError, match="missing"):
        digits.load(tmp_path / "missing", seed=0)
