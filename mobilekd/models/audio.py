"""Keyword-spotting models whose input is the raw waveform: the audio front end is inside the graph.

The app hands the exported file one clip of float32 samples in [-1, 1] (N, samples); everything
from there on (peak normalisation, STFT, mel filterbank, log, optional DCT, network) is ordinary
ops with constant weights, so the device computes exactly the features the model was trained on.

The STFT is a 1-D convolution whose kernels are a fixed Hann-windowed DFT basis (cos and -sin
rows): ONNX Runtime, ExecuTorch (XNNPACK delegates the conv) and CoreML all take a conv1d, whereas
`torch.stft` lowers to FFT ops that none of them share. The power spectrum uses `pow` (not `mul`) and
the filterbank `matmul`, which XNNPACKQuantizer leaves in float, so int8 quantizes only the DFT
conv's activations and the network.

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


class LogMel(nn.Module):
    """waveform (N, samples) -> log-mel (N, 1, n_mels, frames), or MFCC (N, 1, n_mfcc, frames).

    frames = 1 + (samples - n_fft) // hop (no centre padding). Each clip is first divided by
    max(peak, peak_floor), so the features do not depend on the microphone's gain and int8 sees a
    full-scale input. Features: log(max(mel power, log_floor)). An int8 model quantizes the STFT
    conv's output to 8 bits (~42 dB of power range below the loudest bin of the batch), so a model
    meant for int8 takes a floor near that range (the student's log_floor 1.0, ~36 dB below a
    full-scale tone's ~4,000) and trains on features int8 can reproduce.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 256, hop: int = 160, n_mels: int = 40,
                 fmin: float = 20.0, fmax: float | None = None, mfcc: int | None = None,
                 normalize: bool = True, peak_floor: float = 0.01, log_floor: float = 1e-6):
        super().__init__()
        bins = n_fft // 2 + 1
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
        angle = 2.0 * math.pi * k * n / n_fft
        basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])  # (2*bins, n_fft)
        self.register_buffer("dft", basis[:, None, :].float())
        fb = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax or sample_rate / 2.0))
        self.register_buffer("mel", fb)
        # [mel; mel] applied to (re^2, im^2) stacked sums re^2 + im^2 inside one matmul: no `add`
        # (XNNPACKQuantizer would quantize its output, the power spectrum, to 8 bits).
        self.register_buffer("mel_stacked", torch.cat([fb, fb]), persistent=False)
        self.register_buffer("dct", torch.from_numpy(dct_matrix(n_mels, mfcc)) if mfcc else None)
        self.bins, self.hop, self.normalize = bins, hop, normalize
        self.peak_floor, self.log_floor = peak_floor, log_floor

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.unsqueeze(1)
        if self.normalize:
            x = x / torch.clamp(torch.amax(torch.abs(x), dim=-1, keepdim=True), min=self.peak_floor)
        spec = F.conv1d(x, self.dft, stride=self.hop)  # (N, 2*bins, frames): re rows, then im rows
        mel = torch.matmul(torch.pow(spec, 2).transpose(1, 2), self.mel_stacked)  # (N, frames, mels)
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
