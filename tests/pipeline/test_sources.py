"""Cache keys see the user's code and data: editing the factory's source re-runs distill and after,
editing an unrelated file re-runs nothing, replacing a data file re-runs data and after; stage.json
records what was fingerprinted and `plan` (pipeline show) says why a stage will re-run."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mobilekd.pipeline import plan, run_pipeline
from mobilekd.pipeline_file import validate
from mobilekd.store import read_json
from tests.conftest import stop_after, tiny_pipeline
from tests.pipeline.userpkg import write_userpkg


def statuses(outcome) -> dict[str, str]:
    return {k: v["status"] for k, v in outcome.statuses.items() if v["status"] != "off"}


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    pkg = write_userpkg(root / "code", "userpkg_sources")
    loaders = write_userpkg(root / "code", "userpkg_sources_data")  # the loader lives in another package
    data_file = root / "scale.npz"
    np.savez(data_file, scale=np.array([1.0]))
    doc = stop_after(tiny_pipeline(), "distill")
    doc["data"] = {"dataset": f"{loaders}.data:load_npz", "options": {"path": str(data_file)}}
    doc["distill"] = {**doc["distill"], "student": f"{pkg}.nets:build_student", "args": {"hidden": 16}}
    cfg = validate(doc)
    run_dir = root / "run"
    first = run_pipeline(cfg, run_dir=run_dir)
    return cfg, run_dir, root / "code" / pkg, data_file, first


def test_stage_json_records_code_and_data(user_run):
    cfg, run_dir, pkg_dir, data_file, first = user_run
    assert statuses(first) == {"data": "ran", "teacher": "ran", "distill": "ran"}
    distill = read_json(run_dir / "distill" / "stage.json")
    spec = cfg.distill.student
    assert set(distill["code"][spec]["files"]) == {"userpkg_sources/__init__.py", "userpkg_sources/data.py",
                                                   "userpkg_sources/nets.py"}
    data = read_json(run_dir / "data" / "stage.json")
    rec = data["data_files"][str(data_file.resolve())]
    assert rec["bytes"] == data_file.stat().st_size and len(rec["sha256"]) == 64
    assert read_json(run_dir / "teacher" / "stage.json")["code"] == {}  # built-in cnn: the version covers it


def test_unrelated_file_edit_reruns_nothing(user_run):
    cfg, run_dir, pkg_dir, _, _ = user_run
    (pkg_dir.parent / "notes.py").write_text("x = 1\n")  # next to the package, not inside it
    (pkg_dir / "README.txt").write_text("not source\n")
    assert statuses(run_pipeline(cfg, run_dir=run_dir)) == {"data": "cached", "teacher": "cached", "distill": "cached"}


def test_editing_factory_source_reruns_distill_and_after(user_run):
    cfg, run_dir, pkg_dir, _, _ = user_run
    nets = pkg_dir / "nets.py"
    nets.write_text(nets.read_text().replace("channels=(4, 8)", "channels=(4, 16)"))
    rows = {r["stage"]: r for r in plan(cfg, run_dir)}
    assert rows["teacher"]["state"] == "cached"
    assert rows["distill"]["state"] == "will run"
    assert rows["distill"]["why"] == "source of userpkg_sources/nets.py changed"
    assert rows["data"]["state"] == "cached"  # its loader's package is untouched
    s = statuses(run_pipeline(cfg, run_dir=run_dir))
    assert s == {"data": "cached", "teacher": "cached", "distill": "ran"}
    assert statuses(run_pipeline(cfg, run_dir=run_dir))["distill"] == "cached"  # and the new key sticks


def test_replacing_data_file_reruns_data_and_after(user_run):
    cfg, run_dir, _, data_file, _ = user_run
    run_pipeline(cfg, run_dir=run_dir)
    np.savez(data_file, scale=np.array([0.5]))
    st = data_file.stat()
    os.utime(data_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    rows = {r["stage"]: r for r in plan(cfg, run_dir)}
    assert rows["data"]["why"] == "data file changed: scale.npz"
    assert rows["teacher"]["why"] == "data will re-run first"
    assert statuses(run_pipeline(cfg, run_dir=run_dir)) == {"data": "ran", "teacher": "ran", "distill": "ran"}


def test_same_size_same_mtime_is_trusted_without_hashing(user_run, monkeypatch):
    """The fast path: size and mtime equal -> no sha256 is computed (and the result is cached)."""
    import mobilekd.fingerprint as fp

    cfg, run_dir, _, _, _ = user_run
    run_pipeline(cfg, run_dir=run_dir)
    calls = []
    monkeypatch.setattr(fp, "sha256_file", lambda p: calls.append(p) or "x")
    recorded = read_json(run_dir / "data" / "stage.json")["data_files"]
    assert fp.changed_data_files(recorded) == [] and calls == []
