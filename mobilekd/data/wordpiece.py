"""A WordPiece tokenizer an app can re-implement: BERT's uncased rules over a cut vocabulary.

The rules (what `docs/recipes/product-search.md` promises the app, checked by the bundle's golden
text vectors), applied in order:

1. clean: drop U+0000, U+FFFD and control characters (Unicode category C*, except tab, newline,
   carriage return); every whitespace character becomes a space.
2. CJK ideographs get a space on each side (each is its own word).
3. lower-case, then NFD-normalise and drop combining marks (category Mn): "Café" -> "cafe".
4. split on spaces; split every punctuation character off as its own word (ASCII 33-47, 58-64,
   91-96, 123-126, and Unicode category P*).
5. WordPiece per word: greedy longest-match-first against the vocabulary, pieces after the first
   prefixed "##"; a word with no full cover, or longer than 100 characters, becomes [UNK].
6. [CLS] + pieces + [SEP], pieces truncated so the total is at most `max_len`; padded with [PAD]
   (id 0) to `max_len`; attention_mask is 1 on real tokens and 0 on padding.

These are the rules of Hugging Face's BertTokenizer with do_lower_case=True (all-MiniLM-L6-v2's).
Greedy longest match over a vocabulary cut from the teacher's gives the teacher's own pieces for
every word whose pieces were kept (a longer match in the cut vocabulary would be a longer match in
the full one); tests/data/test_wordpiece.py checks it against the teacher's tokenizer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIALS = (PAD, UNK, CLS, SEP)
MAX_WORD_CHARS = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def normalize(text: str) -> str:
    """Rules 1-3: clean, pad CJK, lower-case, strip accents."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    lowered = unicodedata.normalize("NFD", "".join(out).lower())
    return "".join(ch for ch in lowered if unicodedata.category(ch) != "Mn")


def words(text: str) -> list[str]:
    """Rules 1-4: the normalised text split on spaces and punctuation."""
    result: list[str] = []
    for chunk in normalize(text).split():
        current = ""
        for ch in chunk:
            if _is_punctuation(ch):
                if current:
                    result.append(current)
                result.append(ch)
                current = ""
            else:
                current += ch
        if current:
            result.append(current)
    return result


def wordpiece(word: str, vocab: dict[str, int] | set[str]) -> list[str]:
    """Rule 5: greedy longest-match-first pieces of one word, or [UNK]."""
    if len(word) > MAX_WORD_CHARS:
        return [UNK]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [UNK]
        pieces.append(piece)
        start = end
    return pieces


class WordPieceTokenizer:
    """Text -> (input_ids, attention_mask) over `vocab` (index = id; must start with the specials)."""

    def __init__(self, vocab: Sequence[str], max_len: int):
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {tuple(vocab[:4])}")
        if max_len < 3:
            raise ValueError(f"max_len must be >= 3 ([CLS] x [SEP]), got {max_len}")
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.max_len = max_len

    def tokens(self, text: str) -> list[str]:
        """Rules 1-5, without [CLS]/[SEP] or truncation."""
        return [p for w in words(text) for p in wordpiece(w, self.index)]

    def encode(self, text: str) -> tuple[list[int], list[int]]:
        pieces = [CLS, *self.tokens(text)[: self.max_len - 2], SEP]
        ids = [self.index[p] for p in pieces]
        pad = self.max_len - len(ids)
        return ids + [0] * pad, [1] * len(ids) + [0] * pad

    def encode_batch(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.encode(t) for t in texts]
        ids = np.array([r[0] for r in rows], dtype=np.int64).reshape(-1, self.max_len)
        mask = np.array([r[1] for r in rows], dtype=np.int64).reshape(-1, self.max_len)
        return ids, mask


def read_vocab(path: Path) -> list[str]:
    """vocab.txt: one token per line, line number = id (BERT's format)."""
    return Path(path).read_text(encoding="utf-8").splitlines()


def cut_vocab(full: Sequence[str], texts: Iterable[str]) -> list[str]:
    """The specials, every piece the full vocabulary uses for `texts`, and every single ASCII
    letter, digit and punctuation piece (with its ## form), so any ASCII word still has a cover
    and no typo becomes [UNK]. Kept tokens stay in the full vocabulary's order."""
    index = {t: i for i, t in enumerate(full)}
    missing = [s for s in SPECIALS if s not in index]
    if missing:
        raise ValueError(f"the full vocabulary lacks the special tokens {missing}")
    keep: set[str] = set()
    for text in texts:
        for w in words(text):
            keep.update(wordpiece(w, index))
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~":
        keep.update(t for t in (ch, "##" + ch) if t in index)
    keep.difference_update(SPECIALS)
    return [*SPECIALS, *sorted(keep, key=index.__getitem__)]
