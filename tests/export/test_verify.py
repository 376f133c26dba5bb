"""compare() against hand-computed metrics, and the tolerance verdicts verify_file draws from them."""

import math

import numpy as np
import pytest

from mobilekd.errors import DataError
from mobilekd.export.types import DEFAULT_TOLERANCES, Tolerance
from mobilekd.export.verify import SNR_CAP_DB, check, compare

REF = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]])
ACT = np.array([[1.0, 2.0, 3.5], [0.0, 1.0, 0.0]])


def test_compare_classification_by_hand():
    m = compare(REF, ACT, task="classification")
    # |a - r| = [[0, 0, .5], [0, 1, 1]] -> max 1.0
    assert m.max_abs_err == pytest.approx(1.0)
    # per sample max|a-r| / max|r|: 0.5 / 3 = 0.1667 and 1 / 1 = 1.0 -> 1.0
    assert m.max_rel_err == pytest.approx(1.0)
    # signal 1+4+9+0+0+1 = 15; noise .25+1+1 = 2.25; 10 log10(15 / 2.25) = 8.2391 dB
    assert m.snr_db == pytest.approx(10 * math.log10(15 / 2.25))
    assert m.snr_db == pytest.approx(8.2391, abs=1e-4)
    # row 0: 15.5 / (sqrt(17.25) sqrt(14)) = 0.99741; row 1: a.r = 0 -> 0.0; the minimum is reported
    assert m.cosine == pytest.approx(0.0)
    # argmax: row 0 2 == 2, row 1 1 != 2 -> 1/2
    assert m.top1_agreement == pytest.approx(0.5)
    assert m.topk_overlap is None and m.k is None
    assert m.samples == 2


def test_compare_ranking_topk_by_hand():
    m = compare(REF, ACT, task="ranking", k=2)
    # row 0 top-2: a {2, 1}, r {2, 1} -> 2/2; row 1: a {1, 0} (stable ties), r {2, 0} -> 1/2; mean .75
    assert m.topk_overlap == pytest.approx(0.75)
    assert m.k == 2
    # k larger than the catalogue is clipped to C = 3: every row's top-3 is all items -> 1.0
    assert compare(REF, ACT, task="ranking", k=10).topk_overlap == pytest.approx(1.0)
    assert compare(REF, ACT, task="ranking", k=10).k == 3


def test_compare_exact_match_caps_snr():
    m = compare(REF, REF.copy(), task="classification")
    assert m.max_abs_err == 0.0 and m.max_rel_err == 0.0
    assert m.snr_db == SNR_CAP_DB
    assert m.cosine == pytest.approx(1.0)
    assert m.top1_agreement == 1.0


def test_cosine_first_row_by_hand():
    m = compare(REF[:1], ACT[:1], task="classification")
    # 1*1 + 2*2 + 3*3.5 = 15.5; |a| = sqrt(17.25) = 4.15331; |r| = sqrt(14) = 3.74166;
    # 4.15331 * 3.74166 = 15.54030 -> 15.5 / 15.54030 = 0.99741
    assert m.cosine == pytest.approx(15.5 / (math.sqrt(17.25) * math.sqrt(14)))
    assert m.cosine == pytest.approx(0.99741, abs=1e-5)


def test_compare_rejects_mismatch_and_empty():
    with pytest.raises(ValueError, match="shape"):
        compare(REF, ACT[:, :2], task="classification")
    with pytest.raises(DataError):
        compare(np.zeros((0, 3)), np.zeros((0, 3)), task="classification")


def test_check_names_each_broken_bound():
    m = compare(REF, ACT, task="classification")
    broken = check(m, Tolerance(max_abs_err=0.1, min_cosine=0.9, min_agreement=0.9), task="classification")
    assert broken == ["max_abs_err 1 > 0.1", "cosine 0.000000 < 0.9", "top1_agreement 0.5 < 0.9"]
    assert check(m, Tolerance(max_abs_err=None, min_cosine=None, min_agreement=0.5), task="classification") == []


def test_default_tolerances_order():
    # fp32 is the strictest, int8 the loosest; int8 does not bound absolute error at all
    fp32, fp16, int8 = (DEFAULT_TOLERANCES[p] for p in ("fp32", "fp16", "int8"))
    assert fp32.max_abs_err < fp16.max_abs_err and int8.max_abs_err is None
    assert fp32.min_cosine > fp16.min_cosine > int8.min_cosine
    assert fp32.min_agreement >= fp16.min_agreement >= int8.min_agreement
    with pytest.raises(ValueError):
        Tolerance(max_abs_err=-1.0, min_cosine=None, min_agreement=1.0)
