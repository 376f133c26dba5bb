"""Output structures and keyword inputs: every model shape flattens to stable names, exports and is
verified output by output."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from mobilekd.errors import ExportError
from mobilekd.export.adapt import adapt, flatten_outputs, keyword_inputs


@dataclasses.dataclass
class Pair:
    logits: torch.Tensor
    hidden: torch.Tensor
    extra: torch.Tensor | None = None


class Multi(nn.Module):
    """Returns the same two tensors in the structure named by `kind`."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.body = nn.Linear(6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        h = torch.relu(self.body(x))
        y = self.head(h)
        if self.kind == "tensor":
            return y
        if self.kind == "tuple":
            return y, h
        if self.kind == "list":
            return [y, h]
        if self.kind == "dict":
            return {"logits": y, "hidden": h}
        if self.kind == "dataclass":
            return Pair(logits=y, hidden=h)
        if self.kind == "nested":
            return {"out": (y, h)}
        raise ValueError(self.kind)


@pytest.mark.parametrize("kind, names", [
    ("tensor", ["output"]), ("tuple", ["0", "1"]), ("list", ["0", "1"]), ("dict", ["logits", "hidden"]),
    ("dataclass", ["logits", "hidden"]),  # the None field `extra` is skipped
    ("nested", ["out_0", "out_1"]),
])
def test_flatten_names_each_structure(kind, names):
    out = Multi(kind)(torch.zeros(2, 6))
    flat = flatten_outputs(out)
    assert [n for n, _ in flat] == names
    assert flat[0][1].shape == (2, 3)  # the logits always come first here


def test_model_output_keeps_its_field_names():
    transformers = pytest.importorskip("transformers")
    out = transformers.modeling_outputs.SequenceClassifierOutput(logits=torch.ones(1, 2), hidden_states=None)
    assert [n for n, _ in flatten_outputs(out)] == ["logits"]  # loss=None and hidden_states=None dropped
    base = transformers.modeling_outputs.BaseModelOutputWithPooling(last_hidden_state=torch.ones(1, 4, 8),
                                                                  pooler_output=torch.ones(1, 8))
    assert [n for n, _ in flatten_outputs(base)] == ["last_hidden_state", "pooler_output"]


def test_keep_selects_outputs_and_rejects_unknown_names():
    model = Multi("dict").eval()
    flat = adapt(model, ["x"], (torch.zeros(1, 6),), keep=["hidden"])
    assert flat.output_names == ["hidden"]
    (h,) = flat(torch.ones(1, 6))
    assert h.shape == (1, 5)
    with pytest.raises(ExportError, match=r"--output \['nope'\].*\['logits', 'hidden'\]"):
        adapt(model, ["x"], (torch.zeros(1, 6),), keep=["nope"])
    single = adapt(Multi("tensor").eval(), ["x"], (torch.zeros(1, 6),), keep=["logits"])
    assert single.output_names == ["logits"]


class KwOnly(nn.Module):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None):  # type: ignore[no-untyped-def]
        return {"score": (input_ids * attention_mask).float().sum(1, keepdim=True) + token_type_ids.float().sum(1, keepdim=True)}


def test_keyword_inputs_are_mapped_by_name():
    model = KwOnly()
    # the specs come in a different order from forward()'s parameters: only names can map them
    names = ["attention_mask", "token_type_ids", "input_ids"]
    assert keyword_inputs(model, names)
    assert not keyword_inputs(model, ["input_ids", "attention_mask"])  # leading positional order: same thing
    ids, mask, types = torch.tensor([[3, 4]]), torch.tensor([[1, 0]]), torch.tensor([[1, 1]])
    flat = adapt(model, names, (mask, types, ids))
    (score,) = flat(mask, types, ids)
    assert score.item() == 3 * 1 + 4 * 0 + 2  # ids*mask summed, plus the token types


@pytest.mark.parametrize("kind", ["tuple", "dict", "dataclass"])
def test_each_structure_exports_and_every_output_is_verified(kind, tmp_path, monkeypatch):
    import sys

    from mobilekd.export.command import ExportRequest, export_command

    (tmp_path / "structnets.py").write_text(
        "import torch\nfrom tests.export.test_adapt import Multi\n"
        "def build(kind):\n    torch.manual_seed(0)\n    return Multi(kind)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("structnets", None)
    rows = export_command(ExportRequest(source="structnets:build", inputs=["x:float32[1,6]"], formats=["onnx", "executorch"],
                                        out=tmp_path / "o", factory_args={"kind": kind}))
    for exported, parity in rows:
        assert parity.status == "passed", (exported.format, parity.reason)
        assert len(exported.outputs) == 2
        # the second output was compared too, with its own metrics
        (second,) = parity.outputs
        assert second == exported.outputs[1].name and parity.outputs[second].max_abs_err < 1e-4
