"""The teacher-output cache for text teachers: one embedding per distinct text, kept across runs.

A text is keyed by its token ids in the *teacher's* vocabulary, trimmed to its real tokens, so the
same query embedded for the training split, the validation split or another seed's run (whose cut
vocabulary numbers tokens differently) is looked up, not recomputed: the teacher runs once per
text. Files, under `<run_dir>/.cache/teacher-outputs/text-<teacher digest>/` (dot-folders are
never cleared by the pipeline): `tokens.npy` (int32, all keys concatenated), `offsets.npy`
(int64, K + 1) and `embeddings.npy` (float32, K x D), each rewritten atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mobilekd.progress import QUIET, Reporter
from mobilekd.store import atomic_path, sha256_json

FILES = ("tokens", "offsets", "embeddings")


def _keys(ids: np.ndarray, mask: np.ndarray, token_map: np.ndarray | None) -> list[bytes]:
    full = token_map[ids] if token_map is not None else ids
    lengths = mask.sum(axis=1)
    return [full[i, : lengths[i]].astype(np.int32).tobytes() for i in range(len(ids))]


class TextEmbeddingCache:
    def __init__(self, root: Path, teacher_digest: str):
        self.folder = Path(root) / f"text-{sha256_json({'teacher': teacher_digest, 'format': 1})[:24]}"
        self.index: dict[bytes, int] = {}
        self.embeddings = np.zeros((0, 0), dtype=np.float32)
        self.hits = 0
        if all((self.folder / f"{n}.npy").is_file() for n in FILES):
            tokens = np.load(self.folder / "tokens.npy")
            offsets = np.load(self.folder / "offsets.npy")
            self.embeddings = np.load(self.folder / "embeddings.npy")
            if len(offsets) == len(self.embeddings) + 1:
                self.index = {tokens[offsets[i] : offsets[i + 1]].tobytes(): i for i in range(len(self.embeddings))}

    @torch.no_grad()
    def embed(self, teacher: nn.Module, ids: np.ndarray, mask: np.ndarray, *, batch_size: int = 256,
              reporter: Reporter = QUIET, desc: str = "teacher embeddings") -> np.ndarray:
        """(N, D) embeddings of the rows, computing only texts never seen before (then saved)."""
        token_map = getattr(teacher, "token_map", None)
        tmap = token_map.cpu().numpy() if token_map is not None and token_map.numel() else None
        keys = _keys(ids, mask, tmap)
        todo = list(dict.fromkeys(k for k in keys if k not in self.index))
        self.hits += len(set(keys)) - len(todo)
        if todo:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            rows = np.array([first[k] for k in todo])
            # Sorting by length puts texts of similar length in one batch; outputs do not depend on it.
            rows = rows[np.argsort(mask[rows].sum(axis=1), kind="stable")]
            out = []
            teacher.eval()
            with reporter.task(desc, total=len(rows)) as advance:
                for i in range(0, len(rows), batch_size):
                    r = rows[i : i + batch_size]
                    width = max(int(mask[r].sum(axis=1).max()), 1)
                    x = torch.from_numpy(np.ascontiguousarray(ids[r, :width]))
                    m = torch.from_numpy(np.ascontiguousarray(mask[r, :width]))
                    out.append(teacher(x, m).float().numpy())
                    advance(len(r))
            new = np.concatenate(out)
            start = len(self.index)
            for j, row in enumerate(rows):
                self.index[keys[row]] = start + j
            self.embeddings = new if start == 0 else np.concatenate([self.embeddings, new])
            self._save()
        return self.embeddings[[self.index[k] for k in keys]]

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self.index.items(), key=lambda kv: kv[1])
        chunks = [np.frombuffer(k, dtype=np.int32) for k, _ in ordered]
        arrays = {"tokens": np.concatenate(chunks) if chunks else np.zeros(0, np.int32),
                  "offsets": np.r_[0, np.cumsum([len(c) for c in chunks])].astype(np.int64),
                  "embeddings": self.embeddings}
        for name in ("embeddings", "tokens", "offsets"):  # offsets last: it validates the other two
            with atomic_path(self.folder / f"{name}.npy") as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, arrays[name])
