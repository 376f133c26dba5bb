"""Voice commands (keyword spotting): ten spoken commands, `unknown` and `silence`, 1 s at 16 kHz.

The offline data is synthesized once with espeak-ng (mobilekd.data.voice_synth) into
`<data_dir>/voice-commands-synth/<key>/`, where `<key>` hashes the generator's options: one
`{train,val,test}.npz` per split, then `manifest.json` (options, espeak-ng version, speakers of
each split, one row per clip, sha256 of each file and a digest of the whole) written last. A later
load with the same options verifies the files against the manifest and reuses them.

The model input is the raw waveform: float32 (N, 16000) = int16 PCM / 32768, in [-1, 1). The
app contract the bundle carries (DatasetInfo.preprocessing) says so, with the streaming rule.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobilekd.data import Dataset, DatasetInfo, Split, parse_options
from mobilekd.data.download import file_digest, resolve_data_dir, verify
from mobilekd.data.voice_synth import (CLIP_SAMPLES, COMMANDS, LABELS, SAMPLE_RATE, SPLITS, SynthOptions,
                                       espeak_version, generate)
from mobilekd.errors import ConfigError, DataError
from mobilekd.specs import TensorSpec
from mobilekd.store import atomic_path, write_json

FOLDER = "voice-commands-synth"
REJECT_LABELS = ("silence", "unknown")  # not a command: accepting one as a command is a false accept
LICENSE_SYNTH = ("generated locally with espeak-ng (GPL-3.0-or-later program; its synthesized output is not "
                 "covered by the GPL)")
CITATION_SYNTH = ("eSpeak NG text-to-speech, https://github.com/espeak-ng/espeak-ng; the task follows "
                  "Warden, P. (2018). Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition. "
                  "arXiv:1804.03209")
STREAM_HOP_S = 0.25


def app_contract(front_end: str) -> dict[str, Any]:
    """What the app must feed the model, copied into the bundle's manifest (preprocessing)."""
    return {
        "input": "waveform",
        "sample_rate_hz": SAMPLE_RATE,
        "clip_seconds": CLIP_SAMPLES / SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES,
        "channels": 1,
        "dtype": "float32",
        "range": [-1.0, 1.0],
        "formula": "int16 PCM sample / 32768 (mono; resample to 16 kHz before)",
        "layout": "(1, 16000): one clip per call",
        "front_end": front_end,
        "streaming": {
            "window_samples": CLIP_SAMPLES,
            "hop_samples": int(STREAM_HOP_S * SAMPLE_RATE),
            "rule": ("keep the last 1 s of audio in a ring buffer; every 250 ms (4000 new samples) run the model "
                     "on it; average the softmax scores of the last 3 windows and report a command when its "
                     "averaged score is the top one, above your threshold, and not silence/unknown; then "
                     "suppress that command for 1 s so one utterance fires once"),
        },
    }


def info_for(name: str, *, license: str, citation: str, notes: tuple[str, ...]) -> DatasetInfo:
    """The DatasetInfo of any 12-class keyword-spotting dataset in the Speech Commands label set."""
    return DatasetInfo(
        name=name,
        task="classification",
        inputs=(TensorSpec(name="waveform", dtype="float32", shape=(1, CLIP_SAMPLES), low=-1.0, high=1.0),),
        num_outputs=len(LABELS),
        labels=LABELS,
        preprocessing=app_contract("inside the model: peak normalisation, Hann-windowed STFT (n_fft 256, hop "
                                   "160) as constant matmuls (one Cooley-Tukey step), 40-band mel filterbank, "
                                   "log (mobilekd.models.audio.LogMel); float32 in int8 files too"),
        postprocessing={"output": "logits over labels; softmax for scores; argmax is the class",
                        "reject_labels": list(REJECT_LABELS), "commands": list(COMMANDS)},
        license=license,
        citation=citation,
        notes=notes,
    )


def to_split(audio: np.ndarray, labels: np.ndarray) -> Split:
    return Split({"waveform": (audio.astype(np.float32) / 32768.0)}, labels.astype(np.int64))


