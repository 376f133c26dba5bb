"""Training windows for next-invoice examples: a stretch of one customer's lines, with every
invoice boundary inside it trained in the same forward pass.

A window covers `length` consecutive lines of one customer (lines [a, a + length) counted from
their first line) and holds the K lines before it too, as one left-padded sequence of K + length
ids. Each invoice that starts inside the window is an example: its history is the K ids just before
its first line, a slice of that one sequence, and its target the whole invoice. The trainer draws
whole windows (`Split.windows`), so one optimiser step trains every boundary of the windows it
drew, each against its own next invoice, instead of one boundary per row (the earlier line-target
task trained one position out of every 20 it ran). Windows are how examples are built and
grouped; each example is still one (history, invoice) row, so evaluation, the teacher-output
cache and the exported model see exactly the rows the windows were cut into.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = 0


@dataclass(frozen=True)
class Windows:
    """seq: (W, K + length) ids, oldest first, left-padded with PAD; rows: (W, P) the split's row
    ids of the examples in each window, -1 padding; offsets: (W, P) where each example's K-id
    history starts in its window's sequence (its first line is `offsets + K` there)."""

    seq: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray
    history: int

    def histories(self) -> np.ndarray:
        """(N, K) the examples' histories, row r at index r: K-id slices of the window sequences."""
        slices = np.lib.stride_tricks.sliding_window_view(self.seq, self.history, axis=1)  # (W, L + 1, K)
        valid = self.rows >= 0
        out = np.empty((int(valid.sum()), self.history), dtype=self.seq.dtype)
        w, p = np.nonzero(valid)
        out[self.rows[w, p]] = slices[w, self.offsets[w, p]]
        return out


def cut(ids: np.ndarray, customer_first: np.ndarray, first: np.ndarray, history: int, length: int) -> Windows:
    """Windows over the examples whose invoices start at global line positions `first` (sorted).

    ids: (lines,) item id of every line, customers' lines contiguous and in time order;
    customer_first: (lines,) position of each line's customer's first line; history: K;
    length: lines per window. Example i becomes row i."""
    if length < 1:
        raise ValueError(f"window length must be at least 1 line, got {length}")
    first = np.asarray(first, dtype=np.int64)
    if len(first) > 1 and np.any(np.diff(first) <= 0):
        raise ValueError("example positions must be strictly increasing (one example per invoice start)")
    c0 = customer_first[first] if len(first) else np.zeros(0, np.int64)
    start = c0 + (first - c0) // length * length  # the window's first line
    new = np.r_[True, start[1:] != start[:-1]] if len(first) else np.zeros(0, bool)
    window_of = np.cumsum(new) - 1
    n_windows = int(new.sum())
    slot = np.arange(len(first)) - np.flatnonzero(new)[window_of]  # rank of the example in its window
    width = int(slot.max()) + 1 if len(first) else 1
    rows = np.full((n_windows, width), -1, dtype=np.int64)
    offsets = np.zeros((n_windows, width), dtype=np.int64)
    rows[window_of, slot] = np.arange(len(first))
    starts = start[new]
    offsets[window_of, slot] = first - starts[window_of]
    # sequence positions: the K lines before the window, then its `length` lines; only the window's
    # customer's lines (PAD before their first line and after their last)
    pos = starts[:, None] - history + np.arange(history + length)[None, :]
    clipped = np.clip(pos, 0, len(ids) - 1)
    inside = (pos >= 0) & (pos < len(ids)) & (customer_first[clipped] == c0[new][:, None])
    seq = np.where(inside, ids[clipped], PAD).astype(ids.dtype)
    return Windows(seq=seq, rows=rows, offsets=offsets, history=history)
