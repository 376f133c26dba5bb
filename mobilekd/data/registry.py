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
    "voice_commands": "mobilekd.data.voice_commands:load",
    "speech_commands": "mobilekd.data.speech_commands:load",
    "online_retail_catalogue": "mobilekd.data.catalogue:load",
}

_FIXED = {"data_dir", "seed"}
# The option model each built-in loader validates its keyword arguments with, so that a bad value
# (val_fraction: 1.5) is refused at validation with its dotted path, not as a pydantic dump at load.
OPTIONS: dict[str, str] = {
    "digits": "mobilekd.data.digits:DigitsOptions",
    "fashion_mnist": "mobilekd.data.fashion_mnist:FashionMNISTOptions",
    "online_retail": "mobilekd.data.online_retail:OnlineRetailOptions",
    "voice_commands": "mobilekd.data.voice_synth:SynthOptions",  # data_seed is SynthOptions.seed
    "speech_commands": "mobilekd.data.speech_commands:SpeechCommandsOptions",
    "online_retail_catalogue": "mobilekd.data.catalogue:CatalogueOptions",
}


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
    if cfg.dataset in OPTIONS:
        _check_values(cfg, import_object(OPTIONS[cfg.dataset], what="data.dataset"))


def _check_values(cfg: Any, model: Any) -> None:
    from pydantic import ValidationError

    from mobilekd.yaml_input import format_error

    given = {k: v for k, v in cfg.options.items() if k in model.model_fields}
    try:
        model.model_validate(given)
    except ValidationError as e:
        lines = [format_error({**err, "loc": ("data", "options", *err["loc"])}) for err in e.errors()]
        raise ConfigError(f"invalid data options for {cfg.dataset!r}:\n  " + "\n  ".join(lines)) from None


def load_dataset(cfg: Any, data_dir: Path | None, seed: int) -> Dataset:
    """Call the loader (a user loader's exception names its import path) and check its contract."""
    from mobilekd.data.contract import check_dataset
    from mobilekd.usercode import calling, is_import_path

    loader = loader_for(cfg.dataset)
    if is_import_path(cfg.dataset):
        with calling("data.dataset", cfg.dataset):
            ds = loader(data_dir, seed=seed, **cfg.options)
    else:
        ds = loader(data_dir, seed=seed, **cfg.options)
    check_dataset(ds, cfg.dataset)
    return ds
