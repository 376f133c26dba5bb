"""What a cache key must see besides the config: the source of the user's code behind each import
path, and the data files a loader read. Without these, editing a factory or replacing a data file
would leave every stage `cached` with stale numbers.

- Code: for `pkg.mod:fn` living outside site-packages, the sha256 of every .py file of its top-level
  package (`pkg/`; a lone module: that file); installed code: its distribution name and version.
- Data: every file the loader opened for reading (seen through a Python audit hook), with size,
  mtime and sha256. A later check trusts size+mtime when both match and re-hashes otherwise.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mobilekd.store import sha256_file

_MAX_FILES = 2000  # a package with more .py files than this is hashed by its first 2000 (sorted)


def _installed_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return sorted(str(Path(r).resolve()) for r in roots if r)


def _under(path: Path, roots: list[str]) -> bool:
    s = str(path)
    return any(s == r or s.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _is_site_packages(path: Path) -> bool:
    return "site-packages" in path.parts or "dist-packages" in path.parts


def code_source(spec: str) -> dict[str, Any] | None:
    """The fingerprint of the code behind `module.path:attr` (None for mobilekd's own code, which
    the version covers, and for a module that cannot be found, which validation reports)."""
    module = spec.partition(":")[0]
    top = module.split(".")[0]
    if not module or top == "mobilekd":
        return None
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    origin = Path(found.origin).resolve() if found.origin not in (None, "built-in", "frozen") else None
    locations = [Path(p).resolve() for p in (found.submodule_search_locations or [])]
    where = locations[0] if locations else origin
    if where is None:
        return {"module": top, "builtin": True}
    if _is_site_packages(where) or _under(where, _installed_roots()):
        dist = importlib.metadata.packages_distributions().get(top, [])
        if dist:
            return {"module": top, "distribution": dist[0], "version": importlib.metadata.version(dist[0])}
        return {"module": top, "installed": str(where.name)}
    files = sorted(where.rglob("*.py"))[:_MAX_FILES] if where.is_dir() else [where]
    base = where.parent
    return {"module": top, "files": {f.relative_to(base).as_posix(): sha256_file(f) for f in files
                                     if "__pycache__" not in f.parts}}


def code_sources(specs: list[str]) -> dict[str, Any]:
    out = {}
    for spec in specs:
        src = code_source(spec)
        if src is not None:
            out[spec] = src
    return out


# -- data files ------------------------------------------------------------------------------------
_local = threading.local()
_hooked = False
_SKIP_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".dylib", ".pth")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = getattr(_local, "seen", None)
    if seen is None or event != "open":
        return
    path, mode = args[0], args[1]
    if isinstance(path, (str, bytes, os.PathLike)) and (mode is None or "r" in str(mode)) and not isinstance(path, int):
        seen.add(os.fsdecode(path))


@contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Collect the paths opened for reading by this thread while inside the block."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed; it does nothing outside this block
        _hooked = True
    _local.seen = seen = set()
    try:
        yield seen
    finally:
        _local.seen = None


def data_files(paths: set[str], exclude: list[Path]) -> dict[str, dict[str, Any]]:
    """size, mtime and sha256 of each regular data file among `paths` (code, installed files, the
    run directory and files gone after the loader returned are left out)."""
    roots = _installed_roots() + [str(p.resolve()) for p in exclude]
    out: dict[str, dict[str, Any]] = {}
    for raw in sorted(paths):
        p = Path(raw).resolve()
        if p.suffix in _SKIP_SUFFIXES or _under(p, roots) or _is_site_packages(p) or not p.is_file():
            continue
        if p.parts[:2] in (("/", "proc"), ("/", "dev"), ("/", "sys")):
            continue
        st = p.stat()
        out[str(p)] = {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(p)}
    return out


def changed_data_files(recorded: dict[str, dict[str, Any]]) -> list[str]:
    """The recorded files that are gone or whose content changed (sha256 only when size or mtime moved)."""
    changed = []
    for path, rec in recorded.items():
        p = Path(path)
        try:
            st = p.stat()
        except OSError:
            changed.append(path)
            continue
        if st.st_size == rec.get("bytes") and st.st_mtime_ns == rec.get("mtime_ns"):
            continue
        if st.st_size != rec.get("bytes") or sha256_file(p) != rec.get("sha256"):
            changed.append(path)
    return changed


def describe_code_change(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human reasons why the code fingerprints differ ('source of userpkg/nets.py changed')."""
    reasons = []
    for spec in sorted(set(old) | set(new)):
        a, b = old.get(spec), new.get(spec)
        if a == b:
            continue
        if a is None or b is None or "files" not in a or "files" not in b:
            if b is not None and "version" in b:
                reasons.append(f"{b.get('distribution')} is now version {b['version']}")
            else:
                reasons.append(f"code behind {spec} changed")
            continue
        fa, fb = a["files"], b["files"]
        edited = [f for f in sorted(set(fa) | set(fb)) if fa.get(f) != fb.get(f)]
        reasons.extend(f"source of {f} changed" for f in edited[:5])
    return reasons
