"""mobilekd export SOURCE --input x:float32[1,3,32,32] --formats onnx,executorch,coreml --out DIR.

SOURCE is `module.path:function` or `hf:DIR` (a Hugging Face save_pretrained folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mobilekd.commands import user_errors



@user_errors
def export_command(
    source: str = typer.Argument(..., metavar="SOURCE", help="module.path:function returning the nn.Module, or hf:DIR."),
    inputs: list[str] = typer.Option([], "--input", metavar="NAME:DTYPE[D0,...]",
                                     help="One per model input, in order: repeated, or comma-separated "
                                     "(an hf: model builds them from its config)."),
    formats: list[str] = typer.Option(["onnx,executorch,coreml"], "--formats", metavar="FORMAT[,FORMAT...]",
                                      help="onnx, executorch, coreml: comma-separated or repeated."),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder for the exported files (and export.log)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", metavar="FILE", help="State dict (loaded weights_only)."),
    verify_data: Optional[Path] = typer.Option(None, "--verify-data", metavar="NPZ", help="npz: one array per input name, batch first."),
    quantize: Optional[str] = typer.Option(None, "--quantize", metavar="SCHEME",
                                           help="int8 (the scheme that fits the model), int8-static, int8-dynamic "
                                           "or int8-weights: also write int8 files."),
    calibration_data: Optional[Path] = typer.Option(None, "--calibration-data", metavar="NPZ",
                                                    help="npz like --verify-data, used to calibrate int8 activation ranges."),
    task: str = typer.Option("classification", "--task", metavar="TASK",
                             help="classification (top-1), ranking (top-k), embedding; for hf: feature-extraction, "
                             "sequence-classification, image-classification."),
    outputs: list[str] = typer.Option([], "--output", metavar="NAME",
                                      help="Keep only this output (repeatable); names as flattened: logits, "
                                      "last_hidden_state, 0, 1, ..."),
    args: list[str] = typer.Option([], "--arg", metavar="NAME=VALUE", help="Passed to the factory, if it declares NAME."),
    opset: int = typer.Option(18, "--opset", metavar="N", help="ONNX opset (13-23)."),
    dynamic_dims: list[str] = typer.Option([], "--dynamic-dim", metavar="NAME:AXIS",
                                           help="Left dynamic in ONNX (input_ids:0 batch, input_ids:1 sequence length)."),
    coreml_target: str = typer.Option("iOS17", "--coreml-target", metavar="TARGET", help="iOS16, iOS17 or iOS18."),
    coreml_precision: str = typer.Option("fp32", "--coreml-precision", metavar="PRECISION", help="fp32 or fp16."),
    ort_format: bool = typer.Option(False, "--ort-format", metavar="", help="Also write the .ort file ORT Mobile loads."),
    json_path: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write the artifacts list (as in summary.json)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="", help="Show the exporters' own output live (always kept in DIR/export.log)."),
) -> None:
    """Export any model to ONNX, ExecuTorch and CoreML and verify each file; exit 1 if one fails."""
    from pydantic import ValidationError
    from rich.console import Console

    from mobilekd.commands.options import log_beside, split_list
    from mobilekd.errors import ConfigError
    from mobilekd.export.command import ExportOptions, ExportRequest, parse_args
    from mobilekd.export.command import export_command as run_export
    from mobilekd.export.types import CoreMLOptions, OnnxOptions
    from mobilekd.logs import capture
    from mobilekd.store import write_json
    from mobilekd.tables import PARITY, fmt_bytes, table

    try:
        options = ExportOptions(onnx=OnnxOptions(opset=opset, dynamic_dims=split_list(dynamic_dims), ort_format=ort_format),
                                coreml=CoreMLOptions(minimum_deployment_target=coreml_target,
                                                     compute_precision=coreml_precision))
    except ValidationError as e:
        first = e.errors()[0]
        raise ConfigError(f"--{first['loc'][-1]}: {first['msg']} (got {first.get('input')!r})") from e
    fmts = split_list(formats)
    log = log_beside(out, "export")
    with capture(log, verbose=verbose):  # torch.export, coremltools and ONNX chatter goes to the log
        results = run_export(ExportRequest(
            source=source, inputs=split_list(inputs), formats=fmts, out=out, checkpoint=checkpoint,
            verify_data=verify_data, quantize=quantize, calibration_data=calibration_data, task=task,
            keep_outputs=split_list(outputs), factory_args=parse_args(args), options=options))
    rows = []
    t = table(f"mobilekd export · {source} · {out}", ("file", "size", "parity", "inputs", "max err", "agree"),
              text=("file", "inputs"))
    for exported, parity in results:
        m = parity.metrics
        agree = None if m is None else (m.top1_agreement if m.top1_agreement is not None else m.topk_overlap)
        style = {"passed": "green", "failed": "bold red"}.get(parity.status, "yellow")
        t.add_row(Path(exported.path).name, fmt_bytes(exported.bytes) if exported.bytes else "-",
                  f"[{style}]{PARITY.get(parity.status, parity.status)}[/]", parity.inputs,
                  "-" if m is None else f"{m.max_abs_err:.1e}",
                  "-" if agree is None or task in ("embedding", "feature-extraction") else f"{agree:.3f}")
        rows.append({**exported.model_dump(mode="json"), "parity": parity.model_dump(mode="json")})
    if json_path is not None:  # written before anything else can go wrong: the table's rows, always
        write_json(json_path, {"artifacts": rows})
    Console().print(t)
    typer.echo(f"log  {log}  (the exporters' own output)")
    for exported, parity in results:
        if parity.status == "failed":
            Console(stderr=True).print(f"[red]{exported.format}/{exported.variant}: {parity.reason}"
                                       + (f" (diverges at {parity.diverges_at})" if parity.diverges_at else ""))
    if any(p.inputs == "random" for _, p in results):
        Console(stderr=True).print("note: no --verify-data given, so parity was checked on random inputs only")
    raise typer.Exit(1 if any(p.status == "failed" for _, p in results) else 0)
