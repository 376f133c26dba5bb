"""`bundle verify` for search bundles: the golden texts must tokenize to their recorded ids with
the bundle's vocab.txt + tokenizer.json, each runnable query encoder must embed them within its
golden cosine tolerance, and the index must return the recorded top items for each embedding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mobilekd.bundle import search
from mobilekd.bundle.manifest import GOLDEN


def search_checks(root: Path, manifest: dict[str, Any], intact: set[str]) -> list[Any]:
    from mobilekd.bundle.verify import BundleCheck
    from mobilekd.export.runtime import can_execute, open_runtime

    needed = (search.GOLDEN_TEXT, search.TOKENIZER, search.VOCAB, search.INDEX, search.INDEX_DATA, search.INDEX_SCALES)
    broken = [n for n in needed if n not in intact]
    if broken:
        return [BundleCheck(name="search golden texts", status="failed",
                            detail=f"not checked: {', '.join(broken)} missing or damaged (see the sha256 checks)")]
    doc = json.loads((root / search.GOLDEN_TEXT).read_text(encoding="utf-8"))
    tok = search.read_tokenizer(root)
    index = search.SearchIndex(root)
    wrong = [r["text"] for r in doc["texts"] if list(tok.encode(r["text"])) != [r["input_ids"], r["attention_mask"]]]
    checks = [BundleCheck(name="search tokenizer", status="failed" if wrong else "passed",
                          detail=(f"texts tokenized differently from {search.GOLDEN_TEXT}: {wrong[:3]}" if wrong
                                  else f"{len(doc['texts'])} golden texts give their recorded ids"))]
    moved = [r["text"] for r in doc["texts"]
             if [index.items[i]["stock_code"] for i, _ in index.search(np.asarray(r["embedding"]), doc["k"])] != r["top"]]
    checks.append(BundleCheck(name="search index", status="failed" if moved else "passed",
                              detail=(f"the index no longer returns the recorded top {doc['k']} for {moved[:3]}" if moved
                                      else f"{index.data.shape[0]} items x {index.data.shape[1]} int8; recorded top {doc['k']} reproduced")))
    golden = json.loads((root / GOLDEN).read_text(encoding="utf-8"))
    min_cos = {e["path"]: e["tolerance"]["min_cosine"] for e in golden["expected"]}
    for f in manifest["files"]:
        name = f"search encoder {f['path']}"
        if f["path"] not in intact or f["format"] not in ("onnx", "executorch"):
            continue
        if not can_execute(f["format"]):
            checks.append(BundleCheck(name=name, status="not_executed", detail="runtime not available here"))
            continue
        names = [s["name"] for s in f["inputs"]]
        session = open_runtime(f["format"], root / f["path"], input_names=names)
        cosines = []
        for r in doc["texts"]:
            feed = {"input_ids": np.asarray([r["input_ids"]], np.int64), "attention_mask": np.asarray([r["attention_mask"]], np.int64)}
            got = np.asarray(session.run({n: feed[n] for n in names})[0], np.float64).reshape(-1)
            want = np.asarray(r["embedding"], np.float64)
            cosines.append(float(got @ want / max(np.linalg.norm(got) * np.linalg.norm(want), 1e-12)))
        bound = min_cos.get(f["path"]) or 0.98
        worst = min(cosines)
        checks.append(BundleCheck(name=name, status="passed" if worst >= bound else "failed",
                                  detail=f"golden texts: min cosine to the PyTorch student {worst:.6f} (bound {bound})"))
    return checks
