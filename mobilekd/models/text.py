"""Phone-sized text encoders for search: (input_ids, attention_mask) -> L2-normalised embedding.

Mean pooling over the real tokens and the L2 norm are inside the graph, so an exported file
returns the vector the app compares with its catalogue index by a dot product. Attention is
written with plain matmul/softmax ops (no fused kernel), which ONNX, ExecuTorch (XNNPACK) and
CoreML all lower. `num_outputs` (the catalogue size) is accepted and unused: an embedding does not
depend on how many products there are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mobilekd.models.hf import mean_pool


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h) + bias, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block (attention, then a GELU feed-forward), each with a residual."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), bias))
        return x + self.drop(self.ffn(self.norm2(x)))


class TextTransformer(nn.Module):
    """Token + position embedding, `layers` blocks, masked mean pool, projection, L2 norm."""

    def __init__(self, vocab_size: int, max_len: int, dim: int, heads: int, layers: int, ffn: int,
                 out_dim: int, dropout: float):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList([Block(dim, heads, ffn, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)
        self.register_buffer("position_ids", torch.arange(max_len), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        x = self.tokens(input_ids) + self.positions(self.position_ids[:t])
        mask = attention_mask.to(x.dtype)
        bias = ((1.0 - mask) * -1e4)[:, None, None, :]  # padded keys get no attention
        for block in self.blocks:
            x = block(x, bias)
        return F.normalize(self.proj(mean_pool(self.norm(x), mask)), p=2, dim=-1)


class PooledEmbedding(nn.Module):
    """fastText-style baseline: mean of the token embeddings, a GELU MLP, L2 norm (no attention)."""

    def __init__(self, vocab_size: int, dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = mean_pool(self.tokens(input_ids), attention_mask.to(torch.float32))
        return F.normalize(self.mlp(pooled), p=2, dim=-1)


def build_text_transformer(num_outputs: int, vocab_size: int, max_len: int, dim: int = 80, heads: int = 4,
                           layers: int = 2, ffn: int = 160, out_dim: int = 384, dropout: float = 0.1) -> nn.Module:
    del num_outputs
    return TextTransformer(vocab_size, max_len, dim, heads, layers, ffn, out_dim, dropout)


def build_pooled_embedding(num_outputs: int, vocab_size: int, dim: int = 80, hidden: int = 256,
                           out_dim: int = 384) -> nn.Module:
    del num_outputs
    return PooledEmbedding(vocab_size, dim, hidden, out_dim)
