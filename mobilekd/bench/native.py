"""The native ExecuTorch runner: a small C++ program (native/runner.cpp) that loads a .pte with
`executorch::extension::Module`, as a phone app does, with no Python in the process.

It is built on first use with cmake + a C++ compiler against the shared libraries and headers the
executorch wheel ships (site-packages/executorch/{lib,include,share/cmake}); the wheel's
EXECUTORCH_LIBRARIES link each component with --no-as-needed, so the XNNPACK delegate's static
registrar is kept and runs. The binary is cached in ~/.cache/mobilekd/native-runner-<hash>
(MOBILEKD_CACHE overrides the root); the hash covers the sources and the executorch install.
Without a compiler, or when the build fails, `measure_native` logs why and returns None so the
caller falls back to the Python runtime, labelled as such.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from mobilekd.bench.latency import (LatencyOptions, LatencyStats, check_feeds, load_result_json,
                                    stats_from_worker, thread_env)
from mobilekd.errors import ConfigError, StageError
from mobilekd.store import atomic_path, write_bytes

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).with_name("native")
SOURCES = ("CMakeLists.txt", "runner.cpp")
BINARY = "mkd_runner"
DTYPES = {"float32", "float16", "int64", "int32", "int8", "uint8", "bool"}


class NativeRunnerUnavailable(RuntimeError):
    """The runner cannot be built or run here; `reason` says why, for the log and the notes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def executorch_root() -> Path:
    """site-packages/executorch, located without importing it (the import is slow and heavy)."""
    files = metadata.distribution("executorch").locate_file("executorch")
    return Path(str(files))


def cache_root() -> Path:
    env = os.environ.get("MOBILEKD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mobilekd"


def runner_dir() -> Path:
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((SOURCE_DIR / name).read_bytes())
    h.update(metadata.version("executorch").encode())
    h.update(str(executorch_root()).encode())
    return cache_root() / f"native-runner-{h.hexdigest()[:12]}"


def build_native_runner() -> Path:
    """Return the path of the runner binary, building it if needed. Raises NativeRunnerUnavailable."""
    target = runner_dir()
    binary = target / BINARY
    if binary.exists():
        return binary
    cmake = shutil.which("cmake")
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cmake is None or cxx is None:
        missing = " and ".join(n for n, p in (("cmake", cmake), ("a C++ compiler (c++/g++/clang++)", cxx)) if p is None)
        raise NativeRunnerUnavailable(f"native runner not built: {missing} not found on PATH")
    et_root = executorch_root()
    config = et_root / "share" / "cmake" / "executorch-config.cmake"
    if not config.exists():
        raise NativeRunnerUnavailable(f"native runner not built: the executorch wheel has no {config}")
    with atomic_path(target, suffix="") as tmp:
        tmp.mkdir(parents=True)
        build = tmp / "build"
        steps = [[cmake, "-S", str(SOURCE_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                  f"-DCMAKE_CXX_COMPILER={cxx}", f"-Dexecutorch_DIR={config.parent}"],
                 [cmake, "--build", str(build), "-j", str(max(1, min(4, os.cpu_count() or 1)))]]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise NativeRunnerUnavailable(f"native runner build failed at `{' '.join(cmd[:2])}`:\n{tail}")
        shutil.copy2(build / BINARY, tmp / BINARY)
        shutil.rmtree(build)
    log.info("built the native ExecuTorch runner at %s", binary)
    return binary


def run_native(pte_path: Path, feeds: dict[str, np.ndarray], *, threads: int,
               options: LatencyOptions) -> tuple[LatencyStats, list[np.ndarray]]:
    """Run the native runner once (its own process) and return its stats and the first
    inference's outputs. Inputs go positionally in dict order. Raises NativeRunnerUnavailable."""
    pte_path = Path(pte_path)
    if not pte_path.exists():
        raise ConfigError(f"pte_path: {str(pte_path)!r} does not exist")
    if threads < 1:
        raise ConfigError(f"threads: expected a positive integer, got {threads}")
    check_feeds(feeds)
    for name, arr in feeds.items():
        if arr.dtype.name not in DTYPES:
            raise ConfigError(f"feeds[{name!r}]: dtype {arr.dtype.name} is not one of {sorted(DTYPES)}")
    binary = build_native_runner()
    with tempfile.TemporaryDirectory(prefix="mobilekd-native-") as tmp_dir:
        tmp = Path(tmp_dir)
        cmd = [str(binary), "--model", str(pte_path.resolve()), "--threads", str(threads),
               "--warmup", str(options.warmup), "--min-runs", str(options.min_runs),
               "--min-seconds", str(options.min_seconds), "--max-seconds", str(options.max_seconds),
               "--output-dir", str(tmp)]
        for i, (name, arr) in enumerate(feeds.items()):
            raw = write_bytes(tmp / f"input_{i}.bin", np.ascontiguousarray(arr).tobytes())
            cmd += ["--input", f"{arr.dtype.name}:{','.join(map(str, arr.shape))}:{raw}"]
        timeout = 120.0 + 2.0 * options.max_seconds + options.warmup
        proc = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = proc.stderr.strip()[-2000:]
            raise StageError(f"native runner failed on {pte_path} (exit {proc.returncode}): {tail}")
        result = load_result_json(proc.stdout)
        meta = json.loads((tmp / "outputs.json").read_text())
        outputs = [np.fromfile(tmp / f"output_{i}.bin", dtype=m["dtype"]).reshape(m["shape"])
                   for i, m in enumerate(meta)]
    notes = (f"native C++ Module (executorch {metadata.version('executorch')}), "
             f"threadpool={result['threadpool_threads']}, mmap load")
    stats = stats_from_worker(result, runtime="executorch-native", threads=threads, notes=notes)
    return stats, outputs


def measure_native(pte_path: Path, feeds: dict[str, np.ndarray], *, threads: int,
                   options: LatencyOptions) -> LatencyStats | None:
    """Latency of a .pte under the native runner, or None (with the reason logged at WARNING)
    when the runner cannot be built here; callers then use measure_latency("executorch", ...)."""
    try:
        stats, _ = run_native(pte_path, feeds, threads=threads, options=options)
    except NativeRunnerUnavailable as exc:
        log.warning("%s; falling back to the ExecuTorch Python runtime", exc.reason)
        return None
    return stats
