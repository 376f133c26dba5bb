"""Bytes on disk, zipped bytes, and weight bytes per dtype, checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilekd.bench.size import size_report, weight_bytes_by_precision
from mobilekd.errors import ConfigError


def test_zipped_is_smaller_for_a_compressible_file(tmp_path) -> None:
    f = tmp_path / "zeros.bin"
    f.write_bytes(bytes(100_000))
    r = size_report(f)
    assert r.bytes == 100_000 and r.files == 1
    assert r.zipped_bytes < 1_000  # 100 kB of zeros deflates to a few hundred bytes


def test_folder_is_summed_like_an_mlpackage(tmp_path) -> None:
    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")  # 2 bytes
    (pkg / "Data" / "weights.bin").write_bytes(b"a" * 1000)
    r = size_report(pkg)
    assert (r.bytes, r.files) == (1002, 2)
    assert r.zipped_bytes < r.bytes


def test_onnx_counts_external_data(tiny) -> None:
    r = size_report(tiny.onnx)
    data = tiny.onnx.with_name("tiny.onnx.data")
    expected = tiny.onnx.stat().st_size + (data.stat().st_size if data.exists() else 0)
    assert r.bytes == expected


def test_weight_bytes_by_precision(tiny) -> None:
    # Linear(16,8): 16*8 + 8 = 136 floats; Linear(8,4): 8*4 + 4 = 36 floats; 172 * 4 B = 688 B
    assert weight_bytes_by_precision(tiny.module) == {"float32": 688}
    assert weight_bytes_by_precision(tiny.onnx) == {"float32": 688}
    m = nn.Linear(4, 2)
    m.register_buffer("q", torch.zeros(10, dtype=torch.int8))
    # 4*2 + 2 = 10 floats = 40 B; 10 int8 = 10 B
    assert weight_bytes_by_precision(m) == {"float32": 40, "int8": 10}


def test_missing_path_is_a_user_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        size_report(tmp_path / "missing.pte")
