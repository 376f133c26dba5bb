"""Golden test vectors: a few real held-out inputs and, for each model file, the outputs it gives
on its own runtime, with the tolerance an app's test should apply on the device.

Encoding `mobilekd-golden-json/1` (golden.json): every tensor is {"dtype", "shape", "data"} with
`data` a flat row-major list. JSON because every app stack parses it without a NumPy reader; a
float32 printed by Python's shortest-repr float round-trips exactly, so nothing is lost. Nothing
here is ever unpickled: reading is json.loads plus numpy.asarray.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel

from mobilekd.export.types import Format, Tolerance
from mobilekd.specs import TensorSpec

ENCODING = "mobilekd-golden-json/1"
Feed = dict[str, np.ndarray]


class Expected(BaseModel):
    """One model file's expected outputs, one feed (output name -> array) per golden input."""

    path: str
    format: Format
    variant: str
    executed: bool  # False: this machine could not run the file (CoreML on Linux)
    source: Literal["file", "pytorch"]  # who produced `outputs`: the file itself, or the PyTorch student
    runtime: str
    tolerance: Tolerance
    agreement: Literal["top1", "topk"]
    k: int
    outputs: list[dict[str, Any]]


def encode(array: np.ndarray) -> dict[str, Any]:
    """An array as {"dtype", "shape", "data": flat row-major list}."""
    a = np.ascontiguousarray(array)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError("golden vectors must be finite; got NaN or Inf")
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.reshape(-1).tolist()}


def decode(obj: dict[str, Any]) -> np.ndarray:
    """The inverse of `encode`; ValueError when data and shape disagree."""
    flat = np.asarray(obj["data"], dtype=np.dtype(obj["dtype"]))
    shape = tuple(int(d) for d in obj["shape"])
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"{flat.size} values cannot fill shape {list(shape)}")
    return flat.reshape(shape)


def encode_feed(feed: Feed) -> dict[str, Any]:
    return {name: encode(v) for name, v in feed.items()}


def decode_feed(obj: dict[str, Any]) -> Feed:
    return {name: decode(v) for name, v in obj.items()}


def runtime_label(format: str, executed: bool) -> str:
    """Which runtime (and version) produced or would run the expectations."""
    package = {"onnx": "onnxruntime", "executorch": "executorch", "coreml": "coremltools"}[format]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if format == "coreml" and not executed:
        return f"not executed: CoreML needs macOS (spec read with coremltools {version})"
    return f"{package} {version}"


def file_outputs(format: str, path: Path, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 feeds: Sequence[Feed]) -> list[Feed]:
    """One file's outputs on every feed, named as the manifest names them (the file runs through
    `export.runtime.open_runtime`, the one way mobilekd runs a file)."""
    from mobilekd.export.runtime import open_runtime

    session = open_runtime(format, path, input_names=[s.name for s in inputs])  # type: ignore[arg-type]
    names = [s.name for s in outputs]
    result = []
    for feed in feeds:
        values = session.run(feed)
        if len(values) != len(names):
            raise ValueError(f"{path.name}: gave {len(values)} outputs, the manifest names {names}")
        result.append({n: np.asarray(v) for n, v in zip(names, values)})
    return result


def document(indices: Sequence[int], split: str, feeds: Sequence[Feed], expected: Sequence[Expected]) -> dict[str, Any]:
    """golden.json as a dict."""
    return {"encoding": ENCODING, "split": split, "indices": [int(i) for i in indices],
            "inputs": [encode_feed(f) for f in feeds], "expected": [e.model_dump(mode="json") for e in expected]}


def dumps(doc: dict[str, Any]) -> str:
    """Compact JSON (one line per tensor would be thousands of lines), newline-terminated."""
    return json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n"


def agreement_kind(task: str) -> Literal["top1", "topk"]:
    return "topk" if task == "ranking" else "top1"  # retrieval: only the cosine is checked
