"""`mobilekd bundle query`: the reference search client. It does what the app does, from the
bundle's files only: tokenize with vocab.txt + tokenizer.json, run the exported query encoder on
its runtime (ONNX Runtime or ExecuTorch), and search the bundled int8 catalogue index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from mobilekd.bundle import search
from mobilekd.bundle.archive import DEFAULT_MAX_BYTES
from mobilekd.bundle.verify import open_bundle, read_manifest
from mobilekd.errors import BundleError

RUNNABLE = ("executorch", "onnx")


class Hit(BaseModel):
    rank: int
    stock_code: str
    description: str
    score: float


class QueryResult(BaseModel):
    query: str
    tokens: list[str]
    input_ids: list[int]
    file: str
    format: str
    variant: str
    hits: list[Hit]


def choose_file(manifest: dict, fmt: str | None) -> dict:
    """The bundle's query encoder for `fmt` (default: ExecuTorch, else ONNX), int8 before fp32."""
    files = [f for f in manifest["files"] if f["format"] in RUNNABLE and (fmt is None or f["format"] == fmt)]
    if not files:
        have = sorted({f["format"] for f in manifest["files"]})
        want = fmt or " or ".join(RUNNABLE)
        raise BundleError(f"the bundle has no {want} file to run (it has: {', '.join(have) or 'none'}); "
                          "--format takes onnx or executorch")
    files.sort(key=lambda f: (RUNNABLE.index(f["format"]), f["variant"] != "int8"))
    return files[0]


def query_bundle(bundle: Path | str, text: str, *, k: int = 10, fmt: str | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> QueryResult:
    from mobilekd.export.runtime import open_runtime

    with open_bundle(bundle, max_bytes=max_bytes) as root:
        manifest = read_manifest(root)
        if manifest.get("task") != "retrieval" or not (root / search.INDEX).is_file():
            raise BundleError(f"{bundle}: not a search bundle (task {manifest.get('task')!r}; "
                              f"expected 'retrieval' with {search.INDEX}); build one with pipelines/product_search.yaml")
        tok = search.read_tokenizer(root)
        index = search.SearchIndex(root)
        f = choose_file(manifest, fmt)
        ids, mask = tok.encode(text)
        feed = {"input_ids": np.asarray([ids], dtype=np.int64), "attention_mask": np.asarray([mask], dtype=np.int64)}
        names = [s["name"] for s in f["inputs"]]
        session = open_runtime(f["format"], root / f["path"], input_names=names)
        embedding = np.asarray(session.run({n: feed[n] for n in names})[0]).reshape(-1)
        hits = [Hit(rank=r + 1, stock_code=index.items[i]["stock_code"], description=index.items[i]["description"],
                    score=round(s, 6)) for r, (i, s) in enumerate(index.search(embedding, k))]
        return QueryResult(query=text, tokens=tok.tokens(text), input_ids=ids, file=f["path"], format=f["format"],
                           variant=f["variant"], hits=hits)
