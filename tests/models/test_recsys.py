import numpy as np
import pytest
import torch

from mobilekd.models.recsys import FEATURE_LAYER, RebuyPath, TopKHead, build_rec_student, build_rec_teacher, build_sasrec_teacher

N, K = 3105, 50  # catalogue size of the real data with min_count 5; the recipe's history length or less


def _ids() -> torch.Tensor:
    torch.manual_seed(0)
    x = torch.randint(2, N, (3, K))
    x[0, :45] = 0  # five items of history
    x[1, :] = 0  # no history at all
    return x


@pytest.mark.parametrize("build", [build_sasrec_teacher, build_rec_student])
def test_contract(build):
    model = build(N).eval()
    out = model(_ids())
    assert out.shape == (3, N) and out.dtype == torch.float32 and torch.isfinite(out).all()
    feat = dict(model.named_modules())[FEATURE_LAYER](_ids())
    assert feat.shape[0] == 3 and feat.ndim == 2
    # Padding is masked by arithmetic: whatever embedding row 0 holds, every real item's score is
    # the same (with the tied output layer, only id 0's own score, never ranked, moves).
    before = model(_ids())
    with torch.no_grad():
        model.encoder.items.weight[0] = torch.randn(model.encoder.items.weight.shape[1]) * 10
    torch.testing.assert_close(model(_ids())[:, 1:], before[:, 1:])


def test_tied_small_init_starts_near_uniform():
    """std 0.05 tied tables: the first loss is about ln(items), not the 21 of N(0, 1) * sqrt(dim)."""
    torch.manual_seed(0)
    for build in (build_sasrec_teacher, build_rec_student):
        model = build(N).eval()
        assert model.head.weight is model.encoder.items.weight
        logits = model(_ids()) - model.rebuy(_ids(), torch.zeros(3, N))  # without the re-buy boost
        assert abs(float(torch.logsumexp(logits, 1).mean().detach()) - np.log(N)) < 0.5


@pytest.mark.parametrize("form", ["scatter", "equality"])
def test_rebuy_path_by_hand(form):
    path = RebuyPath(5, 4, form)
    with torch.no_grad():
        path.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        path.item.weight[3] = 10.0
    out = path(torch.tensor([[0, 3, 3, 2]]), torch.zeros(1, 5))
    # slot weights 1..4; item 3 in slots 2 and 3 with propensity 10: (2 + 10) + (3 + 10) = 25;
    # item 2 in slot 4: 4; the padding id gets slot 1's weight (never ranked); item 4 nothing.
    assert out.tolist() == [[1.0, 0.0, 4.0, 25.0, 0.0]]


@pytest.mark.parametrize("form", ["scatter", "equality"])
def test_log_rebuy_path_by_hand(form):
    path = RebuyPath(5, 4, form, counts="log", heads=1)
    # slots 0..3 are 3, 2, 1, 0 lines back: recency buckets floor(log2(r + 1)) = 2, 1, 1, 0
    assert path.bucket.tolist() == [2, 1, 1, 0]
    with torch.no_grad():
        path.theta.copy_(torch.log(torch.tensor([[1.0, 2.0, 3.0]])))  # bucket weights 1, 2, 3
        path.scale.fill_(1.0)
        path.item.weight[3] = 10.0
    out = path(torch.tensor([[0, 3, 3, 2]]), torch.zeros(1, 5))
    # slot weights 3, 2, 2, 1: id 0 counts 3 -> log 4; item 3 counts 2 + 2 -> log 5, plus its
    # propensity 10 once (it is in the history); item 2 counts 1 -> log 2; items 1 and 4 nothing
    want = torch.tensor([[np.log(4.0), 0.0, np.log(2.0), np.log(5.0) + 10.0, 0.0]])
    torch.testing.assert_close(out, want.float())


def test_log_rebuy_heads_start_apart():
    """Identical heads would get identical gradients and stay copies: head h starts with a steeper decay."""
    path = RebuyPath(5, 64, counts="log", heads=2)
    assert path.theta[0].abs().max() == 0 and (path.theta[1, 1:] < path.theta[1, :-1]).all()


