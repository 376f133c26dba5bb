"""mobilekd bundle verify | inspect | query: check, describe or search the folder (or zip) an app developer got.

Exit codes of `verify`: 0 intact; 1 something differs (each failed check is named); 2 the input
cannot be read (not a folder or zip, a bad or unsafe zip, no manifest.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from mobilekd.commands import err, user_errors

app = typer.Typer(no_args_is_help=True, help="Check or describe an app developer's bundle (folder or .zip).")
out = Console()

_MAX_BYTES_HELP = "refuse zips that would expand beyond this many bytes (default 2 GiB)"
_STYLE = {"passed": "green", "failed": "bold red", "not_executed": "yellow", "skipped": "yellow"}


@app.command("verify")
@user_errors
def verify_command(
    bundle: Path = typer.Argument(..., help="bundle folder or .zip"),
    max_bytes: int = typer.Option(2 * 1024**3, "--max-bytes", min=1, help=_MAX_BYTES_HELP),
) -> None:
    """Check the manifest against its schema, every sha256, and re-run the golden vectors."""
    from mobilekd.bundle.verify import verify_bundle
    from mobilekd.commands.options import log_beside
    from mobilekd.logs import capture

    log = log_beside(None, "bundle-verify")  # never inside the bundle: its files are checked
    with capture(log):  # the runtimes' own chatter (torchao, cpuinfo, coremltools) goes here
        report = verify_bundle(bundle, max_bytes=max_bytes)
    table = Table(title=f"bundle verify {bundle}")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    for c in report.checks:
        table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status}[/]", c.detail)
    out.print(table)
    out.print(f"log   {log}  (the runtimes' own output)", highlight=False)
    if not report.ok:
        for c in report.failures:
            err.print(f"[bold red]FAILED[/] {c.name}: {c.detail}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    not_run = [c.name for c in report.checks if c.status == "not_executed"]
    note = f" ({len(not_run)} not executed on this machine: spec checked only)" if not_run else ""
    out.print(f"[green]intact[/]: {len(report.checks)} checks{note}", highlight=False)


@app.command("inspect")
@user_errors
def inspect_command(
    bundle: Path = typer.Argument(..., help="bundle folder or .zip"),
    max_bytes: int = typer.Option(2 * 1024**3, "--max-bytes", min=1, help=_MAX_BYTES_HELP),
) -> None:
    """Print the bundle's files, inputs, outputs, metrics and gate results (from its manifest)."""
    from mobilekd.bundle.inspect import print_manifest, read_bundle_manifest

    print_manifest(read_bundle_manifest(bundle, max_bytes=max_bytes), out)


@app.command("query")
@user_errors
def query_command(
    bundle: Path = typer.Argument(..., help="search bundle folder or .zip (pipelines/product_search.yaml)"),
    text: str = typer.Argument(..., help='what the shopper typed, e.g. "red lunch bag"'),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="how many products to list"),
    fmt: Optional[str] = typer.Option(None, "--format", help="onnx or executorch (default: executorch, else onnx)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    max_bytes: int = typer.Option(2 * 1024**3, "--max-bytes", min=1, help=_MAX_BYTES_HELP),
) -> None:
    """Search the bundle's catalogue as the app would: its tokenizer, its model file on its runtime, its index."""
    from mobilekd.bundle.query import query_bundle
    from mobilekd.errors import ConfigError

    if fmt is not None and fmt not in ("onnx", "executorch"):
        raise ConfigError(f"--format: expected onnx or executorch, got {fmt!r}")
    from mobilekd.commands.options import log_beside
    from mobilekd.logs import capture

    with capture(log_beside(None, "bundle-query")):  # the runtime's own chatter goes to the temp log
        result = query_bundle(bundle, text, k=k, fmt=fmt, max_bytes=max_bytes)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    table = Table(title=f'"{text}"  ({result.format} {result.variant}: {result.file})')
    for col in ("rank", "stock code", "description", "score"):
        table.add_column(col)
    for h in result.hits:
        table.add_row(str(h.rank), h.stock_code, h.description, f"{h.score:.4f}")
    out.print(table)
