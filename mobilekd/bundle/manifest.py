"""manifest.json: the bundle's table of contents, checked against a versioned JSON Schema
(manifest.schema.json, shipped as package data) so that an app's build step, or
`mobilekd bundle verify`, can trust its shape before it trusts its contents."""

from __future__ import annotations

import importlib.metadata
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
GOLDEN = "golden.json"
MODEL_CARD = "MODEL_CARD.md"

# ONNX opset -> the first ONNX Runtime release that implements it (ONNX Runtime's version matrix,
# docs/Versioning.md / onnxruntime.ai/docs/reference/compatibility.html).
ORT_FOR_OPSET: dict[int, str] = {13: "1.6", 14: "1.8", 15: "1.9", 16: "1.12", 17: "1.13", 18: "1.14",
                                 19: "1.15", 20: "1.17", 21: "1.18", 22: "1.20", 23: "1.23"}
RUNTIME_PACKAGES = ("torch", "executorch", "onnxruntime", "onnx", "coremltools")


@lru_cache(maxsize=None)
def load_schema(name: str = "manifest.schema.json") -> dict[str, Any]:
    """A schema shipped in mobilekd/bundle (package data)."""
    return json.loads(resources.files("mobilekd.bundle").joinpath(name).read_text(encoding="utf-8"))


def schema_errors(doc: Any, schema_name: str = "manifest.schema.json") -> list[str]:
    """Every way `doc` breaks the schema, as 'at.path: message' lines (empty when valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def runtime_versions(onnx_opset: int | None) -> dict[str, Any]:
    """Versions of the libraries that wrote and checked the files (read from package metadata, so
    nothing heavy is imported)."""
    versions: dict[str, Any] = {name: package_version(name) for name in RUNTIME_PACKAGES}
    versions["onnx_opset"] = onnx_opset
    return versions


def min_runtime(format: str, path: Path, details: dict[str, Any], *, coreml_target: str | None) -> dict[str, Any]:
    """What a phone needs to load the file: the runtime, its minimum version and what decides it."""
    if format == "onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        # Tools (the ORT quantizer) declare every domain they know; list only those the nodes use.
        used = {node.domain or "ai.onnx" for node in model.graph.node} | {"ai.onnx"}
        imports = {(op.domain or "ai.onnx"): int(op.version) for op in model.opset_import
                   if (op.domain or "ai.onnx") in used}
        opset = imports.get("ai.onnx", 0)
        return {"runtime": "onnxruntime", "min_version": ORT_FOR_OPSET.get(opset),
                "tested_with": package_version("onnxruntime"), "opset": opset,
                "ir_version": int(model.ir_version), "opset_imports": imports}
    if format == "executorch":
        # A .pte runs on the ExecuTorch runtime release that wrote it or a newer one.
        version = package_version("executorch")
        return {"runtime": "executorch", "min_version": version, "tested_with": version,
                "backend": str(details.get("backend", "xnnpack"))}
    from mobilekd.export.coreml import inspect_coreml

    spec = inspect_coreml(path)
    target = spec.get("deployment_target")
    target = target if target and target != "unknown" else coreml_target
    return {"runtime": "coreml", "min_version": target, "tested_with": None,
            "minimum_deployment_target": target or "unknown",
            "specification_version": int(spec["specification_version"])}