def test_param_counts():
    teacher = sum(p.numel() for p in build_sasrec_teacher(N).parameters())
    student = sum(p.numel() for p in build_rec_student(N).parameters())
    # student (dim 16, K 50): tied embedding/head 3105*16 = 49,680 + head bias 3,105 + 50 position
    # weights + MLP 2*(16*16+16) = 544 + re-buy 50 slot weights + 3,105 item propensities -> 56,534
    assert student == 56_534
    assert teacher > 4 * student
    # the recipe's teacher (pooled, dim 256): 3105*256 + 3105 + 50 + 2*(256*256+256) + 50 + 3105
    # = 794,880 + 3,105 + 50 + 131,584 + 3,155 = 932,774 -> the student is 1/16.5 of it
    wide = sum(p.numel() for p in build_rec_teacher(N, dim=256, transition=False).parameters())
    assert wide == 932_774 and student * 10 <= wide


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
    values, ids = TopKHead(student, 10, exclude_ids=(0, 1)).eval()(_ids())
    assert ids.shape == (3, 10) and (ids >= 2).all()
    assert (values[:, :-1] >= values[:, 1:]).all()
    np.testing.assert_array_equal(ids.numpy(), torch.topk(student(_ids())[:, 2:], 10).indices.numpy() + 2)


@pytest.mark.parametrize("form,counts", [("scatter", "linear"), ("equality", "linear"), ("scatter", "log"),
                                         ("equality", "log")])
def test_student_runs_in_mobile_runtimes(tmp_path, form, counts):
    """The re-buy path in both forms through all three exporters: ONNX Runtime and ExecuTorch
    (XNNPACK) reproduce the eager scores, repeats included; CoreML converts."""
    ort = pytest.importorskip("onnxruntime")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    student = build_rec_student(N, rebuy=form, rebuy_counts=counts).eval()
    with torch.no_grad():
        if counts == "linear":
            student.rebuy.weight.copy_(torch.linspace(0.5, 3.0, K))
        else:
            student.rebuy.theta.normal_()
        student.rebuy.item.weight.normal_()
    x = _ids()[:1].clone()
    x[0, -3:] = x[0, -4]  # one item bought four times: the re-buy path must count it
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


def test_centered_head_same_ranking_smaller_rows():
    """center=True scores u · (E_b - mean E) + c_b: the plain scores minus one constant per user,
    so every ranking (and softmax) is unchanged, while the weight the int8 quantizer rounds is the
    small centred rows; torch.export keeps it one static graph."""
    plain = build_rec_student(N, max_len=K).eval()
    centered = build_rec_student(N, max_len=K, center=True).eval()
    with torch.no_grad():
        plain.encoder.items.weight.add_(1.0)  # a shared direction, as training makes one
        plain.head.bias.normal_()
    centered.load_state_dict(plain.state_dict())
    x = _ids()
    a, b = plain(x).detach(), centered(x).detach()
    shift = a - b  # one constant per user: u · mean row
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), rtol=0, atol=1e-4)
    assert (a.argsort(dim=1, descending=True)[:, :10] == b.argsort(dim=1, descending=True)[:, :10]).all()
    w = centered.head.weight
    assert (w - w.mean(0)).norm(dim=1).mean() < 0.5 * w.norm(dim=1).mean()
    torch.testing.assert_close(torch.export.export(centered, (x[:1],)).module()(x[:1]), b[:1])


def test_text_similarity_and_text_path_by_hand():
    """Words used by 2+ items: 'red' (items 2, 3) and 'box' (3, 4), each idf log(5/2); 'bag' and
    'blue' (one item each) link nothing. Unit vectors: 2 = [1, 0], 3 = [1, 1]/sqrt2, 4 = [0, 1]."""
    from mobilekd.models.recsys import TextPath, text_similarity

    texts = ("", "", "Red bag", "RED BOX", "blue box")
    s = text_similarity(texts)
    r = 2**-0.5
    want = torch.zeros(5, 5)
    want[2, 3] = want[3, 2] = want[3, 4] = want[4, 3] = r
    assert torch.allclose(s, want, atol=1e-6)
    path = TextPath(texts, max_len=3)  # slot weights start at 0.5
    out = path(torch.tensor([[0, 2, 3]]))  # padding reads nothing; 0.5 * (S[2, b] + S[3, b])
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 0.5 * r, 0.5 * r, 0.5 * r]]), atol=1e-6)
    # the table is rebuilt from the texts, not saved: the checkpoint holds the slot weights only
    teacher = build_rec_teacher(5, max_len=3, dim=4, transition=False, text=True, item_text=texts)
    assert [k for k in teacher.state_dict() if k.startswith("text.")] == ["text.slot"]
    with pytest.raises(ValueError, match="item texts"):
        build_rec_teacher(5, max_len=3, dim=4, text=True, item_text=None)
