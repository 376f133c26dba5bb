"""CoreML export of each tiny net to an ML program; on Linux the file cannot run, so verify checks
the saved spec and reports not_executed (never passed)."""

from __future__ import annotations

import platform

import pytest

from mobilekd.export.coreml import export_coreml, inspect_coreml
from mobilekd.export.runtime import can_execute
from mobilekd.export.types import DEFAULT_TOLERANCES, CoreMLOptions, ExportedModel
from mobilekd.export.verify import verify_file

from .nets import NETS

pytestmark = pytest.mark.skipif(platform.system() == "Darwin", reason="Linux behaviour: CoreML is not executed")


@pytest.fixture(scope="module")
def packages(tmp_path_factory, nets):
    out = tmp_path_factory.mktemp("coreml")
    return {name: export_coreml(nets[name][0], nets[name][1], ["logits"], out / f"{name}.mlpackage",
                                CoreMLOptions()) for name in NETS}


@pytest.mark.parametrize("name", list(NETS))
def test_coreml_is_not_executed_but_spec_checked(name, nets, packages):
    model, specs, task, feeds, ref = nets[name]
    exported = packages[name]
    assert not can_execute("coreml")
    parity = verify_file(exported, ref, feeds, task=task, tolerance=DEFAULT_TOLERANCES["fp32"])
    assert parity.status == "not_executed"
    assert "spec checked" in parity.reason and parity.metrics is None
    spec = inspect_coreml(exported.path)
    assert spec["model_type"] == "mlProgram" and spec["deployment_target"] == "iOS17"
    assert spec["specification_version"] == 8
    assert [i["name"] for i in spec["inputs"]] == [s.name for s in specs]
    assert spec["outputs"] == [{"name": "logits", "shape": list(exported.outputs[0].shape), "dtype": "float32"}]
    assert spec["weight_precision"] == "fp32"


def test_int64_ids_become_int32(packages):
    assert inspect_coreml(packages["recsys"].path)["inputs"] == [{"name": "ids", "shape": [1, 8], "dtype": "int32"}]


def test_gru_falls_back_to_trace(packages):
    # coremltools 9's torch.export frontend has no aten.gru; the TorchScript frontend does
    assert packages["gru"].details["frontend"].startswith("torchscript trace")
    assert packages["mlp"].details["frontend"] == "torch.export"


def test_fp16_and_target_options(tmp_path, nets):
    model, specs, *_ = nets["mlp"]
    exported = export_coreml(model, specs, ["logits"], tmp_path / "mlp16.mlpackage",
                             CoreMLOptions(minimum_deployment_target="iOS18", compute_precision="fp16"))
    spec = inspect_coreml(exported.path)
    assert spec["deployment_target"] == "iOS18" and spec["specification_version"] == 9
    assert spec["weight_precision"] == "fp16"
    assert exported.bytes > 0 and (tmp_path / "mlp16.mlpackage").is_dir()


def test_spec_mismatch_fails(packages, nets):
    model, specs, task, feeds, ref = nets["mlp"]
    declared = packages["mlp"].model_dump()
    declared["outputs"][0]["name"] = "scores"
    parity = verify_file(ExportedModel(**declared), ref, feeds, task=task, tolerance=DEFAULT_TOLERANCES["fp32"])
    assert parity.status == "failed" and "output names" in parity.reason


def test_boolean_mask_and_converts(tmp_path):
    """`a & b` on boolean masks (how transformers builds attention masks) is the fx node kind
    __and__, which coremltools 9 looks up verbatim; mobilekd aliases coremltools' own translation
    (logical_and on booleans) to it, so the model converts instead of failing on the operator."""
    import torch

    from mobilekd.specs import TensorSpec

    class Masked(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = (x > 0) & (x < 1)
            return torch.where(mask, x, torch.zeros_like(x)) * 2.0

    specs = (TensorSpec(name="x", dtype="float32", shape=(1, 4)),)
    exported = export_coreml(Masked().eval(), specs, ["logits"], tmp_path / "m.mlpackage", CoreMLOptions())
    spec = inspect_coreml(exported.path)
    assert spec["outputs"][0]["shape"] == [1, 4] and exported.details["frontend"] == "torch.export"
