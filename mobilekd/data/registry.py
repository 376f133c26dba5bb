"""Dataset names -> loaders, and a check of a pipeline's data options against the loader."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from mobilekd.data import Dataset
from mobilekd.errors import ConfigError
from mobilekd.imports import import_object

DATASETS: dict[str, str] = {
    "digits": "mobilekd.data.digits:load",
    "fashion_mnist": "mobilekd.data.fashion_mnist:load",
    "online_retail": "mobilekd.data.online_retail:load",
    "online_retail_catalogue": "mobilekd.data.catalogue:load",
}

_FIXED = {"data_dir", "seed"}


def loader_for(dataset: str) -> Callable[..., Dataset]:
    if dataset not in DATASETS and ":" not in dataset:
        raise ConfigError(
            f"data.dataset: unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)} or 'module.path:function'"
        )
    return import_object(DATASETS.get(dataset, dataset), what="data.dataset")


def check_options(cfg: Any) -> None:
    """Refuse options the loader does not take, naming the ones it does."""
    loader = loader_for(cfg.dataset)
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n in params if n not in _FIXED]
    for key in cfg.options:
        if key not in known:
            raise ConfigError(
                f"data.options.{key}: unknown option for dataset {cfg.dataset!r}; expected one of: {', '.join(known) or '(none)'}"
            )


def load_dataset(cfg: Any, data_dir: Path | None, seed: int) -> Dataset:
    loader = loader_for(cfg.dataset)
    return loader(data_dir, seed=seed, **cfg.options)
