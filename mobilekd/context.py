"""What a stage may see: the pipeline, its own folder, and what earlier stages returned.

Loading of shared inputs (the dataset arrays, the models earlier stages saved) happens here once
per run, so no stage re-reads or re-builds what another already did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel

from mobilekd.config import PipelineConfig
from mobilekd.data import Dataset, DatasetInfo, Split
from mobilekd.errors import ConfigError, StageError
from mobilekd.progress import Reporter
from mobilekd.store import read_json

if TYPE_CHECKING:  # the run loop reads contexts without importing torch
    from torch import nn


class ModelRef(BaseModel):
    """How to rebuild a model an earlier stage saved: a state dict for a named factory, or a
    torch.export program (.pt2) when the architecture itself changed (pruning, quantization)."""

    kind: Literal["state_dict", "program", "hf"]  # hf: a JSON naming a pretrained Hugging Face folder
    path: str  # relative to the run directory
    name: str | None = None
    args: dict[str, Any] = {}


@dataclass
class RunContext:
    config: PipelineConfig
    run_dir: Path
    data_dir: Path | None
    reporter: Reporter
    results: dict[str, BaseModel] = field(default_factory=dict)
    run_info: dict[str, Any] = field(default_factory=dict)  # mobilekd.runinfo metadata, for the bundle manifest
    _memo: dict[str, Any] = field(default_factory=dict)

    def stage_dir(self, name: str) -> Path:
        d = self.run_dir / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def rel(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.run_dir.resolve()).as_posix()

    def path(self, rel: str) -> Path:
        return self.run_dir / rel

    def result(self, name: str) -> Any:
        return self.results.get(name)

    def require(self, name: str, needed_by: str) -> Any:
        r = self.results.get(name)
        if r is None:
            raise StageError(f"{needed_by}: needs the {name!r} stage, which is switched off (set {name}: ... in the pipeline)")
        return r

    # -- shared inputs -------------------------------------------------------------------------
    def remember(self, ref: ModelRef, model: nn.Module) -> None:
        """Keep a model a stage just built, so later stages of this run need not reload it."""
        self._memo[f"model:{ref.path}"] = model

    def remember_dataset(self, dataset: Dataset) -> None:
        self._memo["dataset"] = dataset

    def dataset(self) -> Dataset:
        if "dataset" not in self._memo:
            data = self.require("data", "dataset")
            info = DatasetInfo.model_validate(read_json(self.path(data.info)))
            splits = {}
            for name in ("train", "val", "test"):
                with np.load(self.path(data.splits[name])) as z:
                    inputs = {name: z[f"input.{name}"] for name in info.input_names()}
                    splits[name] = Split(inputs, z["targets"], windows=z["windows"] if "windows" in z else None)
            self._memo["dataset"] = Dataset(info, splits["train"], splits["val"], splits["test"])
        ds = self._memo["dataset"]
        teacher = self.results.get("teacher")
        for name, rel in (getattr(teacher, "embeddings", None) or {}).items():  # retrieval: teacher's embeddings
            split = getattr(ds, name)
            if "teacher" not in split.reference:
                split.reference["teacher"] = np.load(self.path(rel), mmap_mode="r")
        return ds

    def load_model(self, ref: ModelRef, key: str, info: DatasetInfo | None = None) -> nn.Module:
        """The model behind `ref`, built for `info` (default the dataset's: the phone model's inputs)."""
        memo_key = f"model:{ref.path}"
        if memo_key not in self._memo:
            if ref.kind == "hf":
                from mobilekd.models.hf import load_ref

                self._memo[memo_key] = load_ref(self.path(ref.path), key=key)
            elif ref.kind == "program":
                from mobilekd.models.program import load_program

                self._memo[memo_key] = load_program(self.path(ref.path))
            else:
                from mobilekd.models import build_model, load_state

                model = build_model(ref.name or "", ref.args, info or self.dataset().info, key=key)
                self._memo[memo_key] = load_state(model, self.path(ref.path), key=key).eval()
        return self._memo[memo_key]

    def teacher_info(self) -> DatasetInfo:
        """The dataset as the teacher reads it: its `teacher.inputs` (privileged ones included)."""
        info = self.dataset().info
        names = self.config.teacher.inputs if self.config.teacher is not None else None
        try:
            return info.view(names)
        except KeyError as e:
            raise ConfigError(f"teacher.inputs: no input {e.args[0]}") from None

    def teacher(self) -> nn.Module:
        return self.load_model(self.require("teacher", "teacher").model, "teacher", self.teacher_info())

    def student_ref(self) -> tuple[str, ModelRef]:
        """The newest float student: pruned if pruning ran, else distilled, else the teacher."""
        for stage in ("prune", "distill", "teacher"):
            r = self.results.get(stage)
            if r is not None:
                return stage, r.model
        raise StageError("no model: the teacher stage is required")

    def student(self) -> nn.Module:
        stage, ref = self.student_ref()
        return self.load_model(ref, stage)
