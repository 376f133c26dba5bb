"""bench stage: latency (batch 1, pinned threads, one subprocess per measurement) for each Python
runtime and, for .pte files, the native C++ runner an app uses; size on disk and zipped; MACs/FLOPs
and stored weight bytes per dtype; for named phone profiles, a roofline *estimate* labelled as such;
and the teacher and float student in torch eager, so the report can place them on the trade-off plot."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mobilekd.config import BenchConfig
from mobilekd.context import RunContext
from mobilekd.stages.verify import artifact_key, test_feeds


class BenchResult(BaseModel):
    latency: dict[str, list[dict[str, Any]]] = {}  # "format/variant" -> one entry per runtime x threads
    sizes: dict[str, dict[str, Any]] = {}
    estimates: dict[str, list[dict[str, Any]]] = {}
    compute: dict[str, dict[str, Any]] = {}  # "format/variant" -> {macs, flops, weight_bytes: {dtype: bytes}}
    eager: dict[str, dict[str, Any]] = {}  # model name (teacher, student...) -> LatencyStats at 1 thread
    notes: list[str] = []


def run(cfg: BenchConfig, ctx: RunContext) -> BenchResult:
    from mobilekd.bench.latency import measure_latency
    from mobilekd.bench.size import size_report
    from mobilekd.export.runtime import can_execute

    exported = ctx.require("export", "bench").artifacts
    feeds, _ = test_feeds(ctx, 1)
    result = BenchResult()
    runnable = [a for a in exported if can_execute(a.format)]
    eager = _eager_models(ctx) if cfg.eager else {}
    total = len(runnable) * len(cfg.threads) + len(exported) + len(eager) + 1
    with ctx.reporter.task("bench", total=total) as advance:
        for a in exported:
            key = artifact_key(a)
            result.sizes[key] = size_report(ctx.path(a.path)).model_dump(mode="json")
            advance(1, info=f"{key} size")
            if a not in runnable:
                result.notes.append(f"{key}: not timed ({a.format} cannot execute on this OS)")
                continue
            rows = result.latency.setdefault(key, [])
            for threads in cfg.threads:
                stats = measure_latency(a.format, ctx.path(a.path), feeds[0], threads=threads, options=cfg)
                rows.append(stats.model_dump(mode="json"))
                if a.format == "executorch" and cfg.native:
                    rows.extend(_native(ctx, a, feeds[0], threads, cfg, result.notes))
                advance(1, info=f"{key} {threads} thread(s): p50 {stats.p50:.3f} ms")
        inputs = _compute(ctx, exported, result)
        advance(1, info=f"MACs {inputs.macs:,}")
        for name, (model, feed) in eager.items():
            stats = measure_latency("torch", model, feed, threads=1, options=cfg)
            result.eager[name] = stats.model_dump(mode="json")
            advance(1, info=f"{name} eager: p50 {stats.p50:.3f} ms")
    if cfg.profiles:
        result.estimates = _estimates(exported, cfg.profiles, inputs)
    return result


def _native(ctx: RunContext, a: Any, feed: dict, threads: int, cfg: BenchConfig, notes: list[str]) -> list[dict[str, Any]]:
    from mobilekd.bench.native import measure_native

    stats = measure_native(ctx.path(a.path), feed, threads=threads, options=cfg)
    if stats is None:
        notes.append(f"{a.format}/{a.variant}: native runner unavailable; Python runtime only")
        return []
    return [stats.model_dump(mode="json")]


def _eager_models(ctx: RunContext) -> dict[str, tuple[Any, dict]]:
    """The teacher and the newest float student, under the names summary.json gives them, each with
    one test row of the inputs it reads (a teacher may read privileged, server-only ones)."""
    ds = ctx.dataset()

    def feed(info: Any) -> dict:
        return {s.name: ds.test.inputs[s.name][:1] for s in info.inputs}

    models = {"teacher": (ctx.teacher(), feed(ctx.teacher_info()))}
    if ctx.result("prune") is not None:
        models["student_pruned"] = (ctx.student(), feed(ds.info))
    elif ctx.result("distill") is not None:
        models["student"] = (ctx.student(), feed(ds.info))
    return models


def _compute(ctx: RunContext, exported: list, result: BenchResult) -> Any:
    """MACs (torch.utils.flop_counter, FLOPs / 2) of the float student, the same for every variant
    of it, and the bytes of stored weights per dtype where they are known exactly: ONNX
    initializers read from the file, and the float student's tensors for fp32 .pte/.mlpackage.
    (An int8 .pte's XNNPACK payload is opaque, and the PT2E program module still carries its unused
    float weights, so int8 .pte/.mlpackage get no weight_bytes rather than a wrong one.)"""
    import torch

    from mobilekd.bench.devices import estimate_inputs_from_module
    from mobilekd.bench.size import weight_bytes_by_precision

    ds = ctx.dataset()
    example = tuple(torch.from_numpy(ds.test.inputs[s.name][:1]) for s in ds.info.inputs)
    student = ctx.student()
    inputs = estimate_inputs_from_module(student, example)
    fp32 = weight_bytes_by_precision(student)
    for a in exported:
        row: dict[str, Any] = {"macs": inputs.macs, "flops": 2 * inputs.macs}
        if a.format == "onnx":
            row["weight_bytes"] = weight_bytes_by_precision(ctx.path(a.path))
        elif a.variant == "fp32":
            row["weight_bytes"] = fp32
        result.compute[artifact_key(a)] = row
    return inputs


def _estimates(exported: list, profiles: list[str], inputs: Any) -> dict[str, list[dict[str, Any]]]:
    """One roofline estimate per file and profile: the float student's MACs, activations and
    operators, the file's own bytes as weights, int8 throughput for int8 files."""
    from mobilekd.bench.devices import estimate_latency, load_profiles

    known = load_profiles()
    out: dict[str, list[dict[str, Any]]] = {}
    for a in exported:
        rows = out.setdefault(artifact_key(a), [])
        for name in profiles:
            est = estimate_latency(known[name], macs=inputs.macs, weight_bytes=a.bytes,
                                   activation_bytes=inputs.activation_bytes, n_ops=inputs.n_ops,
                                   precision="int8" if a.variant == "int8" else "fp32")
            rows.append(est.model_dump(mode="json"))
    return out
