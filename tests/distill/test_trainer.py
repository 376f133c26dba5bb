"""fit(): same seed -> same metrics, early stopping, best epoch kept, resume after an interrupt."""

from __future__ import annotations

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
