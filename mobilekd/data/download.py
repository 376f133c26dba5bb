"""Where dataset files live, how they are verified and how a missing one is fetched.

A loader never trusts a file it has not checked: a local copy is compared with its pinned digest
(once per process, since hashing tens of MB on every load would dominate quick runs), and a
download goes to a temporary file that is renamed into place only after its digest matches, so a
half-finished or tampered download can never be read later.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from mobilekd import store
from mobilekd.errors import DataError

ENV_VAR = "MOBILEKD_DATA_DIR"
DEFAULT_DIR = Path("~/.cache/mobilekd/datasets")
TIMEOUT_S = 60.0

# (resolved path, size, mtime_ns, algorithm) -> hex digest; a file that changes is hashed again.
_VERIFIED: dict[tuple[str, int, int, str], str] = {}


def named_data_dir(data_dir: Path | str | None) -> Path | None:
    """The folder the user named: the explicit argument, then $MOBILEKD_DATA_DIR; None if neither.

    A named folder must exist: a typo must not silently trigger a download into a fresh folder.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataError(f"data_dir: folder {str(path)!r} does not exist (expected a folder holding the datasets)")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"${ENV_VAR}: folder {str(path)!r} does not exist (expected a folder holding the datasets)")
        return path
    return None


def resolve_data_dir(data_dir: Path | str | None) -> Path:
    """The named folder (`named_data_dir`), else ~/.cache/mobilekd/datasets, created on demand."""
    named = named_data_dir(data_dir)
    if named is not None:
        return named
    path = DEFAULT_DIR.expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, cached per process while its size and mtime stay the same."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, algorithm)
    if key not in _VERIFIED:
        if algorithm == "sha256":
            _VERIFIED[key] = store.sha256_file(path)
        else:
            h = hashlib.new(algorithm)
            with path.open("rb") as fh:
                while chunk := fh.read(store.CHUNK):
                    h.update(chunk)
            _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def verify(path: Path, expected: str, *, algorithm: str = "sha256") -> str:
    """Raise DataError naming both digests unless the file's digest is `expected`."""
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise DataError(
            f"{path}: {algorithm} is {actual}, expected {expected}; the file is corrupt or a different "
            f"version. Delete it to download the official release again, or replace it."
        )
    return actual


def fetch(urls: tuple[str, ...], dest: Path, *, expected: str | None, algorithm: str = "sha256",
          timeout: float = TIMEOUT_S) -> str:
    """Download the first reachable of `urls` to `dest` atomically; return the file's digest.

    `expected=None` is for publishers that pin no digest (UCI): the caller must then check the
    content itself. Raises DataError that says where to put the file when no url can be reached.
    """
    dest = Path(dest)
    errors: list[str] = []
    for url in urls:
        try:
            with store.atomic_path(dest) as tmp:
                h = hashlib.new(algorithm)
                with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as out:
                    while chunk := resp.read(store.CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                actual = h.hexdigest()
                if expected is not None and actual != expected.lower():
                    raise DataError(
                        f"download {url}: {algorithm} is {actual}, expected {expected}; refusing to keep it "
                        f"(a changed or corrupted release). Put a verified copy at {dest}."
                    )
            return actual
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            errors.append(f"{url}: {exc}")
    raise DataError(
        f"cannot download {dest.name} ({'; '.join(errors)}). Without a network, copy the file to {dest} "
        f"(or point data_dir / ${ENV_VAR} at a folder that holds it)."
    )
