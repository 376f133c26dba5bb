"""Running exported files from Python: ONNX Runtime (CPU execution provider), the ExecuTorch runtime
(`executorch.runtime.Runtime`, with XNNPACK registered) and, on macOS only, CoreML through
coremltools. Also builds example and random inputs from `TensorSpec`s, since export (tracing) and
verify (random parity when no data is given) both need them.

A session is opened once and run many times: verify feeds hundreds of samples one by one."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch

from mobilekd.errors import ExportError
from mobilekd.export.types import Format
from mobilekd.specs import TensorSpec

NP_DTYPE: dict[str, type] = {
    "float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32,
    "uint8": np.uint8, "int8": np.int8, "bool": np.bool_,
}
TORCH_DTYPE: dict[str, torch.dtype] = {
    "float32": torch.float32, "float16": torch.float16, "int64": torch.int64, "int32": torch.int32,
    "uint8": torch.uint8, "int8": torch.int8, "bool": torch.bool,
}


def example_inputs(specs: Sequence[TensorSpec], *, batch: int | None = None, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """One example tensor per spec, for tracing: values in [low, high) where a range is declared,
    zeros otherwise. `batch` overrides the first dimension (a dynamic batch axis is traced at 2,
    because torch.export specialises sizes 0 and 1)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in specs:
        shape = tuple(spec.shape) if batch is None else (batch, *spec.shape[1:])
        dtype = TORCH_DTYPE[spec.dtype]
        if spec.low is None or spec.high is None:
            out.append(torch.zeros(shape, dtype=dtype))
        elif dtype.is_floating_point:
            out.append(torch.empty(shape).uniform_(spec.low, spec.high, generator=gen).to(dtype))
        else:
            out.append(torch.randint(int(spec.low), max(int(spec.high), int(spec.low) + 1), shape, generator=gen).to(dtype))
    return tuple(out)


def random_feeds(specs: Sequence[TensorSpec], count: int, *, seed: int = 0,
                 int_high: int = 2) -> list[dict[str, np.ndarray]]:
    """`count` batch-1 feeds of random values. Floats: uniform in [low, high) or standard normal
    when no range is declared; integers: [low, high) or [0, int_high)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {}
        for spec in specs:
            shape = (1, *spec.shape[1:])
            dtype = NP_DTYPE[spec.dtype]
            if np.issubdtype(dtype, np.floating):
                if spec.low is not None and spec.high is not None:
                    value = rng.uniform(spec.low, spec.high, size=shape)
                else:
                    value = rng.standard_normal(size=shape)
            else:
                low = int(spec.low) if spec.low is not None else 0
                high = int(spec.high) if spec.high is not None else int_high
                value = rng.integers(low, max(high, low + 1), size=shape)
            feed[spec.name] = value.astype(dtype)
        feeds.append(feed)
    return feeds


def output_specs(model: torch.nn.Module, example: tuple[torch.Tensor, ...],
                 output_names: Sequence[str]) -> list[TensorSpec]:
    """Run the model once in PyTorch and describe its output(s); the model contract is one tensor
    (logits or scores), but a tuple of tensors is described too."""
    if isinstance(output_names, str):
        raise TypeError("output_names must be a sequence of names, not a string")
    with torch.no_grad():
        result = model(*example)
    tensors = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(tensors) != len(output_names):
        raise ExportError(f"the model returns {len(tensors)} tensor(s) but output_names has "
                          f"{len(output_names)}: {list(output_names)}; give one name per output")
    by_torch = {v: k for k, v in TORCH_DTYPE.items()}
    specs = []
    for name, t in zip(output_names, tensors):
        if not isinstance(t, torch.Tensor) or t.dtype not in by_torch:
            raise ExportError(f"output {name!r} is {type(t).__name__} "
                              f"{getattr(t, 'dtype', '')}; expected a float/int tensor")
        specs.append(TensorSpec(name=name, dtype=by_torch[t.dtype], shape=tuple(t.shape)))
    return specs


def can_execute(format: Format) -> bool:
    """Whether this machine can run files of `format`. CoreML needs macOS (the Core ML framework)."""
    if format == "coreml":
        return platform.system() == "Darwin"
    return format in ("onnx", "executorch")


class Session(Protocol):
    """An opened model file: `run` takes one feed (input name -> array) and returns the outputs in
    the file's output order."""

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class OnnxSession:
    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(self._session.run(None, {k: np.ascontiguousarray(v) for k, v in feeds.items()}))


class ExecuTorchSession:
    """A .pte holds no input names; feeds are taken in `input_names` order (the export's TensorSpec
    order), or in the dict's order when none are given."""

    def __init__(self, path: Path, input_names: Sequence[str] | None = None) -> None:
        from executorch.runtime import Runtime

        self._method = Runtime.get().load_program(Path(path)).load_method("forward")
        self.input_names = list(input_names) if input_names is not None else None

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        names = self.input_names if self.input_names is not None else list(feeds)
        missing = [n for n in names if n not in feeds]
        if missing:
            raise ExportError(f"feed lacks input(s) {missing}; the .pte expects {names}")
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names]
        return [t.detach().numpy().copy() for t in self._method.execute(args)]


class CoreMLSession:
    def __init__(self, path: Path) -> None:
        import coremltools as ct

        self._model = ct.models.MLModel(str(path))
        self.output_names = [o.name for o in self._model.get_spec().description.output]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._model.predict(feeds)
        return [np.asarray(result[name]) for name in self.output_names]


def open_runtime(format: Format, path: Path, *, input_names: Sequence[str] | None = None) -> Session:
    """Load a file once for many `run` calls. Raises ExportError where this machine cannot run it."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"exported file {path} does not exist")
    if not can_execute(format):
        raise ExportError(f"{format} files cannot be executed on {platform.system()}; "
                          "CoreML needs macOS (inspect the spec with mobilekd.export.coreml.inspect_coreml)")
    if format == "onnx":
        return OnnxSession(path)
    if format == "executorch":
        return ExecuTorchSession(path, input_names)
    return CoreMLSession(path)


def run_file(format: Format, path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run one feed through a file (opens it each call: use `open_runtime` for many feeds)."""
    return open_runtime(format, path).run(feeds)
