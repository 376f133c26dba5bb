"""Parity of an exported file against PyTorch: run the file on real (or, failing that, random)
samples one at a time, stack the outputs and compare them with the reference outputs.

`compare` computes the metrics; `verify_file` runs the file, applies a `Tolerance` and returns a
`Parity`. A file that cannot run here (CoreML on Linux) gets its spec checked against the export's
declared inputs/outputs and the status `not_executed`, never `passed`."""

from __future__ import annotations

import math
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

from mobilekd.errors import DataError
from mobilekd.export.runtime import can_execute, open_runtime
from mobilekd.export.types import ExportedModel, Parity, ParityMetrics, Task, Tolerance

SNR_CAP_DB = 200.0  # an exact match has infinite SNR; capped so that summary.json stays valid JSON
Reference = Callable[[dict[str, np.ndarray]], np.ndarray] | np.ndarray


def compare(reference: np.ndarray, actual: np.ndarray, *, task: Task, k: int = 10) -> ParityMetrics:
    """Metrics of `actual` against `reference`, both (N, C): N samples of C logits or scores.

    max_abs_err  max |a - r| over all entries
    max_rel_err  max over samples of  max_j |a_j - r_j| / max_j |r_j|  (scale-free per sample)
    snr_db       10 log10( sum r^2 / sum (a - r)^2 ), capped to +-200 dB
    cosine       the smallest per-sample cosine similarity (1.0 when both rows are zero)
    top1_agreement  share of samples whose argmax agrees
    topk_overlap    ranking only: mean |topk(a) & topk(r)| / k, with k clipped to C
    """
    r = np.asarray(reference, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if r.shape != a.shape:
        raise ValueError(f"reference shape {r.shape} != actual shape {a.shape}")
    if r.ndim == 1:
        r, a = r[None], a[None]
    if r.shape[0] == 0:
        raise DataError("verify: no samples to compare (got 0 feeds)")
    r, a = r.reshape(r.shape[0], -1), a.reshape(a.shape[0], -1)
    n, c = r.shape
    diff = np.abs(a - r)
    scale = np.abs(r).max(axis=1)
    row_err = diff.max(axis=1)
    rel = np.where(scale > 0, row_err / np.where(scale > 0, scale, 1.0), np.where(row_err > 0, np.inf, 0.0))
    signal, noise = float((r**2).sum()), float(((a - r) ** 2).sum())
    if noise == 0.0:
        snr = SNR_CAP_DB
    elif signal == 0.0:
        snr = -SNR_CAP_DB
    else:
        snr = float(np.clip(10.0 * math.log10(signal / noise), -SNR_CAP_DB, SNR_CAP_DB))
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(r, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(r, axis=1) == 0)
    cos = np.where(norms > 0, (a * r).sum(axis=1) / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    top1 = float((a.argmax(axis=1) == r.argmax(axis=1)).mean())
    topk = kk = None
    if task == "ranking":
        kk = max(1, min(int(k), c))
        top_a = np.argsort(-a, axis=1, kind="stable")[:, :kk]
        top_r = np.argsort(-r, axis=1, kind="stable")[:, :kk]
        topk = float(np.mean([len(set(x) & set(y)) / kk for x, y in zip(top_a, top_r)]))
    return ParityMetrics(max_abs_err=float(diff.max()), max_rel_err=float(min(rel.max(), 1e300)),
                         snr_db=snr, cosine=float(cos.min()), top1_agreement=top1, topk_overlap=topk,
                         k=kk, samples=n)


def check(metrics: ParityMetrics, tolerance: Tolerance, *, task: Task) -> list[str]:
    """The tolerance bounds `metrics` break, each as a readable sentence; empty when it passes."""
    broken = []
    if task == "retrieval":  # an embedding has no argmax to agree on: its cosine to PyTorch's is the check
        if tolerance.min_cosine is None:
            broken.append("retrieval parity needs a min_cosine tolerance")
        agreement_checked = False
    else:
        agreement_checked = True
    if tolerance.max_abs_err is not None and not metrics.max_abs_err <= tolerance.max_abs_err:
        broken.append(f"max_abs_err {metrics.max_abs_err:.3g} > {tolerance.max_abs_err:.3g}")
    if tolerance.min_cosine is not None and not metrics.cosine >= tolerance.min_cosine:
        broken.append(f"cosine {metrics.cosine:.6f} < {tolerance.min_cosine}")
    if task == "embedding":  # features have no class to agree on
        return broken
    name, agreement = (("topk_overlap", metrics.topk_overlap) if task == "ranking"
                       else ("top1_agreement", metrics.top1_agreement))
    if agreement_checked and (agreement is None or not agreement >= tolerance.min_agreement):
        broken.append(f"{name} {agreement} < {tolerance.min_agreement}")
    return broken


def torch_reference(model: nn.Module, input_names: Sequence[str]) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A reference callable for `verify_file`: the PyTorch model on one feed (inputs positional)."""
    model = model.eval() if not isinstance(model, torch.fx.GraphModule) else model

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            out = model(*[torch.from_numpy(np.ascontiguousarray(feed[n])) for n in input_names])
        return (out[0] if isinstance(out, (tuple, list)) else out).detach().cpu().numpy()

    return run


def verify_file(exported: ExportedModel, reference: Reference, feeds: Sequence[dict[str, np.ndarray]], *,
                task: Task, tolerance: Tolerance, k: int = 10,
                inputs_kind: Literal["real", "random"] = "real", model: nn.Module | None = None,
                extra_references: dict[str, np.ndarray] | None = None) -> Parity:
    """Run `exported` on each batch-1 feed and compare with `reference` (a callable on one feed, or
    the (N, C) reference outputs) on its first output; `extra_references` (output name -> stacked
    reference) checks the file's other outputs as features (error and cosine bounds). With `model`
    (the float PyTorch model) given, a failing file is searched for the first layer that diverges
    (`diverging_layer`)."""
    if not feeds:
        raise DataError(f"verify {exported.path}: no feeds given; pass at least one sample")
    base = dict(tolerance=tolerance, inputs=inputs_kind)
    note = "random inputs (no verify data given): parity on random data only" if inputs_kind == "random" else ""
    if not can_execute(exported.format):
        return _check_spec_only(exported, base)
    names = [s.name for s in exported.inputs]
    session = open_runtime(exported.format, exported.path, input_names=names)
    runs = [session.run(feed) for feed in feeds]
    actual = np.concatenate([_as_rows(r[0]) for r in runs])
    extra, extra_broken = _other_outputs(exported, runs, extra_references or {}, tolerance)
    if isinstance(reference, np.ndarray):
        ref = _as_rows(reference) if reference.ndim == 1 else reference.reshape(reference.shape[0], -1)
    else:
        ref = np.concatenate([_as_rows(np.asarray(reference(feed))) for feed in feeds])
    if ref.shape != actual.shape:
        return Parity(status="failed", reason=f"output shape {actual.shape} != reference {ref.shape}", **base)
    if not np.isfinite(actual).all():
        return Parity(status="failed", reason="the exported file produced NaN or Inf", **base)
    metrics = compare(ref, actual, task=task, k=k)
    broken = check(metrics, tolerance, task=task) + extra_broken
    base["outputs"] = extra
    if not broken:
        return Parity(status="passed", reason=note, metrics=metrics, **base)
    diverges_at = diverging_layer(exported, model, feeds[0]) if model is not None else None
    reason = "; ".join(broken) + (f"; first diverging layer: {diverges_at}" if diverges_at else "")
    return Parity(status="failed", reason=(reason + (f" ({note})" if note else "")), metrics=metrics,
                  diverges_at=diverges_at, **base)


def diverging_layer(exported: ExportedModel, model: nn.Module, feed: dict[str, np.ndarray]) -> str | None:
    """`path (Class)` of the first layer where `exported` departs from the float `model` on `feed`:
    ONNX files fp32 and int8 (intermediate outputs of the file), fp32 .pte files (prefixes lowered
    the exporter's way). None for the others: an int8 .pte's exact reference is the PT2E program,
    not the float model, and CoreML does not run here."""
    names = [s.name for s in exported.inputs]
    if exported.format == "onnx":
        from mobilekd.export.divergence import find_divergence

        return find_divergence(model, exported.path, feed, input_names=names)
    if exported.format == "executorch" and exported.variant == "fp32":
        from mobilekd.export.divergence_executorch import find_executorch_divergence
        from mobilekd.export.types import ExecuTorchOptions

        options = ExecuTorchOptions(backend=exported.details.get("backend", "xnnpack"))
        return find_executorch_divergence(model, feed, exported.inputs, options=options)
    return None


def _other_outputs(exported: ExportedModel, runs: Sequence[list[np.ndarray]], references: dict[str, np.ndarray],
                   tolerance: Tolerance) -> tuple[dict[str, ParityMetrics], list[str]]:
    """Metrics and broken bounds of outputs 1.. of the file, each against its stacked reference."""
    metrics: dict[str, ParityMetrics] = {}
    broken: list[str] = []
    for i, spec in enumerate(exported.outputs[1:], start=1):
        if spec.name not in references:
            continue
        got = np.concatenate([_as_rows(r[i]) for r in runs])
        want = np.asarray(references[spec.name]).reshape(got.shape[0], -1)
        if want.shape != got.shape:
            broken.append(f"output {spec.name}: shape {got.shape} != reference {want.shape}")
            continue
        metrics[spec.name] = compare(want, got, task="embedding")
        broken += [f"output {spec.name}: {b}" for b in check(metrics[spec.name], tolerance, task="embedding")]
    return metrics, broken


def torch_outputs(model: nn.Module, input_names: Sequence[str],
                  feeds: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Every output of `model` (a FlatModel: a tuple of tensors) over `feeds`, each stacked on axis 0."""
    rows: list[list[np.ndarray]] = []
    with torch.no_grad():
        for feed in feeds:
            out = model(*[torch.from_numpy(np.ascontiguousarray(feed[n])) for n in input_names])
            out = out if isinstance(out, (tuple, list)) else (out,)
            rows.append([_as_rows(t.detach().cpu().numpy()) for t in out])
    return [np.concatenate([r[i] for r in rows]) for i in range(len(rows[0]))]


def _as_rows(x: np.ndarray) -> np.ndarray:
    """One sample's output as a (rows, C) block: (1, C) stays, (C,) becomes (1, C)."""
    x = np.asarray(x)
    return x.reshape(1, -1) if x.ndim <= 1 else x.reshape(x.shape[0], -1)


def _check_spec_only(exported: ExportedModel, base: dict) -> Parity:
    """CoreML off macOS: compare the saved spec's interface with what the export declared."""
    from mobilekd.export.coreml import COREML_INPUT_DTYPE, inspect_coreml

    spec = inspect_coreml(exported.path)
    problems = []
    for kind, declared, found in (("input", exported.inputs, spec["inputs"]), ("output", exported.outputs, spec["outputs"])):
        by_name = {f["name"]: f for f in found}
        if [d.name for d in declared] != [f["name"] for f in found]:
            problems.append(f"{kind} names {[f['name'] for f in found]} != declared {[d.name for d in declared]}")
            continue
        for d in declared:
            f = by_name[d.name]
            if f["shape"] and tuple(f["shape"]) != tuple(d.shape):
                problems.append(f"{kind} {d.name} shape {f['shape']} != declared {list(d.shape)}")
            expected = COREML_INPUT_DTYPE.get(d.dtype, d.dtype) if kind == "input" else d.dtype
            if f["dtype"] != expected and not (kind == "output" and f["dtype"] in ("float16", "float32")
                                               and d.dtype in ("float16", "float32")):
                problems.append(f"{kind} {d.name} dtype {f['dtype']} != expected {expected}")
    if problems:
        return Parity(status="failed", reason="CoreML spec does not match the export: " + "; ".join(problems), **base)
    io = ", ".join(f"{f['name']}:{f['dtype']}{f['shape']}" for f in (*spec["inputs"], *spec["outputs"]))
    return Parity(status="not_executed", reason=(
        f"CoreML cannot be executed on this OS (needs macOS); spec checked instead: {io}, "
        f"target {spec['deployment_target']}, weights {spec.get('weight_precision', 'unknown')}"), **base)
