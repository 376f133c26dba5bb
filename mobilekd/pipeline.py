"""The road: the stages in order, their cache keys, the run loop and the run directory.

A stage's cache key hashes its config, the keys and output digests of every stage before it, and
the mobilekd version. An unchanged key whose outputs are intact on disk is reused; a changed key
re-runs that stage and, since later keys include it, everything after it, never anything before.
stage.json is written last and atomically, so a stage killed midway is simply run again.
"""

from __future__ import annotations

import importlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from mobilekd import __version__
from mobilekd.config import PipelineConfig
from mobilekd.context import RunContext
from mobilekd.data.download import named_data_dir
from mobilekd.errors import ConfigError
from mobilekd.gate import GateReport
from mobilekd.logs import capture, stage_log
from mobilekd.progress import Reporter, headline
from mobilekd.store import read_json, sha256_file, sha256_json, sweep_temp, write_json, write_text


@dataclass(frozen=True)
class Stage:
    """One stage by name: its module (`mobilekd.stages.<module>`) holds `run` and the result type.
    Imported on first use, so that reading the stage list (the CLI's --from, validation) costs no
    torch import."""

    module: str
    result_name: str

    def _module(self) -> Any:
        return importlib.import_module(self.module)

    @property
    def run(self) -> Callable[[Any, RunContext], BaseModel]:
        return self._module().run

    @property
    def result(self) -> type[BaseModel]:
        return getattr(self._module(), self.result_name)


# The one list of stages, in order; the CLI, DDP (ALL_RANKS) and the tests derive theirs from it.
STAGES: dict[str, Stage] = {
    "data": Stage("mobilekd.stages.data", "DataResult"),
    "teacher": Stage("mobilekd.stages.teacher", "TeacherResult"),
    "distill": Stage("mobilekd.stages.distill", "DistillResult"),
    "prune": Stage("mobilekd.stages.prune", "PruneResult"),
    "quantize": Stage("mobilekd.stages.quantize", "QuantizeResult"),
    "export": Stage("mobilekd.stages.export", "ExportResult"),
    "verify": Stage("mobilekd.stages.verify", "VerifyResult"),
    "bench": Stage("mobilekd.stages.bench", "BenchResult"),
    "gate": Stage("mobilekd.stages.gate", "GateReport"),
    "bundle": Stage("mobilekd.stages.bundle", "BundleResult"),
}

STAGE_FILE = "stage.json"


@dataclass
class RunOutcome:
    run_dir: Path
    summary: dict[str, Any]
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def gate_passed(self) -> bool:
        g = self.summary.get("gate")
        return g is None or bool(g.get("passed"))


def default_run_dir(cfg: PipelineConfig) -> Path:
    return Path("runs") / cfg.name


def output_digests(stage_dir: Path) -> dict[str, str]:
    """sha256 of each file (or .mlpackage folder) a stage wrote, stage.json excluded."""
    out: dict[str, str] = {}
    if not stage_dir.is_dir():
        return out
    for p in sorted(stage_dir.iterdir()):
        if p.name == STAGE_FILE or p.name.startswith("."):
            continue
        if p.is_dir() and p.suffix != ".mlpackage":
            for f, d in output_digests(p).items():
                out[f"{p.name}/{f}"] = d
        else:
            out[p.name] = sha256_file(p)
    return out


# The config fields of each stage that bring in code by import path (module.path:function).
IMPORT_FIELDS: dict[str, tuple[str, ...]] = {"data": ("dataset",), "teacher": ("model",), "distill": ("student",)}
# Stages whose reads of files outside the run directory are fingerprinted (dataset files, checkpoints).
READS_TRACKED = ("data", "teacher")


def stage_code(name: str, cfg: BaseModel | None) -> dict[str, Any]:
    """Fingerprints of the user code behind this stage's import paths (mobilekd.fingerprint)."""
    from mobilekd.fingerprint import code_sources

    if cfg is None:
        return {}
    specs = [getattr(cfg, f) for f in IMPORT_FIELDS.get(name, ()) if ":" in str(getattr(cfg, f, ""))]
    return code_sources(specs)


