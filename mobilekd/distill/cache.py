"""Teacher outputs computed once and memory-mapped, reused across epochs and runs.

When the student's inputs are not augmented, the teacher sees the same training rows every epoch,
so its logits (and the features hints and RKD read) are a pure function of (teacher weights,
training split, layer names). They are written as .npy files under
`<run_dir>/.cache/teacher-outputs/<key>/` (the pipeline never deletes dot-folders), keyed by the
teacher checkpoint's digest, the split's digest and the layers, and read back with
`np.load(mmap_mode="r")`, so a large split is paged in by the OS rather than held in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mobilekd.data import DatasetInfo, Split
from mobilekd.distill import ddp
from mobilekd.distill.hints import FeatureTaps
from mobilekd.evaluate import batches
from mobilekd.store import atomic_path, read_json, sha256_json, write_json

LOGITS = "logits"  # the model's output; other names are modules hooked by name
MANIFEST = "manifest.json"


def split_digest(split: Split) -> str:
    """sha256 over the split's input arrays (name, dtype, shape, bytes) and targets."""
    h = hashlib.sha256()
    for name in sorted(split.inputs):
        a = np.ascontiguousarray(split.inputs[name])
        h.update(f"{name}|{a.dtype}|{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    t = np.ascontiguousarray(split.targets)
    h.update(f"targets|{t.dtype}|{t.shape}".encode())
    h.update(memoryview(t).cast("B"))
    return h.hexdigest()


def cache_key(teacher_digest: str, data_digest: str, layers: Sequence[str]) -> str:
    return sha256_json({"teacher": teacher_digest, "data": data_digest, "layers": sorted(set(layers)),
                        "format": 1})[:32]


class TeacherOutputs:
    """Arrays (N, ...) aligned with the training rows; `batch(name, idx)` gathers one batch."""

    def __init__(self, arrays: dict[str, np.ndarray], folder: Path | None = None, hit: bool = False):
        self.arrays = arrays
        self.folder = folder
        self.hit = hit  # True when read from an earlier run's files

    def batch(self, name: str, idx: torch.Tensor) -> torch.Tensor:
        rows = np.sort(idx.cpu().numpy())  # sorted reads are sequential on disk
        order = np.argsort(np.argsort(idx.cpu().numpy()))
        return torch.from_numpy(np.asarray(self.arrays[name][rows])[order])


@torch.no_grad()
def _write(folder: Path, teacher: nn.Module, split: Split, info: DatasetInfo, layers: Sequence[str],
           batch_size: int) -> None:
    """Run the teacher once over `split`, streaming each output into an .npy memmap (atomic rename)."""
    teacher.eval()
    n = len(split)
    hooked = [name for name in layers if name != LOGITS]
    files: dict[str, np.ndarray] = {}
    with ExitStack() as stack, FeatureTaps(teacher, hooked, key="distill.hints.teacher") as taps:
        row = 0
        for xs in batches(split, info, batch_size):
            out = teacher(*xs)
            values = {LOGITS: out, **{name: taps[name] for name in hooked}}
            for name in layers:
                v = values[name].detach().float().cpu().numpy()
                if name not in files:
                    tmp = stack.enter_context(atomic_path(folder / f"{name}.npy"))
                    files[name] = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, *v.shape[1:]))
                files[name][row : row + len(v)] = v
            row += len(xs[0])
        for name in layers:
            files[name].flush()
        files.clear()
    write_json(folder / MANIFEST, {"rows": n, "layers": list(layers)})


def teacher_outputs(root: Path, key: str, teacher: nn.Module, split: Split, info: DatasetInfo,
                    layers: Sequence[str], batch_size: int = 512) -> TeacherOutputs:
    """The cached outputs for `key`, computing them first (on rank 0) when absent or incomplete."""
    folder = Path(root) / key
    layers = list(dict.fromkeys([LOGITS, *layers]))
    manifest = folder / MANIFEST

    def complete() -> bool:
        if not manifest.is_file():
            return False
        m = read_json(manifest)
        return m.get("rows") == len(split) and set(layers) <= set(m.get("layers", []))

    hit = complete()
    if not hit and ddp.is_main():
        manifest.unlink(missing_ok=True)
        _write(folder, teacher, split, info, layers, batch_size)
    ddp.barrier()
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in layers}
    return TeacherOutputs(arrays, folder, hit)
