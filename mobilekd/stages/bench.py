"""bench stage: latency (batch 1, pinned threads, one subprocess per measurement), size and, for
named phone profiles, a roofline *estimate* labelled as such."""

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
    notes: list[str] = []


def run(cfg: BenchConfig, ctx: RunContext) -> BenchResult:
    from mobilekd.bench.latency import measure_latency
    from mobilekd.bench.size import size_report
    from mobilekd.export.runtime import can_execute

    exported = ctx.require("export", "bench").artifacts
    feeds, _ = test_feeds(ctx, 1)
    result = BenchResult()
    runnable = [a for a in exported if can_execute(a.format)]
    total = len(runnable) * len(cfg.threads) + len(exported)
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
    if cfg.profiles:
        result.estimates = _estimates(ctx, exported, cfg.profiles)
    return result


def _native(ctx: RunContext, a: Any, feed: dict, threads: int, cfg: BenchConfig, notes: list[str]) -> list[dict[str, Any]]:
    from mobilekd.bench.native import measure_native

    stats = measure_native(ctx.path(a.path), feed, threads=threads, options=cfg)
    if stats is None:
        notes.append(f"{a.format}/{a.variant}: native runner unavailable; Python runtime only")
        return []
    return [stats.model_dump(mode="json")]


def _estimates(ctx: RunContext, exported: list, profiles: list[str]) -> dict[str, list[dict[str, Any]]]:
    from mobilekd.bench.devices import estimate_for_model, load_profiles

    known = load_profiles()
    model = ctx.student()
    ds = ctx.dataset()
    example = tuple(__import__("torch").from_numpy(ds.test.inputs[s.name][:1]) for s in ds.info.inputs)
    out: dict[str, list[dict[str, Any]]] = {}
    for a in exported:
        rows = out.setdefault(artifact_key(a), [])
        for name in profiles:
            est = estimate_for_model(known[name], model, example, weight_bytes=a.bytes,
                                     precision="int8" if a.variant == "int8" else "fp32")
            rows.append(est.model_dump(mode="json"))
    return out
