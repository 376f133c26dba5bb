"""mobilekd bench FILE... (time model files on this machine) and mobilekd bench calibrate PROFILE
(fit a phone profile to one real measurement). What a file takes and how it is timed lives in
mobilekd.bench.files; this module parses, calls it and prints the tables.

Click cannot give one group both a variadic FILE... argument and subcommands (the argument would
swallow the subcommand's name), so `bench` is a group whose default command is `run`:
`mobilekd bench a.onnx b.pte` is read as `mobilekd bench run a.onnx b.pte`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.console import Group
from typer.core import TyperGroup

from mobilekd.commands import user_errors
from mobilekd.errors import ConfigError

class DefaultRunGroup(TyperGroup):
    """Send anything that is not a subcommand name (or --help) to `run`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=DefaultRunGroup, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Time model files here (`mobilekd bench FILE...`), or calibrate a phone profile.")

def parse_threads(text: str) -> tuple[int, ...]:
    try:
        threads = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"--threads: expected comma-separated positive integers like 1,2,4, got {text!r}") from None
    if not threads or any(t < 1 for t in threads):
        raise ConfigError(f"--threads: expected comma-separated positive integers like 1,2,4, got {text!r}")
    return threads


@app.command("run")
@user_errors
def bench_files(
    files: list[Path] = typer.Argument(..., help="Model files: .onnx, .pte (ExecuTorch), .pt2 (torch.export)."),
    threads: list[str] = typer.Option(["1"], "--threads", metavar="N[,N...]", help="Thread counts: 1,2,4 or repeated."),
    inputs: Optional[Path] = typer.Option(None, "--inputs", metavar="NPZ", help=".npz of real inputs (first row of each array is fed); default random from the file's input spec."),
    json_out: Optional[Path] = typer.Option(None, "--json", metavar="FILE", help="Write every measurement here as JSON (the runtimes' output goes to FILE.log, else to the temp folder)."),
    native: bool = typer.Option(True, "--native/--no-native", metavar="", help="Also time .pte files with the C++ runner."),
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="", help="Show the runtimes' own output live (always kept in the log)."),
    warmup: int = typer.Option(10, "--warmup", min=0),
    min_runs: int = typer.Option(50, "--min-runs", min=1),
    min_seconds: float = typer.Option(1.0, "--min-seconds", min=0.0),
    max_seconds: float = typer.Option(10.0, "--max-seconds", min=0.001),
) -> None:
    """Latency (p50/p90/p99, cold start, peak memory) and size of model files, batch 1."""
    from mobilekd.bench.files import file_formats, measure_files
    from mobilekd.bench.latency import LatencyOptions
    from mobilekd.store import write_json

    from mobilekd.commands.options import log_beside, split_list
    from mobilekd.logs import capture

    opts = LatencyOptions(threads=parse_threads(",".join(split_list(threads))), warmup=warmup, min_runs=min_runs,
                          min_seconds=min_seconds, max_seconds=max_seconds)
    formats = file_formats(files)
    log = log_beside(json_out, "bench")
    with capture(log, verbose=verbose):  # the runtimes' own chatter (cpuinfo, XNNPACK, ORT) goes here
        rows, notes = measure_files(formats, opts, inputs=inputs, native=native, log=log)
    console = Console()
    for note in notes:
        console.print(escape(note), highlight=False, soft_wrap=True)
    console.print(bench_table(rows))
    if json_out is not None:
        write_json(json_out, {"options": opts.model_dump(mode="json"), "results": rows})
        console.print(f"wrote {escape(str(json_out))}", highlight=False)
    console.print(f"log   {escape(str(log))}  (the runtimes' own output)", highlight=False)


def bench_table(rows: list[dict[str, Any]]) -> Group:
    """One table per file (its name, size and zipped size as the title), one row per runtime x
    threads, times in compact units so nothing is cut at 80 columns."""
    from mobilekd.tables import RUNTIME, fmt_bytes, fmt_ms, table

    out = []
    for f in dict.fromkeys(r["file"] for r in rows):
        mine = [r for r in rows if r["file"] == f]
        t = table(f"[bold]{escape(Path(f).name)}[/] · {fmt_bytes(mine[0]['bytes'])}, zipped "
                  f"{fmt_bytes(mine[0]['zipped_bytes'])}",
                  ("runtime", "threads", "p50", "p90", "p99", "cv", "cold start", "peak mem"), text=("runtime",))
        for r in mine:
            t.add_row(RUNTIME.get(r["runtime"], r["runtime"]), str(r["threads"]), fmt_ms(r["p50"]), fmt_ms(r["p90"]),
                      fmt_ms(r["p99"]), f"{r['cv']:.0%}", fmt_ms(r["cold_start_ms"]), fmt_bytes(r["peak_memory_mb"] * 1e6))
        out.append(t)
    return Group(*out)


@app.command("calibrate")
@user_errors
def bench_calibrate(
    profile: str = typer.Argument(..., help="Profile name (built-in or your own)."),
    model: Path = typer.Option(..., "--model", metavar="FILE", help="The .onnx (best: MACs known) or .pte you measured on the phone."),
    measured_ms: float = typer.Option(..., "--measured-ms", metavar="MS", help="Its latency on the phone, in ms (batch 1)."),
    profiles: Optional[Path] = typer.Option(None, "--profiles", metavar="FILE", help="Profiles file to write (default $MOBILEKD_PROFILES or ~/.config/mobilekd/profiles.yaml)."),
) -> None:
    """Fit a phone profile's efficiency so its estimate of MODEL equals the measured latency."""
    from mobilekd.bench.devices import calibrate_from_file, user_profiles_path

    fitted = calibrate_from_file(profile, model, measured_ms, path=profiles)
    typer.echo(f"{profile}: efficiency {fitted.efficiency:.4g} (estimate of {model.name} now {measured_ms:g} ms); "
               f"calibrated profile written to {user_profiles_path(profiles)}")
