"""Progress that fits where it runs.

- a terminal: rich bars (stages, epochs) plus one finished line per stage printed above them;
  everything goes through the one live display, so nothing interleaves with it (other libraries'
  output is in RUN_DIR/logs, see mobilekd.logs);
- no terminal (CI logs): one line when a stage starts and one when it ends, with its seconds and
  headline number, and epoch lines at most every 10 s;
- quiet: nothing here (the CLI prints errors and the final verdict).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mobilekd.specs import HEADLINE

Advance = Callable[..., None]
Mode = Literal["tty", "plain", "quiet"]
EPOCH_LINE_EVERY_S = 10.0


class Reporter:
    """One display for a whole run; stages and epochs open tasks on it."""

    def __init__(self, quiet: bool = False, console: Console | None = None, mode: Mode | None = None,
                 verbose: bool = False):
        if console is None:
            from mobilekd.logs import terminal

            console = Console(file=terminal())
        self.console = console
        self.verbose = verbose  # -v: other libraries' output is shown live, so bars would be torn
        if mode is None:
            mode = "quiet" if quiet else ("tty" if console.is_terminal and not verbose else "plain")
        self.mode: Mode = mode
        self.quiet = mode == "quiet"
        self._progress: Progress | None = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> "Reporter":
        if self.mode == "tty":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=self.console, transient=True,
                redirect_stdout=False, redirect_stderr=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)  # type: ignore[arg-type]
            self._progress = None

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        """Yield `advance(n=1, info="")`. A bar in a terminal; in plain mode a line at most every
        10 s (and none for the stage counter, which stage lines already cover)."""
        if self.mode == "plain" and description != "stages":
            done, last = [0], [time.perf_counter()]

            def line(n: int = 1, info: str = "") -> None:
                done[0] += n
                now = time.perf_counter()
                if now - last[0] >= EPOCH_LINE_EVERY_S:
                    last[0] = now
                    self._line(f"  {description} {done[0]}/{total}" + (f" · {info}" if info else ""))

            yield line
            return
        if self._progress is None:
            yield lambda n=1, info="": None
            return
        tid = self._progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str = "") -> None:
            assert self._progress is not None
            self._progress.update(tid, advance=n, info=escape(info))

        try:
            yield advance
        finally:
            if self._progress is not None:
                self._progress.remove_task(tid)

    def stage_started(self, name: str) -> None:
        if self.mode == "plain":
            self._line(f"{name} ...")

    def stage_finished(self, name: str, status: str, seconds: float | None, headline: str = "") -> None:
        if self.mode == "quiet":
            return
        took = f" in {seconds:.1f} s" if status == "ran" and seconds is not None else ""
        text = f"{name}: {status}{took}" + (f" · {headline}" if headline else "")
        if self.mode == "plain":
            self._line(text)
        else:
            self.log(f"[green]✓[/] {escape(text)}" if status != "off" else f"[dim]- {escape(text)}[/]")

    def log(self, message: str) -> None:
        if self.mode == "quiet":
            return
        (self._progress.console if self._progress is not None else self.console).print(message, highlight=False)

    def _line(self, text: str) -> None:
        elapsed = time.perf_counter() - self._t0
        self.console.print(f"[{elapsed:6.1f}s] {escape(text)}", highlight=False, soft_wrap=True)


def headline(name: str, result: Any) -> str:
    """The one number a stage line shows: a metric, a count or a verdict."""
    if result is None:
        return ""
    metrics = getattr(result, "metrics", None)
    if name == "data":
        return " / ".join(f"{v:,}" for v in result.sizes.values()) + " samples (train/val/test)"
    if name == "prune":
        return f"params {result.params_before:,} -> {result.params_after:,}" + _metric(metrics)
    if _metric(metrics):  # a model's metrics (verify's are per file, dicts: its parity line below)
        return _metric(metrics).lstrip(" ·")
    if name == "export":
        return f"{len(result.artifacts)} files"
    if name == "verify":
        statuses = [p.status for p in result.parity.values()]
        return "parity " + ", ".join(f"{statuses.count(s)} {s.replace('_', ' ')}" for s in dict.fromkeys(statuses))
    if name == "bench":
        return f"{len(result.latency)} files timed"
    if name == "gate":
        failed = sum(not c.passed for c in result.checks)
        return "passed" if result.passed else f"FAILED ({failed} of {len(result.checks)} checks)"
    if name == "bundle":
        return result.zip or result.dir
    return ""


def _metric(metrics: Any) -> str:
    if not isinstance(metrics, dict) or not metrics:
        return ""
    key = next((k for k in HEADLINE.values() if k in metrics), next(iter(metrics)))
    value = metrics[key]
    return f" · {key} {value:.4f}" if isinstance(value, (int, float)) else ""


QUIET = Reporter(quiet=True, console=Console(quiet=True))
