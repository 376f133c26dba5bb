"""Run metadata: what ran, where, with which versions, so two runs can be told apart and a number
can be traced back (summary.json's "run", the report's header, the bundle manifest's "run").

Read from package metadata, /proc and `git`, never by importing the heavy libraries."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PACKAGES = ("mobilekd", "torch", "executorch", "onnxruntime", "coremltools")


def versions() -> dict[str, str | None]:
    from mobilekd.bundle.manifest import package_version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        out[name] = package_version(name)
    if out["mobilekd"] is None:
        from mobilekd import __version__

        out["mobilekd"] = __version__
    return out


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo, else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host() -> dict[str, Any]:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"os": f"{platform.system()} {platform.release()}", "machine": platform.machine(), "cpu": cpu_model(),
            "cores": cores, "threads": torch.get_num_threads()}


def git_state(path: Path | None) -> dict[str, Any] | None:
    """Commit and dirty flag of the repository holding `path` (the pipeline file), None outside one."""
    if path is None:
        return None
    folder = Path(path).resolve().parent

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty)}


def command_line() -> str:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("mobilekd", "__main__.py"):
        argv[0] = "mobilekd"
    return shlex.join(argv)


class RunClock:
    """Started when the run starts; `metadata()` gives the "run" section at any point after."""

    def __init__(self, seed: int, pipeline_file: Path | str | None = None):
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._t0 = time.perf_counter()
        self.seed = seed
        self.pipeline_file = None if pipeline_file is None else str(pipeline_file)
        self._static: dict[str, Any] | None = None

    def metadata(self, *, finished: bool = False) -> dict[str, Any]:
        if self._static is None:
            self._static = {"command": command_line(), "seed": self.seed, "host": host(), "versions": versions(),
                            "pipeline_file": self.pipeline_file,
                            "git": git_state(Path(self.pipeline_file)) if self.pipeline_file else None}
        out = {"started": self.started, **self._static}
        if finished:
            out["seconds"] = round(time.perf_counter() - self._t0, 2)
        return out
