"""Kill anywhere, resume clean: SIGKILL a run at a seeded random point inside data, export, verify,
bench and bundle (one after another, resuming in between), then let it finish; the final
artifacts' digests equal those of an uninterrupted run, and no half-written file is reused.

MOBILEKD_KILL_SEEDS=0,1,2 runs more seeds (each about two tiny pipelines long)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mobilekd.pipeline import STAGE_FILE, output_digests
from mobilekd.store import read_json
from tests.pipeline.test_cache import lean

KILL_AT = ("data", "export", "verify", "bench", "bundle")
SEEDS = [int(s) for s in os.environ.get("MOBILEKD_KILL_SEEDS", "0").split(",")]
# Deterministic given the seed (latency numbers are not, so bench, gate and the manifest are left out).
COMPARED = ("data", "teacher", "distill", "export", "verify")


def command(path: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "mobilekd", "pipeline", "run", str(path), "--out", str(run_dir), "--quiet"]


def run_to_end(path: Path, run_dir: Path) -> None:
    proc = subprocess.run(command(path, run_dir), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = folder.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_ctime_ns


def kill_inside(path: Path, run_dir: Path, stage: str, delay: float) -> str:
    """Start a run, wait until it (re)creates `stage`'s folder (the stage began: its folder is cleared
    first), wait `delay` s more, SIGKILL; say whether it died inside the stage or after it."""
    if (run_dir / stage / STAGE_FILE).exists():
        return "finished earlier"
    before = _identity(run_dir / stage)
    proc = subprocess.Popen(command(path, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while _identity(run_dir / stage) in (None, before):
            assert proc.poll() is None, f"the run ended before {stage} began"
            assert time.time() < deadline, f"{stage} never began"
            time.sleep(0.005)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return "after" if (run_dir / stage / STAGE_FILE).exists() else "inside"


def content_digest(path: Path) -> str:
    """sha256 of what a file holds: a torch state dict by its tensors (torch.save's archive embeds the
    temporary file name it was written under), an ONNX model by its initializers and nodes."""
    import hashlib

    h = hashlib.sha256()
    if path.suffix == ".pt":
        import torch

        for k, v in sorted(torch.load(path, weights_only=True).items()):
            h.update(k.encode() + v.numpy().tobytes())
    elif path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        m = onnx.load(str(path))
        for init in sorted(m.graph.initializer, key=lambda t: t.name):
            h.update(init.name.encode() + numpy_helper.to_array(init).tobytes())
        h.update(" ".join(n.op_type for n in m.graph.node).encode())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def final_digests(run_dir: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for stage in (*COMPARED, "bundle"):
        files = read_json(run_dir / stage / STAGE_FILE)["outputs"]
        out[stage] = {f: content_digest(run_dir / stage / f) for f in files
                      if not f.endswith(("manifest.json", "MODEL_CARD.md", ".zip", ".mlpackage"))}
    return out


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("kill") / "pipeline.yaml"
    p.write_text(yaml.safe_dump(lean(), sort_keys=False))
    return p


@pytest.fixture(scope="module")
def reference(pipeline_file) -> dict[str, dict[str, str]]:
    run_dir = pipeline_file.parent / "uninterrupted"
    run_to_end(pipeline_file, run_dir)
    return final_digests(run_dir)


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_anywhere_then_resume_matches_uninterrupted(pipeline_file, reference, seed):
    rng = random.Random(seed)
    run_dir = pipeline_file.parent / f"killed-{seed}"
    where = {}
    for stage in KILL_AT:
        where[stage] = kill_inside(pipeline_file, run_dir, stage, delay=rng.uniform(0.0, 0.4))
        # Whatever the kill left, nothing unfinished carries a stage.json, and the summary never says passed.
        # (A kill that lands after the last stage may find the run already finished and passed.)
        status = read_json(run_dir / "summary.json")["status"]
        finished = stage == KILL_AT[-1] and where[stage] == "after"
        assert status == "running" or (finished and status == "passed"), where
        for s in KILL_AT:
            rec = run_dir / s / STAGE_FILE
            if rec.exists():
                assert read_json(rec)["outputs"] == output_digests(run_dir / s), (s, where)
    assert "inside" in where.values(), where  # at least one kill landed mid-stage
    run_to_end(pipeline_file, run_dir)
    assert read_json(run_dir / "summary.json")["status"] == "passed"
    assert [p for p in run_dir.rglob("*") if ".tmp" in p.name] == []
    for stage in ("data", "teacher", "distill", "export", "verify", "bench", "gate", "bundle"):
        assert read_json(run_dir / stage / STAGE_FILE)["outputs"] == output_digests(run_dir / stage), stage
    assert final_digests(run_dir) == reference, where
