import hashlib

import pytest

from mobilekd.data import download
from mobilekd.errors import DataError


def test_resolve_order(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    monkeypatch.setenv("MOBILEKD_DATA_DIR", str(b))
    assert download.resolve_data_dir(a) == a  # the argument wins over the env var
    assert download.resolve_data_dir(None) == b
    monkeypatch.delenv("MOBILEKD_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.resolve_data_dir(None) == tmp_path / "home" / ".cache" / "mobilekd" / "datasets"


def test_missing_dir_named(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="nope"):
        download.resolve_data_dir(tmp_path / "nope")
    monkeypatch.setenv("MOBILEKD_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="MOBILEKD_DATA_DIR.*gone"):
        download.resolve_data_dir(None)


def test_verify_names_both_digests(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    assert download.verify(f, good) == good
    with pytest.raises(DataError) as err:
        download.verify(f, "0" * 64)
    assert good in str(err.value) and "0" * 64 in str(err.value)
    # md5 of b"abc" is the RFC 1321 test vector
    assert download.verify(f, "900150983cd24fb0d6963f7d28e17f72", algorithm="md5")


def test_fetch_atomic_and_checked(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    dest = tmp_path / "out" / "file.bin"
    dest.parent.mkdir()
    assert download.fetch((src.as_uri(),), dest, expected=digest) == digest
    assert dest.read_bytes() == b"payload"
    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(DataError) as err:
        download.fetch((src.as_uri(),), bad, expected="f" * 64)
    assert digest in str(err.value) and "f" * 64 in str(err.value)
    assert not bad.exists() and list(bad.parent.iterdir()) == [dest]  # no temp file left behind


def test_fetch_offline_says_where(tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(DataError, match=f"copy the file to {dest}"):
        download.fetch(((tmp_path / "missing").as_uri(),), dest, expected=None)
