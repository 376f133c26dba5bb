import numpy as np
import pytest
import torch

from mobilekd.models.recsys import FEATURE_LAYER, TopKHead, build_rec_student, build_sasrec_teacher

N, K = 3105, 20  # catalogue size of the real data with min_count 5


def _ids() -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randint(2, N, (3, K))
    x[0, :15] = 0  # five items of history
    x[1, :] = 0  # no history at all
    return x


@pytest.mark.parametrize("build", [build_sasrec_teacher, build_rec_student])
def test_contract(build):
    model = build(N).eval()
    out = model(_ids())
    assert out.shape == (3, N) and out.dtype == torch.float32 and torch.isfinite(out).all()
    feat = dict(model.named_modules())[FEATURE_LAYER](_ids())
    assert feat.shape[0] == 3 and feat.ndim == 2
    # Padding is masked by arithmetic: whatever embedding row 0 holds, the output is the same.
    before = model(_ids())
    with torch.no_grad():
        model.encoder.items.weight[0] = torch.randn(model.encoder.items.weight.shape[1]) * 10
    torch.testing.assert_close(model(_ids()), before)


def test_param_counts():
    teacher = sum(p.numel() for p in build_sasrec_teacher(N).parameters())
    student = sum(p.numel() for p in build_rec_student(N).parameters())
    # student: embedding 3105*32 = 99,360 + 20 position weights + MLP 2*(32*32+32) = 2,112
    #          + head 32*3105 + 3105 = 102,465 -> 203,957
    assert student == 203_957
    assert teacher > 1_000_000 and teacher > 5 * student


def test_history_order_matters_for_teacher():
    model = build_sasrec_teacher(N, dropout=0.0).eval()
    x = _ids()[2:]
    assert not torch.allclose(model(x), model(x.flip(1)))


def test_exports():
    x = _ids()[:1]
    teacher = build_sasrec_teacher(N).eval()
    ep = torch.export.export(teacher, (x,))
    torch.testing.assert_close(ep.module()(x), teacher(x))
    student = build_rec_student(N).eval()
    ep = torch.export.export(student, (x,))
    torch.testing.assert_close(ep.module()(x), student(x))


def test_topk_excludes_pad_and_unknown():
    student = build_rec_student(N).eval()
    with torch.no_grad():
        student.head.bias[:2] = 1e6  # even with huge logits, 0 and 1 are never recommended
    values, ids = TopKHead(student, 10).eval()(_ids())
    assert ids.shape == (3, 10) and (ids >= 2).all()
    assert (values[:, :-1] >= values[:, 1:]).all()
    np.testing.assert_array_equal(ids.numpy(), torch.topk(student(_ids())[:, 2:], 10).indices.numpy() + 2)


def test_student_runs_in_mobile_runtimes(tmp_path):
    """ONNX Runtime and ExecuTorch (XNNPACK) reproduce the eager scores; CoreML converts."""
    ort = pytest.importorskip("onnxruntime")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    student = build_rec_student(N).eval()
    x = _ids()[:1]
    want = student(x).detach().numpy()
    onnx_path = tmp_path / "s.onnx"
    torch.onnx.export(student, (x,), str(onnx_path), input_names=["items"], output_names=["scores"], dynamo=True)
    got = ort.InferenceSession(str(onnx_path)).run(None, {"items": x.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    ep = torch.export.export(student, (x,))
    pte = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    (tmp_path / "s.pte").write_bytes(pte.buffer)
    method = Runtime.get().load_program(tmp_path / "s.pte").load_method("forward")
    np.testing.assert_allclose(method.execute([x])[0].numpy(), want, atol=1e-5)
    import coremltools as ct

    ml = ct.convert(ep.run_decompositions({}), inputs=[ct.TensorType(name="items", shape=(1, K), dtype=np.int32)],
                    convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16)
    out = ml.get_spec().description.output[0].type.multiArrayType
    assert list(out.shape) == [1, N]  # converted and inspected only: CoreML cannot run on Linux