def stage_key(name: str, cfg: BaseModel | None, upstream: list[dict[str, Any]],
              code: dict[str, Any] | None = None) -> str:
    """Config, user code, mobilekd version and every upstream key and output digest."""
    doc = {"stage": name, "config": None if cfg is None else cfg.model_dump(mode="json"),
           "version": __version__, "upstream": upstream}
    code = stage_code(name, cfg) if code is None else code
    if code:
        doc["code"] = code
    return sha256_json(doc)


def _cached(stage_dir: Path, key: str, stage: Stage) -> tuple[BaseModel, dict[str, Any]] | None:
    """The stored result, if its key matches and every output file is still intact."""
    f = stage_dir / STAGE_FILE
    if not f.is_file():
        return None
    try:
        record = read_json(f)
    except ValueError:
        return None
    if record.get("status") != "ok" or record.get("key") != key:
        return None
    if output_digests(stage_dir) != record.get("outputs"):
        return None
    from mobilekd.fingerprint import changed_data_files

    if changed_data_files(record.get("data_files") or {}):
        return None
    try:
        return stage.result.model_validate(record["result"]), record
    except ValidationError:
        return None


# Under torchrun, these stages train on every process; all others run on rank 0 alone.
ALL_RANKS = ("teacher", "distill")


def run_pipeline(cfg: PipelineConfig, *, run_dir: Path | None = None, data_dir: Path | str | None = None,
                 force: bool = False, from_stage: str | None = None, reporter: Reporter | None = None,
                 pipeline_file: Path | str | None = None) -> RunOutcome:
    """Validate, then run every stage in order, reusing cached ones; write summary.json and report.html.

    One run per directory (RUN_DIR/.lock). summary.json says "running" from the start (the previous
    summary, report and bundle move to RUN_DIR/.previous/), then passed, failed or error. An error
    is tagged with its stage and its traceback written to RUN_DIR/logs/error.log.

    Under `torchrun`, every process joins the training stages (DDP); only rank 0 writes files,
    and after the last training stage the other processes leave (their outcome has an empty
    summary) while rank 0 carries on alone.
    """
    from mobilekd.distill import ddp
    from mobilekd.runlock import run_lock
    from mobilekd.validate import check_config

    if from_stage is not None and from_stage not in STAGES:
        raise ConfigError(f"--from: unknown stage {from_stage!r}; expected one of {', '.join(STAGES)}")
    check_config(cfg)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    data = named_data_dir(data_dir)  # None: each loader falls back to the default cache folder
    from mobilekd.runinfo import RunClock

    clock = RunClock(cfg.seed, pipeline_file)  # summary.json's "run": started, host, versions, git
    distributed = ddp.setup()
    if not ddp.is_main():
        return _run_stages(cfg, run_dir, data, force, from_stage, reporter, distributed, progress={}, clock=clock)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        progress: dict[str, Any] = {}
        _begin(run_dir, cfg)
        try:
            return _run_stages(cfg, run_dir, data, force, from_stage, reporter, distributed, progress, clock)
        except BaseException as e:
            _fail(run_dir, cfg, e, progress)
            raise


def _begin(run_dir: Path, cfg: PipelineConfig) -> None:
    """Never leave an old verdict next to a new run: move the previous summary, report and bundle
    aside and say "running" until this run ends."""
    previous = run_dir / ".previous"
    for name in ("summary.json", "report.html", "bundle"):
        p = run_dir / name
        if p.exists():
            previous.mkdir(exist_ok=True)
            target = previous / name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(p, target)
    write_json(run_dir / "summary.json", {"pipeline": cfg.name, "mobilekd_version": __version__, "status": "running"})


def _restore_bundle(run_dir: Path) -> None:
    """Bring the previous bundle back for the cache check (it is only reused if its key matches)."""
    old, here = run_dir / ".previous" / "bundle", run_dir / "bundle"
    if old.is_dir() and not here.exists():
        os.replace(old, here)


