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
    inputs: list[str] = typer.Option(..., "--input", metavar="NAME:DTYPE[D0,...]",
                                     help="One per model input, in order: repeated, or comma-separated."),
    formats: list[str] = typer.Option(["onnx,executorch,coreml"], "--formats", metavar="FORMAT[,FORMAT...]",
                                      help="onnx, executorch, coreml: comma-separated or repeated."),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder for the exported files (and export.log)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", metavar="FILE", help="State dict (loaded weights_only)."),
    verify_data: Optional[Path] = typer.Option(None, "--verify-data", metavar="NPZ", help="npz: one array per input name, batch first."),
    quantize: Optional[str] = typer.Option(None, "--quantize", metavar="int8", help="int8: also write an int8 copy of each file."),
    task: str = typer.Option("classification", "--task", metavar="TASK", help="classification (top-1) or ranking (top-k)."),
    output_name: str = typer.Option("logits", "--output-name", metavar="NAME", help="Name of the model's output."),
    json_path: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write the artifacts list (as in summary.json)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="", help="Show the exporters' own output live (always kept in DIR/export.log)."),
) -> None:
    """Export any model to ONNX, ExecuTorch and CoreML and verify each file; exit 1 if one fails."""
    from rich.console import Console

    from mobilekd.commands.options import log_beside, split_list
    from mobilekd.export.command import export_command as run_export
    from mobilekd.logs import capture
    from mobilekd.store import write_json
    from mobilekd.tables import PARITY, fmt_bytes, table

    if task not in ("classification", "ranking"):
        raise ConfigError(f"--task: expected classification or ranking, got {task!r}")
    fmts = split_list(formats)
    log = log_beside(out, "export")
    with capture(log, verbose=verbose):  # torch.export, coremltools and ONNX chatter goes to the log
        results = run_export(factory, split_list(inputs), fmts, out, checkpoint=checkpoint, verify_data=verify_data,
                             quantize=quantize, task=task, output_names=(output_name,))  # type: ignore[arg-type]
    rows = []
    t = table(f"mobilekd export · {factory} · {out}", ("file", "size", "parity", "inputs", "max err", "agree"),
              text=("file", "inputs"))
    for exported, parity in results:
        m = parity.metrics
        agree = None if m is None else (m.top1_agreement if m.top1_agreement is not None else m.topk_overlap)
        style = {"passed": "green", "failed": "bold red"}.get(parity.status, "yellow")
        t.add_row(Path(exported.path).name, fmt_bytes(exported.bytes), f"[{style}]{PARITY.get(parity.status, parity.status)}[/]",
                  parity.inputs, "-" if m is None else f"{m.max_abs_err:.1e}", "-" if agree is None else f"{agree:.3f}")
        rows.append({**exported.model_dump(mode="json"), "parity": parity.model_dump(mode="json")})
    Console().print(t)
    typer.echo(f"log  {log}  (the exporters' own output)")
    for exported, parity in results:
        if parity.status == "failed":
            Console(stderr=True).print(f"[red]{exported.format}/{exported.variant}: {parity.reason}"
                                       + (f" (diverges at {parity.diverges_at})" if parity.diverges_at else ""))
    if any(p.inputs == "random" for _, p in results):
        Console(stderr=True).print("note: no --verify-data given, so parity was checked on random inputs only")
    if json_path is not None:
        write_json(json_path, {"artifacts": rows})
    raise typer.Exit(1 if any(p.status == "failed" for _, p in results) else 0)
