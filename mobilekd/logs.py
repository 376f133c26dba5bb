"""Only mobilekd speaks on the terminal: what other libraries print goes to a log file.

torch, coremltools, torchao, executorch and cpuinfo write warnings, logging records, tqdm bars
and C/C++ messages. Python-level ones end on `sys.stderr`, C-level ones straight on file
descriptors 1 and 2, so `capture(log)` re-points fds 1 and 2 at the log file (Python's own
streams write to those fds too, so one redirect catches both). mobilekd's progress and tables
go to `terminal()`, a duplicate of the terminal's fd taken before any redirect.

`verbose=True` (the CLI's -v) also copies the captured bytes to the terminal, live.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

_TERMINAL: IO[str] | None = None


def terminal() -> IO[str]:
    """A text stream on the terminal's stderr that survives fd redirects (made once per process).
    Falls back to sys.stderr when it has no fd (pytest's or click's captured streams)."""
    global _TERMINAL
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return sys.stderr
    if _TERMINAL is None or _TERMINAL.closed:
        _TERMINAL = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    return _TERMINAL


def _flush() -> None:
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if s is not None:
                s.flush()
        except (ValueError, OSError):
            pass


def _pump(read_fd: int, log_fd: int, echo_fd: int) -> None:
    """Copy a pipe to the log and the terminal until the write end closes (verbose mode)."""
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        os.write(log_fd, chunk)
        os.write(echo_fd, chunk)
    os.close(read_fd)


@contextmanager
def capture(log: Path | str, *, verbose: bool = False) -> Iterator[Path]:
    """Send fds 1 and 2 (and so every Python and C write to stdout/stderr) to `log`, appending.
    Nested captures stack: the inner log gets the writes until it exits."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    _flush()
    saved = (os.dup(1), os.dup(2))
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    pump: threading.Thread | None = None
    target = log_fd
    if verbose:
        read_fd, target = os.pipe()
        pump = threading.Thread(target=_pump, args=(read_fd, log_fd, saved[1]), daemon=True)
        pump.start()
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield log
    finally:
        _flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        if pump is not None:
            os.close(target)  # the last write end: the pump sees EOF
            pump.join(timeout=10)
        os.close(log_fd)
        os.close(saved[0])
        os.close(saved[1])


def stage_log(run_dir: Path, stage: str) -> Path:
    """RUN_DIR/logs/<stage>.log: where a stage's library output goes."""
    return Path(run_dir) / "logs" / f"{stage}.log"
