"""UCI Online Retail as a next-purchase task: from a customer's purchase history (the last K lines),
rank the whole catalogue so that the items of their next invoice come first.

One example per invoice boundary: the history is every line the customer bought before an invoice,
left-padded (or cut) to the last K, and the target is that whole invoice (its distinct known items,
padded with -1). Training, validation and test ask the same question. The split is by position in
each customer's own timeline, not by one global date: the last invoice is the test example, the one
before it the validation example, every earlier invoice (but the first, which has no history) a
training example. A test customer's training invoices may thus be later in calendar time than
another customer's test invoice (item trends can leak across customers; a customer's own future
never does). Customers with fewer than 3 invoices only train. Item ids: 0 padding, 1 unknown (fewer
than `min_count` training invoices), 2.. the vocabulary by training popularity.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydantic

from mobilekd import store
from mobilekd.data import Dataset, DatasetInfo, Split, parse_options, windows
from mobilekd.data.download import fetch, file_digest, resolve_data_dir
from mobilekd.errors import DataError
from mobilekd.specs import StrictModel, TensorSpec

FOLDER = "online-retail"
PARQUET = "online_retail.parquet"
PARQUET_SHA256 = "518b36c8452f511e938535aebce2c3ea051432fe999bd85e81720ebb07af5931"
# UCI publishes no checksum for the zip: a download is checked by its content (rows, columns) and
# the parquet converted from it is pinned by a sidecar file holding its sha256.
SIDECAR = "online_retail.parquet.source.json"
ZIP_URLS = ("https://archive.ics.uci.edu/static/public/352/online+retail.zip",)
XLSX_NAME = "Online Retail.xlsx"
RAW_ROWS = 541_909
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
PAD, UNK = 0, 1
# A catalogue item's code is five digits with an optional letter suffix (85123A, 84029E, 22423).
# Everything else is a service line, not a product: POST, DOT, C2 (carriage), M/m (manual), D
# (discount), S (samples), B (bad debt), BANK CHARGES, AMAZONFEE, CRUK, PADS, gift_0001_* (vouchers)
# and DCGS* (a marketplace's ad-hoc codes).
PRODUCT_CODE = r"^\d{5}[A-Za-z]{0,2}$"
LICENSE = "CC BY 4.0"
CITATION = "Chen, D. (2015). Online Retail. UCI Machine Learning Repository. doi:10.24432/C5BW33"


class OnlineRetailOptions(StrictModel):
    history: int = pydantic.Field(50, ge=1, le=512)  # K, the model's input length
    min_count: int = pydantic.Field(5, ge=1)  # training invoices an item needs to get its own id
    # cap on an invoice's relevant items; None (default) keeps all (the largest invoice has ~540)
    max_relevant: int | None = pydantic.Field(None, ge=1)
    max_train_examples: int | None = pydantic.Field(None, ge=1)  # seeded subsample, for speed
    max_customers: int | None = pydantic.Field(None, ge=1)  # the first N customers by id (tests)
    # also build inputs["long_items"]: the last `long_history` lines, a privileged (server-only) input:
    # the baselines over the full history and a teacher with `teacher.inputs: [long_items]` read it;
    # the phone model, its exports and the bundle never do
    long_history: int | None = pydantic.Field(None, ge=1, le=20_000)
    # training windows (mobilekd.data.windows): lines per window; every invoice starting in a window is
    # trained in the same step. None: training rows are drawn one by one.
    window: int | None = pydantic.Field(64, ge=1, le=100_000)


def read_raw(data_dir: Path | None = None) -> pd.DataFrame:
    """The raw 541,909 lines, from the verified local parquet or a fresh download."""
    folder = resolve_data_dir(data_dir) / FOLDER
    path = folder / PARQUET
    if not path.exists():
        _download(folder)
    actual = file_digest(path)
    if actual != PARQUET_SHA256:
        sidecar = folder / SIDECAR
        pinned = store.read_json(sidecar).get("sha256") if sidecar.exists() else None
        if actual != pinned:
            raise DataError(
                f"{path}: sha256 is {actual}, expected {PARQUET_SHA256} (the project's copy)"
                + (f" or {pinned} (converted from the UCI download)" if pinned else "")
                + "; delete it to download the official release again"
            )
    return pd.read_parquet(path)


def _download(folder: Path) -> None:
    """UCI zip -> 'Online Retail.xlsx' -> parquet (+ sidecar). Reading the xlsx takes minutes,
    so the parquet is what later loads read."""
    folder.mkdir(parents=True, exist_ok=True)
    zpath = folder / "online_retail.zip"
    zip_sha = fetch(ZIP_URLS, zpath, expected=None) if not zpath.exists() else file_digest(zpath)
    try:
        with zipfile.ZipFile(zpath) as zf, zf.open(XLSX_NAME) as fh:
            df = pd.read_excel(fh, dtype={"InvoiceNo": str, "StockCode": str, "Description": str})
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{zpath}: not the UCI release (expected a zip holding {XLSX_NAME!r}): {exc}") from None
    if len(df) != RAW_ROWS or tuple(df.columns) != COLUMNS:
        raise DataError(f"{zpath}: expected {RAW_ROWS} rows with columns {COLUMNS}, got {len(df)} rows, "
                        f"columns {tuple(df.columns)}")
    df["Description"] = df["Description"].astype(str)
    df["CustomerID"] = df["CustomerID"].astype("float64")
    with store.atomic_path(folder / PARQUET) as tmp:
        df.to_parquet(tmp, index=False)
    store.write_json(folder / SIDECAR, {"sha256": store.sha256_file(folder / PARQUET), "source": ZIP_URLS[0],
                                        "source_sha256": zip_sha})


def clean(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Apply the rules in order. `dropped` counts lines still present when a rule runs (they sum to
    raw - kept); `matched_raw` counts every raw line a rule matches on its own (rules overlap)."""
    report: dict = {"lines_raw": int(len(df)), "dropped": {}, "matched_raw": {}}
    rules = (
        ("cancellation", lambda d: d["InvoiceNo"].astype(str).str.startswith("C")),
        ("no_customer", lambda d: d["CustomerID"].isna()),
        ("non_positive_quantity", lambda d: d["Quantity"] <= 0),
        ("non_product_code", lambda d: ~d["StockCode"].astype(str).str.match(PRODUCT_CODE)),
    )
    raw = df
    for name, rule in rules:
        report["matched_raw"][name] = int(rule(raw).sum())
        drop = rule(df).to_numpy()
        report["dropped"][name] = int(drop.sum())
        df = df.loc[~drop]
    # The same item twice in one invoice is one purchase event: keep its first line.
    dup = df.duplicated(["InvoiceNo", "StockCode"]).to_numpy()
    report["dropped"]["repeat_in_invoice"] = int(dup.sum())
    df = df.loc[~dup]
    report["lines_kept"] = int(len(df))
    report["rule"] = {"non_product_code": f"StockCode not matching {PRODUCT_CODE}"}
    return df, report


