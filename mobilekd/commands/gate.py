"""mobilekd gate RUN_DIR [--budget FILE] [--junit out.xml] [--markdown out.md]: a finished run
against a budget file (or its own pipeline.yaml gate section), for CI. Exit 0 when every check
passes, 1 when one fails, 2 when the input is wrong (no run, bad budget, a budget the run cannot
answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from mobilekd.commands import user_errors
from mobilekd.errors import ConfigError


def read_summary(run_dir: Path) -> dict[str, Any]:
    from mobilekd.store import read_json

    if not run_dir.is_dir():
        raise ConfigError(f"RUN_DIR: {str(run_dir)!r} is not a directory (expected a pipeline run directory)")
    f = run_dir / "summary.json"
    if not f.is_file():
        raise ConfigError(f"RUN_DIR: {str(f)!r} does not exist; run `mobilekd pipeline run --out {run_dir}` first")
    try:
        summary = read_json(f)
    except ValueError as e:
        raise ConfigError(f"{f}: not valid JSON ({e})") from None
    if not isinstance(summary, dict) or "artifacts" not in summary or "models" not in summary:
        raise ConfigError(f"{f}: not a mobilekd summary (expected keys models and artifacts)")
    return summary


def run_budgets(run_dir: Path, budget: Path | None) -> tuple[list, str]:
    """The budgets to apply and where they came from."""
    from mobilekd.gate import load_budgets, parse_budgets
    from mobilekd.pipeline_file import read_yaml

    if budget is not None:
        return load_budgets(budget), str(budget)
    own = run_dir / "pipeline.yaml"
    if not own.is_file():
        raise ConfigError(f"--budget not given and {str(own)!r} does not exist; pass --budget budgets.yaml")
    budgets = parse_budgets(read_yaml(own), str(own))
    if not budgets:
        raise ConfigError(f"{own}: gate.budgets is empty; pass --budget budgets.yaml")
    return budgets, f"{own} (gate section)"


def gate_table(report: Any, title: str) -> Any:
    """The shared rendering (mobilekd.tables.gate_table), titled with the run and budget source."""
    from mobilekd.tables import gate_table as shared

    return shared(report, f"gate {title}")


@user_errors
def gate_command(
    run_dir: Path = typer.Argument(..., help="A pipeline run directory (holds summary.json)."),
    budget: Optional[Path] = typer.Option(None, "--budget", help="Budget YAML (budgets: [...]); default: the run's own pipeline.yaml gate section."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here (one testcase per check)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)."),
) -> None:
    """Gate a finished run against phone budgets: exit 0 all pass, 1 any fails, 2 bad input."""
    from mobilekd.gate import evaluate_budgets, to_junit, to_markdown
    from mobilekd.store import write_text

    summary = read_summary(run_dir)
    budgets, source = run_budgets(run_dir, budget)
    report = evaluate_budgets(budgets, summary)
    name = str(summary.get("pipeline", run_dir.name))
    Console().print(gate_table(report, f"{name} · {source}"))
    if junit is not None:
        write_text(junit, to_junit(report, name))
    if markdown is not None:
        write_text(markdown, to_markdown(report, name))
    raise typer.Exit(0 if report.passed else 1)
