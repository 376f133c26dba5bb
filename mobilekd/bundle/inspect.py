"""`mobilekd bundle inspect`: what is in a bundle, as tables (files, inputs/outputs, metrics),
read from its manifest only: nothing is executed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mobilekd.bundle.archive import DEFAULT_MAX_BYTES
from mobilekd.errors import BundleError


def read_bundle_manifest(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """The manifest of a bundle folder or zip; BundleError when unreadable or not schema-valid."""
    from mobilekd.bundle.manifest import schema_errors
    from mobilekd.bundle.verify import open_bundle, read_manifest

    with open_bundle(path, max_bytes=max_bytes) as root:
        manifest = read_manifest(root)
    errors = schema_errors(manifest)
    if errors:
        raise BundleError(f"{path}: manifest.json does not match its schema: {errors[0]} "
                          "(run `mobilekd bundle verify` for every problem)")
    return manifest


def tables(manifest: dict[str, Any]) -> list[Table]:
    m = manifest
    files = Table(title=f"{m['pipeline']['name']} (pipeline version {m['pipeline']['version']}, "
                        f"mobilekd {m['mobilekd_version']}, task {m['task']})")
    for col in ("file", "format", "variant", "bytes", "needs", "parity", "sha256"):
        files.add_column(col, justify="right" if col == "bytes" else "left")
    for f in m["files"]:
        rt = f["min_runtime"]
        need = f"{rt['runtime']} {rt['min_version'] or '?'}" + (f" (opset {rt['opset']})" if "opset" in rt else "")
        files.add_row(f["path"], f["format"], f["variant"], str(f["bytes"]), need,
                      f["parity"]["status"] if f["parity"] else "-", f["sha256"][:12])
    io = Table(title="inputs and outputs")
    for col in ("file", "kind", "name", "dtype", "shape", "range"):
        io.add_column(col)
    seen: set[str] = set()
    for f in m["files"]:
        key = str((f["inputs"], f["outputs"]))
        if key in seen:
            continue
        seen.add(key)
        for kind in ("inputs", "outputs"):
            for t in f[kind]:
                rng = f"{t['low']:g}..{t['high']:g}" if t["low"] is not None and t["high"] is not None else ""
                io.add_row(f["path"], kind[:-1], t["name"], t["dtype"], "x".join(map(str, t["shape"])), rng)
    metrics = Table(title="metrics (held-out test split)")
    names = sorted({k for v in m["metrics"].values() for k in v.get("metrics", {})})
    for col in ("model", "params", *names):
        metrics.add_column(col, justify="left" if col == "model" else "right")
    for model, v in m["metrics"].items():
        metrics.add_row(model, str(v.get("params") or ""),
                        *[f"{v['metrics'][n]:.4f}" if n in v.get("metrics", {}) else "" for n in names])
    out = [files, io, metrics]
    if m["gate"] is not None:
        gate = Table(title=f"gate: {'passed' if m['gate']['passed'] else 'FAILED'}")
        for col in ("check", "limit", "value", "passed"):
            gate.add_column(col)
        for c in m["gate"]["checks"]:
            gate.add_row(c["name"], f"{c['kind']} {c['limit']:g}", f"{c['value']:.4g}", "yes" if c["passed"] else "NO")
        out.append(gate)
    return out


def print_manifest(manifest: dict[str, Any], console: Console) -> None:
    for t in tables(manifest):
        console.print(t)
    v = manifest["vocabulary"]
    post = manifest["postprocessing"]
    console.print(f"vocabulary: {v['path']} ({v['kind']}, {v['size']} entries); output: {post['output']}, "
                  f"activation {post['activation']}, top {post['top_k']}; golden: {manifest['golden']['path']} "
                  f"({manifest['golden']['samples']} samples)", highlight=False, soft_wrap=True)