def _fail(run_dir: Path, cfg: PipelineConfig, e: BaseException, progress: dict[str, Any]) -> None:
    """Tag the error with its stage, write logs/error.log and a summary whose status is "error"."""
    from mobilekd.commands import write_error_log

    stage = progress.get("stage")
    if stage is not None and getattr(e, "mobilekd_stage", None) is None:
        try:
            e.mobilekd_stage = stage  # type: ignore[attr-defined]
        except AttributeError:
            pass
    if isinstance(e, Exception):
        log = write_error_log(e, run_dir / "logs" / "error.log")
        try:
            e.mobilekd_log = log  # type: ignore[attr-defined]
        except AttributeError:
            pass
    status = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
    write_json(run_dir / "summary.json", {
        "pipeline": cfg.name, "mobilekd_version": __version__, "status": status,
        "stages": progress.get("statuses", {}),
        "error": {"stage": stage, "type": type(e).__name__, "message": str(e)[:2000],
                  "log": "logs/error.log"}})


def run_status(summary: dict[str, Any]) -> str:
    """passed, or failed when a gate check or an executed parity check failed."""
    gate_failed = summary.get("gate") is not None and not summary["gate"].get("passed")
    parity_failed = any((a.get("parity") or {}).get("status") == "failed" for a in summary.get("artifacts") or [])
    return "failed" if gate_failed or parity_failed else "passed"


def _run_stages(cfg: PipelineConfig, run_dir: Path, data_dir: Path | None, force: bool, from_stage: str | None,
                reporter: Reporter | None, distributed: bool, progress: dict[str, Any], clock: Any) -> RunOutcome:
    """The stage loop: each stage off, reused from its cache or run; then summary.json and the report."""
    from mobilekd.distill import ddp

    main = ddp.is_main()
    ctx = _context(cfg, run_dir, data_dir, reporter, clock, main)
    statuses: dict[str, dict[str, Any]] = {}
    progress["statuses"] = statuses
    upstream: list[dict[str, Any]] = []
    forced = force
    last_shared = max(i for i, n in enumerate(STAGES) if n in ALL_RANKS)
    with ctx.reporter.task("stages", total=len(STAGES)) as advance:
        for index, (name, stage) in enumerate(STAGES.items()):
            progress["stage"] = name
            if distributed and index > last_shared:  # the training stages are over: rank 0 goes on alone
                ddp.cleanup()
                distributed = False
                if not main:
                    return RunOutcome(run_dir=run_dir, summary={}, statuses=statuses)
            forced = forced or name == from_stage
            stage_cfg = getattr(cfg, name)
            code = stage_code(name, stage_cfg)
            key = stage_key(name, stage_cfg, upstream, code)
            skip_bundle = _bundle_skipped(name, stage_cfg, ctx)
            if name == "bundle" and main and not skip_bundle:
                _restore_bundle(run_dir)
            if stage_cfg is None or skip_bundle:
                statuses[name] = _not_run(run_dir / name, name, key, skip_bundle, main)
                upstream.append({"stage": name, "key": key, "outputs": None})
                ctx.reporter.stage_finished(name, statuses[name]["status"], None)
                advance(1, info=f"{name}: {statuses[name]['status']}")
                continue
            result, record, status = _run_or_reuse(name, stage, stage_cfg, ctx, key, upstream, forced, code,
                                                   distributed)
            statuses[name] = _status_entry(status, record)
            ctx.results[name] = result
            ctx.reporter.stage_finished(name, status, record.get("seconds"), headline(name, result))
            upstream.append({"stage": name, "key": key, "outputs": record["outputs"]})
            advance(1, info=f"{name}: {status}")
            if name == "data":
                progress["stage"] = "validate"
                from mobilekd.validate import check_models

                check_models(cfg, ctx.dataset())  # before any training: models, layers, checkpoint
    progress["stage"] = None
    return _finish(cfg, ctx, statuses, clock)


def _context(cfg: PipelineConfig, run_dir: Path, data_dir: Path | None, reporter: Reporter | None, clock: Any,
             main: bool) -> RunContext:
    """The run's context; rank 0 also sweeps a killed run's leftovers and writes the resolved YAML."""
    from mobilekd.pipeline_file import resolved_yaml

    ctx = RunContext(config=cfg, run_dir=run_dir, data_dir=data_dir, reporter=reporter or Reporter(quiet=True))
    ctx.run_info = clock.metadata()
    if main:
        sweep_temp(run_dir)  # leftovers of a run killed midway (stage folders are cleared anyway)
        write_text(run_dir / "pipeline.yaml", resolved_yaml(cfg))
    return ctx


