"""Command line: each command parses options and calls the library. Every failure becomes an exit
code and one short screen (mobilekd.commands.user_errors): 2 for what the user gave (MobileKDError,
errors inside their own code), 3 for a bug; the traceback goes to logs/error.log (--debug shows it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from mobilekd import __version__
from mobilekd.commands import user_errors
from mobilekd.commands.options import flags_without_placeholders
from mobilekd.pipeline import STAGES

flags_without_placeholders()

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings=HELP,
                  help="Distill, compress, export, verify, benchmark, gate and bundle phone-sized models.")
pipeline_app = typer.Typer(no_args_is_help=True, context_settings=HELP, help="Run, check and inspect pipeline files.")
app.add_typer(pipeline_app, name="pipeline")
def _version(value: bool) -> None:
    if value:
        typer.echo(f"mobilekd {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, metavar="",
                                              help="Print the version and exit."),
                 debug: bool = typer.Option(False, "--debug", metavar="",
                                            help="On an error, also print the full traceback.")) -> None:
    """mobilekd: turn a big model into one that runs well on a phone, and prove it fits.

    Exit codes: 0 passed; 1 a budget or parity check failed; 2 your input is wrong (config, files, or
    an error inside your own loader/factory/model); 3 a bug in mobilekd (traceback in logs/error.log).
    """
    from mobilekd.commands import DEBUG

    DEBUG["on"] = debug


STAGE_NAMES = tuple(STAGES)  # the stages are listed once, in mobilekd.pipeline (imported without torch)
PipelineArg = typer.Argument(None, metavar="PIPELINE",
                             help="Pipeline YAML, or a built-in recipe's name (`mobilekd pipeline list`); default quickstart.")
SetOpt = typer.Option([], "--set", metavar="KEY=VALUE", help="Override a key: --set distill.epochs=2, --set quantize=null.")


@pipeline_app.command("run")
@user_errors
def pipeline_run(
    file: Optional[Path] = PipelineArg,
    out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Run directory (default runs/<name>)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR", help="Datasets folder (or $MOBILEKD_DATA_DIR)."),
    overrides: list[str] = SetOpt,
    force: bool = typer.Option(False, "--force", metavar="", help="Re-run every stage, ignoring the cache."),
    from_stage: Optional[str] = typer.Option(None, "--from", metavar="STAGE",
                                             help=f"Re-run from this stage on: {', '.join(STAGE_NAMES)}."),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="Print only errors and the final verdict."),
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="",
                                 help="Show other libraries' output live (always kept in RUN_DIR/logs)."),
) -> None:
    """Run a pipeline; exit 1 when the gate fails."""
    from mobilekd.logs import capture
    from mobilekd.pipeline_file import load_pipeline, pipeline_source
    from mobilekd.progress import Reporter
    from mobilekd.tables import print_summary, verdict_line

    cfg = load_pipeline(file, overrides)
    run_dir = out if out is not None else Path("runs") / cfg.name
    rank = int(os.environ.get("RANK", "0"))  # under torchrun, only rank 0 shows progress and the summary
    with Reporter(quiet=quiet or rank != 0, verbose=verbose) as reporter:
        # Imports (torch, torchao, ...) and the run loop speak here; each stage has its own log.
        with capture(run_dir / "logs" / "pipeline.log", verbose=verbose):
            from mobilekd.pipeline import run_pipeline

            outcome = run_pipeline(cfg, run_dir=run_dir, data_dir=data_dir, force=force, from_stage=from_stage,
                                   reporter=reporter, pipeline_file=pipeline_source(file))
    if not outcome.summary:  # a torchrun worker that left after the training stages
        raise typer.Exit(0)
    status = outcome.summary.get("status", "passed")
    if quiet:
        typer.echo(verdict_line(outcome.summary, outcome.run_dir))
    else:
        print_summary(outcome.summary, str(outcome.run_dir))
        colour = "green" if status == "passed" else "bold red"
        Console(stderr=True).print(f"status: [{colour}]{status}[/]", highlight=False)
    raise typer.Exit(0 if status == "passed" else 1)


@pipeline_app.command("list")
def pipeline_list() -> None:
    """The built-in recipes, runnable by name: `mobilekd pipeline run NAME`."""
    from mobilekd.catalog import recipes

    rows = recipes()
    width = max(len(n) for n, _ in rows)
    for name, line in rows:
        typer.echo(f"{name:<{width}}  {line}")


@pipeline_app.command("validate")
@user_errors
def pipeline_validate(file: Optional[Path] = PipelineArg, overrides: list[str] = SetOpt,
                      data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR", help="Datasets folder (or $MOBILEKD_DATA_DIR)."),
                      no_models: bool = typer.Option(False, "--no-models", metavar="", help="Skip loading the data and building the models.")) -> None:
    """Check a pipeline file as the run would, before any training: config, import paths, budgets,
    and (unless --no-models) the models built once on a real batch; run nothing else."""
    from mobilekd.pipeline_file import load_pipeline

    cfg = load_pipeline(file, overrides)  # before anything imports torch: bad files are refused at once
    if not no_models:
        from mobilekd.data.registry import load_dataset
        from mobilekd.data.download import named_data_dir
        from mobilekd.validate import check_models

        check_models(cfg, load_dataset(cfg.data, named_data_dir(data_dir), cfg.seed))
    on = [k for k in STAGE_NAMES if getattr(cfg, k) is not None]
    typer.echo(f"{file or 'quickstart'}: valid pipeline {cfg.name!r}; stages on: {', '.join(on)}")


@pipeline_app.command("show")
@user_errors
def pipeline_show(file: Optional[Path] = PipelineArg, overrides: list[str] = SetOpt,
                  out: Optional[Path] = typer.Option(None, "--out", metavar="DIR", help="Run directory to compare with.")) -> None:
    """Print the resolved pipeline and which stages a run would reuse from the cache."""
    from rich.table import Table

    from mobilekd.pipeline import plan
    from mobilekd.pipeline_file import load_pipeline, resolved_yaml

    cfg = load_pipeline(file, overrides)
    typer.echo(resolved_yaml(cfg))
    t = Table(title="stages")
    for c in ("stage", "state", "key", "why"):
        t.add_column(c, overflow="fold")
    for row in plan(cfg, out):
        t.add_row(row["stage"], row["state"], row["key"], row["why"])
    Console().print(t)


from mobilekd.commands import bench as _bench  # noqa: E402
from mobilekd.commands import bundle as _bundle  # noqa: E402
from mobilekd.commands import export as _export  # noqa: E402
from mobilekd.commands import gate as _gate  # noqa: E402

app.add_typer(_bench.app, name="bench")
app.add_typer(_bundle.app, name="bundle")
app.command("export")(_export.export_command)
app.command("gate")(_gate.gate_command)
from mobilekd.commands import compare as _compare  # noqa: E402

app.command("compare")(_compare.compare_command)


def main() -> None:
    import warnings

    # Known, harmless deprecation chatter from torch/executorch internals; keep user logs readable.
    warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"executorch\..*")
    app(prog_name="mobilekd")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
