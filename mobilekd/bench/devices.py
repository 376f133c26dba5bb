"""Phone latency ESTIMATES from a roofline: we cannot run on the phone, so we say how long a model
would take on a profile of one, label the number "estimate", and let the user fit the profile's
efficiency to one real measurement (`calibrate`).

Profiles come from the built-in profiles.yaml, then the user file (argument, $MOBILEKD_PROFILES,
or ~/.config/mobilekd/profiles.yaml), whose entries add to or replace the built-in ones by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from mobilekd.errors import ConfigError
from mobilekd.specs import StrictModel
from mobilekd.store import write_text

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "int8"]
BUILTIN_PROFILES = Path(__file__).with_name("profiles.yaml")


class Profile(StrictModel):
    """One phone CPU core: effective throughput, bandwidth, per-operator overhead, and the fitted
    `efficiency` by which the ideal roofline time is divided (1.0 until calibrated)."""

    name: str
    description: str = ""
    cpu: str = ""
    gflops_fp32: float = Field(gt=0)
    gflops_int8: float = Field(gt=0)
    mem_bandwidth_gbs: float = Field(gt=0)
    op_overhead_us: float = Field(ge=0)
    efficiency: float = Field(1.0, gt=0)
    calibrated: bool = False
    source: str = ""


class EstimateInputs(StrictModel):
    """What the roofline needs to know about a model."""

    macs: int = Field(ge=0)
    weight_bytes: int = Field(ge=0)
    activation_bytes: int = Field(ge=0)
    n_ops: int = Field(ge=0)
    precision: Precision = "fp32"


class Estimate(BaseModel):
    ms: float
    profile: str
    calibrated: bool
    label: Literal["estimate"] = "estimate"
    compute_ms: float = 0.0
    memory_ms: float = 0.0
    overhead_ms: float = 0.0


def user_profiles_path(path: Path | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get("MOBILEKD_PROFILES")
    return Path(env).expanduser() if env else Path.home() / ".config" / "mobilekd" / "profiles.yaml"


def _read_profiles_file(path: Path) -> dict[str, Profile]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    entries = doc.get("profiles", {}) if isinstance(doc, dict) else None
    if not isinstance(entries, dict) or set(doc) - {"profiles"}:
        raise ConfigError(f"{path}: expected a mapping with one key `profiles: {{NAME: {{...}}}}`")
    out = {}
    for name, fields in entries.items():
        try:
            out[name] = Profile(name=name, **(fields or {}))
        except (ValidationError, TypeError) as exc:
            raise ConfigError(f"{path}: profiles.{name}: {exc}") from exc
    return out


def load_profiles(path: Path | None = None, *, missing_ok: bool = False) -> dict[str, Profile]:
    """Built-in profiles updated by the user's file. An explicit `path` must exist unless
    `missing_ok` (calibrate creates it); the default user file may always be absent."""
    profiles = _read_profiles_file(BUILTIN_PROFILES)
    user = user_profiles_path(path)
    if path is not None and not missing_ok and not user.exists():
        raise ConfigError(f"profiles file {str(user)!r} does not exist")
    if user.exists():
        profiles.update(_read_profiles_file(user))
    return profiles


def get_profile(name: str, path: Path | None = None, *, missing_ok: bool = False) -> Profile:
    profiles = load_profiles(path, missing_ok=missing_ok)
    if name not in profiles:
        raise ConfigError(f"profile {name!r} is unknown; expected one of {', '.join(sorted(profiles))}")
    return profiles[name]


def estimate_latency(profile: Profile | str, macs: int, weight_bytes: int, activation_bytes: int,
                     n_ops: int, precision: Precision) -> Estimate:
    """ms = (max(2*macs / throughput, (weights + activations) / bandwidth) + n_ops * overhead) / efficiency."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if precision not in ("fp32", "int8"):
        raise ConfigError(f"precision: expected 'fp32' or 'int8', got {precision!r}")
    gflops = prof.gflops_int8 if precision == "int8" else prof.gflops_fp32
    compute_ms = 2.0 * macs / (gflops * 1e9) * 1e3
    memory_ms = (weight_bytes + activation_bytes) / (prof.mem_bandwidth_gbs * 1e9) * 1e3
    overhead_ms = n_ops * prof.op_overhead_us / 1e3
    ms = (max(compute_ms, memory_ms) + overhead_ms) / prof.efficiency
    return Estimate(ms=ms, profile=prof.name, calibrated=prof.calibrated, compute_ms=compute_ms,
                    memory_ms=memory_ms, overhead_ms=overhead_ms)


