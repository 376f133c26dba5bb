"""fit(): same seed -> same metrics, early stopping, best epoch kept, resume after an interrupt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mobilekd.config import TrainSettings
from mobilekd.distill.trainer import TrainSpec, fit, seed_everything
from mobilekd.evaluate import evaluate
from mobilekd.models import build_model


def ce(model, xs, y, idx):
    return F.cross_entropy(model(*xs), y), {"ce_again": 1.0}


def mlp(ds):
    return build_model("mlp", {"hidden": [32], "dropout": 0.1}, ds.info, key="test")


def run(ds, seed=0, **kw):
    seed_everything(seed)  # the initial weights are drawn before fit, as the stages do
    model = mlp(ds)
    settings = TrainSettings(**{"epochs": 3, "batch_size": 64, "lr": 0.01, **kw.pop("settings", {})})
    spec = TrainSpec(ds.train, ds.val, ds.info, settings, seed, resume=kw.pop("resume", None))
    return model, fit(model, spec, ce, **kw)


def test_same_seed_same_metrics_other_seed_differs(digits):
    m1, r1 = run(digits, seed=1)
    m2, r2 = run(digits, seed=1)
    _, r3 = run(digits, seed=2)
    assert r1.history == r2.history  # bit-identical losses and validation metrics, every epoch
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert [h["loss"] for h in r1.history] != [h["loss"] for h in r3.history]
    assert set(r1.history[0]) >= {"epoch", "loss", "ce_again", "lr", "val_accuracy", "val_f1_macro",
                                  "val_precision_macro", "val_recall_macro"}
    assert r1.history[0]["ce_again"] == pytest.approx(1.0)


def test_best_epoch_is_restored(digits):
    model, r = run(digits, settings={"epochs": 4})
    best = r.history[r.best_epoch - 1]["val_accuracy"]
    assert r.best_metric == best == max(h["val_accuracy"] for h in r.history)
    assert evaluate(model, digits.val, digits.info)["accuracy"] == pytest.approx(best)


def test_early_stopping_stops_after_patience(digits):
    # lr 1e-12: the model cannot change, so validation never improves after epoch 1;
    # patience 1 -> epoch 2 is stale -> stop before epoch 3 of 6.
    _, r = run(digits, settings={"epochs": 6, "lr": 1e-12, "early_stopping_patience": 1})
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert r.best_epoch == 1


class Interrupt(Exception):
    pass


def test_resume_continues_from_last_epoch_and_matches_uninterrupted(digits, tmp_path):
    full_model, full = run(digits, settings={"epochs": 3})
    ck = tmp_path / "resume.pt"

    def stop_at_3(epoch, epochs):
        if epoch == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(digits, settings={"epochs": 3}, resume=ck, on_epoch=stop_at_3)
    assert ck.is_file()
    model, resumed = run(digits, settings={"epochs": 3}, resume=ck)
    assert resumed.resumed_from == 2
    assert resumed.history == full.history
    for a, b in zip(model.state_dict().values(), full_model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_augment_shifts_images(digits):
    from mobilekd.distill.trainer import augment

    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 4, 4] = 1.0
    moved = [augment(x, torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(m.shape == x.shape and float(m.sum()) == 1.0 for m in moved)  # shift <= 2 keeps the pixel
    assert any(not torch.equal(m, x) for m in moved)


def test_invoice_targets_become_distributions():
    """(B, R) next-invoice items padded with -1 -> 1/|invoice| on each item; cross-entropy against
    it is the softmax loss averaged over the invoice's items."""
    import torch.nn.functional as F

    from mobilekd.distill.trainer import invoice_distribution

    items = torch.tensor([[2, 4, -1], [1, -1, -1]])
    dist = invoice_distribution(items, 5)
    assert dist.tolist() == [[0, 0, 0.5, 0, 0.5], [0, 1.0, 0, 0, 0]]
    logits = torch.tensor([[0.0, 0.0, 1.0, 0.0, 2.0], [0.0] * 5])
    logp = F.log_softmax(logits, dim=1)
    want = (-(logp[0, 2] + logp[0, 4]) / 2 - logp[1, 1]) / 2
    assert float(F.cross_entropy(logits, dist)) == pytest.approx(float(want), abs=1e-6)


def test_epoch_batches_draw_whole_windows():
    """Rows grouped by window ((W, P), -1 padding): every row once per epoch, a window's rows in
    one step, steps of at least batch_size rows but the last; N processes split each step's rows
    and take the same number of steps."""
    from torch.utils.data import DistributedSampler

    from mobilekd.distill.trainer import epoch_batches

    groups = np.array([[0, 1, 2], [3, -1, -1], [4, 5, -1], [6, -1, -1], [7, 8, 9]])
    one = epoch_batches(DistributedSampler(range(10), num_replicas=1, rank=0, seed=0), groups, 4, seed=3)
    assert sorted(torch.cat(one).tolist()) == list(range(10))
    window_of = {int(r): w for w, g in enumerate(groups) for r in g if r >= 0}
    for step in one:
        ws = {window_of[int(r)] for r in step}
        assert sorted(step.tolist()) == sorted(int(r) for w in ws for r in groups[w] if r >= 0)
    assert all(len(s) >= 4 for s in one[:-1])
    assert [s.tolist() for s in one] == [s.tolist() for s in epoch_batches(
        DistributedSampler(range(10), num_replicas=1, rank=0, seed=0), groups, 4, seed=3)]  # seeded
    two = [epoch_batches(DistributedSampler(range(10), num_replicas=2, rank=r, seed=0), groups, 4, seed=3)
           for r in (0, 1)]
    assert len(two[0]) == len(two[1]) == len(one)
    for step, a, b in zip(one, *two):  # each process takes every other row of the same global step
        assert a.tolist() == step[0::2].tolist() and b.tolist() == step[1::2].tolist()
    # no windows: DistributedSampler's permutation in slices of batch_size / world (unchanged)
    plain = epoch_batches(DistributedSampler(range(10), num_replicas=1, rank=0, seed=0), None, 4, seed=3)
    assert [len(s) for s in plain] == [4, 4, 2]


def test_fit_trains_each_window_in_one_step(digits):
    """fit() on a split with windows: each step's rows are whole windows; every row once per epoch."""
    from dataclasses import replace

    n = len(digits.train)
    groups = np.full(((n + 2) // 3, 3), -1)
    groups.flat[:n] = np.random.default_rng(0).permutation(n)
    seen: list[list[int]] = []

    def record(model, xs, y, idx):
        seen.append(idx.tolist())
        return ce(model, xs, y, idx)

    seed_everything(0)
    model = mlp(digits)
    spec = TrainSpec(replace(digits.train, windows=groups), digits.val, digits.info,
                     TrainSettings(epochs=1, batch_size=64, lr=0.01), 0)
    fit(model, spec, record)
    assert sorted(r for s in seen for r in s) == list(range(n))
    for s in seen:
        assert all(set(g[g >= 0]) <= set(s) or not set(g[g >= 0]) & set(s) for g in groups)
    assert all(len(s) >= 64 for s in seen[:-1])
