"""gate stage: the run's numbers against the phone's budgets, so CI fails when a student is too
big, too slow or too inaccurate."""

from __future__ import annotations

from mobilekd.config import GateConfig
from mobilekd.context import RunContext
from mobilekd.gate import GateReport, evaluate_budgets


def run(cfg: GateConfig, ctx: RunContext) -> GateReport:
    from mobilekd.summary import build_summary

    summary = build_summary(ctx.config.name, ctx.results, {})
    return evaluate_budgets(cfg.budgets, summary)
