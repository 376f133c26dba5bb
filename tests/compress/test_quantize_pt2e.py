"""PT2E int8 for ExecuTorch on the tiny digits CNN: eager accuracy, XNNPACK delegation, the .pte run
in the ExecuTorch runtime, keep_float, dynamic and QAT."""

from __future__ import annotations

import pytest
import torch

from mobilekd.compress.quantize import convert_qat, prepare_qat, quantize_pt2e
from mobilekd.errors import ConfigError, StageError

from .nets import agreement, attr, calibration_batches


def test_pt2e_static_runs_eagerly_and_lowers_to_delegated_int8_pte(cnn, digits, tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    x_test = digits["x_test"]
    with torch.no_grad():
        fp32 = cnn(x_test)
    # The fixture's model must be a real classifier, else agreement means nothing.
    assert (fp32.argmax(1) == digits["y_test"]).float().mean() > 0.85

    gm = quantize_pt2e(cnn, (x_test[:1],), calibration_batches(digits))
    targets = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_tensor" in t for t in targets)
    assert any("dequantize_per_channel" in t for t in targets)  # per-channel weights by default
    with torch.no_grad():
        eager = gm(x_test)  # whole test split in one batch: the batch axis stayed dynamic
    assert agreement(eager, fp32) >= 0.95

    program = to_edge_transform_and_lower(
        torch.export.export(gm, (x_test[:1],)), partitioner=[XnnpackPartitioner()]).to_executorch()
    top = [n for n in program.exported_program().graph.nodes if n.op == "call_function"]
    # Fully delegated: one XNNPACK call (plus the getitem of its output), no int8 op left outside.
    assert [str(n.target) for n in top if "getitem" not in str(n.target)] == ["executorch_call_delegate"]
    pte = tmp_path / "m.pte"
    pte.write_bytes(program.buffer)
    method = Runtime.get().load_program(pte).load_method("forward")
    outs = torch.cat([method.execute((x_test[i:i + 1],))[0] for i in range(len(x_test))])
    assert agreement(outs, fp32) >= 0.9


def test_pt2e_keep_float_leaves_that_layer_unquantized(cnn, digits):
    gm = quantize_pt2e(cnn, (digits["x_test"][:1],), calibration_batches(digits, n=2), keep_float=["fc"])
    linear = [n for n in gm.graph.nodes if n.target == torch.ops.aten.linear.default]
    assert len(linear) == 1
    # fc's weight feeds linear directly as a float32 parameter, not through a dequantize.
    weight = linear[0].args[1]
    assert weight.op == "get_attr"
    assert attr(gm, weight.target).dtype == torch.float32
    # ... while conv weights are int8 tensors behind dequantize_per_channel.
    int8_params = [attr(gm, n.target) for n in gm.graph.nodes
                   if n.op == "get_attr" and attr(gm, n.target).dtype == torch.int8]
    assert len(int8_params) == 2  # conv1 and conv2 weights


def test_pt2e_dynamic_quantizes_weights_only(cnn, digits):
    gm = quantize_pt2e(cnn, (digits["x_test"][:1],), [], scheme="dynamic")
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert any("choose_qparams" in t for t in targets)  # activation ranges computed at run time
    # Dynamic XNNPACK config covers Linear only: fc weight is int8, the two conv weights float32.
    params = {n.target: attr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    assert params["conv1.weight"].dtype == params["conv2.weight"].dtype == torch.float32
    int8 = [t for t in params.values() if t.dtype == torch.int8]
    assert len(int8) == 1 and int8[0].shape == (10, 32)
    # The weight scale came from a real observation, not the observer default of 1.0
    # (with scale 1.0 every |w| < 0.5 would round to 0, and agreement fell to ~0.7).
    assert int8[0].abs().max() == 127
    with torch.no_grad():
        assert agreement(gm(digits["x_test"]), cnn(digits["x_test"])) >= 0.95


def test_qat_prepare_train_convert(digits):
    # An MLP keeps this fast: prepare_qat_pt2e's conv-BN pattern matching costs ~40 s on 2 cores.
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    x, y = digits["x_train"], digits["y_train"]
    prepared = prepare_qat(mlp, (x[:2],))
    opt = torch.optim.Adam(prepared.parameters(), lr=1e-2)
    for _ in range(60):  # full-batch fine-tuning through the fake-quant ops
        opt.zero_grad()
        torch.nn.functional.cross_entropy(prepared(x), y).backward()
        opt.step()
    gm = convert_qat(prepared)
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert any("quantize_per_tensor" in t for t in targets)
    with torch.no_grad():
        acc = (gm(digits["x_test"]).argmax(1) == digits["y_test"]).float().mean().item()
    assert acc >= 0.85  # a 64-32-10 MLP reaches ~0.95 on digits; int8 QAT must stay close


def test_pt2e_rejects_bad_input(cnn, digits):
    x = (digits["x_test"][:1],)
    with pytest.raises(ConfigError, match="no module named"):
        quantize_pt2e(cnn, x, calibration_batches(digits, n=1), keep_float=["conv9"])
    with pytest.raises(ConfigError, match="qat"):
        quantize_pt2e(cnn, x, calibration_batches(digits, n=1), scheme="qat")  # type: ignore[arg-type]
    with pytest.raises(StageError, match="calibration"):
        quantize_pt2e(cnn, x, [])


def test_pt2e_batch_one_only_model_exports_static(digits):
    class BatchOne(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.view(1, 64))  # cannot trace at batch 2

    x = digits["x_train"]
    gm = quantize_pt2e(BatchOne(), (x[:1],), [(x[i:i + 1],) for i in range(4)])
    assert gm(x[:1]).shape == (1, 10)


class _TokenClassifier(torch.nn.Module):
    """Token ids + `arange(n) + 1` position ids, as transformers builds them: two int64 tensors
    that index embeddings, feeding a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = torch.nn.Embedding(20, 8)
        self.pos = torch.nn.Embedding(9, 8)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1]) + 1  # int64 + python scalar: must stay int64
        return self.head((self.tok(ids) + self.pos(pos)).mean(1))


@pytest.mark.parametrize("scheme", ["static", "dynamic"])
def test_pt2e_integer_inputs_are_never_annotated(scheme):
    torch.manual_seed(0)
    model = _TokenClassifier().eval()
    ids = torch.randint(0, 20, (4, 6))
    gm = quantize_pt2e(model, (ids,), [(ids,)], scheme=scheme)
    for node in gm.graph.nodes:
        if node.op == "call_function" and "quantize_per_tensor" in str(node.target):
            val = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
            assert val is None or val.dtype.is_floating_point, f"{node.name} quantizes an integer tensor"
    with torch.no_grad():
        want, got = model(ids), gm(ids)  # before the fix: IndexError (position ids had become float)
    assert got.shape == (4, 3)
    assert torch.allclose(got, want, atol=0.05)
