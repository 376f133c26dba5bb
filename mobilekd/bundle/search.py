"""The search app's contract in a bundle (retrieval tasks), written by the bundle stage:

    vocab.txt           the cut WordPiece vocabulary, one token per line, line number = id
    tokenizer.json      the normalisation and tokenisation rules (mobilekd.data.wordpiece), max_len
    index.int8          the catalogue index: M x D int8, row-major, row i = item i
    index_scales.f32    M float32 (little-endian): item i's embedding ~= index[i] * scale[i]
    index.json          rows, dim, dtype, file names, stock_codes [M] and descriptions [M] (row i = item i)
    golden_text.json    texts -> tokens -> input_ids/attention_mask -> the student's embedding -> top items

The index is the PyTorch student's embeddings of every catalogue description, quantized per row
(symmetric, scale = max|x| / 127); score(query, item i) = <query embedding, index[i]> * scale[i].
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mobilekd.data.wordpiece import MAX_WORD_CHARS, SPECIALS, WordPieceTokenizer
from mobilekd.store import write_json, write_text

TOKENIZER, VOCAB, INDEX, INDEX_DATA, INDEX_SCALES, GOLDEN_TEXT = (
    "tokenizer.json", "vocab.txt", "index.json", "index.int8", "index_scales.f32", "golden_text.json")
RULES = (
    "clean: drop U+0000, U+FFFD and control characters (category C*, except tab/newline/CR); whitespace -> space",
    "put a space on each side of every CJK ideograph",
    "lower-case; NFD-normalise; drop combining marks (category Mn)",
    "split on spaces; split each punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, category P*) off as a word",
    f"WordPiece each word: greedy longest match in vocab.txt, later pieces prefixed '##'; no full cover or > {MAX_WORD_CHARS} chars -> [UNK]",
    "[CLS] + pieces (truncated to max_len - 2) + [SEP], padded with [PAD] (id 0) to max_len; attention_mask 1 on real tokens",
)


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: scale_i = max_j |x_ij| / 127, q_ij = round(x_ij / scale_i)."""
    x = np.asarray(x, dtype=np.float32)
    scale = np.abs(x).max(axis=1) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def write_tokenizer(root: Path, vocab: Sequence[str], max_len: int) -> list[str]:
    write_text(root / VOCAB, "\n".join(vocab) + "\n")
    write_json(root / TOKENIZER, {
        "type": "wordpiece", "vocab": VOCAB, "max_len": max_len, "lowercase": True, "strip_accents": True,
        "split_punctuation": True, "continuing_subword_prefix": "##", "max_word_chars": MAX_WORD_CHARS,
        "special_tokens": {s: i for i, s in enumerate(SPECIALS)}, "unk_token": "[UNK]",
        "inputs": ["input_ids", "attention_mask"], "rules": list(RULES),
        "same_as": "Hugging Face BertTokenizer(do_lower_case=True) restricted to vocab.txt"})
    return [VOCAB, TOKENIZER]


def write_index(root: Path, embeddings: np.ndarray, items: Sequence[dict[str, Any]]) -> list[str]:
    q, scale = quantize_rows(embeddings)
    (root / INDEX_DATA).write_bytes(q.tobytes(order="C"))
    (root / INDEX_SCALES).write_bytes(scale.astype("<f4").tobytes())
    write_text(root / INDEX, json.dumps({"rows": int(q.shape[0]), "dim": int(q.shape[1]), "dtype": "int8", "layout": "row-major",
                              "data": INDEX_DATA, "scales": INDEX_SCALES, "scale": "per row, float32 little-endian",
                              "score": "dot(query_embedding, index[i]) * scales[i]",
                              "stock_codes": [it["stock_code"] for it in items],
                              "descriptions": [it["description"] for it in items]}, separators=(",", ":")) + "\n")
    return [INDEX, INDEX_DATA, INDEX_SCALES]


def read_tokenizer(root: Path) -> WordPieceTokenizer:
    doc = json.loads((root / TOKENIZER).read_text(encoding="utf-8"))
    vocab = (root / doc["vocab"]).read_text(encoding="utf-8").splitlines()
    return WordPieceTokenizer(vocab, int(doc["max_len"]))


class SearchIndex:
    """The bundled catalogue index, dequantized lazily per search."""

    def __init__(self, root: Path):
        doc = json.loads((root / INDEX).read_text(encoding="utf-8"))
        rows, dim = int(doc["rows"]), int(doc["dim"])
        self.data = np.frombuffer((root / doc["data"]).read_bytes(), dtype=np.int8).reshape(rows, dim)
        self.scales = np.frombuffer((root / doc["scales"]).read_bytes(), dtype="<f4").reshape(rows)
        self.items = [{"stock_code": c, "description": d} for c, d in zip(doc["stock_codes"], doc["descriptions"])]

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores = (self.data.astype(np.float32) @ np.asarray(query, dtype=np.float32).reshape(-1)) * self.scales
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in top]


def golden_texts(tok: WordPieceTokenizer, texts: Sequence[str], embeddings: np.ndarray, index: SearchIndex,
                 k: int = 5) -> dict[str, Any]:
    rows = []
    for text, emb in zip(texts, embeddings):
        ids, mask = tok.encode(text)
        rows.append({"text": text, "tokens": tok.tokens(text), "input_ids": ids, "attention_mask": mask,
                     "embedding": [float(v) for v in np.asarray(emb, dtype=np.float32)],
                     "top": [index.items[i]["stock_code"] for i, _ in index.search(emb, k)]})
    return {"encoding": "json lists; embedding float32 from the PyTorch student", "k": k, "texts": rows}
