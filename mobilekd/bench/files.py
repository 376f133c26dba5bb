"""Timing model files a user hands to `mobilekd bench`: which runtime a file's suffix means, what
inputs it takes (read from the file itself), batch-1 feeds for it (real rows of an .npz, or random
ones from its spec), and one measurement row per runtime x thread count."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mobilekd.bench.latency import LatencyOptions
from mobilekd.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

SUFFIX_FORMAT = {".onnx": "onnx", ".pte": "executorch", ".pt2": "torch"}


def file_format(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"FILE: {str(path)!r} does not exist")
    if path.suffix not in SUFFIX_FORMAT:
        raise ConfigError(f"FILE: {path.name!r}: expected a .onnx, .pte or .pt2 file "
                          "(CoreML .mlpackage cannot execute on Linux)")
    return SUFFIX_FORMAT[path.suffix]


# ExecuTorch ScalarType codes (c10) of the dtypes a .pte input can have.
_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64", 11: "bool"}


def input_spec(path: Path, fmt: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, batch-1 shape, numpy dtype) of each input, read from the file itself: ONNX graph
    inputs (a symbolic dim is taken as 1), the .pte's method metadata (inputs are positional, named
    input_0...), or the .pt2 program's user-input placeholders."""
    if fmt == "onnx":
        import onnx
        from onnx import helper

        g = onnx.load(str(path), load_external_data=False).graph
        inits = {i.name for i in g.initializer}
        out = []
        for vi in g.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tt.shape.dim)
            out.append((vi.name, shape, helper.tensor_dtype_to_np_dtype(tt.elem_type).name))
        return out
    if fmt == "executorch":
        from executorch.runtime import Runtime

        meta = Runtime.get().load_program(path).metadata("forward")
        out = []
        for i in range(meta.num_inputs()):
            t = meta.input_tensor_meta(i)
            if t.dtype() not in _SCALAR_TYPES:
                raise ConfigError(f"{path.name}: input {i} has ExecuTorch dtype code {t.dtype()}, which bench cannot feed")
            out.append((f"input_{i}", tuple(t.sizes()), _SCALAR_TYPES[t.dtype()]))
        return out
    from mobilekd.models.program import load_exported

    ep = load_exported(path)
    users = set(ep.graph_signature.user_inputs)
    out = []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in users:
            val = node.meta["val"]
            out.append((node.name, tuple(int(d) for d in val.shape), str(val.dtype).removeprefix("torch.")))
    return out


def feeds_for(path: Path, fmt: str, npz: Path | None, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """Batch-1 feeds for one file and a line saying where they came from."""
    import numpy as np

    spec = input_spec(path, fmt)
    described = ", ".join(f"{n}:{d}{list(s)}" for n, s, d in spec)
    if npz is None:
        rng = np.random.default_rng(seed)
        feeds = {n: (rng.standard_normal(s) if np.issubdtype(np.dtype(d), np.floating)
                     else rng.integers(0, 2, size=s)).astype(d) for n, s, d in spec}
        return feeds, (f"RANDOM inputs from the file's spec ({described}; floats N(0,1), integers 0-1); "
                       "pass --inputs samples.npz for real data")
    if not npz.is_file():
        raise ConfigError(f"--inputs: {str(npz)!r} does not exist (expected an .npz of input arrays)")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    names = [n for n, _, _ in spec]
    if set(names) <= set(arrays):
        chosen = [arrays[n] for n in names]
    elif fmt != "onnx" and len(arrays) == len(spec):
        chosen = list(arrays.values())  # positional formats: the npz's order
    else:
        raise ConfigError(f"--inputs {npz.name}: has arrays {sorted(arrays)}; {path.name} expects {described}")
    feeds = {}
    for (name, shape, dtype), arr in zip(spec, chosen):
        row = arr[:1] if arr.ndim == len(shape) else arr[None]
        if tuple(row.shape) != shape or not np.can_cast(row.dtype, dtype, casting="same_kind"):
            raise ConfigError(f"--inputs {npz.name}: array for {name} has shape {list(arr.shape)} dtype {arr.dtype}; "
                              f"expected rows of {list(shape[1:])} {dtype}")
        feeds[name] = np.ascontiguousarray(row.astype(dtype))
    return feeds, f"real inputs: first row of {npz} ({described})"


def file_formats(files: Sequence[Path]) -> dict[Path, str]:
    """Each file's format, every path checked before any is timed."""
    return {f: file_format(f) for f in files}


def measure_files(formats: dict[Path, str], options: LatencyOptions, *, inputs: Path | None, native: bool,
                  log: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Time every file (from `file_formats`) at every thread count, and .pte files with the C++
    runner too if `native`; rows as `mobilekd bench --json` writes them, and notes saying which
    inputs each file got."""
    from mobilekd.bench.latency import measure_latency
    from mobilekd.bench.native import measure_native
    from mobilekd.bench.size import size_report

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for f, fmt in formats.items():
        feeds, source = feeds_for(f, fmt, inputs)
        notes.append(f"{f}: {source}")
        size = size_report(f)
        for t in options.threads:
            stats = [measure_latency(fmt, f, feeds, threads=t, options=options)]  # type: ignore[arg-type]
            if fmt == "executorch" and native:
                nat = measure_native(f, feeds, threads=t, options=options)
                if nat is None:
                    notes.append(f"  {f.name}: native runner unavailable here (see {log}); Python runtime only")
                else:
                    stats.append(nat)
            for s in stats:
                rows.append({"file": str(f), "format": fmt, "bytes": size.bytes, "zipped_bytes": size.zipped_bytes,
                             "inputs": source, **s.model_dump(mode="json")})
    return rows, notes
