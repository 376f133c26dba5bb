"""What a model costs to ship: bytes on disk, bytes after zip DEFLATE (what an APK/IPA store and
the download see), and weight bytes by precision (to check that int8 really is int8)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mobilekd.errors import ConfigError

if TYPE_CHECKING:
    import onnx
    import torch


class SizeReport(BaseModel):
    """`bytes` sums every file that makes up the model (an .mlpackage folder, an .onnx with its
    external-data files); `zipped_bytes` is the size of a zip archive (DEFLATE, level 6) of them,
    built in memory."""

    path: str
    bytes: int
    zipped_bytes: int
    files: int


def model_files(path: Path) -> list[Path]:
    """The files that make up a model: a folder's files, or a file plus the ONNX external-data
    files it names (torch.onnx.export(dynamo=True) writes `model.onnx.data` beside larger models)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"path: {str(path)!r} does not exist")
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    files = [path]
    if path.suffix == ".onnx":
        files += [path.parent / loc for loc in sorted(_onnx_external_locations(path))]
    return files


def _onnx_external_locations(path: Path) -> set[str]:
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    model = onnx.load(str(path), load_external_data=False)
    return {ExternalDataInfo(t).location for t in _onnx_initializers(model) if uses_external_data(t)}


def _onnx_initializers(model: "onnx.ModelProto") -> list[Any]:
    """Initializers of the main graph and of every subgraph (If/Loop bodies)."""
    from onnx import AttributeProto

    out, stack = [], [model.graph]
    while stack:
        graph = stack.pop()
        out.extend(graph.initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)
    return out


def size_report(path: Path) -> SizeReport:
    path = Path(path)
    files = model_files(path)
    root = path if path.is_dir() else path.parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for f in files:
            arcname = f.relative_to(root).as_posix()
            zf.write(f, arcname=f"{path.name}/{arcname}" if path.is_dir() else arcname)
    return SizeReport(path=str(path), bytes=sum(f.stat().st_size for f in files),
                      zipped_bytes=len(buf.getvalue()), files=len(files))


def weight_bytes_by_precision(model_or_onnx: "torch.nn.Module | onnx.ModelProto | Path") -> dict[str, int]:
    """Bytes of stored weights per dtype name ("float32", "int8", ...).

    ONNX (a path or a ModelProto): every initializer, sized from dims x dtype itemsize, so external
    data need not be read. nn.Module: every parameter and buffer (BatchNorm statistics and the int8
    weights a converted PT2E model keeps as buffers are shipped weights too), shared ones once.
    """
    if isinstance(model_or_onnx, (str, Path)):
        import onnx

        path = Path(model_or_onnx)
        if path.suffix != ".onnx" or not path.is_file():
            raise ConfigError(f"model_or_onnx: expected an existing .onnx file, got {str(path)!r}")
        model_or_onnx = onnx.load(str(path), load_external_data=False)
    import torch

    # A torch.fx.GraphModule has a `.graph` too, so test for the ONNX proto type itself.
    if not isinstance(model_or_onnx, torch.nn.Module) and type(model_or_onnx).__name__ == "ModelProto":
        return _onnx_weight_bytes(model_or_onnx)

    if not isinstance(model_or_onnx, torch.nn.Module):
        raise ConfigError(f"model_or_onnx: expected an nn.Module, an onnx.ModelProto or a .onnx path, "
                          f"got {type(model_or_onnx).__name__}")
    totals: dict[str, int] = {}
    seen: set[int] = set()
    tensors = list(model_or_onnx.parameters()) + list(model_or_onnx.buffers())
    for t in tensors:
        if id(t) in seen:
            continue
        seen.add(id(t))
        key = str(t.dtype).removeprefix("torch.")
        totals[key] = totals.get(key, 0) + t.numel() * t.element_size()
    return totals


def _onnx_weight_bytes(model: "onnx.ModelProto") -> dict[str, int]:
    import numpy as np
    from onnx import TensorProto, helper

    packed = {getattr(TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, n)}
    totals: dict[str, int] = {}
    for init in _onnx_initializers(model):
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type))
        numel = int(np.prod(init.dims, dtype=np.int64)) if init.dims else 1
        # 4-bit types store two values per byte
        nbytes = (numel + 1) // 2 if init.data_type in packed else numel * dtype.itemsize
        totals[dtype.name] = totals.get(dtype.name, 0) + nbytes
    return totals
