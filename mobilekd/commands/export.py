"""mobilekd export FACTORY --input x:float32[1,3,32,32] --formats onnx,executorch,coreml --out DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mobilekd.commands import user_errors
from mobilekd.errors import ConfigError


@user_errors
def export_command(
    factory: str = typer.Argument(..., help="module.path:function returning the nn.Module."),
    inputs: list[str] = typer.Option(..., "--input", help="NAME:DTYPE[D0,D1,...], once per model input, in order."),
    formats: str = typer.Option("onnx,executorch,coreml", "--formats", help="Comma-separated formats."),
    out: Path = typer.Option(..., "--out", help="Folder for the exported files."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="State dict (loaded weights_only)."),
    verify_data: Optional[Path] = typer.Option(None, "--verify-data", help="npz: one array per input name, batch first."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: also write an int8 copy of each file."),
    task: str = typer.Option("classification", "--task", help="classification (top-1) or ranking (top-k)."),
    output_name: str = typer.Option("logits", "--output-name", help="Name of the model's output."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the artifacts list (as in summary.json)."),
) -> None:
    """Export any model to ONNX, ExecuTorch and CoreML and verify each file; exit 1 if one fails."""
    from rich.console import Console
    from rich.table import Table

    from mobilekd.export.command import export_command as run_export
    from mobilekd.store import write_json

    if task not in ("classification", "ranking"):
        raise ConfigError(f"--task: expected classification or ranking, got {task!r}")
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    results = run_export(factory, inputs, fmts, out, checkpoint=checkpoint, verify_data=verify_data,
                         quantize=quantize, task=task, output_names=(output_name,))  # type: ignore[arg-type]
    rows = []
    table = Table(title=f"mobilekd export · {factory}")
    for col in ("format", "variant", "path", "bytes", "parity", "inputs", "max abs err", "agreement"):
        table.add_column(col)
    for exported, parity in results:
        m = parity.metrics
        agree = None if m is None else (m.top1_agreement if m.top1_agreement is not None else m.topk_overlap)
        style = {"passed": "green", "failed": "bold red"}.get(parity.status, "yellow")
        table.add_row(exported.format, exported.variant, exported.path, f"{exported.bytes:,}",
                      f"[{style}]{parity.status}[/]", parity.inputs, "-" if m is None else f"{m.max_abs_err:.2e}",
                      "-" if agree is None else f"{agree:.3f}")
        rows.append({**exported.model_dump(mode="json"), "parity": parity.model_dump(mode="json")})
    Console().print(table)
    for exported, parity in results:
        if parity.status == "failed":
            Console(stderr=True).print(f"[red]{exported.format}/{exported.variant}: {parity.reason}"
                                       + (f" (diverges at {parity.diverges_at})" if parity.diverges_at else ""))
    if any(p.inputs == "random" for _, p in results):
        Console(stderr=True).print("note: no --verify-data given, so parity was checked on random inputs only")
    if json_path is not None:
        write_json(json_path, {"artifacts": rows})
    raise typer.Exit(1 if any(p.status == "failed" for _, p in results) else 0)
