"""Keyword-spotting models whose input is the raw waveform: the audio front end is inside the graph.

The app hands the exported file one clip of float32 samples in [-1, 1] (N, samples); everything
from there on (peak normalisation, STFT, mel filterbank, log, optional DCT, network) is ordinary
ops with constant weights, so the device computes exactly the features the model was trained on.

The STFT is one Cooley-Tukey step of constant matmuls and elementwise ops (LogMel), not
`torch.stft`, which lowers to FFT ops that ONNX Runtime, ExecuTorch and CoreML do not share. Its
constants are ~7.6 k floats (a direct DFT basis, e.g. as a conv1d kernel, is 66 k: 264 kB, which
alone broke the 150 kB phone budget). int8 models keep the front end float
(`quantize.keep_float: [front]`) and quantize the network only.

Teacher: a small ResNet on the log-mel. Student: DS-CNN as in "Hello Edge: Keyword Spotting on
Microcontrollers" (Zhang et al. 2017): one conv, then depthwise-separable blocks, average pool, linear.
Both expose `features.<i>` (conv stages) and `embedding` for FitNets hints and RKD.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 2595 * log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft//2 + 1, n_mels) triangular HTK filters, peak 1, unnormalised (torchaudio's
    `melscale_fbanks(norm=None, mel_scale='htk')`)."""
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    down = (upper[None, :] - freqs[:, None]) / (upper - centre)[None, :]
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """(n_mels, n_mfcc) orthonormal DCT-II, as scipy.fft.dct(norm='ortho') along the mel axis."""
    n = np.arange(n_mels)[:, None]
    k = np.arange(n_mfcc)[None, :]
    basis = np.cos(math.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


def _fft_split(n_fft: int) -> tuple[int, int]:
    """n_fft = p * q with p the largest power of two <= sqrt(n_fft) that divides it (16 x 16 for 256)."""
    p = 1
    while (p * 2) ** 2 <= n_fft and n_fft % (p * 2) == 0:
        p *= 2
    return p, n_fft // p


class LogMel(nn.Module):
    """waveform (N, samples) -> log-mel (N, 1, n_mels, frames), or MFCC (N, 1, n_mfcc, frames).

    frames = 1 + (samples - n_fft) // hop (no centre padding). Each clip is first divided by
    max(peak, peak_floor), so the features do not depend on the microphone's gain. Features:
    log(max(mel power, log_floor)).

    The STFT is one Cooley-Tukey step (n_fft = p x q, 16 x 16 for 256) written with ops every
    runtime takes: frames cut by reshape and slice (the hop divides the clip), a Hann window (mul),
    a p-point DFT (matmul with a (p, 2p) cos/-sin constant), the twiddle factors (mul, add), a
    q-point DFT of the bins the mel filters use (matmul), power re^2 + im^2, the mel filterbank
    (matmul; its rows permuted to the FFT's output order). About 7.6 k constants instead of the
    66 k of a direct DFT basis, so the front end adds ~30 kB (float32) to an exported file; it is
    meant to stay float in int8 models (quantize.keep_float: [front]): an 8-bit power spectrum
    keeps only ~42 dB of range.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 256, hop: int = 160, n_mels: int = 40,
                 fmin: float = 20.0, fmax: float | None = None, mfcc: int | None = None,
                 normalize: bool = True, peak_floor: float = 0.01, log_floor: float = 1e-6):
        super().__init__()
        if not hop <= n_fft:
            raise ValueError(f"LogMel: hop ({hop}) must be at most n_fft ({n_fft})")
        p, q = _fft_split(n_fft)
        fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax or sample_rate / 2.0)  # (bins, mels)
        used = np.flatnonzero(fb.sum(axis=1) > 0)
        k2_count = int(used.max()) // p + 1  # k = k1 + p * k2: the q-point DFT outputs k2 < k2_count only
        two_pi = 2.0 * math.pi
        # n = q * n1 + n2 and k = k1 + p * k2: W_N^(nk) = W_p^(n1 k1) * W_N^(n2 k1) * W_q^(n2 k2).
        # Stage 1: p-point DFT over n1 (input reshaped (p, q): n = q * n1 + n2) -> k1 in [0, p).
        a1 = two_pi * np.arange(p)[:, None] * np.arange(p)[None, :] / p  # (n1, k1)
        stage1 = np.concatenate([np.cos(a1), -np.sin(a1)], axis=1)  # (p, 2p): [re | im]
        tw = two_pi * np.arange(q)[:, None] * np.arange(p)[None, :] / n_fft  # (n2, k1): W_N^(n2 k1)
        a2 = two_pi * np.arange(q)[:, None] * np.arange(k2_count)[None, :] / q  # (n2, k2)
        c2, s2 = np.cos(a2), np.sin(a2)
        stage2 = np.block([[c2, -s2], [s2, c2]])  # [Br | Bi] (2q) -> [Xr | Xi] (2 * k2_count)
        # The filterbank's rows in the FFT's output order: flat index k1 * k2_count + k2 is bin k1 + p * k2.
        k = (np.arange(p)[:, None] + p * np.arange(k2_count)[None, :]).reshape(-1)
        mel = np.zeros((len(k), n_mels))
        mel[k < len(fb)] = fb[k[k < len(fb)]]
        as_t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True, dtype=torch.float64).float(),
                             persistent=False)
        self.register_buffer("stage1", as_t(stage1), persistent=False)
        self.register_buffer("tw_cos", as_t(np.cos(tw).T), persistent=False)  # (k1, n2)
        self.register_buffer("tw_sin", as_t(np.sin(tw).T), persistent=False)
        self.register_buffer("stage2", as_t(stage2), persistent=False)
        self.register_buffer("mel", as_t(mel), persistent=False)
        self.register_buffer("dct", torch.from_numpy(dct_matrix(n_mels, mfcc)) if mfcc else None, persistent=False)
        self.n_fft, self.hop, self.p, self.q, self.k2 = n_fft, hop, p, q, k2_count
        self.normalize, self.peak_floor, self.log_floor = normalize, peak_floor, log_floor

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Checkpoints of the first version stored its constants (the conv1d DFT basis `dft` and the
        # filterbank `mel`); these are rebuilt from the arguments now and the features are the same
        # (within float32 rounding), so such a checkpoint loads.
        for legacy in ("dft", "mel"):
            state_dict.pop(prefix + legacy, None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(N, samples) -> (N, frames, n_fft): hop-sized rows, each frame the concatenation of
        ceil(n_fft / hop) consecutive rows (the last one cut), so no gather or unfold op."""
        n_frames = 1 + (x.shape[-1] - self.n_fft) // self.hop
        whole, rest = divmod(self.n_fft, self.hop)
        rows = n_frames - 1 + whole + (1 if rest else 0)
        if rows * self.hop > x.shape[-1]:
            x = F.pad(x, (0, rows * self.hop - x.shape[-1]))
        elif rows * self.hop < x.shape[-1]:  # a full-length slice would export as `alias` (CoreML has none)
            x = x[:, : rows * self.hop]
        r = x.reshape(x.shape[0], rows, self.hop)
        parts = [r[:, i : i + n_frames] for i in range(whole)]
        if rest:
            parts.append(r[:, whole : whole + n_frames, :rest])
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def power(self, waveform: torch.Tensor) -> torch.Tensor:
        """|STFT|^2 (N, frames, p * k2) in the order k1 * k2 + k2' (bin k1 + p * k2')."""
        x = self.frames(waveform) * self.window  # (N, T, n_fft)
        n, t = x.shape[0], x.shape[1]
        a = torch.matmul(x.reshape(n, t, self.p, self.q).transpose(-1, -2), self.stage1)  # (N, T, q: n2, 2p)
        a = a.transpose(-1, -2)  # (N, T, 2p, n2): rows re k1, then im k1
        ar, ai = a[:, :, : self.p], a[:, :, self.p :]
        br = ar * self.tw_cos + ai * self.tw_sin  # (a_r + i a_i) * (cos - i sin)
        bi = ai * self.tw_cos - ar * self.tw_sin
        out = torch.matmul(torch.cat([br, bi], dim=-1), self.stage2)  # (N, T, p: k1, 2 * k2)
        re, im = out[..., : self.k2], out[..., self.k2 :]
        return (re * re + im * im).reshape(n, t, self.p * self.k2)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform
        if self.normalize:
            x = x / torch.clamp(torch.amax(torch.abs(x), dim=-1, keepdim=True), min=self.peak_floor)
        mel = torch.matmul(self.power(x), self.mel)  # (N, frames, mels)
        feats = torch.log(torch.clamp(mel, min=self.log_floor))
        if self.dct is not None:
            feats = torch.matmul(feats, self.dct)
        return feats.transpose(1, 2).unsqueeze(1)


class SpecAugment(nn.Module):
    """SpecAugment masking (Park et al. 2019, without time warping): in training only, zero
    `freq_masks` random bands of up to `freq_width` mel bins and `time_masks` spans of up to
    `time_width` frames per example (zero = the features' mean after the input BatchNorm). Identity
    in eval mode, so exported graphs hold no random ops."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 12):
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width

    def _masks(self, n: int, size: int, count: int, width: int, device: torch.device) -> torch.Tensor:
        keep = torch.ones(n, size, device=device)
        pos = torch.arange(size, device=device)[None, :]
        for _ in range(count):
            w = torch.randint(0, width + 1, (n, 1), device=device)
            start = (torch.rand(n, 1, device=device) * (size - w + 1)).long()
            keep = keep * ~((pos >= start) & (pos < start + w))
        return keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.freq_masks == 0 and self.time_masks == 0):
            return x
        n, _, f, t = x.shape
        fm = self._masks(n, f, self.freq_masks, self.freq_width, x.device)[:, None, :, None]
        tm = self._masks(n, t, self.time_masks, self.time_width, x.device)[:, None, None, :]
        return x * fm * tm


def _conv_bn(c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int | tuple[int, int],
             padding: int | tuple[int, int], groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(c_out)]


class ResBlock(nn.Module):
    """Two 3x3 conv-BN, the first with `stride`; a 1x1 conv-BN shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3, stride, 1), nn.ReLU(), *_conv_bn(c_out, c_out, 3, 1, 1))
        self.shortcut = (nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, 0))
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class KWSNet(nn.Module):
    """front end -> input BatchNorm -> SpecAugment (training) -> `features` -> pool -> `embedding` -> classifier."""

    def __init__(self, front: LogMel, features: nn.Sequential, width: int, num_outputs: int, dropout: float,
                 augment: SpecAugment | None):
        super().__init__()
        self.front = front
        self.norm = nn.BatchNorm2d(1)
        self.augment = augment if augment is not None else nn.Identity()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embedding = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_outputs)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.augment(self.norm(self.front(waveform)))
        return self.classifier(self.dropout(self.embedding(self.pool(self.features(x)))))


