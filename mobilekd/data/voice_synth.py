"""Spoken-command clips synthesized offline with espeak-ng: the voice recipe's stand-in for recordings.

A "speaker" is one espeak-ng English voice (accent) with one voice variant (timbre). The split is
speaker-independent and stricter than that: the variants are partitioned between train, val and
test, so no test or validation voice/variant combination, nor even its variant, is heard in
training. Each clip draws its own rate, pitch, time shift, gain, noise colour and SNR from a
generator seeded by (seed, split, clip index), so the result does not depend on how many worker
threads run espeak-ng. Clips are 1 s of 16 kHz mono, stored as int16.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic
from scipy.signal import resample_poly

from mobilekd.errors import DataError
from mobilekd.specs import StrictModel

GENERATOR_VERSION = 1
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# Speech Commands v2's auxiliary words: the `unknown` class.
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one",
                 "two", "three", "four", "five", "six", "seven", "eight", "nine", "learn", "follow", "forward",
                 "backward", "visual")
LABELS = ("silence", "unknown", *COMMANDS)
SPLITS = ("train", "val", "test")
# espeak-ng 1.51's English voices (gmw/*) and its voice variants (voices/!v/*).
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc")
VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Demonic", "Denis", "Diogo", "Gene", "Gene2",
    "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Mr serious", "Nguyen",
    "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "UniRobot", "adam", "anika", "anikaRobot",
    "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "croak", "david", "ed", "edward",
    "edward2", "f1", "f2", "f3", "f4", "f5", "fast", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3",
    "iven4", "john", "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1",
    "m2", "m3", "m4", "m5", "m6", "m7", "m8", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul",
    "pedro", "quincy", "rob", "robert", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5",
    "robosoft6", "robosoft7", "robosoft8", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor",
    "whisper", "whisperf", "zac",
)


class SynthOptions(StrictModel):
    """What to generate; every field goes into the dataset's folder name (a hash) and manifest."""

    seed: int = pydantic.Field(0, ge=0)
    train_speakers: int = pydantic.Field(240, ge=1)
    val_speakers: int = pydantic.Field(48, ge=1)
    test_speakers: int = pydantic.Field(64, ge=1)
    unknown_per_speaker: int = pydantic.Field(3, ge=0)
    silence_per_speaker: int = pydantic.Field(2, ge=0)
    rate_wpm: tuple[int, int] = (120, 210)  # espeak-ng -s, uniform
    pitch: tuple[int, int] = (20, 80)  # espeak-ng -p (0-99), uniform
    snr_db: tuple[float, float] = (5.0, 30.0)  # speech RMS over noise RMS, uniform in dB
    peak_dbfs: tuple[float, float] = (-24.0, -1.0)  # clip gain: peak level, uniform in dB
    noise_dbfs: tuple[float, float] = (-60.0, -20.0)  # silence clips: noise RMS level, uniform in dB

    def speakers(self, split: str) -> int:
        return {"train": self.train_speakers, "val": self.val_speakers, "test": self.test_speakers}[split]

    def key(self) -> str:
        blob = json.dumps({"v": GENERATOR_VERSION, "opts": self.model_dump(mode="json"), "accents": ACCENTS,
                           "variants": VARIANTS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make: its label, word (None: silence) and speaker, and its own seed."""

    split: str
    index: int
    label: str
    word: str | None
    accent: str
    variant: str

    def speaker(self) -> str:
        return f"{self.accent}+{self.variant}"


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError("voice_commands: the `espeak-ng` program is not installed; it synthesizes the offline "
                        "clips. Install the Debian/Ubuntu package `espeak-ng` (apt-get install espeak-ng), or "
                        "use the speech_commands dataset with the Google Speech Commands v2 download")
    return exe


def espeak_version() -> str:
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def split_speakers(opts: SynthOptions) -> dict[str, list[tuple[str, str]]]:
    """(accent, variant) speakers per split. Variants are partitioned in proportion to the speakers
    each split needs, so the splits share no variant and hence no combination."""
    rng = np.random.default_rng([opts.seed, 0])
    order = [VARIANTS[i] for i in rng.permutation(len(VARIANTS))]
    need = [opts.speakers(s) for s in SPLITS]
    counts = [max(1, -(-n * len(VARIANTS) // sum(need))) for n in need]
    counts[0] = len(VARIANTS) - counts[1] - counts[2]
    out: dict[str, list[tuple[str, str]]] = {}
    start = 0
    for split, n_var, n in zip(SPLITS, counts, need):
        variants = order[start : start + n_var]
        start += n_var
        combos = [(a, v) for v in variants for a in ACCENTS]
        if n > len(combos):
            raise DataError(f"voice_commands: {split}_speakers={n} but only {len(combos)} voice/variant "
                            f"combinations are available to {split} ({n_var} variants x {len(ACCENTS)} accents)")
        out[split] = [combos[i] for i in sorted(rng.choice(len(combos), size=n, replace=False))]
    return out


def plan(opts: SynthOptions) -> list[ClipPlan]:
    """Every clip of every split: each speaker says the ten commands once, `unknown_per_speaker`
    other words, and contributes `silence_per_speaker` noise-only clips."""
    rng = np.random.default_rng([opts.seed, 1])
    clips: list[ClipPlan] = []
    for split, speakers in split_speakers(opts).items():
        i = 0
        for accent, variant in speakers:
            items = [(w, w) for w in COMMANDS]
            items += [("unknown", str(w)) for w in rng.choice(UNKNOWN_WORDS, opts.unknown_per_speaker, replace=False)]
            items += [("silence", None)] * opts.silence_per_speaker
            for label, word in items:
                clips.append(ClipPlan(split, i, label, word, accent, variant))
                i += 1
    return clips


def _clip_rng(opts: SynthOptions, clip: ClipPlan) -> np.random.Generator:
    return np.random.default_rng([opts.seed, 2, SPLITS.index(clip.split), clip.index])


def _parse_wav(data: bytes) -> tuple[int, np.ndarray]:
    """(rate, int16 samples) of espeak-ng's stdout WAV, whose header sizes are placeholders."""
    fmt, pos = data.find(b"fmt "), data.find(b"data")
    if data[:4] != b"RIFF" or fmt < 0 or pos < 0:
        raise DataError("voice_commands: espeak-ng did not write a WAV stream")
    rate = int.from_bytes(data[fmt + 12 : fmt + 16], "little")
    body = data[pos + 8 :]
    return rate, np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")


def synthesize(word: str, speaker: str, rate_wpm: int, pitch: int) -> np.ndarray:
    """float32 samples at 16 kHz of espeak-ng saying `word`, leading/trailing silence trimmed."""
    cmd = [espeak_binary(), "-v", speaker, "-s", str(rate_wpm), "-p", str(pitch), "--stdout", word]
    out = subprocess.run(cmd, capture_output=True, check=False)
    if out.returncode != 0:
        raise DataError(f"voice_commands: {' '.join(cmd)} failed: {out.stderr.decode(errors='replace').strip()}")
    rate, pcm = _parse_wav(out.stdout)
    x = pcm.astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, rate // g).astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9))
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), by shaping
    white noise's spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (exponent / 2.0), n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def _db(lo_hi: tuple[float, float], rng: np.random.Generator) -> float:
    return 10.0 ** (rng.uniform(*lo_hi) / 20.0)


def render(opts: SynthOptions, clip: ClipPlan, speech: np.ndarray | None) -> tuple[np.ndarray, dict[str, Any]]:
    """The clip's int16 samples (CLIP_SAMPLES,) and what was drawn for it."""
    rng = _clip_rng(opts, clip)
    exponent = float(rng.choice([0.0, 1.0, 2.0]))
    noise = coloured_noise(rng, CLIP_SAMPLES, exponent)
    meta: dict[str, Any] = {"noise_exponent": exponent}
    if speech is None:
        level = _db(opts.noise_dbfs, rng)
        x = noise * level
        meta["noise_dbfs"] = round(20 * np.log10(level), 2)
    else:
        speech = speech[:CLIP_SAMPLES]
        shift = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
        x = np.zeros(CLIP_SAMPLES, np.float32)
        x[shift : shift + len(speech)] = speech
        rms = np.sqrt(np.mean(speech**2)) + 1e-9
        snr = rng.uniform(*opts.snr_db)
        x = x + noise * (rms / 10.0 ** (snr / 20.0))
        x = x * (_db(opts.peak_dbfs, rng) / (np.abs(x).max() + 1e-9))
        meta.update(shift=shift, snr_db=round(float(snr), 2))
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    return pcm, meta


def generate(opts: SynthOptions, workers: int = 2) -> tuple[dict[str, dict[str, np.ndarray]], list[dict[str, Any]]]:
    """All splits as {split: {"audio": int16 (N, 16000), "labels": int64 (N,), "speakers": str (N,)}}
    and one metadata row per clip. `workers` espeak-ng processes run at once."""
    clips = plan(opts)
    draws = []
    for c in clips:
        rng = np.random.default_rng([opts.seed, 3, SPLITS.index(c.split), c.index])
        draws.append((int(rng.integers(opts.rate_wpm[0], opts.rate_wpm[1] + 1)),
                      int(rng.integers(opts.pitch[0], opts.pitch[1] + 1))))

    def speak(i: int) -> np.ndarray | None:
        c = clips[i]
        return None if c.word is None else synthesize(c.word, c.speaker(), *draws[i])

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        speech = list(pool.map(speak, range(len(clips))))
    rows: list[dict[str, Any]] = []
    out: dict[str, dict[str, list[Any]]] = {s: {"audio": [], "labels": [], "speakers": []} for s in SPLITS}
    for c, (rate, pitch), sp in zip(clips, draws, speech):
        pcm, meta = render(opts, c, sp)
        out[c.split]["audio"].append(pcm)
        out[c.split]["labels"].append(LABELS.index(c.label))
        out[c.split]["speakers"].append(c.speaker())
        rows.append({"split": c.split, "index": c.index, "label": c.label, "word": c.word, "speaker": c.speaker(),
                     "rate_wpm": rate, "pitch": pitch, **meta})
    arrays = {s: {"audio": np.stack(v["audio"]) if v["audio"] else np.zeros((0, CLIP_SAMPLES), np.int16),
                  "labels": np.asarray(v["labels"], np.int64), "speakers": np.asarray(v["speakers"])}
              for s, v in out.items()}
    return arrays, rows
