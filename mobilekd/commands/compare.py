"""mobilekd compare RUN_DIR... : deltas of metrics, sizes, latencies and gate checks between runs
(the first run is the baseline), on the terminal, as Markdown (a PR comment) or as an HTML page
with the runs side by side on the Pareto plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from mobilekd.commands import user_errors
from mobilekd.errors import ConfigError


def compare_table(run_dirs: list[Path], rows: list[Any]) -> Any:
    from mobilekd.compare import run_labels
    from mobilekd.tables import table

    labels = run_labels(run_dirs)
    t = table(f"compare · baseline {labels[0]}", ("", *labels, "Δ"), text=("",))
    section = None
    for r in rows:
        if r.section != section:
            if section is not None:
                t.add_section()
            section = r.section
            t.add_row(f"[bold]{section}[/]", *[""] * (len(labels) + 1))
        delta = r.delta()
        style = ""
        if r.higher_is_better is not None and delta not in ("", "="):
            better = delta.startswith("+") == r.higher_is_better
            style = "green" if better else "red"
        t.add_row(escape(r.name), *[escape(r.cell(i)) for i in range(len(labels))],
                  f"[{style}]{escape(delta)}[/]" if style else escape(delta))
    return t


@user_errors
def compare_command(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="Two or more run directories; the first is the baseline."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", metavar="FILE", help="Also write a Markdown table here (a PR comment; - for stdout)."),
    html: Optional[Path] = typer.Option(None, "--html", metavar="FILE", help="Also write an HTML page with the runs side by side on the Pareto plots."),
) -> None:
    """Compare runs: what changed in the pipeline and the deltas it caused."""
    from mobilekd.compare import compare_rows, to_markdown
    from mobilekd.store import write_text

    if len(run_dirs) < 2:
        raise ConfigError("RUN_DIR...: give at least two run directories to compare")
    rows = compare_rows(run_dirs)
    if markdown is not None and str(markdown) == "-":
        typer.echo(to_markdown(run_dirs, rows))
        return
    Console().print(compare_table(run_dirs, rows))
    if markdown is not None:
        write_text(markdown, to_markdown(run_dirs, rows))
        typer.echo(f"markdown  {markdown}")
    if html is not None:
        from mobilekd.report import render_compare

        write_text(html, render_compare(run_dirs, rows))
        typer.echo(f"html      {html}  (open: xdg-open {html})")