def calibrate(profile_name: str, estimate_inputs: EstimateInputs, measured_ms: float, *,
              path: Path | None = None) -> Profile:
    """Fit `efficiency` so that the estimate of `estimate_inputs` equals `measured_ms`, and store
    the calibrated profile in the user profiles file (atomically; other entries kept)."""
    if not measured_ms > 0:
        raise ConfigError(f"measured_ms: expected a positive number of milliseconds, got {measured_ms}")
    prof = get_profile(profile_name, path, missing_ok=True)
    ideal = estimate_latency(prof.model_copy(update={"efficiency": 1.0}),
                             **estimate_inputs.model_dump()).ms
    if ideal <= 0:
        raise ConfigError(f"estimate_inputs {estimate_inputs.model_dump()} give 0 ms on {profile_name!r}; "
                          "expected a model with MACs, bytes or operators")
    fitted = prof.model_copy(update={"efficiency": ideal / measured_ms, "calibrated": True})
    target = user_profiles_path(path)
    doc: dict[str, Any] = {"profiles": {}}
    if target.exists():
        doc = {"profiles": {n: p.model_dump(exclude={"name"}) for n, p in _read_profiles_file(target).items()}}
    doc["profiles"][profile_name] = fitted.model_dump(exclude={"name"})
    write_text(target, yaml.safe_dump(doc, sort_keys=False))
    return fitted


def calibrate_from_file(profile: str, model_path: Path, measured_ms: float, *,
                        path: Path | None = None) -> Profile:
    """`mobilekd bench calibrate PROFILE --model FILE --measured-ms X`: derive the estimate inputs
    from an .onnx (MACs, bytes, ops) or a .pte (bytes only, see estimate_inputs_from_file)."""
    return calibrate(profile, estimate_inputs_from_file(model_path), measured_ms, path=path)


def estimate_inputs_from_module(model: "torch.nn.Module", example: tuple["torch.Tensor", ...], *,
                                weight_bytes: int | None = None, precision: Precision = "fp32") -> EstimateInputs:
    """MACs from torch.utils.flop_counter (FLOPs / 2) on one batch-1 forward; activation bytes and
    operator count from the torch.export graph (every call_function output counted once).
    `weight_bytes` defaults to the module's parameters + buffers; pass the artifact's file size
    for a quantized export."""
    import torch

    from mobilekd.bench.size import weight_bytes_by_precision
    from mobilekd.compress.macs import count_macs

    model = model.eval()
    macs = count_macs(model, example)
    graph = torch.export.export(model, example).graph
    act_bytes = n_ops = 0
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        n_ops += 1
        vals = node.meta.get("val")
        for v in vals if isinstance(vals, (tuple, list)) else [vals]:
            if isinstance(v, torch.Tensor):
                act_bytes += v.numel() * v.element_size()
    if weight_bytes is None:
        weight_bytes = sum(weight_bytes_by_precision(model).values())
    return EstimateInputs(macs=macs, weight_bytes=weight_bytes,
                          activation_bytes=act_bytes, n_ops=n_ops, precision=precision)


