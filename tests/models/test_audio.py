"""The in-graph audio front end against torch.stft, and the keyword-spotting models' sizes."""

import numpy as np
import pytest
import scipy.fft
import torch

from mobilekd.models.audio import LogMel, SpecAugment, build_ds_cnn, build_kws_resnet, dct_matrix, mel_filterbank

# Stated tolerance: the in-graph front end (one Cooley-Tukey step in float32) and the torch.stft
# reference (float64) agree on log-mel (natural-log units) within 1e-3 absolute; the log amplifies
# float32 rounding only where the power is near the 1e-6 floor. (Measured: ~6e-5.)
TOL = 1e-3


def reference_logmel(wave: torch.Tensor, n_fft: int = 256, hop: int = 160, n_mels: int = 40,
                     mfcc: int | None = None) -> torch.Tensor:
    """torch.stft-based log-mel in float64: same peak normalisation, Hann window, no centre padding."""
    x = wave.double()
    x = x / torch.clamp(x.abs().amax(dim=-1, keepdim=True), min=0.01)
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                      center=False, return_complex=True)  # (N, bins, frames)
    fb = torch.from_numpy(mel_filterbank(16000, n_fft, n_mels, 20.0, 8000.0)).double()
    logmel = torch.log(torch.clamp(torch.einsum("nft,fm->nmt", spec.abs() ** 2, fb), min=1e-6))
    if mfcc:
        logmel = torch.from_numpy(scipy.fft.dct(logmel.numpy(), type=2, norm="ortho", axis=1)[:, :mfcc])
    return logmel[:, None]


def _speechlike(n: int, seed: int = 0) -> torch.Tensor:
    """Harmonic tones with an envelope plus a little noise: structure across many bins."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(16000) / 16000.0
    f0 = 100 + 200 * torch.rand(n, 1, generator=g)
    x = sum(torch.sin(2 * torch.pi * f0 * h * t) / h for h in range(1, 12))
    env = torch.exp(-((t - 0.5) ** 2) / 0.02)
    return (0.3 * x * env + 0.003 * torch.randn(n, 16000, generator=g)).float()


@pytest.mark.parametrize("mfcc", [None, 13])
def test_front_end_matches_torch_stft(mfcc):
    x = _speechlike(3)
    ours = LogMel(mfcc=mfcc)(x)
    ref = reference_logmel(x, mfcc=mfcc).float()
    # frames = 1 + (16000 - 256) // 160 = 99
    assert ours.shape == ref.shape == (3, 1, mfcc or 40, 99)
    assert (ours - ref).abs().max().item() < TOL


@pytest.mark.parametrize("n_fft,hop", [(512, 160), (400, 160), (320, 160), (128, 64)])
def test_other_window_sizes_match_torch_stft(n_fft, hop):
    # 400 = 16 x 25 and 320 = 16 x 20: the two-stage DFT does not need a power of two; 512 > 2 hops.
    x = _speechlike(2, seed=1)
    ours = LogMel(n_fft=n_fft, hop=hop)(x)
    ref = reference_logmel(x, n_fft=n_fft, hop=hop).float()
    assert ours.shape == ref.shape == (2, 1, 40, 1 + (16000 - n_fft) // hop)
    assert (ours - ref).abs().max().item() < TOL


def test_mel_filterbank_by_hand():
    fb = mel_filterbank(16000, 256, 40, 20.0, 8000.0)
    assert fb.shape == (129, 40)
    # Triangles peak at 1 at most (a bin may miss the exact centre), never negative, and each mel
    # band covers at least one FFT bin; bin 0 (0 Hz) is below fmin = 20 Hz and in no band.
    assert fb.max() <= 1.0 and fb.min() >= 0.0
    assert (fb.sum(axis=0) > 0).all()
    assert fb[0].sum() == 0.0


def test_dct_is_scipys_orthonormal_dct():
    x = np.random.default_rng(0).standard_normal((5, 40))
    np.testing.assert_allclose(x @ dct_matrix(40, 40), scipy.fft.dct(x, type=2, norm="ortho", axis=1), atol=1e-5)


def test_gain_does_not_change_features():
    # Peak normalisation: a clip at a tenth of the level gives the same features.
    x = _speechlike(2)
    fe = LogMel()
    assert (fe(x) - fe(0.1 * x)).abs().max().item() < 1e-3


def test_front_end_graph_has_no_fft_ops():
    # The exported graph holds matmuls and elementwise ops, not an FFT/STFT kernel that runtimes do
    # not share, nor a convolution with a 66k-constant DFT basis.
    ep = torch.export.export(LogMel().eval(), (torch.zeros(1, 16000),))
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert any("matmul" in o for o in ops)
    assert not any("fft" in o or "stft" in o or "conv" in o for o in ops)


def test_front_end_constants_are_few():
    # 256-point window, 16 x 32 stage-1 DFT, 2 x 16 x 16 twiddles, 32 x 18 stage-2 DFT (bins 0..143 of
    # which the filters use 1..128), 144 x 40 filterbank: 256 + 512 + 512 + 576 + 5760 = 7,616 floats.
    fe = LogMel()
    assert sum(b.numel() for b in fe.buffers()) == 7616
    assert not list(fe.parameters()) and fe.state_dict() == {}  # derived from the arguments, not stored


def test_spec_augment_masks_only_in_training():
    aug = SpecAugment(freq_masks=1, freq_width=5, time_masks=1, time_width=7)
    x = torch.ones(8, 1, 40, 99)
    assert torch.equal(aug.eval()(x), x)
    torch.manual_seed(0)
    y = aug.train()(x)
    # Each example loses at most 5 mel rows and 7 frames: at most 5*99 + 7*40 - 5*7 = 740 cells.
    zeros = (y == 0).sum(dim=(1, 2, 3))
    assert zeros.max().item() <= 740 and zeros.sum().item() > 0


def test_teacher_and_student_sizes():
    teacher, student = build_kws_resnet(12), build_ds_cnn(12)
    n_t = sum(p.numel() for p in teacher.parameters())
    n_s = sum(p.numel() for p in student.parameters())
    assert 500_000 <= n_t <= 2_000_000
    assert n_s * 20 <= n_t
    # The DFT factors and filterbank are constants (buffers), not parameters.
    assert teacher.front.mel.shape == (144, 40) and not any(p is teacher.front.mel for p in teacher.parameters())
    x = torch.zeros(2, 16000)
    assert teacher.eval()(x).shape == student.eval()(x).shape == (2, 12)


def test_waveform_time_shift_augment():
    from mobilekd.distill.trainer import augment

    x = torch.arange(1, 16001, dtype=torch.float32).repeat(2, 1)
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    # A shift by d samples with zero fill: the non-zero samples are a contiguous run of x.
    nz = y[0][y[0] != 0]
    d = int(nz[0].item()) - 1 if y[0, 0] != 0 else -int((y[0] == 0).sum())
    assert abs(d) <= 1600 and len(nz) == 16000 - abs(d)
    assert torch.equal(nz, torch.arange(nz[0].item(), nz[0].item() + len(nz)))
    assert torch.equal(augment(x.long(), torch.Generator()), x.long())  # item ids are never shifted
