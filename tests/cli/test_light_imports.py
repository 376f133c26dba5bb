"""Light commands stay light: `--help`, `--version`, `gate` and `pipeline validate --no-models`
import neither torch nor scikit-learn (each costs seconds on a loaded machine). Checked in a fresh
interpreter with `python -X importtime`, which lists every module the command imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mobilekd.store import write_json
from tests.conftest import REPO
from tests.test_gate import SUMMARY

HEAVY = ("torch", "sklearn")


def imported_modules(*args: str) -> tuple[int, set[str], str]:
    """Run `python -X importtime -m mobilekd ARGS`; (exit code, top-level modules imported, stdout)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "mobilekd", *args], capture_output=True,
                       text=True, env=env, cwd=REPO, timeout=120)
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in p.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return p.returncode, names, p.stdout


def assert_light(*args: str) -> str:
    rc, names, out = imported_modules(*args)
    assert rc == 0, out
    assert "mobilekd" in names  # the listing is real: the command's own package shows up
    assert not [m for m in HEAVY if m in names], f"mobilekd {' '.join(args)} imported {[m for m in HEAVY if m in names]}"
    return out


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["pipeline", "validate", "--no-models"],
                                  ["pipeline", "validate", "fashion", "--no-models"]])
def test_light_command(args):
    assert_light(*args)


def test_gate_on_a_run_dir(tmp_path: Path):
    run = tmp_path / "run"
    write_json(run / "summary.json", SUMMARY)
    (run / "pipeline.yaml").write_text(yaml.safe_dump({"name": "handmade", "gate": {"budgets": [
        {"metric": "bytes", "format": "executorch", "variant": "int8", "max": 1000000}]}}))
    assert "passed" in assert_light("gate", str(run))


def test_the_check_sees_a_heavy_import():
    """The probe can fail: `pipeline validate` with models builds them, which needs torch."""
    rc, names, out = imported_modules("pipeline", "validate")
    assert rc == 0, out
    assert "torch" in names
