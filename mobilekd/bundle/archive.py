"""The bundle's zip: written reproducibly, read defensively.

A bundle zip comes from elsewhere (CI artefact, e-mail, a colleague), so reading one must never
write outside its target folder (zip-slip: `../x`, `/etc/x`, `C:\\x`, symlink entries) and must
refuse archives that would expand beyond a stated size (zip bombs: the sizes in the headers are
checked first, and the bytes actually written are counted too, since headers can lie).
Writing uses fixed timestamps and sorted names, so the same folder always gives the same bytes.
"""

from __future__ import annotations

import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from mobilekd.errors import BundleError
from mobilekd.store import atomic_path

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB expanded: far above any phone model, far below a full disk
MAX_ENTRIES = 100_000
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip header can store
_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20


def write_zip(folder: Path, zip_path: Path) -> Path:
    """Zip every file under `folder` (paths relative to it, '/'-separated), reproducibly."""
    folder = Path(folder)
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    with atomic_path(Path(zip_path)) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                info = zipfile.ZipInfo(f.relative_to(folder).as_posix(), date_time=_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                with f.open("rb") as src, zf.open(info, "w") as dst:
                    while chunk := src.read(_COPY_CHUNK):
                        dst.write(chunk)
    return Path(zip_path)


def check_member_name(name: str) -> PurePosixPath:
    """The member's relative path, or BundleError for an absolute path, a drive, or a `..` part."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise BundleError(f"unsafe zip: member {name!r} has an absolute path; bundle members must be relative")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"unsafe zip: member {name!r} contains '..' and would be written outside the target folder")
    if not parts:
        raise BundleError(f"unsafe zip: member {name!r} has an empty path")
    return PurePosixPath(*parts)


def safe_members(zf: zipfile.ZipFile, *, max_bytes: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every member before anything is written: names, links, count and declared size."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise BundleError(f"unsafe zip: {len(infos)} members, more than the {MAX_ENTRIES} allowed")
    members, total = [], 0
    for info in infos:
        rel = check_member_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleError(f"unsafe zip: member {info.filename!r} is a symbolic link; links are refused")
        total += info.file_size
        if total > max_bytes:
            raise BundleError(f"zip expands beyond the limit: more than {max_bytes} bytes "
                              f"(--max-bytes); refusing to extract")
        members.append((info, rel))
    return members


def extract_zip(zip_path: Path, target: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Extract `zip_path` into `target` (created), safely. BundleError for a bad or unsafe zip."""
    zip_path, target = Path(zip_path), Path(target)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BundleError(f"{zip_path}: not a readable zip file ({e})") from e
    with zf:
        members = safe_members(zf, max_bytes=max_bytes)
        root = target.resolve()
        written = 0
        for info, rel in members:
            dest = (root / rel).resolve()
            if root != dest and root not in dest.parents:  # defence in depth; check_member_name refuses these
                raise BundleError(f"unsafe zip: member {info.filename!r} resolves outside {root}")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, atomic_path(dest) as tmp, tmp.open("wb") as out:
                    while chunk := src.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > max_bytes:
                            raise BundleError(f"zip expands beyond the limit: more than {max_bytes} bytes "
                                              "were written (its headers understate the sizes); refusing")
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, zlib.error) as e:
                raise BundleError(f"{zip_path}: member {info.filename!r} is corrupt ({e})") from e
    return target
