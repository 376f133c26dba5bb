"""mobilekd.logs.capture: what is written to fds 1 and 2 (Python streams, C-level writes, a child
process) lands in the log; `terminal()` still reaches the real stderr; verbose also echoes it."""

from __future__ import annotations

import subprocess
import sys

TERMINAL_SCRIPT = r"""
import os, sys, warnings, logging
from mobilekd.logs import capture, terminal
term = terminal()
with capture(sys.argv[1], verbose=sys.argv[2] == "1"):
    print("python stdout")
    print("python stderr", file=sys.stderr)
    os.write(1, b"C-level fd 1\n")
    os.write(2, b"C-level fd 2\n")
    warnings.warn("a library warning")
    logging.getLogger("somelib").warning("a library log record")
    os.system("echo child process")
    term.write("mobilekd progress\n")
    term.flush()
print("after")
"""
LIBRARY = ("python stdout", "python stderr", "C-level fd 1", "C-level fd 2", "a library warning",
           "a library log record", "child process")


def run(tmp_path, verbose: bool):
    log = tmp_path / "logs" / "stage.log"
    r = subprocess.run([sys.executable, "-c", TERMINAL_SCRIPT, str(log), "1" if verbose else "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r, log.read_text()


def test_everything_written_to_fds_1_and_2_goes_to_the_log(tmp_path):
    r, log = run(tmp_path, verbose=False)
    for line in LIBRARY:
        assert line in log, line
        assert line not in r.stdout + r.stderr, line
    assert r.stderr == "mobilekd progress\n"  # terminal() bypasses the redirect
    assert r.stdout == "after\n"  # restored afterwards
    assert "mobilekd progress" not in log


def test_verbose_also_shows_it_live(tmp_path):
    r, log = run(tmp_path, verbose=True)
    for line in LIBRARY:
        assert line in log and line in r.stderr, line
