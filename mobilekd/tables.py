"""Terminal tables: the one-screen summary a run ends with."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(x: Any, spec: str = ".4f") -> str:
    return "-" if x is None else format(x, spec)


def summary_tables(summary: dict[str, Any], run_dir: str) -> list[Any]:
    models = Table(title=f"mobilekd · {summary['pipeline']} · {run_dir}", title_justify="left")
    for col in ("model", "params", "metrics (test)"):
        models.add_column(col)
    for name, m in summary.get("models", {}).items():
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in list(m.get("metrics", {}).items())[:4])
        models.add_row(name, f"{m.get('params') or 0:,}", metrics)
    arts = Table(title_justify="left")
    for col in ("format", "variant", "bytes", "parity", "agree", "max abs err", "p50 ms", "p90 ms", "native p50"):
        arts.add_column(col, justify="right" if col not in ("format", "variant", "parity") else "left")
    for a in summary.get("artifacts", []):
        par = a.get("parity") or {}
        lat = a.get("latency_ms") or {}
        nat = a.get("latency_native_ms") or {}
        agree = par.get("top1_agreement") if par.get("top1_agreement") is not None else par.get("topk_overlap")
        status = par.get("status", "-")
        style = {"passed": "green", "failed": "bold red"}.get(status, "yellow")
        arts.add_row(a["format"], a["variant"], f"{a['bytes']:,}", f"[{style}]{status}[/]", _fmt(agree, ".3f"),
                     _fmt(par.get("max_abs_err"), ".2e"), _fmt(lat.get("p50"), ".3f"), _fmt(lat.get("p90"), ".3f"),
                     _fmt(nat.get("p50"), ".3f"))
    out: list[Any] = [models, arts]
    gate = summary.get("gate")
    if gate is not None:
        g = Table(title="gate: " + ("[green]passed[/]" if gate["passed"] else "[bold red]FAILED[/]"), title_justify="left")
        for col in ("check", "limit", "value", "verdict"):
            g.add_column(col)
        for c in gate["checks"]:
            g.add_row(c["name"], f"{'<=' if c['kind'] == 'max' else '>='} {c['limit']:g}", f"{c['value']:.6g}",
                      "[green]pass[/]" if c["passed"] else "[bold red]FAIL[/]")
        if not gate["checks"]:
            g.add_row("(no budgets)", "", "", "")
        out.append(g)
    stages = "  ".join(f"{k}:{v['status']}" for k, v in summary.get("stages", {}).items())
    out.append(f"stages  {stages}")
    return out


def print_summary(summary: dict[str, Any], run_dir: str, console: Console | None = None) -> None:
    console = console or Console()
    for t in summary_tables(summary, run_dir):
        console.print(t)
