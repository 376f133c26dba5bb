"""The Google Speech Commands v2 loader on a tiny folder written here in the official layout."""

import numpy as np
import pytest
from scipy.io import wavfile

from mobilekd.data.speech_commands import FOLDER, load
from mobilekd.data.voice_synth import LABELS
from mobilekd.errors import DataError


def _wav(path, n, value, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, np.full(n, value, np.int16))


@pytest.fixture
def gsc(tmp_path):
    root = tmp_path / FOLDER
    # yes: speakers a (train), b (val), c (test); no: a, b, c; bed and cat (unknown words): a, c.
    for word, value in (("yes", 100), ("no", 200)):
        for spk in "abc":
            _wav(root / word / f"{spk}_nohash_0.wav", 16000, value)
    _wav(root / "yes" / "a_nohash_1.wav", 8000, 300)  # a short clip: zero-padded to 1 s
    for word in ("bed", "cat"):
        for spk in "ac":
            _wav(root / word / f"{spk}_nohash_0.wav", 16000, 50)
    _wav(root / "_background_noise_" / "white.wav", 48000, 1000)
    (root / "validation_list.txt").write_text("yes/b_nohash_0.wav\nno/b_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/c_nohash_0.wav\nno/c_nohash_0.wav\nbed/c_nohash_0.wav\ncat/c_nohash_0.wav\n")
    return tmp_path


def test_official_lists_decide_the_split(gsc):
    ds = load(gsc, seed=0, silence_fraction=0.5)
    yes, no, unk, sil = (LABELS.index(n) for n in ("yes", "no", "unknown", "silence"))
    # train: yes a0 and a1, no a0, unknown bed/a and cat/a. Unknown rows kept: round(1.0 * mean
    # rows of the ten commands) = round((2 + 1) / 10) = 0; 3 word rows -> round(0.5 * 3) = 2 silence.
    assert sorted(ds.train.targets.tolist()) == sorted([yes, yes, no, sil, sil])
    # val: yes b, no b -> 1 silence; test: yes c, no c, 0 of the 2 unknown kept (round(0.2)), 1 silence.
    assert sorted(ds.val.targets.tolist()) == sorted([yes, no, sil])
    assert sorted(ds.test.targets.tolist()) == sorted([yes, no, sil])
    x = ds.train.inputs["waveform"]
    assert x.shape == (5, 16000) and x.dtype == np.float32
    short = x[np.isclose(x[:, 0], 300 / 32768)]
    assert len(short) == 1 and short[0, 7999] == pytest.approx(300 / 32768) and short[0, 8000] == 0.0
    silence = x[ds.train.targets == sil]
    assert (np.abs(silence) <= 1000 / 32768 + 1e-6).all()
    assert ds.info.inputs[0].shape == (1, 16000) and ds.info.labels == LABELS
    assert "CC BY 4.0" in ds.info.license and "Warden" in ds.info.citation


def test_unknown_words_fill_the_unknown_class(gsc):
    ds = load(gsc, seed=0, silence_fraction=0.0, unknown_scale=10.0)
    # train: unknown rows kept = round(10 * 0.3) = 3 -> both of bed/a and cat/a.
    assert int((ds.train.targets == LABELS.index("unknown")).sum()) == 2


def test_missing_folder_and_bad_files(tmp_path, gsc):
    with pytest.raises(DataError, match="speech_commands_v0.02.tar.gz"):
        load(tmp_path.parent, seed=0)  # a data dir without the extracted folder
    _wav(gsc / FOLDER / "go" / "a_nohash_0.wav", 8000, 1, rate=8000)
    with pytest.raises(DataError, match="expected 16 kHz mono int16"):
        load(gsc, seed=0)
    (gsc / FOLDER / "testing_list.txt").unlink()
    with pytest.raises(DataError, match="testing_list.txt"):
        load(gsc, seed=0)
