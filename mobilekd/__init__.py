"""mobilekd: turn a big model into one that runs well on a phone, and prove it fits.

Public API: `load_pipeline` (YAML -> validated PipelineConfig) and `run_pipeline` (config -> run
directory, summary.json, report.html). Imported lazily so `import mobilekd` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_pipeline", "run_pipeline", "PipelineConfig", "RunOutcome", "MobileKDError"]

if TYPE_CHECKING:  # pragma: no cover
    from mobilekd.config import PipelineConfig
    from mobilekd.errors import MobileKDError
    from mobilekd.pipeline import RunOutcome
    from mobilekd.progress import Reporter


def load_pipeline(path: Any = None, overrides: Any = ()) -> "PipelineConfig":
    """Read and validate a pipeline file (None: the built-in quickstart); `overrides` like --set."""
    from mobilekd.pipeline_file import load_pipeline as _load

    return _load(path, list(overrides))


def run_pipeline(config: "PipelineConfig", *, run_dir: Path | str | None = None, data_dir: Path | str | None = None,
                 force: bool = False, from_stage: str | None = None, reporter: "Reporter | None" = None,
                 pipeline_file: Path | str | None = None) -> "RunOutcome":
    """Run a validated pipeline into `run_dir` (default runs/<name>): every stage in order, cached
    ones reused unless `force`, or re-run from `from_stage` on; datasets from `data_dir` (else
    $MOBILEKD_DATA_DIR, else ~/.cache/mobilekd/datasets); `reporter` prints progress (quiet when
    None); `pipeline_file` is recorded in summary.json's run section."""
    from mobilekd.pipeline import run_pipeline as _run

    return _run(config, run_dir=Path(run_dir) if run_dir is not None else None, data_dir=data_dir, force=force,
                from_stage=from_stage, reporter=reporter, pipeline_file=pipeline_file)


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