@dataclass
class _Timeline:
    """Cleaned lines in each customer's invoice order, as flat per-line arrays."""

    frame: pd.DataFrame
    codes: np.ndarray  # stock code per line
    cust_start: np.ndarray  # True on a customer's first line
    inv_start: np.ndarray  # True on an invoice's first line
    starts: np.ndarray  # index of the line's customer's first line
    role: np.ndarray  # 0 train, 1 val, 2 test (by the invoice's position in its customer's timeline)

    @property
    def inv_starts(self) -> np.ndarray:
        return np.flatnonzero(self.inv_start)

    @property
    def inv_ends(self) -> np.ndarray:  # an invoice runs to the next invoice start (or the end)
        return np.r_[self.inv_starts[1:], len(self.codes)]


def _timeline(cleaned: pd.DataFrame, max_customers: int | None) -> _Timeline:
    """Order lines by customer, invoice time, invoice number, file order; mark each invoice's role."""
    d = cleaned.assign(_line=np.arange(len(cleaned)))
    if max_customers is not None:
        keep = np.sort(d["CustomerID"].unique())[:max_customers]
        d = d[d["CustomerID"].isin(keep)]
    inv_date = d.groupby("InvoiceNo")["InvoiceDate"].transform("min")
    d = d.assign(_date=inv_date).sort_values(["CustomerID", "_date", "InvoiceNo", "_line"], kind="stable")
    cust = d["CustomerID"].to_numpy()
    invoice = d["InvoiceNo"].astype(str).to_numpy()
    cust_start = np.r_[True, cust[1:] != cust[:-1]]
    inv_start = np.r_[True, (invoice[1:] != invoice[:-1]) | (cust[1:] != cust[:-1])]
    cust_id = np.cumsum(cust_start) - 1
    inv_rank = np.cumsum(inv_start) - 1  # global invoice index, increasing within a customer
    n_inv = np.bincount(cust_id, weights=inv_start).astype(np.int64)[cust_id]
    pos_inv = inv_rank - inv_rank[cust_start][cust_id]  # 0-based invoice position within the customer
    heldout = n_inv >= 3
    role = np.zeros(len(d), dtype=np.int8)
    role[heldout & (pos_inv == n_inv - 2)] = 1
    role[heldout & (pos_inv == n_inv - 1)] = 2
    return _Timeline(d, d["StockCode"].astype(str).to_numpy(), cust_start, inv_start,
                     np.flatnonzero(cust_start)[cust_id], role)


