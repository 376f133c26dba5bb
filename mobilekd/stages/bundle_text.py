"""bundle stage, retrieval tasks: the search app's contract (mobilekd.bundle.search): vocabulary,
tokenizer rules, the int8 catalogue index embedded by the PyTorch student, and golden texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from mobilekd.bundle import search
from mobilekd.context import RunContext
from mobilekd.data.catalogue import QUERY_ROW, ROLE
from mobilekd.evaluate import predict
from mobilekd.store import read_json

EXAMPLE_QUERIES = ("red lunch bag", "xmas tree decorations")


def write_search_assets(ctx: RunContext, root: Path, asset: Callable[[Path, str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    ds = ctx.dataset()
    data = ctx.require("data", "bundle")
    vocab = read_json(ctx.path(data.extras["wordpiece_vocab"]))
    items = read_json(ctx.path(data.extras["catalogue"]))
    max_len = ds.info.inputs[0].shape[1]
    student = ctx.student()
    catalogue = ds.test.take(ds.test.targets[:, ROLE] != QUERY_ROW)
    order = catalogue.targets[:, 0].argsort()
    embeddings = predict(student, catalogue, ds.info)[order]
    names = search.write_tokenizer(root, vocab, max_len) + search.write_index(root, embeddings, items)
    tok = search.read_tokenizer(root)
    samples = read_json(ctx.path(data.extras["query_samples"])) if "query_samples" in data.extras else {}
    texts = list(EXAMPLE_QUERIES) + [s["query"] for s in samples.get("test", [])[:6]]
    ids, mask = tok.encode_batch(texts)
    with torch.no_grad():
        query_emb = student(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    from mobilekd.store import write_json

    write_json(root / search.GOLDEN_TEXT, search.golden_texts(tok, texts, query_emb, search.SearchIndex(root)))
    roles = {search.VOCAB: "vocabulary", search.TOKENIZER: "tokenizer", search.INDEX: "index",
             search.INDEX_DATA: "index", search.INDEX_SCALES: "index"}
    return [asset(root, n, roles[n]) for n in names] + [asset(root, search.GOLDEN_TEXT, "golden_text")]
