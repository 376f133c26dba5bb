"""Text students: unit-norm embeddings whose value does not depend on the padding."""

from __future__ import annotations

import pytest
import torch

from mobilekd.models.text import build_pooled_embedding, build_text_transformer


@pytest.mark.parametrize("build", [
    lambda: build_text_transformer(num_outputs=10, vocab_size=50, max_len=8, dim=16, heads=2, layers=1, ffn=32, out_dim=12),
    lambda: build_pooled_embedding(num_outputs=10, vocab_size=50, dim=16, hidden=32, out_dim=12),
])
def test_unit_norm_and_padding_invariant(build):
    torch.manual_seed(0)
    model = build().eval()
    ids = torch.tensor([[2, 7, 9, 3, 0, 0, 0, 0], [2, 7, 9, 3, 0, 0, 0, 0]])
    mask = (ids > 0).long()
    other_pad = ids.clone()
    other_pad[1, 4:] = 11  # different ids under a zero mask must not change the embedding
    with torch.no_grad():
        a = model(ids, mask)
        b = model(other_pad, mask)
    assert a.shape == (2, 12)
    assert torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-6)
    assert torch.allclose(a[1], b[1], atol=1e-5)
