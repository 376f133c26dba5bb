"""int8 row-wise quantization of the item tables (torchao): bytes by hand, one scale per row."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobilekd.compress.embedding import item_tables, model_bytes, quantize_rows, tensor_bytes
from mobilekd.errors import ConfigError
from mobilekd.models.recsys import RecStudent


def student() -> RecStudent:
    torch.manual_seed(0)
    return RecStudent(num_items=10, max_len=4, dim=4).eval()


def test_default_targets_are_embedding_and_output_layer():
    # The head has 10 outputs = the embedding's 10 rows; the MLP's 4 -> 4 layers are not item tables.
    assert item_tables(student()) == ["encoder.items", "head"]


def test_bytes_worked_out_by_hand():
    m = student()
    q, report = quantize_rows(m)
    # Each table is 10 rows x 4: fp32 10*4*4 = 160 bytes;
    # int8: 10*4 = 40 bytes of rows + 10 fp32 scales (40) + 10 int8 zero points (10) = 90 bytes.
    assert report.table_bytes_before == 2 * 160
    assert report.table_bytes_after == 2 * 90
    # The whole state dict: tables 320 + position weights 4*4 = 16 + MLP 2 * (16 + 4) * 4 = 160
    # + head bias 10 * 4 = 40 + the re-buy path's slot weights 4 * 4 = 16 and per-item propensity
    # 10 * 1 * 4 = 40 (one column: left float) -> 592 bytes before, 592 - 320 + 180 = 452 after.
    assert report.model_bytes_before == model_bytes(m) == 592
    assert report.model_bytes_after == model_bytes(q) == 452
    assert tensor_bytes(m.head.weight) == 160  # the original is not touched


def test_one_scale_per_row_keeps_small_rows_precise():
    m = student()
    with torch.no_grad():
        m.encoder.items.weight[2] = torch.tensor([1.0, -0.5, 0.25, 0.0])
        m.encoder.items.weight[3] = torch.tensor([0.01, -0.004, 0.002, 0.0])
    q, _ = quantize_rows(m, ["encoder.items"])
    w = q.encoder.items.weight.dequantize()
    # Symmetric int8: scale = max|row| / 127.5, error <= scale / 2 for a row's own scale.
    # Row 3's scale is 0.01 / 127.5 = 7.8e-5, so its error stays <= 4e-5, which a per-tensor scale
    # (1.0 / 127.5 = 7.8e-3) could not give: 0.002 would round to 0.
    assert (w[2] - m.encoder.items.weight[2]).abs().max() <= 1.0 / 127.5 / 2 + 1e-7
    assert (w[3] - m.encoder.items.weight[3]).abs().max() <= 0.01 / 127.5 / 2 + 1e-7
    assert q.encoder.items.weight.scale.shape == (10, 1)


def test_quantized_scores_stay_close_and_keep_the_ranking():
    torch.manual_seed(1)
    m = RecStudent(num_items=200, max_len=8, dim=16).eval()
    q, _ = quantize_rows(m)
    ids = torch.randint(2, 200, (16, 8))
    with torch.no_grad():
        a, b = m(ids), q(ids)
    top_a, top_b = a.topk(10).indices, b.topk(10).indices
    overlap = sum(len(set(x.tolist()) & set(y.tolist())) for x, y in zip(top_a, top_b)) / (16 * 10)
    assert overlap >= 0.9
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999


def test_unknown_or_wrong_module_names_raise():
    with pytest.raises(ConfigError, match="encoder.mlp"):
        quantize_rows(student(), ["encoder.mlp"])  # a Sequential, not an Embedding/Linear
    with pytest.raises(ConfigError, match="nope"):
        quantize_rows(student(), ["nope"])
    with pytest.raises(ConfigError):
        quantize_rows(nn.Sequential(nn.ReLU()))  # nothing to quantize
