"""golden.json tensors: flat row-major lists that round-trip exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mobilekd.bundle.golden import decode, dumps, encode


def test_float32_round_trips_exactly_through_json() -> None:
    # float32(0.1) is 0.100000001490116119384765625; Python prints its float64 value as
    # 0.10000000149011612, which parses back to the same float32. -3.5 and 1e-8 likewise.
    a = np.array([[0.1, -3.5], [1e-8, 2.0]], dtype=np.float32)
    doc = encode(a)
    assert doc == {"dtype": "float32", "shape": [2, 2], "data": [0.10000000149011612, -3.5, 9.99999993922529e-09, 2.0]}
    back = decode(json.loads(dumps(doc)))
    assert back.dtype == np.float32 and back.shape == (2, 2)
    assert np.array_equal(back, a)


def test_int64_row_major_order() -> None:
    a = np.arange(6, dtype=np.int64).reshape(1, 2, 3)  # C order: 0 1 2 / 3 4 5
    assert encode(a)["data"] == [0, 1, 2, 3, 4, 5]
    assert decode(encode(a)).tolist() == [[[0, 1, 2], [3, 4, 5]]]


def test_shape_and_data_must_agree() -> None:
    with pytest.raises(ValueError, match="5 values cannot fill shape \\[2, 3\\]"):  # 2 * 3 = 6 != 5
        decode({"dtype": "float32", "shape": [2, 3], "data": [0, 1, 2, 3, 4]})


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        encode(np.array([np.nan], dtype=np.float32))
