"""ExecuTorch export of each tiny net (XNNPACK-delegated .pte), run in the ExecuTorch runtime, fp32
parity; a PT2E int8 GraphModule is delegated to XNNPACK whole and keeps int8 parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobilekd.export.executorch import export_executorch
from mobilekd.export.runtime import example_inputs, open_runtime
from mobilekd.export.types import DEFAULT_TOLERANCES, ExecuTorchOptions
from mobilekd.export.verify import verify_file

from .nets import NETS


@pytest.fixture(scope="module")
def pte_files(tmp_path_factory, nets):
    out = tmp_path_factory.mktemp("pte")
    return {name: export_executorch(nets[name][0], nets[name][1], ["logits"], out / f"{name}.pte",
                                    ExecuTorchOptions()) for name in NETS}


@pytest.mark.parametrize("name", list(NETS))
def test_pte_passes_fp32_parity(name, nets, pte_files):
    model, specs, task, feeds, ref = nets[name]
    parity = verify_file(pte_files[name], ref, feeds, task=task, tolerance=DEFAULT_TOLERANCES["fp32"])
    assert parity.status == "passed", parity.reason
    assert parity.metrics.max_abs_err < 1e-4 and parity.metrics.samples == len(feeds)


def test_delegation_is_reported(pte_files):
    mlp = pte_files["mlp"].details
    # Linear, GELU, Linear: everything runs in one XNNPACK subgraph, nothing left on portable kernels
    assert mlp["backend"] == "xnnpack" and mlp["delegated_subgraphs"] == 1
    assert mlp["delegated_nodes"] > 0 and mlp["portable_ops"] == {}
    # XNNPACK has no embedding lookup: it stays on the portable kernels, and is listed
    assert "aten_embedding_default" in pte_files["recsys"].details["portable_ops"]


def test_portable_backend_delegates_nothing(tmp_path, nets):
    model, specs, task, feeds, ref = nets["mlp"]
    exported = export_executorch(model, specs, ["logits"], tmp_path / "mlp.pte", ExecuTorchOptions(backend="portable"))
    assert exported.details["delegated_nodes"] == 0 and exported.details["portable_nodes"] > 0
    parity = verify_file(exported, ref[:4], feeds[:4], task=task, tolerance=DEFAULT_TOLERANCES["fp32"])
    assert parity.status == "passed", parity.reason


def test_pt2e_int8_graph_is_delegated_and_close(tmp_path, nets):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model, specs, task, feeds, ref = nets["cnn"]
    graph = torch.export.export(model, example_inputs(specs)).module()
    prepared = prepare_pt2e(graph, XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True)))
    for feed in feeds:
        prepared(torch.from_numpy(feed["x"]))
    quantized = convert_pt2e(prepared)
    scheme = "int8 static per-channel (PT2E XNNPACKQuantizer)"
    exported = export_executorch(quantized, specs, ["logits"], tmp_path / "cnn_int8.pte", ExecuTorchOptions(),
                                 variant="int8", scheme=scheme)
    assert exported.variant == "int8" and exported.scheme == scheme
    # conv, relu, add, pool, linear and every (de)quantize run in one XNNPACK subgraph
    assert exported.details["delegated_subgraphs"] == 1 and exported.details["portable_ops"] == {}
    parity = verify_file(exported, ref, feeds, task=task, tolerance=DEFAULT_TOLERANCES["int8"])
    assert parity.status == "passed", parity.reason
    assert 20.0 < parity.metrics.snr_db < 80.0  # quantisation noise: clearly not fp32-exact, clearly close


def test_session_takes_inputs_in_spec_order(pte_files):
    session = open_runtime("executorch", pte_files["recsys"].path, input_names=["ids"])
    (scores,) = session.run({"ids": np.arange(8, dtype=np.int64)[None]})
    assert scores.shape == (1, 50) and scores.dtype == np.float32
