import numpy as np
import pandas as pd
import pytest

from mobilekd.data import online_retail as ore
from mobilekd.data.contract import check_dataset
from mobilekd.errors import ConfigError, DataError
from mobilekd.evaluate import metrics

A, B, C, D, E = "10001", "10002", "10003", "10004", "10005"


def _lines() -> pd.DataFrame:
    """Two customers. 100 buys I1 {A, B}, I2 {B, C}, I3 {A, D} (val), I4 {C, E} (test); 200 buys
    I5 {A, C}, I6 {B, D} (two invoices: training only). Plus one line for each cleaning rule.
    Rows are deliberately not in time order."""
    rows = [
        ("536002", B, 2, "2011-01-02", 100.0), ("536002", C, 1, "2011-01-02", 100.0),
        ("536001", A, 1, "2011-01-01", 100.0), ("536001", B, 1, "2011-01-01", 100.0),
        ("536001", "POST", 1, "2011-01-01", 100.0),  # non_product_code
        ("536001", A, 5, "2011-01-01", 100.0),  # repeat_in_invoice
        ("536003", A, 1, "2011-01-03", 100.0), ("536003", D, 1, "2011-01-03", 100.0),
        ("536004", C, 1, "2011-01-04", 100.0), ("536004", E, 1, "2011-01-04", 100.0),
        ("C536009", A, -1, "2011-01-02", 100.0),  # cancellation (also a negative quantity)
        ("536005", A, 1, "2011-01-01", 200.0), ("536005", C, 1, "2011-01-01", 200.0),
        ("536005", E, 0, "2011-01-01", 200.0),  # non_positive_quantity
        ("536006", B, 1, "2011-01-05", 200.0), ("536006", D, 1, "2011-01-05", 200.0),
        ("536007", A, 1, "2011-01-05", np.nan),  # no_customer
    ]
    df = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID"])
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df["Description"] = "item " + df["StockCode"]
    return df


def test_hand_made_customers():
    ds = ore.build(_lines(), seed=0, opts=ore.OnlineRetailOptions(history=3, min_count=2, max_relevant=3))
    rep = ds.extras["cleaning"]
    assert rep["dropped"] == {"cancellation": 1, "no_customer": 1, "non_positive_quantity": 1,
                              "non_product_code": 1, "repeat_in_invoice": 1}
    assert rep["matched_raw"]["non_positive_quantity"] == 2  # the cancellation's -1 and the 0
    assert (rep["lines_raw"], rep["lines_kept"]) == (17, 12)
    # Training invoices containing each item: A {I1, I5} = 2, B {I1, I2, I6} = 3, C {I2, I5} = 2,
    # D {I6} = 1, E {} = 0. min_count 2 -> B = 2, then the ties by code A = 3, C = 4; D, E -> 1.
    assert ds.info.labels == ("<pad>", "<unk>", B, A, C)
    assert ds.info.num_outputs == 5
    assert ds.extras["vocabulary"][2] == {"id": 2, "stock_code": B, "description": "item " + B}
    # Id sequences: customer 100 = I1 [3, 2], I2 [2, 4], I3 [3, 1] (val), I4 [4, 1] (test);
    # customer 200 = I5 [3, 4], I6 [2, 1] (training only). One example per invoice boundary: every
    # invoice but a customer's first, with all earlier lines as history (last K = 3, left-padded)
    # and the invoice's distinct known items as target (unknown D and E dropped), width max_relevant.
    # Training: I2 <- [_, 3, 2] targets {2, 4}; I6 <- [_, 3, 4] targets {2}.
    assert ds.train.inputs["items"].tolist() == [[0, 3, 2], [0, 3, 4]]
    assert ds.train.targets.tolist() == [[2, 4, -1], [2, -1, -1]]
    # Val: I3 <- the last 3 of [3, 2, 2, 4] = [2, 2, 4]; relevant {A=3}. Test: I4 <- the last 3 of
    # [3, 2, 2, 4, 3, 1] = [4, 3, 1]; relevant {C=4}.
    assert ds.val.inputs["items"].tolist() == [[2, 2, 4]]
    assert ds.val.targets.tolist() == [[3, -1, -1]]
    assert ds.test.inputs["items"].tolist() == [[4, 3, 1]]
    assert ds.test.targets.tolist() == [[4, -1, -1]]
    stats = ds.extras["examples"]
    assert (stats["customers"], stats["customers_train_only"], stats["invoices"]) == (2, 1, 6)
    assert stats["unknown_lines"] == 3  # D twice, E once
    spec = ds.info.inputs[0]
    assert (spec.name, spec.dtype, spec.shape, spec.low, spec.high) == ("items", "int64", (1, 3), 0, 5)


