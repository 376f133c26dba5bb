"""data stage: load a real dataset once and freeze its splits as arrays for every later stage."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel

from mobilekd.config import DataConfig
from mobilekd.context import RunContext
from mobilekd.data.registry import load_dataset
from mobilekd.store import atomic_path, write_json


class DataResult(BaseModel):
    dataset: str
    task: str
    num_outputs: int
    info: str
    labels: str
    splits: dict[str, str]
    sizes: dict[str, int]
    extras: dict[str, str] = {}


def run(cfg: DataConfig, ctx: RunContext) -> DataResult:
    ds = load_dataset(cfg, ctx.data_dir, ctx.config.seed)
    out = ctx.stage_dir("data")
    splits = {}
    for name, split in (("train", ds.train), ("val", ds.val), ("test", ds.test)):
        arrays: dict[str, Any] = {f"input.{k}": v for k, v in split.inputs.items()}
        arrays["targets"] = split.targets
        if split.windows is not None:
            arrays["windows"] = split.windows
        path = out / f"{name}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        splits[name] = ctx.rel(path)
    info_path = write_json(out / "info.json", ds.info.model_dump(mode="json"))
    labels_path = write_json(out / "labels.json", list(ds.info.labels))
    extras = {key: ctx.rel(write_json(out / f"{key}.json", value)) for key, value in ds.extras.items()}
    # Later stages read the splits back from the files just written, exactly as a run that finds this
    # stage cached does: the loader's own arrays (views, other memory layouts) trained a different
    # teacher than the same values read from .npz, so a resumed run did not match an uninterrupted one.
    return DataResult(dataset=ds.info.name, task=ds.info.task, num_outputs=ds.info.num_outputs,
                      info=ctx.rel(info_path), labels=ctx.rel(labels_path), splits=splits,
                      sizes={"train": len(ds.train), "val": len(ds.val), "test": len(ds.test)}, extras=extras)
