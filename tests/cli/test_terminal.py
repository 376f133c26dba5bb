"""Only mobilekd speaks on the terminal: the quickstart (tiny epochs) run fresh in a real TTY of
80x40 shows only mobilekd's progress and tables, none wider than 80 columns or cut; without a TTY
(CI) it prints one line per stage; the other libraries' output is in RUN_DIR/logs/<stage>.log."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from mobilekd.cli import STAGE_NAMES

TINY = ["--set", "teacher.epochs=1", "--set", "distill.epochs=1", "--set", "bench.min_runs=5",
        "--set", "bench.min_seconds=0.01", "--set", "bench.warmup=1", "--set", "quantize.calibration_samples=32",
        "--set", "bundle.on_gate_failure=true"]  # tiny epochs miss the accuracy budget; the bundle is still shown
# What torch, coremltools, torchao, executorch and cpuinfo print when they are let through.
NOISE = re.compile(r"coremltools|torchao|cpuinfo|site-packages|Warning|^W\d{4} |ops/s|passes/s|it/s\]|"
                   r"torchvision|_pytree|executorch\.(exir|runtime|backends)|Converting PyTorch|MIL ", re.M)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def run_in_tty(args: list[str], cols: int = 80, rows: int = 40, timeout: float = 900) -> str:
    """Run `python -m mobilekd ARGS` on a pseudo-terminal of cols x rows; everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    proc = subprocess.Popen([sys.executable, "-m", "mobilekd", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out")
    proc.wait(timeout=60)
    os.close(master)
    return out.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def tty_run(tmp_path_factory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("terminal") / "run"
    return run_dir, run_in_tty(["pipeline", "run", "--out", str(run_dir), *TINY])


def test_a_fresh_quickstart_in_a_tty_shows_only_mobilekd(tty_run):
    run_dir, raw = tty_run
    text = ANSI.sub("", raw)
    assert (run_dir / "summary.json").is_file(), text[-3000:]
    assert not NOISE.search(text), NOISE.search(text).group(0)
    # the tables at the end: none wider than the terminal, no number cut to an ellipsis
    tail = text[text.index("models · test split"):]
    tables = tail[:tail.index("\nreport ")]  # then the paths, each on its own line (a path may be long)
    assert "…" not in tables
    assert max(len(line) for line in tables.splitlines()) <= 80
    assert "bytes[executorch,int8]" in tail and "13.74 kB" in tail
    assert f"verify: mobilekd bundle verify {run_dir / 'bundle' / 'bundle.zip'}" in tail
    # what was kept from the terminal is in the logs, by stage
    assert "coremltools" in (run_dir / "logs" / "export.log").read_text()


def test_ci_mode_prints_one_line_per_stage_and_no_library_output(tty_run):
    run_dir, _ = tty_run
    # no TTY (pipes): re-run from quantize, which imports torchao, coremltools and executorch again
    r = subprocess.run([sys.executable, "-m", "mobilekd", "pipeline", "run", "--out", str(run_dir), "--from",
                        "quantize", *TINY], capture_output=True, text=True, timeout=900)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    both = r.stdout + r.stderr
    assert not NOISE.search(both), NOISE.search(both).group(0)
    assert "\x1b[" not in both  # no cursor movement or colour in a log
    ends = [line for line in r.stderr.splitlines() if re.match(r"\[ *\d+\.\d+s\] \w+: (ran|cached|off)", line)]
    assert [re.match(r"\[ *\d+\.\d+s\] (\w+):", line).group(1) for line in ends] == list(STAGE_NAMES)
    # a stage that ran says its seconds and its headline number
    assert re.search(r"quantize: ran in \d+\.\d s · accuracy 0\.\d{4}", r.stderr)
    assert re.search(r"export: ran in \d+\.\d s · 6 files", r.stderr)


def test_quiet_prints_only_the_verdict(tty_run):
    run_dir, _ = tty_run
    r = subprocess.run([sys.executable, "-m", "mobilekd", "pipeline", "run", "--out", str(run_dir), "--quiet", *TINY],
                       capture_output=True, text=True, timeout=300)
    assert r.stderr == ""
    assert r.stdout.count("\n") == 1 and r.stdout.startswith("quickstart: gate ")


def test_bundle_verify_shows_only_mobilekd(tty_run):
    """`bundle verify` re-runs the golden vectors on each runtime: their import and run chatter
    (torchao, cpuinfo, coremltools) goes to a temp log, never to the terminal or into the bundle."""
    run_dir, _ = tty_run
    r = subprocess.run([sys.executable, "-m", "mobilekd", "bundle", "verify", str(run_dir / "bundle" / "bundle.zip")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not NOISE.search(r.stdout + r.stderr), NOISE.search(r.stdout + r.stderr).group(0)
    assert "intact" in r.stdout and "mobilekd-bundle-verify.log" in r.stdout
