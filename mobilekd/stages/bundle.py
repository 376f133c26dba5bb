"""bundle stage: the folder (and zip) an app developer receives: model files, manifest, labels."""

from __future__ import annotations

import shutil

from pydantic import BaseModel

from mobilekd import __version__
from mobilekd.config import BundleConfig
from mobilekd.context import RunContext
from mobilekd.store import atomic_path, write_json


class BundleResult(BaseModel):
    dir: str
    zip: str | None = None
    files: list[str] = []


def run(cfg: BundleConfig, ctx: RunContext) -> BundleResult:
    from mobilekd.summary import build_summary

    exported = ctx.require("export", "bundle").artifacts
    out = ctx.stage_dir("bundle")
    target = out / "bundle"
    chosen = [a for a in exported if a.format in cfg.formats and a.variant in cfg.variants]
    with atomic_path(target) as tmp:
        tmp.mkdir()
        files = []
        for a in chosen:
            src = ctx.path(a.path)
            dst = tmp / "models" / src.name
            dst.parent.mkdir(exist_ok=True)
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
            files.append({"format": a.format, "variant": a.variant, "path": f"models/{src.name}", "bytes": a.bytes,
                          "sha256": a.sha256, "inputs": [s.model_dump() for s in a.inputs],
                          "outputs": [s.model_dump() for s in a.outputs]})
        shutil.copy2(ctx.path(ctx.require("data", "bundle").labels), tmp / "labels.json")
        summary = build_summary(ctx.config.name, ctx.results, {})
        write_json(tmp / "manifest.json", {"pipeline": ctx.config.name, "mobilekd_version": __version__,
                                            "files": files, "labels": "labels.json", "models": summary["models"],
                                            "gate": summary["gate"]})
    zip_rel = None
    if cfg.zip:
        zip_path = out / "bundle.zip"
        with atomic_path(zip_path) as tmp:
            shutil.make_archive(str(tmp.with_suffix("")), "zip", root_dir=target)
        zip_rel = ctx.rel(zip_path)
    return BundleResult(dir=ctx.rel(target), zip=zip_rel, files=[f["path"] for f in files])