def _front(sample_rate: int, n_fft: int, hop: int, n_mels: int, mfcc: int | None, log_floor: float) -> LogMel:
    return LogMel(sample_rate=sample_rate, n_fft=n_fft, hop=hop, n_mels=n_mels, mfcc=mfcc, log_floor=log_floor)


def _spec_augment(spec_augment: dict[str, int] | None) -> SpecAugment | None:
    return SpecAugment(**spec_augment) if spec_augment else None


def build_kws_resnet(num_outputs: int, channels: Sequence[int] = (48, 96, 192), stem: int = 32,
                     dropout: float = 0.2, spec_augment: dict[str, int] | None = None, sample_rate: int = 16000,
                     n_fft: int = 256, hop: int = 160, n_mels: int = 40, mfcc: int | None = None,
                     log_floor: float = 1e-6) -> KWSNet:
    """Teacher: a stride-2 3x3 stem, then one stride-2 ResBlock per entry of `channels`. Default ~0.7 M parameters, ~28 M MACs per 1 s clip (40 x 99 log-mel)."""
    layers: list[nn.Module] = [nn.Sequential(*_conv_bn(1, stem, 3, 2, 1), nn.ReLU())]
    c_in = stem
    for c in channels:
        layers.append(ResBlock(c_in, c, 2))
        c_in = c
    return KWSNet(_front(sample_rate, n_fft, hop, n_mels, mfcc, log_floor), nn.Sequential(*layers), c_in, num_outputs,
                  dropout, _spec_augment(spec_augment))