def _vocabulary(tl: _Timeline, min_count: int) -> tuple[list[str], np.ndarray]:
    """Codes by training popularity (one count per invoice: repeats were collapsed), and each
    line's id: 2.. for those codes, UNK for the rest."""
    counts = pd.Series(tl.codes[tl.role == 0]).value_counts()
    counts = counts[counts >= min_count]
    order = sorted(counts.index, key=lambda c: (-int(counts[c]), c))
    index = {c: i + 2 for i, c in enumerate(order)}
    return order, np.fromiter((index.get(c, UNK) for c in tl.codes), dtype=np.int64, count=len(tl.codes))


def _histories(tl: _Timeline, ids: np.ndarray, pos: np.ndarray, length: int) -> np.ndarray:
    """Left-padded last `length` ids before each global position, within its customer."""
    idx = pos[:, None] - length + np.arange(length)[None, :]
    valid = idx >= tl.starts[pos][:, None]
    return np.where(valid, ids[np.clip(idx, 0, None)], PAD).astype(np.int64)


def _boundaries(tl: _Timeline, ids: np.ndarray, r: int, opts: OnlineRetailOptions, seed: int,
                subsample: int | None) -> tuple[Split, int, int, int]:
    """One example per invoice of role r that has history: (history, the invoice's items).
    Returns the split, invoices dropped for holding only unknown items, examples before any
    subsample, and relevant items cut by max_relevant."""
    inv_starts, inv_ends = tl.inv_starts, tl.inv_ends
    which = np.flatnonzero((tl.role[inv_starts] == r) & ~tl.cust_start[inv_starts])
    rel = [list(dict.fromkeys(int(v) for v in ids[inv_starts[i] : inv_ends[i]] if v != UNK)) for i in which]
    keep = np.array([bool(x) for x in rel], dtype=bool)
    kept = which[keep] if len(which) else which
    n_all = len(kept)
    if subsample is not None and n_all > subsample:
        kept = np.sort(np.random.default_rng(seed).choice(kept, size=subsample, replace=False))
    rows = [rel[j] for j in np.searchsorted(which, kept)]
    cap = opts.max_relevant
    width = max([len(x) for x in rows] + [1]) if cap is None else cap
    y = np.full((len(kept), width), -1, dtype=np.int64)
    for i, x in enumerate(rows):
        y[i, : min(len(x), width)] = x[:width]
    first = inv_starts[kept]
    lengths = {"items": opts.history, **({"long_items": opts.long_history} if opts.long_history else {})}
    cut = sum(max(0, len(x) - width) for x in rows)
    if r == 0 and opts.window is not None:  # training: examples built as windows, drawn as windows
        cuts = {k: windows.cut(ids, tl.starts, first, n, opts.window) for k, n in lengths.items()}
        inputs = {k: w.histories() for k, w in cuts.items()}
        return Split(inputs, y, windows=cuts["items"].rows), int((~keep).sum()), n_all, cut
    inputs = {k: _histories(tl, ids, first, n) for k, n in lengths.items()}
    return Split(inputs, y), int((~keep).sum()), n_all, cut


