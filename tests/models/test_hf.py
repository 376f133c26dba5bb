"""The Hugging Face teacher, on a tiny BertModel saved with save_pretrained (no 90 MB download)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mobilekd.data.wordpiece import SPECIALS
from mobilekd.errors import ModelError
from mobilekd.models.hf import load_hf, load_ref, mean_pool, resolve_folder, write_ref

transformers = pytest.importorskip("transformers")
FULL = [*SPECIALS, "[MASK]", "red", "bag", "lunch", "##s", "blue"]


def tiny_bert(folder: Path) -> Path:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(FULL), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(cfg).save_pretrained(folder)  # model.safetensors + config.json
    (folder / "vocab.txt").write_text("\n".join(FULL) + "\n")
    return folder


def test_mean_pooling_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    # the padded third token is left out: ((1 + 3) / 2, (2 + 4) / 2) = (2, 3)
    assert mean_pool(h, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_loads_from_safetensors_and_maps_the_cut_vocabulary(tmp_path):
    folder = tiny_bert(tmp_path / "tiny")
    cut = [*SPECIALS, "bag", "red"]  # cut ids 4, 5 are the teacher's 6, 5
    teacher = load_hf(folder, "mean", cut)
    assert teacher.token_map.tolist() == [0, 1, 2, 3, 6, 5]
    ids = torch.tensor([[2, 5, 4, 3, 0]])
    mask = (ids > 0).long()
    raw = transformers.BertModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        got = teacher(ids, mask)
        h = raw(input_ids=torch.tensor([[2, 5, 6, 3, 0]]), attention_mask=mask).last_hidden_state
    want = torch.nn.functional.normalize(mean_pool(h, mask), dim=-1)
    assert torch.allclose(got, want, atol=1e-5)
    cls = load_hf(folder, "cls", cut)
    with torch.no_grad():
        assert torch.allclose(cls(ids, mask), torch.nn.functional.normalize(h[:, 0], dim=-1), atol=1e-5)
    ref = write_ref(tmp_path / "hf.json", folder, "mean", cut)
    assert ref["vocab"] == cut
    with torch.no_grad():
        assert torch.allclose(load_ref(tmp_path / "hf.json")(ids, mask), got, atol=1e-6)


def test_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="not installed.*pip install"):
        resolve_folder("no_such_model_package_xyz", None)
    with pytest.raises(ModelError, match="not a folder"):
        resolve_folder(None, tmp_path / "missing")
    folder = tiny_bert(tmp_path / "tiny")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="safetensors only"):
        load_hf(folder, "mean", None)
    folder2 = tiny_bert(tmp_path / "tiny2")
    with pytest.raises(ModelError, match="not in"):
        load_hf(folder2, "mean", [*SPECIALS, "green"])
