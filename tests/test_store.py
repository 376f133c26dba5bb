"""Atomic writes and digests: a failed writer leaves the old file intact and no temp file behind."""

from __future__ import annotations

import hashlib

import pytest

from mobilekd.store import atomic_path, sha256_file, size_bytes, sweep_temp, write_text


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.onnx"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".onnx" and tmp.parent == tmp_path  # writers pick formats by suffix
            tmp.write_text("half-writ")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_folder_artifacts_are_replaced_whole(tmp_path):
    target = tmp_path / "m.mlpackage"
    for text in ("one", "two"):
        with atomic_path(target) as tmp:
            (tmp / "Data").mkdir(parents=True)
            (tmp / "Data" / "w.bin").write_text(text)
    assert (target / "Data" / "w.bin").read_text() == "two"
    # Folder digest: sha256 over "relative path NUL file sha256" of each file, in sorted order.
    inner = hashlib.sha256(b"two").hexdigest()
    assert sha256_file(target) == hashlib.sha256(b"Data/w.bin\0" + inner.encode()).hexdigest()
    assert size_bytes(target) == 3


def test_sweep_removes_only_leftover_temp_files(tmp_path):
    (tmp_path / ".resume").mkdir()
    (tmp_path / ".resume" / ".teacher-abc.x1y2.tmp.pt").write_text("partial")
    (tmp_path / ".resume" / "teacher-abc.pt").write_text("complete")
    assert sweep_temp(tmp_path) == 1
    assert [p.name for p in (tmp_path / ".resume").iterdir()] == ["teacher-abc.pt"]
