"""bundle stage: the folder (and zip) an app developer receives: the chosen model files, the label
or item vocabulary, golden test vectors, MODEL_CARD.md and a schema-checked manifest.json. The
finished folder is verified like `mobilekd bundle verify` would, so a run never hands out a bundle
that fails its own check."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from mobilekd import __version__
from mobilekd.bundle import golden as g
from mobilekd.bundle.manifest import GOLDEN, MODEL_CARD, MANIFEST, SCHEMA_VERSION, min_runtime, runtime_versions, schema_errors
from mobilekd.config import BundleConfig
from mobilekd.context import RunContext
from mobilekd.errors import StageError
from mobilekd.export.types import TASK_OUTPUT, ExportedModel
from mobilekd.store import atomic_path, sha256_file, sha256_json, size_bytes, write_json, write_text



class BundleResult(BaseModel):
    dir: str
    zip: str | None = None
    files: list[str] = []
    manifest: str | None = None
    golden_samples: int = 0
    skipped: list[str] = []
    checks: dict[str, str] = {}  # check name -> status, from verifying the finished bundle


def run(cfg: BundleConfig, ctx: RunContext) -> BundleResult:
    from mobilekd.bundle.archive import write_zip
    from mobilekd.bundle.model_card import render
    from mobilekd.bundle.verify import verify_bundle

    exported: list[ExportedModel] = ctx.require("export", "bundle").artifacts
    chosen = [a for a in exported if a.format in cfg.formats and a.variant in cfg.variants]
    have = {(a.format, a.variant) for a in exported}
    skipped = [f"{f}/{v}: not exported" for f in cfg.formats for v in cfg.variants if (f, v) not in have]
    if not chosen:
        raise StageError(f"bundle: no exported file matches bundle.formats={cfg.formats} and "
                         f"bundle.variants={cfg.variants}; export produced {sorted(f'{f}/{v}' for f, v in have)}")
    out = ctx.stage_dir("bundle")
    target = out / "bundle"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        files = [_copy_model(a, ctx, tmp) for a in chosen]
        assets, vocabulary = _vocabulary(ctx, tmp)
        n = _golden(cfg, ctx, chosen, tmp)
        assets.append(_asset(tmp, GOLDEN, "golden"))
        if ctx.dataset().info.task == "retrieval":  # search: tokenizer, index, golden texts
            from mobilekd.stages.bundle_text import write_search_assets

            assets += write_search_assets(ctx, tmp, _asset)
        manifest = _manifest(cfg, ctx, files, assets, vocabulary, n)
        write_text(tmp / MODEL_CARD, render(manifest))
        manifest["assets"].append(_asset(tmp, MODEL_CARD, "model_card"))
        errors = schema_errors(manifest)
        if errors:  # a bug in this stage, not a user mistake
            raise ValueError("bundle manifest breaks its own schema: " + "; ".join(errors))
        write_json(tmp / MANIFEST, manifest)
    zip_rel = None
    if cfg.zip:
        zip_rel = ctx.rel(write_zip(target, out / "bundle.zip"))
    report = verify_bundle(out / "bundle.zip" if cfg.zip else target)
    if not report.ok:
        raise StageError("bundle: the finished bundle fails its own check: "
                         + "; ".join(f"{c.name}: {c.detail}" for c in report.failures))
    return BundleResult(dir=ctx.rel(target), zip=zip_rel, files=[f["path"] for f in files],
                        manifest=ctx.rel(target / MANIFEST), golden_samples=n, skipped=skipped,
                        checks={c.name: c.status for c in report.checks})


def _copy_model(a: ExportedModel, ctx: RunContext, root: Path) -> dict[str, Any]:
    src = ctx.path(a.path)
    rel = f"models/{src.name}"
    dst = root / rel
    dst.parent.mkdir(exist_ok=True)
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    digest = sha256_file(dst)
    if digest != a.sha256:
        raise StageError(f"bundle: {a.path} changed since the export stage wrote it (sha256 {digest[:12]} != "
                         f"{a.sha256[:12]}); re-run with --from export")
    coreml_target = ctx.config.export.coreml.minimum_deployment_target if ctx.config.export else None
    parity = ctx.result("verify").parity.get(f"{a.format}/{a.variant}") if ctx.result("verify") else None
    return {"path": rel, "format": a.format, "variant": a.variant, "scheme": a.scheme, "bytes": size_bytes(dst),
            "sha256": digest, "min_runtime": min_runtime(a.format, dst, a.details, coreml_target=coreml_target),
            "inputs": [s.model_dump(mode="json") for s in a.inputs],
            "outputs": [s.model_dump(mode="json") for s in a.outputs],
            "parity": None if parity is None else {"status": parity.status, "reason": parity.reason}}


def _vocabulary(ctx: RunContext, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """labels.json always (index -> class name or item id); the data stage's `vocabulary` extra
    (recommenders: one row per item) too when there is one, and then it is the vocabulary."""
    data = ctx.require("data", "bundle")
    shutil.copy2(ctx.path(data.labels), root / "labels.json")
    assets = [_asset(root, "labels.json", "labels")]
    vocabulary = {"kind": "labels", "path": "labels.json", "size": ctx.dataset().info.num_outputs}
    if "vocabulary" in data.extras:
        shutil.copy2(ctx.path(data.extras["vocabulary"]), root / "vocabulary.json")
        assets.append(_asset(root, "vocabulary.json", "vocabulary"))
        vocabulary.update(kind="items", path="vocabulary.json")
    return assets, vocabulary


def _asset(root: Path, rel: str, role: str) -> dict[str, Any]:
    p = root / rel
    return {"path": rel, "role": role, "bytes": size_bytes(p), "sha256": sha256_file(p)}


def _golden(cfg: BundleConfig, ctx: RunContext, chosen: list[ExportedModel], root: Path) -> int:
    """golden.json: the first `golden_samples` test rows, and each file's outputs on its runtime
    (the PyTorch student's where the file cannot run here), with the verify stage's tolerance."""
    from mobilekd.evaluate import predict
    from mobilekd.export.runtime import can_execute
    from mobilekd.export.types import DEFAULT_TOLERANCES
    from mobilekd.stages.verify import precision, test_feeds

    info = ctx.dataset().info
    feeds, part = test_feeds(ctx, cfg.golden_samples)
    if not feeds:
        raise StageError("bundle: the test split is empty; golden vectors need held-out inputs")
    vcfg = ctx.config.verify
    k = vcfg.k if vcfg is not None else 10
    torch_out: np.ndarray | None = None
    expected = []
    for a in chosen:
        prec = precision(a, ctx)
        tolerance = vcfg.tolerances.get(prec, DEFAULT_TOLERANCES[prec]) if vcfg is not None else DEFAULT_TOLERANCES[prec]
        executed = can_execute(a.format)
        path = f"models/{Path(a.path).name}"
        if executed:
            outputs = g.file_outputs(a.format, root / path, a.inputs, a.outputs, feeds)
        else:
            if torch_out is None:
                torch_out = predict(ctx.student(), part, info)
            spec = a.outputs[0]
            outputs = [{spec.name: row.reshape(spec.shape).astype(spec.dtype)} for row in torch_out]
        expected.append(g.Expected(path=path, format=a.format, variant=a.variant, executed=executed,
                                   source="file" if executed else "pytorch", runtime=g.runtime_label(a.format, executed),
                                   tolerance=tolerance, agreement=g.agreement_kind(info.task), k=k,
                                   outputs=[g.encode_feed(o) for o in outputs]))
    write_text(root / GOLDEN, g.dumps(g.document(range(len(feeds)), "test", feeds, expected)))
    return len(feeds)


def _manifest(cfg: BundleConfig, ctx: RunContext, files: list[dict[str, Any]], assets: list[dict[str, Any]],
              vocabulary: dict[str, Any], samples: int) -> dict[str, Any]:
    from mobilekd.summary import build_summary

    info = ctx.dataset().info
    summary = build_summary(ctx.config.name, ctx.results, {})
    export = ctx.config.export
    onnx_opset = export.onnx.opset if export is not None and "onnx" in export.formats else None
    vcfg = ctx.config.verify
    top_k = cfg.top_k or (1 if info.task == "classification" else (vcfg.k if vcfg is not None else 10))
    return {
        "schema_version": SCHEMA_VERSION,
        "pipeline": {"name": ctx.config.name, "version": sha256_json(ctx.config.model_dump(mode="json"))[:12]},
        "mobilekd_version": __version__,
        "runtimes": runtime_versions(onnx_opset),
        "task": info.task,
        "dataset": {"name": info.name, "license": info.license, "citation": info.citation, "notes": list(info.notes)},
        "files": files,
        "assets": assets,
        "preprocessing": dict(info.preprocessing),
        "postprocessing": {"output": TASK_OUTPUT[info.task].kind, "activation": TASK_OUTPUT[info.task].activation, "top_k": top_k,
                           "details": dict(info.postprocessing)},
        "vocabulary": vocabulary,
        "golden": {"path": GOLDEN, "encoding": g.ENCODING, "split": "test", "samples": samples},
        "metrics": summary["models"],
        "gate": summary["gate"],
        "run": ctx.run_info or None,
    }
