"""Hugging Face folders as a model source: `hf:DIR` is a local `save_pretrained` folder, loaded with
`transformers` (an optional extra) offline; example inputs come from the model's config."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from mobilekd.errors import ConfigError, ModelError
from mobilekd.specs import TensorSpec

HF_TASKS = ("feature-extraction", "sequence-classification", "image-classification")
PREFIX = "hf:"
DEFAULT_SEQUENCE = 16


def is_hf(source: str) -> bool:
    return source.startswith(PREFIX)


def load_hf(source: str, task: str) -> tuple[nn.Module, list[TensorSpec]]:
    """The model in `hf:DIR` for `task`, and input specs built from its config (batch 1)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder only: never a download at run time
    try:
        import transformers
    except ImportError as e:
        raise ConfigError(f"{source}: Hugging Face models need the 'hf' extra: pip install 'mobilekd[hf]'") from e
    folder = Path(source[len(PREFIX):])
    if task not in HF_TASKS:
        raise ConfigError(f"--task {task!r}: an hf: model takes one of {', '.join(HF_TASKS)}")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{source}: no config.json in {folder}; expected a folder written by save_pretrained")
    auto = {"feature-extraction": transformers.AutoModel,
            "sequence-classification": transformers.AutoModelForSequenceClassification,
            "image-classification": transformers.AutoModelForImageClassification}[task]
    try:
        model = auto.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelError(f"{source}: transformers could not load it for {task} ({e})") from e
    return model.eval(), input_specs(model.config, task)


def input_specs(config, task: str) -> list[TensorSpec]:  # type: ignore[no-untyped-def]
    """Text models: input_ids (ids below vocab_size), attention_mask, token_type_ids where the config
    has a type vocabulary. Vision models: pixel_values of the config's image size."""
    if task == "image-classification":
        size = getattr(config, "image_size", 224)
        channels = getattr(config, "num_channels", 3)
        return [TensorSpec(name="pixel_values", shape=(1, channels, size, size), low=-1.0, high=1.0)]
    length = min(DEFAULT_SEQUENCE, getattr(config, "max_position_embeddings", DEFAULT_SEQUENCE))
    specs = [TensorSpec(name="input_ids", dtype="int64", shape=(1, length), low=0, high=config.vocab_size),
             TensorSpec(name="attention_mask", dtype="int64", shape=(1, length), low=1, high=2)]
    if getattr(config, "type_vocab_size", 0):
        specs.append(TensorSpec(name="token_type_ids", dtype="int64", shape=(1, length), low=0, high=1))
    return specs


def parity_task(task: str) -> str:
    """The verify task of an HF task: features are compared as features, classes by agreement."""
    return "embedding" if task == "feature-extraction" else "classification"
