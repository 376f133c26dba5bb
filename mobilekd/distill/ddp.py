"""torch.distributed for the training stages: one process per device, started by torchrun.

`torchrun --nproc-per-node N -m mobilekd pipeline run ...` sets WORLD_SIZE/RANK/LOCAL_RANK; the
first training stage calls `setup()`, which joins the process group (gloo on CPU, nccl on GPU).
Without those variables every function here is a no-op for a single process, so the same code
path trains on a laptop and on several machines.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes files (rank 0), and always in a single process."""
    return rank() == 0


def active() -> bool:
    return world_size() > 1


def backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


_left = False  # set by cleanup(): this process does not rejoin


def setup() -> bool:
    """Join the process group torchrun described in the environment; True when distributed."""
    if _left:
        return False
    if dist.is_initialized():
        return world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    dist.init_process_group(backend=backend())
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def device() -> torch.device:
    """This process's device: its GPU (LOCAL_RANK) when CUDA is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def barrier() -> None:
    if active():
        dist.barrier()


def sum_floats(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (float64, so sums of per-sample losses stay exact enough)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device() if backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    """Leave the process group (after the training stages), so rank 0 carries on as one process."""
    global _left
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _left = True
