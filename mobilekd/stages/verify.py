"""verify stage: run every exported file on its real runtime over held-out real inputs and compare
it with the PyTorch student. CoreML on Linux is loaded and checked, never reported as passed."""

from __future__ import annotations

from pydantic import BaseModel

from mobilekd.config import VerifyConfig
from mobilekd.context import RunContext
from mobilekd.evaluate import predict
from mobilekd.export.runtime import can_execute
from mobilekd.export.types import ExportedModel, Parity


class VerifyResult(BaseModel):
    samples: int
    reference: str
    parity: dict[str, Parity]  # keyed "format/variant"
    # task metrics of each file run on its own runtime over the whole test split (CoreML off macOS: absent)
    metrics: dict[str, dict[str, float]] = {}


def artifact_key(a: ExportedModel) -> str:
    return f"{a.format}/{a.variant}"


def precision(a: ExportedModel, ctx: RunContext) -> str:
    if a.variant != "fp32":
        return "int8"
    export = ctx.config.export
    if a.format == "coreml" and export is not None and export.coreml.compute_precision == "fp16":
        return "fp16"
    return "fp32"


def test_feeds(ctx: RunContext, samples: int) -> tuple[list[dict], object]:
    """Batch-1 feeds of the first `samples` held-out test rows, and that slice of the split."""
    ds = ctx.dataset()
    part = ds.test.take(slice(0, min(samples, len(ds.test))))
    names = [s.name for s in ds.info.inputs]  # the phone model's inputs, never the privileged ones
    feeds = [{k: part.inputs[k][i : i + 1] for k in names} for i in range(len(part))]
    return feeds, part


def run(cfg: VerifyConfig, ctx: RunContext) -> VerifyResult:
    from mobilekd.export.types import DEFAULT_TOLERANCES
    from mobilekd.export.verify import verify_file

    ds = ctx.dataset()
    exported = ctx.require("export", "verify").artifacts
    feeds, part = test_feeds(ctx, cfg.samples)
    stage, _ = ctx.student_ref()
    student = ctx.student()
    reference = predict(student, part, ds.info)
    parity: dict[str, Parity] = {}
    with ctx.reporter.task("verify", total=len(exported)) as advance:
        for a in exported:
            prec = precision(a, ctx)
            tol = cfg.tolerances.get(prec, DEFAULT_TOLERANCES[prec])
            absolute = a.model_copy(update={"path": str(ctx.path(a.path))})
            parity[artifact_key(a)] = verify_file(absolute, reference, feeds, task=ds.info.task, tolerance=tol,
                                                  k=cfg.k, inputs_kind="real", model=student)
            advance(1, info=f"{artifact_key(a)}: {parity[artifact_key(a)].status}")
    scores = {artifact_key(a): file_metrics(a, ctx) for a in exported if can_execute(a.format)}
    return VerifyResult(samples=len(feeds), reference=f"PyTorch student ({stage} stage), fp32 eager", parity=parity,
                        metrics=scores)


def file_metrics(a: ExportedModel, ctx: RunContext) -> dict[str, float]:
    """The file's own task metrics: run it on its runtime over every held-out test row (batch 1,
    the shape it was exported with) and score the outputs with mobilekd.evaluate.metrics, the one
    scoring function every model in summary.json goes through."""
    import numpy as np

    from mobilekd.evaluate import metrics
    from mobilekd.export.runtime import open_runtime

    ds = ctx.dataset()
    names = [s.name for s in a.inputs]
    session = open_runtime(a.format, ctx.path(a.path), input_names=names)
    rows = [session.run({k: ds.test.inputs[k][i : i + 1] for k in names})[0] for i in range(len(ds.test))]
    return metrics(np.concatenate([np.asarray(r).reshape(1, -1) for r in rows]), ds.test, ds.info)
