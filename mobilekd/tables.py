"""Terminal tables that fit 80 columns without cutting a number: compact units (13.7 kB, 4.4 µs),
short names (pte, ort), paths on their own lines, and a second table rather than a truncated one.

`gate_table` / `check_cells` are the one rendering of gate checks (pipeline run, `mobilekd gate`,
`bundle inspect`; the model card uses `check_cells` for its Markdown rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mobilekd.summary import headline_metric

FORMAT = {"onnx": "onnx", "executorch": "pte", "coreml": "mlpkg", "torch": "pt2"}
RUNTIME = {"onnxruntime": "ort", "executorch-python": "pte-py", "executorch-native": "pte-c++",
           "torch-eager": "torch", "coreml": "coreml"}
PARITY = {"passed": "ok", "failed": "FAIL", "not_executed": "not run", "skipped": "skipped"}
_PARITY_STYLE = {"passed": "green", "failed": "bold red"}


def fmt_bytes(n: float | None) -> str:
    """SI units, 3-4 significant digits: 820 B, 13.74 kB, 1.02 MB."""
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.0f} B"


def fmt_ms(ms: float | None) -> str:
    """A duration given in ms, in the unit that keeps it short: 4.4 µs, 12.3 ms, 1.5 s."""
    if ms is None:
        return "-"
    if abs(ms) < 1:
        return f"{ms * 1e3:.3g} µs"
    if abs(ms) < 1000:
        return f"{ms:.3g} ms"
    return f"{ms / 1e3:.3g} s"


def fmt_num(x: Any, spec: str = ".4f") -> str:
    if x is None:
        return "-"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return format(x, spec)


def fmt_unit(x: float, unit: str) -> str:
    """A gate value or bound in its unit: bytes and ms compact, other numbers to 4 digits."""
    if unit == "B":
        return fmt_bytes(x)
    if unit == "ms":
        return fmt_ms(x)
    if unit == "MB":
        return fmt_bytes(x * 1e6)
    return f"{x:.4g}"


def table(title: str | None, columns: Iterable[str], text: tuple[str, ...] = ()) -> Table:
    """A light table: no vertical rules (2 columns of padding each), numbers right-aligned and
    never wrapped or cut; the `text` columns left-aligned and allowed to fold."""
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for c in columns:
        if c in text:
            t.add_column(c, justify="left", overflow="fold")
        else:
            t.add_column(c, justify="right", no_wrap=True)
    return t


# ---- gate checks: the one renderer --------------------------------------------------------

def _check_dict(c: Any) -> dict[str, Any]:
    return c if isinstance(c, dict) else c.model_dump()


def check_cells(c: Any) -> tuple[str, str, str, bool]:
    """(name naming its target, bound, value, passed), e.g. ('bytes[executorch,int8]', '<= 1 MB',
    '13.74 kB', True)."""
    d = _check_dict(c)
    unit = d.get("unit", "")
    bound = f"{'<=' if d['kind'] == 'max' else '>='} {fmt_unit(d['limit'], unit)}"
    return d["name"], bound, fmt_unit(d["value"], unit), bool(d["passed"])


def gate_table(gate: Any, title: str = "gate") -> Table:
    """A GateReport or its summary.json dict -> one row per check."""
    g = gate if isinstance(gate, dict) else gate.model_dump()
    verdict = "[green]passed[/]" if g["passed"] else "[bold red]FAILED[/]"
    t = table(f"{escape(title)}: {verdict}", ("check", "bound", "value", "verdict"), text=("check",))
    for c in g["checks"]:
        name, bound, value, passed = check_cells(c)
        t.add_row(escape(name), bound, value, "[green]pass[/]" if passed else "[bold red]FAIL[/]")
    if not g["checks"]:
        t.add_row("(no budgets)", "", "", "")
    return t


# ---- the end of a pipeline run ------------------------------------------------------------

def models_table(summary: dict[str, Any]) -> Table:
    head = headline_metric(summary)
    names = [head] + sorted({k for m in summary.get("models", {}).values() for k in (m.get("metrics") or {})} - {head})
    shown = names[:3]
    t = table(f"models · test split · {summary['pipeline']}", ("model", "params", *shown, "torch p50"),
              text=("model",))
    for name, m in summary.get("models", {}).items():
        metrics = m.get("metrics") or {}
        t.add_row(name, fmt_num(m.get("params")), *[fmt_num(metrics.get(k)) for k in shown],
                  fmt_ms((m.get("latency_ms") or {}).get("p50")))
    return t


def files_table(summary: dict[str, Any]) -> Table:
    t = table("files · parity vs PyTorch · latency here, batch 1, 1 thread",
              ("file", "size", "parity", "agree", "max err", "p50", "p90", "c++ p50"), text=("file",))
    for a in summary.get("artifacts", []):
        par = a.get("parity") or {}
        lat, nat = a.get("latency_ms") or {}, a.get("latency_native_ms") or {}
        agree = par.get("top1_agreement") if par.get("top1_agreement") is not None else par.get("topk_overlap")
        status = par.get("status", "-")
        style = _PARITY_STYLE.get(status, "yellow")
        t.add_row(f"{FORMAT.get(a['format'], a['format'])}/{a['variant']}", fmt_bytes(a["bytes"]),
                  f"[{style}]{PARITY.get(status, status)}[/]", fmt_num(agree, ".3f"),
                  fmt_num(par.get("max_abs_err"), ".1e"), fmt_ms(lat.get("p50")), fmt_ms(lat.get("p90")),
                  fmt_ms(nat.get("p50")))
    return t


def summary_tables(summary: dict[str, Any], run_dir: str) -> list[Any]:
    out: list[Any] = [models_table(summary), files_table(summary)]
    if summary.get("gate") is not None:
        out.append(gate_table(summary["gate"]))
    stages = "  ".join(f"{k}:{v['status']}" for k, v in summary.get("stages", {}).items())
    out.append(f"stages  {stages}")
    return out


def where_lines(run_dir: Path | str, summary: dict[str, Any]) -> list[str]:
    """Where the run's outputs are and the one-line command to open or check each."""
    run_dir = Path(run_dir)
    lines = []
    report = run_dir / "report.html"
    if report.is_file():
        lines.append(f"report   {report}\n         open: xdg-open {report}")
    lines.append(f"summary  {run_dir / 'summary.json'}\n         read: python -m json.tool {run_dir / 'summary.json'}")
    bundle = summary.get("bundle") or {}
    if bundle.get("zip") or bundle.get("dir"):
        path = run_dir / (bundle.get("zip") or bundle["dir"])
        lines.append(f"bundle   {path}\n         verify: mobilekd bundle verify {path}")
    lines.append(f"logs     {run_dir / 'logs'}  (other libraries' output; -v shows it live)")
    return lines


def print_summary(summary: dict[str, Any], run_dir: str, console: Console | None = None) -> None:
    console = console or Console()
    for t in summary_tables(summary, run_dir):
        console.print(t)
    for line in where_lines(run_dir, summary):
        console.print(escape(line), highlight=False, soft_wrap=True)


def verdict_line(summary: dict[str, Any], run_dir: Path | str) -> str:
    """--quiet's one line: the verdict and where the report is."""
    gate = summary.get("gate")
    if gate is None:
        verdict = "finished (no gate)"
    elif gate["passed"]:
        verdict = "gate passed"
    else:
        failed = [c["name"] for c in gate["checks"] if not c["passed"]]
        verdict = f"gate FAILED: {', '.join(failed)}"
    status = summary.get("status", "passed")
    return f"{summary['pipeline']}: {verdict} · status: {status} · {Path(run_dir) / 'report.html'}"
