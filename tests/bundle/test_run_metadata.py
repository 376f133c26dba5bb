"""Run metadata: summary.json's "run" and the bundle manifest's copy of it (schema-valid)."""

from __future__ import annotations

import platform
from pathlib import Path

from mobilekd.bundle.manifest import schema_errors
from mobilekd.runinfo import git_state
from mobilekd.store import read_json


def test_summary_and_manifest_carry_the_run(digits_run: Path) -> None:
    run = read_json(digits_run / "summary.json")["run"]
    assert run["seed"] == 0 and run["seconds"] > 0 and run["started"].endswith("+00:00")
    assert run["versions"]["python"] == platform.python_version()
    assert run["versions"]["torch"].startswith("2.13.0") and run["versions"]["executorch"] == "1.5.1"
    assert set(run["versions"]) >= {"mobilekd", "onnxruntime", "coremltools"}
    assert run["host"]["cores"] >= 1 and run["host"]["threads"] >= 1 and run["host"]["cpu"]
    m = read_json(digits_run / "bundle" / "bundle" / "manifest.json")
    assert schema_errors(m) == []
    assert m["run"]["started"] == run["started"] and m["run"]["versions"] == run["versions"]
    assert "seconds" not in m["run"]  # the bundle is built before the run ends


def test_git_state_of_a_file_in_a_repository(tmp_path: Path) -> None:
    import subprocess

    assert git_state(tmp_path / "p.yaml") is None  # not a repository
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    f = tmp_path / "p.yaml"
    f.write_text("name: x\n")
    env = ["-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", *env, "-C", str(tmp_path), "add", "p.yaml"], check=True)
    subprocess.run(["git", *env, "-C", str(tmp_path), "commit", "-qm", "x"], check=True)
    state = git_state(f)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    f.write_text("name: y\n")
    assert git_state(f)["dirty"] is True
