"""examples/own_model runs as its README says: the commands of its ```sh block, from its folder,
with the user's package importable through PYTHONPATH=. (and the run directory in a temp folder)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "own_model"


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (EXAMPLE / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_commands_run_the_users_own_model_and_data(tmp_path):
    commands = readme_commands()
    assert commands[1] == "PYTHONPATH=. mobilekd pipeline run pipeline.yaml"
    out = tmp_path / "runs" / "own_model"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # mobilekd itself; the commands add the example's folder
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    for cmd in commands:
        cmd = cmd.replace("PYTHONPATH=.", f"PYTHONPATH=.{os.pathsep}{REPO}")
        cmd = cmd.replace("runs/own_model", str(out))
        if " pipeline run " in cmd:
            cmd += f" --out {out}"
        r = subprocess.run(cmd, shell=True, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["dataset"] == "wine" and summary["data"]["sizes"] == {"train": 106, "val": 36, "test": 36}
    assert summary["models"]["student"]["params"] == 211  # 13*8+8 + 8*8+8 + 8*3+3
    assert summary["models"]["teacher"]["params"] == 18691  # 13*128+128 + 128*128+128 + 128*3+3
    assert {(a["format"], a["variant"]) for a in summary["artifacts"]} == {
        ("onnx", "fp32"), ("onnx", "int8"), ("executorch", "fp32"), ("executorch", "int8")}
    assert summary["gate"]["passed"]
    assert summary["run"]["pipeline_file"].endswith("pipeline.yaml")