def _bundle_skipped(name: str, stage_cfg: BaseModel | None, ctx: RunContext) -> bool:
    """The bundle stage is on but the gate failed and bundle.on_gate_failure is false."""
    gate_report = ctx.results.get("gate")
    return (name == "bundle" and stage_cfg is not None and gate_report is not None
            and not gate_report.passed and not stage_cfg.on_gate_failure)


def _not_run(stage_dir: Path, name: str, key: str, skip_bundle: bool, main: bool) -> dict[str, Any]:
    """Record a stage that is off (or a bundle skipped after a failed gate); its status entry."""
    if main:
        _switch_off(stage_dir, name, key)
    if skip_bundle:
        return {"status": "skipped", "seconds": 0.0,
                "reason": "the gate failed (set bundle.on_gate_failure: true to bundle anyway)"}
    return {"status": "off", "seconds": 0.0}


def _run_or_reuse(name: str, stage: Stage, stage_cfg: BaseModel, ctx: RunContext, key: str,
                  upstream: list[dict[str, Any]], forced: bool, code: dict[str, Any],
                  distributed: bool) -> tuple[BaseModel, dict[str, Any], str]:
    """The stage's cached result when its key matches (every process agreeing under DDP), else a run."""
    from mobilekd.distill import ddp

    stage_dir = ctx.run_dir / name
    if distributed and name not in ALL_RANKS:
        return _on_main_only(name, stage, stage_cfg, ctx, stage_dir, key, upstream, forced, code)
    hit = None if forced else _cached(stage_dir, key, stage)
    if distributed and not all(ddp.gather_objects(hit is not None)):
        hit = None  # every process must agree before rank 0 clears the folder
    if hit is not None:
        return hit[0], hit[1], "cached"
    result, record = _execute(name, stage, stage_cfg, ctx, stage_dir, key, upstream, code=code)
    return result, record, "ran"


def _status_entry(status: str, record: dict[str, Any]) -> dict[str, Any]:
    if status == "cached":
        return {"status": "cached", "seconds": 0.0, "ran_seconds": record.get("seconds")}
    return {"status": "ran", "seconds": record["seconds"]}


def _finish(cfg: PipelineConfig, ctx: RunContext, statuses: dict[str, dict[str, Any]], clock: Any) -> RunOutcome:
    """summary.json (status first) and report.html from the stages' results."""
    from mobilekd.report import write_report
    from mobilekd.summary import build_summary

    summary = build_summary(cfg.name, ctx.results, statuses, run=clock.metadata(finished=True))
    summary = {"pipeline": summary.pop("pipeline"), "mobilekd_version": summary.pop("mobilekd_version"),
               "status": run_status(summary), **summary}
    write_json(ctx.run_dir / "summary.json", summary)
    write_report(ctx.run_dir / "report.html", summary, ctx)
    return RunOutcome(run_dir=ctx.run_dir, summary=summary, statuses=statuses)


def _on_main_only(name: str, stage: Stage, stage_cfg: BaseModel, ctx: RunContext, stage_dir: Path, key: str,
                  upstream: list[dict[str, Any]], forced: bool,
                  code: dict[str, Any]) -> tuple[BaseModel, dict[str, Any], str]:
    """A stage that rank 0 runs (or reuses) while the others wait, then read its stage.json."""
    from mobilekd.distill import ddp

    status = "cached"
    if ddp.is_main():
        hit = None if forced else _cached(stage_dir, key, stage)
        if hit is None:
            _execute(name, stage, stage_cfg, ctx, stage_dir, key, upstream, shared=False, code=code)
            status = "ran"
    status = ddp.gather_objects(status)[0]
    record = read_json(stage_dir / STAGE_FILE)
    return stage.result.model_validate(record["result"]), record, status