def _dataset_digest(files: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{k}:{files[k]}\n" for k in sorted(files)).encode()).hexdigest()


def build(folder: Path, opts: SynthOptions, workers: int) -> dict[str, Any]:
    """Generate every split into `folder` (files first, manifest last) and return the manifest."""
    t0 = time.perf_counter()
    arrays, rows = generate(opts, workers=workers)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for split, arr in arrays.items():
        path = folder / f"{split}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, audio=arr["audio"], labels=arr["labels"], speakers=arr["speakers"])
        files[path.name] = file_digest(path)
    manifest = {
        "generator": "mobilekd.data.voice_synth", "options": opts.model_dump(mode="json"), "key": opts.key(),
        "espeak_ng": espeak_version(), "labels": list(LABELS), "sample_rate": SAMPLE_RATE,
        "speakers": {s: sorted(set(arrays[s]["speakers"].tolist())) for s in SPLITS},
        "counts": {s: int(len(arrays[s]["labels"])) for s in SPLITS},
        "files": files, "digest": _dataset_digest(files), "seconds": round(time.perf_counter() - t0, 1),
        "clips": rows,
    }
    write_json(folder / "manifest.json", manifest)
    return manifest


def materialize(data_dir: Path | None, opts: SynthOptions, workers: int = 2) -> tuple[Path, dict[str, Any]]:
    """The dataset folder for `opts`, generated if absent, verified against its manifest if present."""
    folder = resolve_data_dir(data_dir) / FOLDER / opts.key()
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return folder, build(folder, opts, workers)
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{manifest_path}: unreadable manifest ({exc}); delete the folder to regenerate") from None
    for name, digest in files.items():
        verify(folder / name, digest)
    if manifest.get("digest") != _dataset_digest(files):
        raise DataError(f"{manifest_path}: digest does not match its files; delete {folder} to regenerate")
    return folder, manifest


def load(data_dir: Path | None = None, *, seed: int, data_seed: int = 0, train_speakers: int = 240,
         val_speakers: int = 48, test_speakers: int = 64, unknown_per_speaker: int = 3,
         silence_per_speaker: int = 2, workers: int = 2, limit_train_speakers: int | None = None) -> Dataset:
    """The synthesized voice-commands data set. `data_seed` (not the pipeline's `seed`) fixes the
    clips, so runs with different seeds train and score on the same speakers.
    limit_train_speakers: train on the clips of only the first N training speakers (validation and
    test unchanged), e.g. students on a subset of the data the teacher was trained on."""
    if limit_train_speakers is not None and not 1 <= limit_train_speakers <= train_speakers:
        raise ConfigError(f"voice_commands option limit_train_speakers: expected 1..{train_speakers} "
                          f"(train_speakers), got {limit_train_speakers}")
    opts = parse_options(SynthOptions, "voice_commands",
                         seed=data_seed, train_speakers=train_speakers, val_speakers=val_speakers,
                         test_speakers=test_speakers, unknown_per_speaker=unknown_per_speaker,
                         silence_per_speaker=silence_per_speaker)
    folder, manifest = materialize(data_dir, opts, workers=workers)
    splits = {}
    for split in SPLITS:
        with np.load(folder / f"{split}.npz") as z:
            keep = slice(None)
            if split == "train" and limit_train_speakers is not None:
                keep = np.isin(z["speakers"], manifest["speakers"]["train"][:limit_train_speakers])
            splits[split] = to_split(z["audio"][keep], z["labels"][keep])
    info = info_for(
        "voice_commands", license=LICENSE_SYNTH, citation=CITATION_SYNTH,
        notes=(f"synthetic speech (espeak-ng {manifest.get('espeak_ng', '?')}): a stand-in for recordings",
               "speaker-independent split: train, val and test share no espeak-ng voice variant",
               f"dataset digest {manifest['digest']}"),
    )
    return Dataset(info=info, train=splits["train"], val=splits["val"], test=splits["test"],
                   extras={"manifest": {k: v for k, v in manifest.items() if k != "clips"}})
