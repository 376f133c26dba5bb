"""The contract every dataset loader meets, checked once at the data stage so that a wrong return
value is reported there, named by the loader, instead of as a traceback deep inside training."""

from __future__ import annotations

from typing import Any

import numpy as np

from mobilekd.errors import DataError

INPUT_DTYPES = ("float32", "int64", "int32")


def check_dataset(ds: Any, source: str) -> None:
    """Type of the return value, then per split: input names, dtypes and shapes against the spec,
    targets int64 of the right rank, labels in [0, num_outputs)."""
    from mobilekd.data import Dataset

    where = f"data.dataset: {source}"
    if not isinstance(ds, Dataset):
        raise DataError(f"{where} returned a {type(ds).__name__}; expected a mobilekd.data.Dataset "
                        "(info, train, val, test)")
    info = ds.info
    names = info.input_names()  # model inputs, then privileged (server-only) ones
    for split_name in ("train", "val", "test"):
        split = getattr(ds, split_name)
        at = f"{where}: {split_name}"
        inputs, targets = getattr(split, "inputs", None), getattr(split, "targets", None)
        if not isinstance(inputs, dict) or not isinstance(targets, np.ndarray):
            raise DataError(f"{at}: expected a Split with inputs (dict of numpy arrays) and targets (numpy "
                            f"array), got inputs {type(inputs).__name__}, targets {type(targets).__name__}")
        if sorted(inputs) != sorted(names):
            raise DataError(f"{at}: inputs are named {sorted(inputs)}; info.inputs and info.privileged_inputs "
                            f"name {names}")
        n = targets.shape[0] if targets.ndim else -1
        for spec in (*info.inputs, *info.privileged_inputs):
            arr = inputs[spec.name]
            if not isinstance(arr, np.ndarray):
                raise DataError(f"{at}: input {spec.name!r} is a {type(arr).__name__}; expected a numpy array")
            if arr.dtype.name != spec.dtype or arr.dtype.name not in INPUT_DTYPES:
                raise DataError(f"{at}: input {spec.name!r} has dtype {arr.dtype.name}; expected {spec.dtype} "
                                f"as info.inputs declares (one of {', '.join(INPUT_DTYPES)}; cast with .astype)")
            if tuple(arr.shape[1:]) != tuple(spec.shape[1:]):
                raise DataError(f"{at}: input {spec.name!r} has shape {arr.shape}; expected (N, "
                                f"{', '.join(map(str, spec.shape[1:]))}) as info.inputs declares")
            if arr.shape[0] != n:
                raise DataError(f"{at}: input {spec.name!r} has {arr.shape[0]} rows but targets has {n}")
        if targets.dtype != np.int64:
            raise DataError(f"{at}: targets have dtype {targets.dtype.name}; expected int64 class ids")
        rank = 1 if info.task == "classification" else 2
        if targets.ndim != rank:
            raise DataError(f"{at}: targets have shape {targets.shape}; expected {rank}-D for task {info.task}")
        if n == 0 and split_name == "train":
            raise DataError(f"{at}: the training split is empty")
        if targets.size:
            valid = targets if info.task == "classification" else targets[targets >= 0]
            low = -1 if info.task == "ranking" else 0
            if targets.min() < low or (valid.size and valid.max() >= info.num_outputs):
                raise DataError(f"{at}: targets range {int(targets.min())}..{int(targets.max())}; expected labels in "
                                f"[0, {info.num_outputs}) (num_outputs={info.num_outputs})")
