"""`mobilekd bundle inspect`: what is in a bundle, as tables (files, inputs/outputs, metrics),
read from its manifest only: nothing is executed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

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


def tables(manifest: dict[str, Any]) -> list[Any]:
    m = manifest
    from mobilekd.tables import PARITY, fmt_bytes, gate_table, table

    files = table(f"{m['pipeline']['name']} (pipeline version {m['pipeline']['version']}, "
                  f"mobilekd {m['mobilekd_version']}, task {m['task']})",
                  ("file", "size", "parity", "sha256"), text=("file",))
    needs = table("runtime each file needs", ("file", "runtime", "min version", "opset"), text=("file", "runtime"))
    for f in m["files"]:
        rt = f["min_runtime"]
        status = f["parity"]["status"] if f["parity"] else "-"
        files.add_row(f["path"], fmt_bytes(f["bytes"]), PARITY.get(status, status), f["sha256"][:12])
        needs.add_row(Path(f["path"]).name, rt["runtime"], rt["min_version"] or "?", str(rt.get("opset", "-")))
    io = table("inputs and outputs", ("file", "kind", "name", "dtype", "shape", "range"),
               text=("file", "kind", "name", "dtype", "shape", "range"))
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
    names = sorted({k for v in m["metrics"].values() for k in v.get("metrics", {})})
    out = [files, needs, io]
    for i in range(0, max(len(names), 1), 4):  # at most 4 metric columns a table: a second table, never a cut one
        part = names[i:i + 4]
        metrics = table("metrics (held-out test split)" if i == 0 else None, ("model", "params", *part), text=("model",))
        for model, v in m["metrics"].items():
            metrics.add_row(model, f"{v.get('params') or 0:,}",
                            *[f"{v['metrics'][n]:.4f}" if n in v.get("metrics", {}) else "-" for n in part])
        out.append(metrics)
    if m["gate"] is not None:
        out.append(gate_table(m["gate"]))
    return out


def print_manifest(manifest: dict[str, Any], console: Console) -> None:
    for t in tables(manifest):
        console.print(t)
    v = manifest["vocabulary"]
    post = manifest["postprocessing"]
    console.print(f"vocabulary: {v['path']} ({v['kind']}, {v['size']} entries); output: {post['output']}, "
                  f"activation {post['activation']}, top {post['top_k']}; golden: {manifest['golden']['path']} "
                  f"({manifest['golden']['samples']} samples)", highlight=False, soft_wrap=True)
