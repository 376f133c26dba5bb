"""Two CPU processes (gloo, torch.multiprocessing spawn) train to the same weights as one process
with the same global batch: DistributedSampler gives each rank half of every global batch, DDP
averages the gradients, so for a model without batch statistics the steps are identical up to
float summation order (tolerance 1e-5)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from mobilekd.config import DataConfig, TrainSettings
from mobilekd.data.registry import load_dataset
from mobilekd.distill import ddp
from mobilekd.distill.trainer import TrainSpec, fit, seed_everything
from mobilekd.models import build_model

SETTINGS = TrainSettings(epochs=2, batch_size=64, lr=0.01, grad_clip=1.0)


class Adapter(nn.Module):
    """Stands in for a hint adapter: trained with the student, so its gradients must be reduced too."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(10, 4, bias=False)


def train(result_file: str | None = None) -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    ds = load_dataset(DataConfig(dataset="digits"), None, 0)
    train_rows = ds.train.take(slice(0, 1000))  # even, so DistributedSampler pads nothing
    seed_everything(0)
    model = build_model("mlp", {"hidden": [32]}, ds.info, key="ddp-test")
    aux = Adapter()

    def objective(net, xs, y, idx):
        logits = net(*xs)
        # a term through the adapter only: pulls a 4-d projection of the logits towards 0
        return F.cross_entropy(logits, y) + 0.1 * aux.proj(logits).pow(2).mean(), {}

    history = fit(model, TrainSpec(train_rows, ds.val, ds.info, SETTINGS, 3), objective, aux=aux).history
    state = {**{f"model.{k}": v for k, v in model.state_dict().items()}, "aux.proj": aux.proj.weight.detach().clone(),
             "val_accuracy": torch.tensor([h["val_accuracy"] for h in history]),
             "loss": torch.tensor([h["loss"] for h in history], dtype=torch.float64)}
    if result_file is not None and ddp.is_main():
        torch.save(state, result_file)
    return state


def _worker(rank: int, world: int, port: int, result_file: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        assert ddp.world_size() == world and ddp.is_main() == (rank == 0)
        train(result_file)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_two_processes_match_one_process(tmp_path):
    single = train()
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    two = torch.load(out, weights_only=True)
    assert set(two) == set(single)
    for k in single:
        torch.testing.assert_close(two[k], single[k], atol=1e-5, rtol=1e-5, msg=k)
    assert not torch.equal(single["aux.proj"], Adapter().proj.weight)  # the adapter did train


def test_batch_must_divide_by_processes(monkeypatch, digits):
    from mobilekd.errors import ConfigError

    monkeypatch.setattr(ddp, "world_size", lambda: 3)
    model = build_model("mlp", {"hidden": [8]}, digits.info, key="t")
    with pytest.raises(ConfigError, match="batch_size: 64 must be divisible by the number of processes \\(3\\)"):
        fit(model, TrainSpec(digits.train, digits.val, digits.info, SETTINGS, 0), lambda *a: None)
