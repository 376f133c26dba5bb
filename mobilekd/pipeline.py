"""The road: the stages in order, their cache keys, the run loop and the run directory.

A stage's cache key hashes its config, the keys and output digests of every stage before it, and
the mobilekd version. An unchanged key whose outputs are intact on disk is reused; a changed key
re-runs that stage and, since later keys include it, everything after it, never anything before.
stage.json is written last and atomically, so a stage killed midway is simply run again.
"""

from __future__ import annotations

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
from mobilekd.errors import ConfigError, DataError
from mobilekd.gate import GateReport
from mobilekd.logs import capture, stage_log
from mobilekd.progress import Reporter, headline
from mobilekd.stages import bench, bundle, data, distill, export, gate, prune, quantize, teacher, verify
from mobilekd.store import read_json, sha256_file, sha256_json, sweep_temp, write_json, write_text


@dataclass(frozen=True)
class Stage:
    run: Callable[[Any, RunContext], BaseModel]
    result: type[BaseModel]


STAGES: dict[str, Stage] = {
    "data": Stage(data.run, data.DataResult),
    "teacher": Stage(teacher.run, teacher.TeacherResult),
    "distill": Stage(distill.run, distill.DistillResult),
    "prune": Stage(prune.run, prune.PruneResult),
    "quantize": Stage(quantize.run, quantize.QuantizeResult),
    "export": Stage(export.run, export.ExportResult),
    "verify": Stage(verify.run, verify.VerifyResult),
    "bench": Stage(bench.run, bench.BenchResult),
    "gate": Stage(gate.run, GateReport),
    "bundle": Stage(bundle.run, bundle.BundleResult),
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


def resolve_data_dir(data_dir: Path | str | None) -> Path | None:
    """--data-dir, else $MOBILEKD_DATA_DIR; a named directory that does not exist is an error."""
    chosen = data_dir if data_dir is not None else os.environ.get("MOBILEKD_DATA_DIR")
    if chosen is None or chosen == "":
        return None
    p = Path(chosen).expanduser()
    if not p.is_dir():
        source = "--data-dir" if data_dir is not None else "MOBILEKD_DATA_DIR"
        raise DataError(f"{source}: data directory {str(p)!r} does not exist (expected a folder holding the datasets)")
    return p


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


def stage_key(name: str, cfg: BaseModel | None, upstream: list[dict[str, Any]]) -> str:
    return sha256_json({"stage": name, "config": None if cfg is None else cfg.model_dump(mode="json"),
                        "version": __version__, "upstream": upstream})


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
    try:
        return stage.result.model_validate(record["result"]), record
    except ValidationError:
        return None


# Under torchrun, these stages train on every process; all others run on rank 0 alone.
ALL_RANKS = ("teacher", "distill")


def run_pipeline(cfg: PipelineConfig, *, run_dir: Path | None = None, data_dir: Path | str | None = None,
                 force: bool = False, from_stage: str | None = None, reporter: Reporter | None = None,
                 pipeline_file: Path | str | None = None) -> RunOutcome:
    """Run every stage in order, reusing cached ones; write summary.json and report.html.

    Under `torchrun`, every process joins the training stages (DDP); only rank 0 writes files,
    and after the last training stage the other processes leave (their outcome has an empty
    summary) while rank 0 carries on alone.
    """
    from mobilekd.distill import ddp

    if from_stage is not None and from_stage not in STAGES:
        raise ConfigError(f"--from: unknown stage {from_stage!r}; expected one of {', '.join(STAGES)}")
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    from mobilekd.runinfo import RunClock

    clock = RunClock(cfg.seed, pipeline_file)  # summary.json's "run": started, host, versions, git
    distributed = ddp.setup()
    main = ddp.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(config=cfg, run_dir=run_dir, data_dir=resolve_data_dir(data_dir), reporter=reporter or Reporter(quiet=True))
    ctx.run_info = clock.metadata()
    from mobilekd.pipeline_file import resolved_yaml

    if main:
        sweep_temp(run_dir)  # leftovers of a run killed midway (stage folders are cleared anyway)
        write_text(run_dir / "pipeline.yaml", resolved_yaml(cfg))
    statuses: dict[str, dict[str, Any]] = {}
    upstream: list[dict[str, Any]] = []
    forced = force
    last_shared = max(i for i, n in enumerate(STAGES) if n in ALL_RANKS)
    with ctx.reporter.task("stages", total=len(STAGES)) as advance:
        for index, (name, stage) in enumerate(STAGES.items()):
            if distributed and index > last_shared:
                ddp.cleanup()
                distributed = False
                if not main:
                    return RunOutcome(run_dir=run_dir, summary={}, statuses=statuses)
            forced = forced or name == from_stage
            stage_cfg = getattr(cfg, name)
            stage_dir = run_dir / name
            key = stage_key(name, stage_cfg, upstream)
            if stage_cfg is None:
                if main:
                    _switch_off(stage_dir, name, key)
                statuses[name] = {"status": "off", "seconds": 0.0}
                upstream.append({"stage": name, "key": key, "outputs": None})
                ctx.reporter.stage_finished(name, "off", None)
                advance(1, info=f"{name}: off")
                continue
            if distributed and name not in ALL_RANKS:
                result, record, status = _on_main_only(name, stage, stage_cfg, ctx, stage_dir, key, upstream, forced)
            else:
                hit = None if forced else _cached(stage_dir, key, stage)
                if distributed and not all(ddp.gather_objects(hit is not None)):
                    hit = None  # every process must agree before rank 0 clears the folder
                if hit is not None:
                    (result, record), status = hit, "cached"
                else:
                    (result, record), status = _execute(name, stage, stage_cfg, ctx, stage_dir, key, upstream), "ran"
            statuses[name] = ({"status": "cached", "seconds": 0.0, "ran_seconds": record.get("seconds")}
                              if status == "cached" else {"status": "ran", "seconds": record["seconds"]})
            ctx.results[name] = result
            ctx.reporter.stage_finished(name, status, record.get("seconds"), headline(name, result))
            upstream.append({"stage": name, "key": key, "outputs": record["outputs"]})
            advance(1, info=f"{name}: {status}")
    from mobilekd.report import write_report
    from mobilekd.summary import build_summary

    summary = build_summary(cfg.name, ctx.results, statuses, run=clock.metadata(finished=True))
    write_json(run_dir / "summary.json", summary)
    write_report(run_dir / "report.html", summary, ctx)
    return RunOutcome(run_dir=run_dir, summary=summary, statuses=statuses)


def _on_main_only(name: str, stage: Stage, stage_cfg: BaseModel, ctx: RunContext, stage_dir: Path, key: str,
                  upstream: list[dict[str, Any]], forced: bool) -> tuple[BaseModel, dict[str, Any], str]:
    """A stage that rank 0 runs (or reuses) while the others wait, then read its stage.json."""
    from mobilekd.distill import ddp

    status = "cached"
    if ddp.is_main():
        hit = None if forced else _cached(stage_dir, key, stage)
        if hit is None:
            _execute(name, stage, stage_cfg, ctx, stage_dir, key, upstream, shared=False)
            status = "ran"
    status = ddp.gather_objects(status)[0]
    record = read_json(stage_dir / STAGE_FILE)
    return stage.result.model_validate(record["result"]), record, status


def _execute(name: str, stage: Stage, stage_cfg: BaseModel, ctx: RunContext, stage_dir: Path, key: str,
             upstream: list[dict[str, Any]], *, shared: bool = True) -> tuple[BaseModel, dict[str, Any]]:
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
    ctx.reporter.stage_started(name)
    t0 = time.perf_counter()
    with capture(stage_log(ctx.run_dir, name), verbose=ctx.reporter.verbose):  # other libraries' output
        result = stage.run(stage_cfg, ctx)
    seconds = round(time.perf_counter() - t0, 3)
    barrier()
    if ddp.is_main():
        record = {"stage": name, "status": "ok", "mobilekd_version": __version__, "key": key,
                  "config": stage_cfg.model_dump(mode="json"),
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
    """What `pipeline show` prints: per stage, on/off and whether the stored result would be reused."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    rows, upstream, stale = [], [], False
    for name, stage in STAGES.items():
        stage_cfg = getattr(cfg, name)
        key = stage_key(name, stage_cfg, upstream)
        if stage_cfg is None:
            rows.append({"stage": name, "state": "off", "key": key[:12]})
            upstream.append({"stage": name, "key": key, "outputs": None})
            continue
        hit = None if stale else _cached(run_dir / name, key, stage)
        if hit is None:
            stale = True
            rows.append({"stage": name, "state": "will run", "key": key[:12]})
            upstream.append({"stage": name, "key": key, "outputs": None})
        else:
            rows.append({"stage": name, "state": "cached", "key": key[:12]})
            upstream.append({"stage": name, "key": key, "outputs": hit[1]["outputs"]})
    return rows