def test_uncapped_targets_and_long_history():
    """No max_relevant: each split is as wide as its largest invoice; long_items holds more lines."""
    ds = ore.build(_lines(), seed=0, opts=ore.OnlineRetailOptions(history=2, min_count=2, long_history=6))
    # training invoices I2 {2, 4} and I6 {2}: width 2; val {3} and test {4}: width 1
    assert ds.train.targets.tolist() == [[2, 4], [2, -1]]
    assert ds.val.targets.tolist() == [[3]] and ds.test.targets.tolist() == [[4]]
    assert ds.train.inputs["items"].tolist() == [[3, 2], [3, 4]]
    # test history, all six earlier lines [3, 2, 2, 4, 3, 1]: the last 2 as input, all 6 as long_items
    assert ds.test.inputs["items"].tolist() == [[3, 1]]
    assert ds.test.inputs["long_items"].tolist() == [[3, 2, 2, 4, 3, 1]]
    assert ds.val.inputs["long_items"].tolist() == [[0, 0, 3, 2, 2, 4]]
    assert ds.extras["examples"]["test_relevant_cut"] == 0
    # long_items is privileged: declared for a teacher to name, never a phone model's input
    assert [x.name for x in ds.info.inputs] == ["items"]
    (long_spec,) = ds.info.privileged_inputs
    assert (long_spec.name, long_spec.shape) == ("long_items", (1, 6)) and ds.info.history_input == "items"
    check_dataset(ds, "online_retail")  # the contract accepts the declared privileged input


def test_teacher_view_reads_privileged_input_but_keeps_the_phone_history():
    """info.view(["long_items"]): a teacher's forward reads the long history, while new/repeat
    items are still split by the phone's own 2-line history (the same metric for every model)."""
    ds = ore.build(_lines(), seed=0, opts=ore.OnlineRetailOptions(history=2, min_count=2, long_history=6))
    view = ds.info.view(["long_items"])
    assert [x.name for x in view.inputs] == ["long_items"] and view.history_input == "items"
    assert ds.info.view(None) is ds.info
    with pytest.raises(KeyError, match="nope"):
        ds.info.view(["nope"])
    # test customer: history [3, 1] (phone), next invoice {4}; item 4 is in long_items only, so it is new
    scores = np.zeros((1, ds.info.num_outputs), np.float32)
    scores[0, 4] = 1.0
    m = metrics(scores, ds.test, view)
    assert m["ndcg@10_new"] == pytest.approx(1.0) and m["ndcg@10"] == pytest.approx(1.0)


def test_real_slice(shared_data_dir):
    ds = ore.load(shared_data_dir, seed=0, max_customers=60, min_count=1, history=10)
    x, y = ds.train.inputs["items"], ds.train.targets
    assert x.dtype == np.int64 and x.shape[1] == 10 and y.shape[1] > 1
    assert x.min() >= 0 and x.max() < ds.info.num_outputs and (y[:, 0] >= 2).all() and ((y >= 2) | (y == -1)).all()
    # left padding: once a row has an item, no padding follows it
    first_item = np.argmax(x > 0, axis=1)
    assert all((row[i:] > 0).all() for row, i in zip(x, first_item) if row.any())
    assert (ds.val.targets[:, 0] >= 2).all()
    assert len(ds.val) == len(ds.test) > 0
    assert ds.extras["examples"]["customers"] == 60
    sub = ore.load(shared_data_dir, seed=0, max_customers=60, min_count=1, history=10, max_train_examples=30)
    assert len(sub.train) == 30 and len(ds.train) == ds.extras["examples"]["train_examples_all"] > 30


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="history"):
        ore.load(tmp_path, seed=0, history=0)
    with pytest.raises(DataError, match="missing"):
        ore.load(tmp_path / "missing", seed=0)
    (tmp_path / "online-retail").mkdir()
    (tmp_path / "online-retail" / "online_retail.parquet").write_bytes(b"not the file")
    with pytest.raises(DataError, match=ore.PARQUET_SHA256):
        ore.load(tmp_path, seed=0)
