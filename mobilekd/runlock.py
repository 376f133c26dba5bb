"""One run per directory: an advisory lock on RUN_DIR/.lock holding the owner's process id.

The lock is an `flock` on the open file, so the kernel drops it when the holder dies however it
dies (SIGKILL included): a stale .lock file left by a killed run is simply taken over. A second
live run into the same directory is refused with the holder's pid.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mobilekd.errors import LockError

LOCK_FILE = ".lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold RUN_DIR/.lock for the block; LockError (exit 2) naming the holder if another run has it."""
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "an unknown process"
            raise LockError(f"{run_dir}: another run is using this directory (held by {holder}); wait for it to "
                            f"finish, or pass --out to run elsewhere") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
