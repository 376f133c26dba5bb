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
    from mobilekd.gate import budgets_for_run, evaluate_budgets, to_junit, to_markdown
    from mobilekd.summary import read_summary
    from mobilekd.store import write_text

    summary = read_summary(run_dir)
    budgets, source = budgets_for_run(run_dir, budget)
    report = evaluate_budgets(budgets, summary)
    name = str(summary.get("pipeline", run_dir.name))
    Console().print(gate_table(report, f"{name} · {source}"))
    if junit is not None:
        write_text(junit, to_junit(report, name))
    if markdown is not None:
        write_text(markdown, to_markdown(report, name))
    raise typer.Exit(0 if report.passed else 1)
