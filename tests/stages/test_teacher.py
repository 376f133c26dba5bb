"""teacher stage: trained, loaded from a state dict or a torch.export program, or a pretrained factory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mobilekd.config import PipelineConfig
from mobilekd.errors import ModelError
from mobilekd.models.vision import build_cnn
from mobilekd.pipeline import run_pipeline
from tests.conftest import stop_after, tiny_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def teacher_only(**teacher) -> PipelineConfig:
    doc = tiny_pipeline()
    doc["teacher"].update(teacher)
    return PipelineConfig.model_validate(stop_after(doc, "teacher"))


def pretrained_teacher(num_outputs: int, in_channels: int = 1) -> torch.nn.Module:
    """A user's factory returning trained weights (here: fixed, seeded ones)."""
    torch.manual_seed(123)
    return build_cnn(num_outputs, in_channels, channels=(4, 8), hidden=16)


def test_checkpoint_that_does_not_fit_names_the_keys(tmp_path: Path):
    ck = tmp_path / "other.pt"
    torch.save(build_cnn(10, 1, channels=(4,), hidden=16).state_dict(), ck)  # one conv block, not two
    with pytest.raises(ModelError) as err:
        run_pipeline(teacher_only(checkpoint=str(ck)), run_dir=tmp_path / "run")
    msg = str(err.value)
    assert "teacher.checkpoint" in msg and str(ck) in msg
    assert "missing" in msg and "features.4.weight" in msg  # the second conv block is absent
    assert "embedding.1.weight" in msg  # (16, 4*2*2) in the file vs (16, 8*2*2) in the model


def test_state_dict_checkpoint_is_loaded_not_trained(tmp_path: Path):
    model = build_cnn(10, 1, channels=(8, 16), hidden=32)
    ck = tmp_path / "teacher.pt"
    torch.save(model.state_dict(), ck)
    out = run_pipeline(teacher_only(checkpoint=str(ck)), run_dir=tmp_path / "run")
    r = out.summary["models"]["teacher"]
    assert r["params"] == sum(p.numel() for p in model.parameters())
    stored = torch.load(tmp_path / "run" / "teacher" / "teacher.pt", weights_only=True)
    assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items())


def test_torch_export_program_teacher(tmp_path: Path):
    model = build_cnn(10, 1, channels=(4, 8), hidden=16).eval()
    program = torch.export.export(model, (torch.zeros(4, 1, 8, 8),), dynamic_shapes={"image": {0: torch.export.Dim("batch")}})
    path = tmp_path / "teacher.pt2"
    torch.export.save(program, str(path))
    run_dir = tmp_path / "run"
    run_pipeline(teacher_only(checkpoint=str(path)), run_dir=run_dir)
    import json

    result = json.loads((run_dir / "teacher" / "stage.json").read_text())["result"]
    assert result["source"] == "program" and result["model"]["kind"] == "program"
    assert (run_dir / "teacher" / "teacher.pt2").read_bytes() == path.read_bytes()


def test_program_with_wrong_input_shape_is_a_model_error(tmp_path: Path):
    # exported for 3-channel images; digits are 1-channel
    path = tmp_path / "rgb.pt2"
    model = build_cnn(10, 3, channels=(4,), hidden=8).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 8, 8),)), str(path))
    with pytest.raises(ModelError, match=r"does not accept this dataset's inputs \[\(2, 1, 8, 8\)\]"):
        run_pipeline(teacher_only(checkpoint=str(path)), run_dir=tmp_path / "run")


def test_pretrained_factory_is_used_as_built(tmp_path: Path):
    out = run_pipeline(teacher_only(model="tests.stages.test_teacher:pretrained_teacher", args={}, pretrained=True),
                       run_dir=tmp_path / "run")
    assert out.statuses["teacher"]["status"] == "ran"
    stored = torch.load(tmp_path / "run" / "teacher" / "teacher.pt", weights_only=True)
    expected = pretrained_teacher(10).state_dict()
    assert all(torch.equal(stored[k], v) for k, v in expected.items())
