"""Typed descriptions shared by every stage: a model input/output (`TensorSpec`) and the strict
pydantic base that rejects unknown keys."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from mobilekd.errors import ConfigError

DType = Literal["float32", "float16", "int64", "int32", "uint8", "int8", "bool"]

# What a model's output means, for metrics and parity. retrieval: sentence embeddings scored
# against a catalogue; embedding: features (hidden states, pooled vectors) with no argmax
# agreement, only error and cosine bounds.
Task = Literal["classification", "ranking", "retrieval", "embedding"]
# The one number each task is judged by (training's best epoch, quantization's drop, the report).
HEADLINE: dict[str, str] = {"classification": "accuracy", "ranking": "ndcg@10", "retrieval": "recall@10"}

_SPEC_RE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*):(?P<dtype>[a-z0-9]+)\[(?P<shape>[0-9, ]*)\]$")


class StrictModel(BaseModel):
    """Base of every config: unknown keys are refused (a typo must never fall to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(StrictModel):
    """One named input or output: name, dtype and static shape (batch first)."""

    name: str
    dtype: DType = "float32"
    shape: tuple[int, ...]
    # Value range for random inputs and for the app developer (pixels in [0, 1], ids in [0, n)).
    low: float | None = None
    high: float | None = None

    @classmethod
    def parse(cls, text: str) -> "TensorSpec":
        """Parse `x:float32[1,3,32,32]`, the form the `mobilekd export --input` option takes."""
        m = _SPEC_RE.match(text.strip())
        if not m:
            raise ConfigError(f"--input: expected NAME:DTYPE[D0,D1,...] like x:float32[1,3,32,32], got {text!r}")
        dtype = m.group("dtype")
        allowed = DType.__args__  # type: ignore[attr-defined]
        if dtype not in allowed:
            raise ConfigError(f"--input {text!r}: dtype must be one of {', '.join(allowed)}, got {dtype!r}")
        dims = [d for d in m.group("shape").replace(" ", "").split(",") if d]
        if not dims or any(int(d) <= 0 for d in dims):
            raise ConfigError(f"--input {text!r}: every dimension must be a positive integer")
        return cls(name=m.group("name"), dtype=dtype, shape=tuple(int(d) for d in dims))

    def __str__(self) -> str:
        return f"{self.name}:{self.dtype}[{','.join(map(str, self.shape))}]"