def build_ds_cnn(num_outputs: int, width: int = 64, blocks: int = 4, dropout: float = 0.1,
                 spec_augment: dict[str, int] | None = None, sample_rate: int = 16000, n_fft: int = 256,
                 hop: int = 160, n_mels: int = 40, mfcc: int | None = None, log_floor: float = 1.0) -> KWSNet:
    """Student: DS-CNN (Zhang et al. 2017, Hello Edge): a (4 x 10) conv over (mel, time) with stride
    4, then `blocks` depthwise 3x3 + pointwise 1x1 conv-BN-ReLU blocks, average pool, linear.
    Hello Edge strides its 49 x 10 MFCC input by 2; the 40 x 99 log-mel here is 8x larger, so the
    stem strides by 4 and the blocks work on a 10 x 25 grid, as the teacher's first block does.
    Width 64 x 4 blocks: ~22 k parameters and ~5 M MACs after the front end (DS-CNN-S: 38.6 k, 5.4 M)."""
    layers: list[nn.Module] = [nn.Sequential(*_conv_bn(1, width, (4, 10), 4, (0, 4)), nn.ReLU())]
    for _ in range(blocks):
        layers.append(nn.Sequential(*_conv_bn(width, width, 3, 1, 1, groups=width), nn.ReLU(),
                                    *_conv_bn(width, width, 1, 1, 0), nn.ReLU()))
    return KWSNet(_front(sample_rate, n_fft, hop, n_mels, mfcc, log_floor), nn.Sequential(*layers), width, num_outputs,
                  dropout, _spec_augment(spec_augment))