def estimate_for_model(profile: Profile | str, model: "torch.nn.Module", example: tuple["torch.Tensor", ...], *,
                       weight_bytes: int | None = None, precision: Precision = "fp32") -> Estimate:
    """The phone estimate of an nn.Module (the bench stage's entry point)."""
    inputs = estimate_inputs_from_module(model, example, weight_bytes=weight_bytes, precision=precision)
    return estimate_latency(profile, **inputs.model_dump())


def estimate_inputs_from_file(model_path: Path) -> EstimateInputs:
    """ONNX: MACs of Conv/ConvTranspose/Gemm/MatMul (and their integer/QLinear forms) from inferred
    shapes, initializer bytes, bytes of every intermediate tensor counted once, node count, and
    int8 when integer initializers outweigh float ones. ExecuTorch .pte: the XNNPACK payload is
    opaque, so only bytes (the file size) are known; MACs, activations and ops are 0, which makes
    the estimate purely memory-bound and the fitted efficiency valid for that model's size class."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ConfigError(f"--model: {str(model_path)!r} is not a file")
    if model_path.suffix == ".pte":
        return EstimateInputs(macs=0, weight_bytes=model_path.stat().st_size, activation_bytes=0, n_ops=0)
    if model_path.suffix == ".onnx":
        return _onnx_estimate_inputs(model_path)
    raise ConfigError(f"--model: expected a .onnx or .pte file, got {model_path.name!r}")


# Operators whose MACs we count, and the input index of their weight (or second matrix).
_CONV = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL = {"MatMul": 1, "MatMulInteger": 1, "QLinearMatMul": 3, "Gemm": 1}


def _onnx_estimate_inputs(path: Path) -> EstimateInputs:
    """No installed library counts ONNX MACs (onnx-tool is not a dependency), so we count the
    operators that dominate compute; elementwise work is left to the memory term."""
    import numpy as np
    import onnx
    from onnx import helper, shape_inference

    from mobilekd.bench.size import weight_bytes_by_precision

    model = shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    g = model.graph
    shapes: dict[str, tuple[list[int], int]] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            shapes[vi.name] = ([d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim], tt.elem_type)
    for init in g.initializer:
        shapes[init.name] = (list(init.dims), init.data_type)

    def numel(name: str) -> int:
        return int(np.prod(shapes[name][0], dtype=np.int64)) if name in shapes else 0

    macs = act_bytes = 0
    for node in g.node:
        out = node.output[0] if node.output else ""
        if node.op_type in _CONV and out in shapes and node.input[_CONV[node.op_type]] in shapes:
            w = shapes[node.input[_CONV[node.op_type]]][0]  # [Cout, Cin/group, k...]
            macs += numel(out) * int(np.prod(w[1:], dtype=np.int64))
        elif node.op_type == "ConvTranspose" and node.input[0] in shapes and node.input[1] in shapes:
            w = shapes[node.input[1]][0]  # [Cin, Cout/group, k...]
            macs += numel(node.input[0]) * int(np.prod(w[1:], dtype=np.int64))
        elif node.op_type in _MATMUL and out in shapes and node.input[0] in shapes:
            a = shapes[node.input[0]][0]
            trans_a = any(at.name == "transA" and at.i for at in node.attribute)
            macs += numel(out) * (a[0] if node.op_type == "Gemm" and trans_a else a[-1])
        for o in node.output:
            if o in shapes and shapes[o][1]:
                act_bytes += numel(o) * np.dtype(helper.tensor_dtype_to_np_dtype(shapes[o][1])).itemsize
    weights = weight_bytes_by_precision(model)
    int_bytes = sum(v for k, v in weights.items() if k in ("int8", "uint8", "int4", "uint4"))
    precision: Precision = "int8" if int_bytes > sum(weights.values()) - int_bytes else "fp32"
    return EstimateInputs(macs=macs, weight_bytes=sum(weights.values()), activation_bytes=act_bytes,
                          n_ops=sum(1 for n in g.node if n.op_type != "Constant"), precision=precision)
