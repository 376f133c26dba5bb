"""Google Speech Commands v2 (Warden 2018), for users who have the download: the real recordings the
synthetic voice_commands data stands in for, in the same 12 labels and the same input contract.

Expected under `<data_dir>/speech_commands_v0.02/` (the extracted official tarball): one folder per
word holding `<speaker>_nohash_<n>.wav` (16 kHz mono int16, at most 1 s), `_background_noise_/`,
and the official `validation_list.txt` / `testing_list.txt` (paths relative to the folder). The
lists assign speakers to splits (by a hash of the speaker id), so the split is speaker-independent;
every file in neither list is training data. The ten commands keep their names, every other word
is `unknown` (subsampled to the size of an average command class, seeded), and `silence` clips are
1 s slices of the background-noise recordings, as in the TensorFlow reference training script.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydantic
from scipy.io import wavfile

from mobilekd.data import Dataset, Split, parse_options
from mobilekd.data.download import resolve_data_dir
from mobilekd.data.voice_commands import info_for, to_split
from mobilekd.data.voice_synth import CLIP_SAMPLES, COMMANDS, LABELS, SAMPLE_RATE
from mobilekd.errors import DataError
from mobilekd.specs import StrictModel

FOLDER = "speech_commands_v0.02"
URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
NOISE = "_background_noise_"
LICENSE = "CC BY 4.0 (Google LLC)"
CITATION = ("Warden, P. (2018). Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition. "
            "arXiv:1804.03209")


class SpeechCommandsOptions(StrictModel):
    silence_fraction: float = pydantic.Field(1 / 12, ge=0.0, lt=1.0)  # silence rows per word row, each split
    unknown_scale: float = pydantic.Field(1.0, ge=0.0)  # unknown rows = scale x mean rows of a command
    limit_per_split: int | None = pydantic.Field(None, gt=0)  # quick runs: first N rows of each split after shuffling


def read_clip(path: Path) -> np.ndarray:
    """int16 (16000,): the file's samples, zero-padded (or cut) to 1 s; DataError if not 16 kHz mono."""
    try:
        rate, pcm = wavfile.read(path)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable WAV file ({exc})") from None
    if rate != SAMPLE_RATE or pcm.ndim != 1 or pcm.dtype != np.int16:
        raise DataError(f"{path}: expected 16 kHz mono int16, got {rate} Hz, shape {pcm.shape}, {pcm.dtype}")
    out = np.zeros(CLIP_SAMPLES, np.int16)
    out[: min(len(pcm), CLIP_SAMPLES)] = pcm[:CLIP_SAMPLES]
    return out


def _list(root: Path, name: str) -> set[str]:
    path = root / name
    if not path.is_file():
        raise DataError(f"{root}: missing the official {name}; expected the extracted Speech Commands v2 folder")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _silence(root: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    noises = [wavfile.read(p)[1] for p in sorted((root / NOISE).glob("*.wav"))]
    noises = [x for x in noises if x.ndim == 1 and len(x) >= CLIP_SAMPLES]
    if n and not noises:
        raise DataError(f"{root / NOISE}: no background-noise WAV of at least 1 s to cut silence clips from")
    out = np.zeros((n, CLIP_SAMPLES), np.int16)
    for i in range(n):
        x = noises[int(rng.integers(len(noises)))]
        start = int(rng.integers(0, len(x) - CLIP_SAMPLES + 1))
        gain = rng.uniform(0.0, 1.0)
        out[i] = np.round(x[start : start + CLIP_SAMPLES].astype(np.float32) * gain).astype(np.int16)
    return out


def load(data_dir: Path | None = None, *, seed: int, silence_fraction: float = 1 / 12, unknown_scale: float = 1.0,
         limit_per_split: int | None = None) -> Dataset:
    """Speech Commands v2 as float32 waveforms (N, 16000) in [-1, 1), labels in voice_synth.LABELS."""
    opts = parse_options(SpeechCommandsOptions, "speech_commands",
                         silence_fraction=silence_fraction, unknown_scale=unknown_scale,
                         limit_per_split=limit_per_split)
    root = resolve_data_dir(data_dir) / FOLDER
    if not root.is_dir():
        raise DataError(f"speech_commands: {root} not found; download {URL} (2.3 GB, CC BY 4.0) and extract it "
                        f"there, or use the offline dataset voice_commands")
    val_list, test_list = _list(root, "validation_list.txt"), _list(root, "testing_list.txt")
    rng = np.random.default_rng(seed)
    files: dict[str, dict[str, list[str]]] = {s: {} for s in ("train", "val", "test")}
    for wav in sorted(root.glob("*/*.wav")):
        word = wav.parent.name
        if word == NOISE:
            continue
        rel = f"{word}/{wav.name}"
        split = "val" if rel in val_list else "test" if rel in test_list else "train"
        files[split].setdefault(word if word in COMMANDS else "unknown", []).append(rel)
    splits: dict[str, Split] = {}
    for split, by_label in files.items():
        n_cmd = [len(by_label.get(w, [])) for w in COMMANDS]
        if not any(n_cmd):
            raise DataError(f"{root}: the {split} split has no clip of any command ({', '.join(COMMANDS)})")
        unknown = by_label.get("unknown", [])
        keep = int(round(opts.unknown_scale * np.mean(n_cmd)))
        unknown = [unknown[i] for i in sorted(rng.permutation(len(unknown))[:keep])]
        rows = [(rel, LABELS.index(w)) for w in COMMANDS for rel in by_label.get(w, [])]
        rows += [(rel, LABELS.index("unknown")) for rel in unknown]
        audio = [read_clip(root / rel) for rel, _ in rows]
        labels = [y for _, y in rows]
        n_sil = int(round(opts.silence_fraction * len(rows)))
        audio_arr = np.concatenate([np.stack(audio), _silence(root, n_sil, rng)])
        label_arr = np.asarray(labels + [LABELS.index("silence")] * n_sil, np.int64)
        order = rng.permutation(len(label_arr))[: opts.limit_per_split]
        splits[split] = to_split(audio_arr[order], label_arr[order])
    info = info_for("speech_commands", license=LICENSE, citation=CITATION,
                    notes=("official validation_list.txt / testing_list.txt split (speaker-independent)",
                           "unknown: every non-command word, subsampled; silence: slices of _background_noise_"))
    return Dataset(info=info, train=splits["train"], val=splits["val"], test=splits["test"])
