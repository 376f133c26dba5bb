"""`mobilekd bundle verify`: did the bundle arrive intact, and do its files still give the answers
it promises? Checks, in order: the manifest against its schema, every listed file's size and
sha256 (and that nothing unlisted rode along), then the golden vectors re-run on ONNX Runtime and
ExecuTorch. CoreML off macOS gets a spec check and `not_executed`, never `passed`.

A bundle that cannot be read at all (not a folder or zip, a bad or unsafe zip, no manifest) raises
BundleError (exit 2); anything that reads but differs is a failed `BundleCheck` (exit 1). Model files
whose digest differs are not run: a damaged flatbuffer must not reach a native runtime.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
from pydantic import BaseModel

from mobilekd.bundle.archive import DEFAULT_MAX_BYTES, extract_zip
from mobilekd.bundle.golden import decode_feed
from mobilekd.bundle.manifest import GOLDEN, MANIFEST, schema_errors
from mobilekd.errors import BundleError, MobileKDError
from mobilekd.store import sha256_file, size_bytes

Status = Literal["passed", "failed", "not_executed", "skipped"]


class BundleCheck(BaseModel):
    name: str  # "manifest schema", "sha256 models/x.pte", "unlisted files", "golden models/x.pte"
    status: Status
    detail: str = ""


class BundleReport(BaseModel):
    source: str
    checks: list[BundleCheck]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[BundleCheck]:
        return [c for c in self.checks if c.status == "failed"]


@contextmanager
def open_bundle(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Path]:
    """The folder holding manifest.json: `path` itself, or a zip safely extracted to a temp folder
    (the manifest may sit at the zip's root or inside one top-level folder)."""
    p = Path(path)
    if p.is_dir():
        yield _root(p, p)
    elif p.is_file():
        if not zipfile.is_zipfile(p):
            raise BundleError(f"{p}: not a bundle folder or a zip file")
        with tempfile.TemporaryDirectory(prefix="mobilekd-bundle-") as tmp:
            yield _root(extract_zip(p, Path(tmp) / "bundle", max_bytes=max_bytes), p)
    else:
        raise BundleError(f"{p}: does not exist (expected a bundle folder or its .zip)")


def _root(folder: Path, source: Path) -> Path:
    if (folder / MANIFEST).is_file():
        return folder
    subdirs = [d for d in folder.iterdir() if d.is_dir()] if folder.is_dir() else []
    if len(subdirs) == 1 and (subdirs[0] / MANIFEST).is_file():
        return subdirs[0]
    raise BundleError(f"{source}: no {MANIFEST} found (expected at the top of the bundle)")


def read_manifest(root: Path) -> Any:
    try:
        return json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{root / MANIFEST}: not readable JSON ({e})") from e


def verify_bundle(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> BundleReport:
    """Every check on a bundle folder or zip. BundleError when it cannot be read at all."""
    with open_bundle(path, max_bytes=max_bytes) as root:
        return BundleReport(source=str(path), checks=check_root(root, read_manifest(root)))


def check_root(root: Path, manifest: Any) -> list[BundleCheck]:
    errors = schema_errors(manifest)
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        return [BundleCheck(name="manifest schema", status="failed",
                            detail=f"{MANIFEST} does not match its schema: " + "; ".join(errors[:5]) + more)]
    checks = [BundleCheck(name="manifest schema", status="passed", detail=f"schema version {manifest['schema_version']}")]
    digest_checks = [_digest(root, e) for e in [*manifest["files"], *manifest["assets"]]]
    checks += digest_checks + [_unlisted(root, manifest)]
    intact = {c.name.removeprefix("sha256 ") for c in digest_checks if c.status == "passed"}
    checks += _golden(root, manifest, intact)
    if manifest.get("task") == "retrieval":  # search bundles: tokenizer, index and golden texts
        from mobilekd.bundle.search_verify import search_checks

        checks += search_checks(root, manifest, intact)
    return checks


def _inside(root: Path, rel: str) -> Path | None:
    p = (root / rel).resolve()
    return p if p == root.resolve() or root.resolve() in p.parents else None


def _digest(root: Path, entry: dict[str, Any]) -> BundleCheck:
    name = f"sha256 {entry['path']}"
    p = _inside(root, entry["path"])
    if p is None or not p.exists():
        return BundleCheck(name=name, status="failed", detail=f"{entry['path']} is listed in the manifest but missing")
    got_bytes, got_sha = size_bytes(p), sha256_file(p)
    if got_sha != entry["sha256"]:
        return BundleCheck(name=name, status="failed",
                           detail=f"{entry['path']}: sha256 {got_sha[:16]}... != manifest {entry['sha256'][:16]}... "
                                  f"({got_bytes} bytes, manifest says {entry['bytes']}): the file was changed or damaged")
    if got_bytes != entry["bytes"]:
        return BundleCheck(name=name, status="failed", detail=f"{entry['path']}: {got_bytes} bytes != manifest {entry['bytes']}")
    return BundleCheck(name=name, status="passed", detail=f"{got_bytes} bytes")


def _unlisted(root: Path, manifest: dict[str, Any]) -> BundleCheck:
    listed = [e["path"].rstrip("/") for e in [*manifest["files"], *manifest["assets"]]]
    links = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_symlink())
    if links:  # a link could point the digest (and the runtime) at a file outside the bundle
        return BundleCheck(name="unlisted files", status="failed",
                           detail=f"symbolic links are not allowed in a bundle: {', '.join(links[:10])}")
    extra = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        if rel != MANIFEST and not any(rel == x or rel.startswith(x + "/") for x in listed):
            extra.append(rel)
    if extra:
        return BundleCheck(name="unlisted files", status="failed",
                           detail=f"files not in the manifest: {', '.join(extra[:10])}")
    return BundleCheck(name="unlisted files", status="passed", detail="none")


def _golden(root: Path, manifest: dict[str, Any], intact: set[str]) -> list[BundleCheck]:
    rel = manifest["golden"]["path"]
    p = _inside(root, rel)
    try:
        doc = json.loads(p.read_text(encoding="utf-8")) if p is not None and p.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return [BundleCheck(name=f"golden {rel}", status="failed", detail=f"{rel}: not readable JSON ({e})")]
    if doc is None:
        return [BundleCheck(name=f"golden {rel}", status="failed", detail=f"{rel} is missing")]
    errors = schema_errors(doc, "golden.schema.json")
    if errors:
        return [BundleCheck(name=f"golden {rel}", status="failed", detail=f"{rel} does not match its schema: " + "; ".join(errors[:5]))]
    try:
        feeds = [decode_feed(f) for f in doc["inputs"]]
    except ValueError as e:
        return [BundleCheck(name=f"golden {rel}", status="failed", detail=f"{rel} inputs: {e}")]
    by_path = {e["path"]: e for e in doc["expected"]}
    return [_golden_file(root, f, by_path.get(f["path"]), feeds, manifest["task"], intact) for f in manifest["files"]]


def _golden_file(root: Path, f: dict[str, Any], expected: dict[str, Any] | None, feeds: list[dict[str, np.ndarray]],
                 task: str, intact: set[str]) -> BundleCheck:
    from mobilekd.export.types import ExportedModel, Tolerance
    from mobilekd.export.verify import verify_file

    name = f"golden {f['path']}"
    if expected is None:
        return BundleCheck(name=name, status="failed", detail=f"{GOLDEN} has no expected outputs for {f['path']}")
    if f["path"] not in intact:
        return BundleCheck(name=name, status="skipped", detail="not run: its sha256 check failed")
    problem = _feeds_match(feeds, f["inputs"]) or _outputs_match(expected, f["outputs"], len(feeds))
    if problem:
        return BundleCheck(name=name, status="failed", detail=problem)
    first = f["outputs"][0]["name"]
    reference = np.stack([np.asarray(o[first]["data"], dtype=np.float64) for o in expected["outputs"]])
    exported = ExportedModel(format=f["format"], variant=f["variant"], path=str(root / f["path"]), bytes=f["bytes"],
                             sha256=f["sha256"], inputs=f["inputs"], outputs=f["outputs"], scheme=f["scheme"])
    tolerance = Tolerance.model_validate(expected["tolerance"])
    try:
        parity = verify_file(exported, reference, feeds, task=task, tolerance=tolerance, k=expected["k"])  # type: ignore[arg-type]
    except (MobileKDError, RuntimeError, ValueError, *_runtime_errors()) as e:
        return BundleCheck(name=name, status="failed", detail=f"{f['path']} could not be run: {e}")
    if parity.status == "not_executed":
        return BundleCheck(name=name, status="not_executed", detail=parity.reason)
    if parity.status == "failed":
        return BundleCheck(name=name, status="failed",
                           detail=f"{f['path']} no longer gives its golden outputs: {parity.reason}")
    m = parity.metrics
    return BundleCheck(name=name, status="passed",
                       detail=f"{len(feeds)} samples, max_abs_err {m.max_abs_err:.3g}, cosine {m.cosine:.6f}" if m else "")


def _feeds_match(feeds: list[dict[str, np.ndarray]], specs: list[dict[str, Any]]) -> str:
    want = [s["name"] for s in specs]
    for i, feed in enumerate(feeds):
        if sorted(feed) != sorted(want):
            return f"{GOLDEN} input {i} has {sorted(feed)}, the manifest's inputs are {want}"
        for s in specs:
            a = feed[s["name"]]
            if str(a.dtype) != s["dtype"] or list(a.shape) != list(s["shape"]):
                return (f"{GOLDEN} input {i} {s['name']!r} is {a.dtype}{list(a.shape)}, "
                        f"the manifest says {s['dtype']}{list(s['shape'])}")
    return ""


def _outputs_match(expected: dict[str, Any], specs: list[dict[str, Any]], n: int) -> str:
    if len(expected["outputs"]) != n:
        return f"{GOLDEN} has {len(expected['outputs'])} expected outputs for {expected['path']}, but {n} inputs"
    first = specs[0]["name"]
    for i, out in enumerate(expected["outputs"]):
        if first not in out:
            return f"{GOLDEN} expected output {i} of {expected['path']} lacks {first!r}"
    return ""


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's own exception types (they derive from Exception directly, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    names = ("Fail", "InvalidArgument", "InvalidProtobuf", "InvalidGraph", "NoSuchFile", "NoModel",
             "RuntimeException", "NotImplemented", "ModelLoaded", "EPFail")
    return tuple(getattr(ort_state, n) for n in names if isinstance(getattr(ort_state, n, None), type))
