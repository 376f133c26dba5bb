"""mobilekd: turn a big model into one that runs well on a phone, and prove it fits.

Public API: `load_pipeline` (YAML -> validated PipelineConfig) and `run_pipeline` (config -> run
directory, summary.json, report.html). Imported lazily so `import mobilekd` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_pipeline", "run_pipeline", "PipelineConfig", "RunOutcome", "MobileKDError"]

if TYPE_CHECKING:  # pragma: no cover
    from mobilekd.config import PipelineConfig
    from mobilekd.errors import MobileKDError
    from mobilekd.pipeline import RunOutcome


def load_pipeline(path: Any = None, overrides: Any = ()) -> "PipelineConfig":
    """Read and validate a pipeline file (None: the built-in quickstart); `overrides` like --set."""
    from mobilekd.pipeline_file import load_pipeline as _load

    return _load(path, list(overrides))


def run_pipeline(config: "PipelineConfig", **kwargs: Any) -> "RunOutcome":
    """Run a validated pipeline; keyword arguments as `mobilekd.pipeline.run_pipeline`."""
    from mobilekd.pipeline import run_pipeline as _run

    return _run(config, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "PipelineConfig":
        from mobilekd.config import PipelineConfig

        return PipelineConfig
    if name == "RunOutcome":
        from mobilekd.pipeline import RunOutcome

        return RunOutcome
    if name == "MobileKDError":
        from mobilekd.errors import MobileKDError

        return MobileKDError
    raise AttributeError(name)
