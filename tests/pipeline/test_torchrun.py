"""`torchrun --nproc-per-node 2 -m mobilekd pipeline run`: both processes train (DDP over gloo),
only rank 0 writes, and the run finishes with the same artifacts as a single process."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.conftest import tiny_pipeline


def test_two_processes_run_the_pipeline(tmp_path):
    doc = tiny_pipeline(quantize=None, export={"formats": ["onnx"], "variants": ["fp32"]}, bench=None,
                        gate={"budgets": [{"metric": "accuracy", "model": "student", "min": 0.0}]},
                        bundle={"formats": ["onnx"], "variants": ["fp32"], "golden_samples": 2})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29571",
           "-m", "mobilekd", "pipeline", "run", str(path), "--out", str(run_dir), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stages"]["teacher"]["status"] == "ran" and summary["stages"]["distill"]["status"] == "ran"
    assert summary["artifacts"][0]["parity"]["status"] == "passed"
    history = json.loads((run_dir / "distill" / "stage.json").read_text())["result"]["history"]
    assert len(history) == doc["distill"]["epochs"]
    # The verdict (--quiet's one line) is printed once (rank 0), not once per process.
    assert proc.stdout.count("tiny: gate passed") == 1, proc.stdout
    assert not list(run_dir.rglob("*.tmp*"))
