"""The bundle zip: reproducible to write, and safe to read (zip-slip, links, zip bombs)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from mobilekd.bundle.archive import check_member_name, extract_zip, write_zip
from mobilekd.errors import BundleError


def _folder(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "models" / "m.bin").write_bytes(bytes(range(10)))
    (root / "manifest.json").write_text("{}")
    return root


def test_write_zip_is_reproducible_and_round_trips(tmp_path: Path) -> None:
    src = _folder(tmp_path / "src")
    a, b = write_zip(src, tmp_path / "a.zip"), write_zip(src, tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()  # fixed timestamps + sorted names
    with zipfile.ZipFile(a) as zf:
        assert zf.namelist() == ["manifest.json", "models/m.bin"]
    out = extract_zip(a, tmp_path / "out")
    assert (out / "models" / "m.bin").read_bytes() == bytes(range(10))


@pytest.mark.parametrize("name", ["../evil.txt", "models/../../evil.txt", "..\\evil.txt"])
def test_refuses_dotdot_and_writes_nothing(tmp_path: Path, name: str) -> None:
    z = tmp_path / "bad.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr(name, "pwned")
    with pytest.raises(BundleError, match=r"contains '\.\.'"):
        extract_zip(z, tmp_path / "target" / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "target" / "evil.txt").exists()
    assert not (tmp_path / "target" / "out" / "manifest.json").exists()  # checked before any write


@pytest.mark.parametrize("name", ["/etc/evil", "C:/evil", "\\\\server\\evil"])
def test_refuses_absolute_paths(name: str) -> None:
    with pytest.raises(BundleError, match="absolute path"):
        check_member_name(name)


def test_accepts_dots_inside_names() -> None:
    assert str(check_member_name("./models/a..b.onnx")) == "models/a..b.onnx"


def test_refuses_symlink_members(tmp_path: Path) -> None:
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("models/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):
        extract_zip(z, tmp_path / "out")


def test_refuses_archives_expanding_beyond_the_limit(tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.bin", b"\0" * 600)
        zf.writestr("b.bin", b"\0" * 400)
    # 600 + 400 = 1000 bytes expanded: a 999-byte limit refuses it, a 1000-byte limit takes it.
    with pytest.raises(BundleError, match="expands beyond the limit: more than 999 bytes"):
        extract_zip(z, tmp_path / "out1", max_bytes=999)
    assert not (tmp_path / "out1" / "a.bin").exists()
    extract_zip(z, tmp_path / "out2", max_bytes=1000)
    assert (tmp_path / "out2" / "b.bin").stat().st_size == 400


def test_bad_zip_is_a_bundle_error(tmp_path: Path) -> None:
    z = tmp_path / "trunc.zip"
    z.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BundleError, match="not a readable zip"):
        extract_zip(z, tmp_path / "out")
