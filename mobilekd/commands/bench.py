"""mobilekd bench FILE... (time model files on this machine) and mobilekd bench calibrate PROFILE
(fit a phone profile to one real measurement).

Click cannot give one group both a variadic FILE... argument and subcommands (the argument would
swallow the subcommand's name), so `bench` is a group whose default command is `run`:
`mobilekd bench a.onnx b.pte` is read as `mobilekd bench run a.onnx b.pte`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.console import Group
from typer.core import TyperGroup

from mobilekd.commands import user_errors
from mobilekd.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np


class DefaultRunGroup(TyperGroup):
    """Send anything that is not a subcommand name (or --help) to `run`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=DefaultRunGroup, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Time model files here (`mobilekd bench FILE...`), or calibrate a phone profile.")

SUFFIX_FORMAT = {".onnx": "onnx", ".pte": "executorch", ".pt2": "torch"}


def parse_threads(text: str) -> tuple[int, ...]:
    try:
        threads = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"--threads: expected comma-separated positive integers like 1,2,4, got {text!r}") from None
    if not threads or any(t < 1 for t in threads):
        raise ConfigError(f"--threads: expected comma-separated positive integers like 1,2,4, got {text!r}")
    return threads


def file_format(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"FILE: {str(path)!r} does not exist")
    if path.suffix not in SUFFIX_FORMAT:
        raise ConfigError(f"FILE: {path.name!r}: expected a .onnx, .pte or .pt2 file "
                          "(CoreML .mlpackage cannot execute on Linux)")
    return SUFFIX_FORMAT[path.suffix]


# ExecuTorch ScalarType codes (c10) of the dtypes a .pte input can have.
_SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64", 11: "bool"}


def input_spec(path: Path, fmt: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, batch-1 shape, numpy dtype) of each input, read from the file itself: ONNX graph
    inputs (a symbolic dim is taken as 1), the .pte's method metadata (inputs are positional, named
    input_0...), or the .pt2 program's user-input placeholders."""
    if fmt == "onnx":
        import onnx
        from onnx import helper

        g = onnx.load(str(path), load_external_data=False).graph
        inits = {i.name for i in g.initializer}
        out = []
        for vi in g.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tt.shape.dim)
            out.append((vi.name, shape, helper.tensor_dtype_to_np_dtype(tt.elem_type).name))
        return out
    if fmt == "executorch":
        from executorch.runtime import Runtime

        meta = Runtime.get().load_program(path).metadata("forward")
        out = []
        for i in range(meta.num_inputs()):
            t = meta.input_tensor_meta(i)
            if t.dtype() not in _SCALAR_TYPES:
                raise ConfigError(f"{path.name}: input {i} has ExecuTorch dtype code {t.dtype()}, which bench cannot feed")
            out.append((f"input_{i}", tuple(t.sizes()), _SCALAR_TYPES[t.dtype()]))
        return out
    from mobilekd.models.program import load_exported

    ep = load_exported(path)
    users = set(ep.graph_signature.user_inputs)
    out = []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in users:
            val = node.meta["val"]
            out.append((node.name, tuple(int(d) for d in val.shape), str(val.dtype).removeprefix("torch.")))
    return out


def feeds_for(path: Path, fmt: str, npz: Path | None, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """Batch-1 feeds for one file and a line saying where they came from."""
    import numpy as np

    spec = input_spec(path, fmt)
    described = ", ".join(f"{n}:{d}{list(s)}" for n, s, d in spec)
    if npz is None:
        rng = np.random.default_rng(seed)
        feeds = {n: (rng.standard_normal(s) if np.issubdtype(np.dtype(d), np.floating)
                     else rng.integers(0, 2, size=s)).astype(d) for n, s, d in spec}
        return feeds, (f"RANDOM inputs from the file's spec ({described}; floats N(0,1), integers 0-1); "
                       "pass --inputs samples.npz for real data")
    if not npz.is_file():
        raise ConfigError(f"--inputs: {str(npz)!r} does not exist (expected an .npz of input arrays)")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    names = [n for n, _, _ in spec]
    if set(names) <= set(arrays):
        chosen = [arrays[n] for n in names]
    elif fmt != "onnx" and len(arrays) == len(spec):
        chosen = list(arrays.values())  # positional formats: the npz's order
    else:
        raise ConfigError(f"--inputs {npz.name}: has arrays {sorted(arrays)}; {path.name} expects {described}")
    feeds = {}
    for (name, shape, dtype), arr in zip(spec, chosen):
        row = arr[:1] if arr.ndim == len(shape) else arr[None]
        if tuple(row.shape) != shape or not np.can_cast(row.dtype, dtype, casting="same_kind"):
            raise ConfigError(f"--inputs {npz.name}: array for {name} has shape {list(arr.shape)} dtype {arr.dtype}; "
                              f"expected rows of {list(shape[1:])} {dtype}")
        feeds[name] = np.ascontiguousarray(row.astype(dtype))
    return feeds, f"real inputs: first row of {npz} ({described})"


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
    from mobilekd.bench.latency import LatencyOptions, measure_latency
    from mobilekd.bench.native import measure_native
    from mobilekd.bench.size import size_report
    from mobilekd.store import write_json

    from mobilekd.commands.options import log_beside, split_list
    from mobilekd.logs import capture

    opts = LatencyOptions(threads=parse_threads(",".join(split_list(threads))), warmup=warmup, min_runs=min_runs,
                          min_seconds=min_seconds, max_seconds=max_seconds)
    formats = {f: file_format(f) for f in files}
    console = Console()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    log = log_beside(json_out, "bench")
    with capture(log, verbose=verbose):  # the runtimes' own chatter (cpuinfo, XNNPACK, ORT) goes here
        for f, fmt in formats.items():
            feeds, source = feeds_for(f, fmt, inputs)
            notes.append(f"[bold]{escape(str(f))}[/]: {escape(source)}")
            size = size_report(f)
            for t in opts.threads:
                stats = [measure_latency(fmt, f, feeds, threads=t, options=opts)]  # type: ignore[arg-type]
                if fmt == "executorch" and native:
                    nat = measure_native(f, feeds, threads=t, options=opts)
                    if nat is None:
                        notes.append(f"  {escape(f.name)}: native runner unavailable here (see {escape(str(log))}); "
                                     "Python runtime only")
                    else:
                        stats.append(nat)
                for s in stats:
                    rows.append({"file": str(f), "format": fmt, "bytes": size.bytes, "zipped_bytes": size.zipped_bytes,
                                 "inputs": source, **s.model_dump(mode="json")})
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True)
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
