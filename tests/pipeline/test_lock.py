"""One run per directory: a second `pipeline run` into a directory a live run holds is refused with
exit 2 and the holder's pid; a stale lock (its process gone) is taken over."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from mobilekd.cli import app
from mobilekd.runlock import LOCK_FILE, run_lock
from tests.conftest import stop_after, tiny_pipeline

runner = CliRunner()


def test_second_run_is_refused_with_the_holders_pid(write_yaml, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    # A live holder in another process: it takes the lock and waits for us to close its stdin.
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; "
                               "from mobilekd.runlock import run_lock\n"
                               f"with run_lock(Path({str(run_dir)!r})):\n"
                               "    print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        r = runner.invoke(app, ["pipeline", "run", str(write_yaml(stop_after(tiny_pipeline(), "teacher"))),
                                "--out", str(run_dir), "--quiet"])
        assert r.exit_code == 2, r.output
        assert f"held by pid {holder.pid}" in r.output and "another run is using this directory" in r.output
        assert "Traceback" not in r.output
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0


def test_stale_lock_is_taken_over(write_yaml, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / LOCK_FILE).write_text("pid 999999 on a-machine-that-was-killed\n")  # no process holds it
    r = runner.invoke(app, ["pipeline", "run", str(write_yaml(stop_after(tiny_pipeline(), "teacher"))),
                            "--out", str(run_dir), "--quiet"])
    assert r.exit_code == 0, r.output
    assert (run_dir / LOCK_FILE).read_text() == ""  # released at the end


def test_lock_is_released_after_an_error(tmp_path):
    try:
        with run_lock(tmp_path):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with run_lock(tmp_path):  # would raise LockError if the first were still held
        assert f"pid {os.getpid()}" in (tmp_path / LOCK_FILE).read_text()