def build(df: pd.DataFrame, *, seed: int, opts: OnlineRetailOptions) -> Dataset:
    """Cleaned lines -> vocabulary and train/val/test examples (see the module docstring)."""
    cleaned, report = clean(df)
    tl = _timeline(cleaned, opts.max_customers)
    order, ids = _vocabulary(tl, opts.min_count)
    num_items, K, n = len(order) + 2, opts.history, len(tl.codes)
    index = {c: i + 2 for i, c in enumerate(order)}
    train, train_empty, n_train_all, train_cut = _boundaries(tl, ids, 0, opts, seed, opts.max_train_examples)
    val, val_empty, _, val_cut = _boundaries(tl, ids, 1, opts, seed, None)
    test, test_empty, _, test_cut = _boundaries(tl, ids, 2, opts, seed, None)
    d, codes, cust_start, inv_start = tl.frame, tl.codes, tl.cust_start, tl.inv_start
    descriptions = _descriptions(d)
    vocabulary = [{"id": PAD, "stock_code": "<pad>", "description": "padding"},
                  {"id": UNK, "stock_code": "<unk>", "description": f"item seen in < {opts.min_count} training invoices"}]
    vocabulary += [{"id": index[c], "stock_code": c, "description": descriptions.get(c, "")} for c in order]
    n_cust = int(cust_start.sum())
    stats = {
        "customers": n_cust,
        "customers_train_only": int((np.bincount(np.cumsum(cust_start) - 1, weights=inv_start) < 3).sum()),
        "invoices": int(inv_start.sum()),
        "lines": n,
        "items_seen": int(len(np.unique(codes))),
        "num_items": num_items,
        "unknown_lines": int((ids == UNK).sum()),
        "train_examples_all": n_train_all,
        "train_examples": len(train),
        "train_windows": None if train.windows is None else int(len(train.windows)),
        "window_lines": opts.window,
        "val_examples": len(val),
        "test_examples": len(test),
        "val_dropped_all_unknown": val_empty,
        "test_dropped_all_unknown": test_empty,
        "train_dropped_all_unknown": train_empty,
        "max_relevant": opts.max_relevant,
        "train_relevant_cut": train_cut,
        "val_relevant_cut": val_cut,  # relevant items beyond max_relevant (0 when uncapped)
        "test_relevant_cut": test_cut,
        "relevant_per_invoice_max": int(max(val.targets.shape[1], test.targets.shape[1])),
    }
    info = DatasetInfo(
        name="online_retail",
        task="ranking",
        inputs=(TensorSpec(name="items", dtype="int64", shape=(1, K), low=0, high=num_items),),
        privileged_inputs=(() if opts.long_history is None else
                           (TensorSpec(name="long_items", dtype="int64", shape=(1, opts.long_history), low=0,
                                       high=num_items),)),
        history_input="items",
        item_text=("", "", *(descriptions.get(c, "") for c in order)),  # padding, unknown: no text
        num_outputs=num_items,
        labels=tuple(v["stock_code"] for v in vocabulary),
        preprocessing={"input": "the customer's last K purchased item ids, oldest first, left-padded with 0",
                       "history": K, "padding_id": PAD, "unknown_id": UNK,
                       "lines": "every purchased line of the customer's earlier invoices (no cancellations, no "
                                "returns, no service codes such as POST or DOT; an item twice in one invoice counts once)",
                       "order": "invoices by time; items of one invoice in invoice line order",
                       "unknown": "a stock code not in the vocabulary (labels.json) becomes id 1; keep its slot",
                       "when": "before each new order: the history ends with the last line of the last invoice"},
        postprocessing={"output": "scores over item ids; ignore ids 0 and 1, rank the rest",
                        "exclude_ids": [PAD, UNK],
                        "history_items": "shown: about 15% of a next order's items were bought before, and the model "
                                         "scores them through its re-buy path; for a 'discover' shelf, drop the ids "
                                         "in the history before taking the top k (the *_new metrics)"},
        license=LICENSE,
        citation=CITATION,
        notes=("customers with fewer than 3 invoices are training-only",
               "targets (train, val, test): the distinct known items of the next invoice, padded with -1"),
    )
    return Dataset(info=info, train=train, val=val, test=test,
                   extras={"cleaning": report, "examples": stats, "vocabulary": vocabulary})


def _descriptions(d: pd.DataFrame) -> dict[str, str]:
    """Most frequent real description of each code (a code's text varies a little over the year)."""
    desc = d.loc[d["Description"].astype(str) != "nan", ["StockCode", "Description"]]
    top = desc.groupby(["StockCode", "Description"]).size().reset_index(name="n")
    top = top.sort_values(["StockCode", "n", "Description"], ascending=[True, False, True])
    return dict(top.drop_duplicates("StockCode")[["StockCode", "Description"]].itertuples(index=False))


def load(data_dir: Path | None = None, *, seed: int, history: int = 50, min_count: int = 5,
         max_relevant: int | None = None, max_train_examples: int | None = None,
         max_customers: int | None = None, long_history: int | None = None, window: int | None = 64) -> Dataset:
    """Online Retail next-purchase examples; see `build` and docs/data.md for every rule."""
    opts = parse_options(OnlineRetailOptions, "online_retail",
                         history=history, min_count=min_count, max_relevant=max_relevant,
                         max_train_examples=max_train_examples, max_customers=max_customers,
                         long_history=long_history, window=window)
    return build(read_raw(data_dir), seed=seed, opts=opts)
