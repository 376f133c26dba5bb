"""teacher stage, pretrained Hugging Face text encoder: load it (mobilekd.models.hf), embed every
row of every split once through the text teacher-output cache, and score it. The embeddings are
saved in the stage folder: the distill stage regresses them, and the retrieval metrics of every
later model compare with them (top-10 overlap, cosine)."""

from __future__ import annotations

import numpy as np

from mobilekd.config import HFTeacherConfig, TeacherConfig
from mobilekd.context import ModelRef, RunContext
from mobilekd.distill.text_cache import TextEmbeddingCache
from mobilekd.errors import ModelError
from mobilekd.evaluate import metrics
from mobilekd.compress.macs import count_params
from mobilekd.models.hf import load_hf, resolve_folder, write_ref
from mobilekd.store import atomic_path, read_json


def run_hf(cfg: TeacherConfig, hf: HFTeacherConfig, ctx: RunContext):
    from mobilekd.stages.teacher import TeacherResult

    ds = ctx.dataset()
    if ds.info.task != "retrieval" or {s.name for s in ds.info.inputs} != {"input_ids", "attention_mask"}:
        raise ModelError(f"teacher.hf: a Hugging Face text teacher needs a text retrieval dataset with inputs "
                         f"input_ids and attention_mask (e.g. online_retail_catalogue); {ds.info.name!r} is a "
                         f"{ds.info.task} dataset with inputs {[s.name for s in ds.info.inputs]}")
    data = ctx.require("data", "teacher")
    vocab = read_json(ctx.path(data.extras["wordpiece_vocab"])) if "wordpiece_vocab" in data.extras else None
    folder = resolve_folder(hf.package, hf.path)
    model = load_hf(folder, hf.pooling, vocab)
    out = ctx.stage_dir("teacher")
    ref_path = out / "hf.json"
    doc = write_ref(ref_path, folder, hf.pooling, vocab)
    cache = TextEmbeddingCache(ctx.run_dir / ".cache" / "teacher-outputs", doc["digest"])
    embeddings: dict[str, str] = {}
    for name in ("train", "val", "test"):
        split = getattr(ds, name)
        emb = cache.embed(model, split.inputs["input_ids"], split.inputs["attention_mask"],
                          batch_size=hf.batch_size, reporter=ctx.reporter, desc=f"teacher embeddings ({name})")
        path = out / f"embeddings_{name}.npy"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, emb.astype(np.float32))
        embeddings[name] = ctx.rel(path)
    scores = {name: metrics(np.load(ctx.path(embeddings[name])), getattr(ds, name), ds.info) for name in ("val", "test")}
    for name, rel in embeddings.items():  # later stages compare with the teacher through split.reference
        getattr(ds, name).reference["teacher"] = np.load(ctx.path(rel), mmap_mode="r")
    ref = ModelRef(kind="hf", path=ctx.rel(ref_path), name=hf.package or str(hf.path))
    ctx.remember(ref, model)
    return TeacherResult(model=ref, params=count_params(model), metrics=scores["test"], val_metrics=scores["val"],
                         source="huggingface", embeddings=embeddings)
