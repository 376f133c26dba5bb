"""The synthesized voice-commands data: speaker-independent split, determinism, reuse, contract."""

import json
import shutil

import numpy as np
import pytest

from mobilekd.data import voice_synth
from mobilekd.data.voice_commands import FOLDER, load
from mobilekd.data.voice_synth import ACCENTS, LABELS, SynthOptions, split_speakers
from mobilekd.errors import ConfigError, DataError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (.ci/run installs the Debian package)")
TINY = dict(train_speakers=3, val_speakers=2, test_speakers=2, unknown_per_speaker=1, silence_per_speaker=1)


def _variant(speaker: str) -> str:
    return speaker.split("+", 1)[1]


def test_split_is_speaker_independent_at_recipe_size():
    # No synthesis: the recipe's 240/48/64 speakers. No voice/variant combination, and no variant,
    # in two splits; each split gets the number of speakers asked for, all distinct.
    sp = split_speakers(SynthOptions())
    assert {k: len(v) for k, v in sp.items()} == {"train": 240, "val": 48, "test": 64}
    combos = {k: set(v) for k, v in sp.items()}
    variants = {k: {v for _, v in s} for k, s in sp.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not combos[a] & combos[b]
        assert not variants[a] & variants[b]
    assert all(len(set(v)) == len(v) for v in sp.values())
    assert {a for s in sp.values() for a, _ in s} <= set(ACCENTS)


def test_split_asks_for_too_many_speakers():
    # 101 variants x 8 accents = 808 speakers in all: 1,000 cannot be had.
    with pytest.raises(DataError, match="train_speakers=1000 but only"):
        split_speakers(SynthOptions(train_speakers=1000))


@needs_espeak
def test_tiny_dataset_no_voice_in_two_splits_and_contract(tmp_path):
    ds = load(tmp_path, seed=0, **TINY)
    # 3 + 2 + 2 speakers, each 10 commands + 1 unknown + 1 silence = 12 clips.
    assert (len(ds.train), len(ds.val), len(ds.test)) == (36, 24, 24)
    x = ds.train.inputs["waveform"]
    assert x.shape == (36, 16000) and x.dtype == np.float32
    assert np.abs(x).max() <= 1.0
    assert np.bincount(ds.train.targets, minlength=12).tolist() == [3, 3] + [3] * 10
    folder = next((tmp_path / FOLDER).iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    per_row = {}
    for split in ("train", "val", "test"):
        with np.load(folder / f"{split}.npz") as z:
            per_row[split] = set(z["speakers"].tolist())
        assert per_row[split] == set(manifest["speakers"][split])
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not per_row[a] & per_row[b]
        assert not {_variant(s) for s in per_row[a]} & {_variant(s) for s in per_row[b]}
    info = ds.info
    assert info.labels == LABELS and info.num_outputs == 12
    assert info.preprocessing["sample_rate_hz"] == 16000 and info.preprocessing["clip_samples"] == 16000
    assert info.preprocessing["streaming"]["hop_samples"] == 4000
    assert info.postprocessing["reject_labels"] == ["silence", "unknown"]
    # A speech clip is louder than silence; every clip is 1 s.
    rms = np.sqrt((x**2).mean(axis=1))
    assert rms[ds.train.targets == 2].mean() > rms[ds.train.targets == 0].mean()


@needs_espeak
def test_generator_is_deterministic_and_reused(tmp_path):
    for d in "abc":
        (tmp_path / d).mkdir()
    a = load(tmp_path / "a", seed=0, **TINY)
    b = load(tmp_path / "b", seed=5, workers=1, **TINY)  # pipeline seed and worker count do not matter
    np.testing.assert_array_equal(a.train.inputs["waveform"], b.train.inputs["waveform"])
    np.testing.assert_array_equal(a.test.targets, b.test.targets)
    assert a.extras["manifest"]["digest"] == b.extras["manifest"]["digest"]
    other = load(tmp_path / "c", seed=0, data_seed=1, **TINY)
    assert other.extras["manifest"]["digest"] != a.extras["manifest"]["digest"]
    # Reused when present: the files are not rewritten.
    folder = next((tmp_path / "a" / FOLDER).iterdir())
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    load(tmp_path / "a", seed=0, **TINY)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    # A training subset of the same files: the first of the 3 training voices (12 clips), same test.
    sub = load(tmp_path / "a", seed=0, limit_train_speakers=1, **TINY)
    assert len(sub.train) == 12 and len(sub.test) == len(a.test)
    with np.load(folder / "train.npz") as z:
        first = z["speakers"] == sorted(set(z["speakers"].tolist()))[0]  # the manifest lists voices sorted
    np.testing.assert_array_equal(sub.train.inputs["waveform"], a.train.inputs["waveform"][first])
    with pytest.raises(ConfigError, match="limit_train_speakers"):
        load(tmp_path / "a", seed=0, limit_train_speakers=4, **TINY)
    # A damaged file is refused, naming the file.
    with open(folder / "val.npz", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(DataError, match="val.npz"):
        load(tmp_path / "a", seed=0, **TINY)


def test_missing_espeak_names_the_package(monkeypatch):
    monkeypatch.setattr(voice_synth.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="package `espeak-ng`"):
        voice_synth.espeak_binary()


def test_coloured_noise_slopes():
    # Power falls with frequency ~ 1/f**exponent: brown noise (2) holds far more of its power in
    # the lowest tenth of the band than white noise (0), which holds ~1/10 of it there.
    rng = np.random.default_rng(0)
    share = {}
    for e in (0.0, 2.0):
        p = np.abs(np.fft.rfft(voice_synth.coloured_noise(rng, 16000, e))) ** 2
        share[e] = p[: len(p) // 10].sum() / p.sum()
    assert share[0.0] == pytest.approx(0.1, abs=0.02)
    assert share[2.0] > 0.9