def _execute(name: str, stage: Stage, stage_cfg: BaseModel, ctx: RunContext, stage_dir: Path, key: str,
             upstream: list[dict[str, Any]], *, shared: bool = True,
             code: dict[str, Any] | None = None) -> tuple[BaseModel, dict[str, Any]]:
    """Run one stage in a clean folder; stage.json is written last, by rank 0 only. `shared`: every
    process runs this stage (DDP training), so they meet at barriers around it."""
    from mobilekd.distill import ddp

    barrier = ddp.barrier if shared else (lambda: None)

    if ddp.is_main():
        # Forget the old record first: if we are killed below, nothing stale is trusted next time.
        (stage_dir / STAGE_FILE).unlink(missing_ok=True)
        if stage_dir.exists():
            shutil.rmtree(stage_dir)
        stage_dir.mkdir(parents=True)
    barrier()
    from mobilekd.fingerprint import data_files, recording_reads

    ctx.reporter.stage_started(name)
    t0 = time.perf_counter()
    with recording_reads() as reads, capture(stage_log(ctx.run_dir, name), verbose=ctx.reporter.verbose):
        result = stage.run(stage_cfg, ctx)
    seconds = round(time.perf_counter() - t0, 3)
    barrier()
    if ddp.is_main():
        record = {"stage": name, "status": "ok", "mobilekd_version": __version__, "key": key,
                  "config": stage_cfg.model_dump(mode="json"), "code": code or {},
                  "data_files": data_files(reads, [ctx.run_dir]) if name in READS_TRACKED else {},
                  "inputs": {u["stage"]: sha256_json(u["outputs"]) for u in upstream if u["outputs"] is not None},
                  "outputs": output_digests(stage_dir), "seconds": seconds, "result": result.model_dump(mode="json")}
        write_json(stage_dir / STAGE_FILE, record)
    barrier()
    if not ddp.is_main():
        record = read_json(stage_dir / STAGE_FILE)
    return result, record


def _switch_off(stage_dir: Path, name: str, key: str) -> None:
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    write_json(stage_dir / STAGE_FILE, {"stage": name, "status": "off", "key": key, "mobilekd_version": __version__})


def plan(cfg: PipelineConfig, run_dir: Path | None = None) -> list[dict[str, Any]]:
    """What `pipeline show` prints: per stage, on/off, whether the stored result would be reused,
    and if not, why ("distill: source of userpkg/nets.py changed")."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    rows: list[dict[str, Any]] = []
    upstream: list[dict[str, Any]] = []
    stale: str | None = None
    for name, stage in STAGES.items():
        stage_cfg = getattr(cfg, name)
        code = stage_code(name, stage_cfg)
        key = stage_key(name, stage_cfg, upstream, code)
        if stage_cfg is None:
            rows.append({"stage": name, "state": "off", "key": key[:12], "why": ""})
            upstream.append({"stage": name, "key": key, "outputs": None})
            continue
        hit = None if stale else _cached(run_dir / name, key, stage)
        if hit is None:
            why = f"{stale} will re-run first" if stale else why_rerun(run_dir / name, stage_cfg, code)
            stale = stale or name
            rows.append({"stage": name, "state": "will run", "key": key[:12], "why": why})
            upstream.append({"stage": name, "key": key, "outputs": None})
        else:
            rows.append({"stage": name, "state": "cached", "key": key[:12], "why": ""})
            upstream.append({"stage": name, "key": key, "outputs": hit[1]["outputs"]})
    return rows


def why_rerun(stage_dir: Path, cfg: BaseModel, code: dict[str, Any]) -> str:
    """Why a stage's stored result cannot be reused, for a person."""
    from mobilekd.fingerprint import changed_data_files, describe_code_change

    f = stage_dir / STAGE_FILE
    if not f.is_file():
        return "never ran in this directory"
    try:
        record = read_json(f)
    except ValueError:
        return "its stage.json is unreadable"
    if record.get("status") != "ok":
        return "it did not finish last time" if record.get("status") != "off" else "it was off last time"
    if record.get("mobilekd_version") != __version__:
        return f"mobilekd version changed ({record.get('mobilekd_version')} -> {__version__})"
    old = record.get("config") or {}
    new = cfg.model_dump(mode="json")
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        return "config changed: " + ", ".join(changed)
    reasons = describe_code_change(record.get("code") or {}, code)
    if reasons:
        return "; ".join(reasons)
    files = changed_data_files(record.get("data_files") or {})
    if files:
        return "data file changed: " + ", ".join(Path(p).name for p in files[:3])
    if output_digests(stage_dir) != record.get("outputs"):
        return "its output files were changed or removed"
    return "an earlier stage's outputs changed"
