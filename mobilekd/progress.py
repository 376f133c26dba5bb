"""Progress bars for long work (rich), silent with --quiet so CI logs stay readable."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[..., None]


class Reporter:
    """One rich Progress for a whole run; stages and epochs open tasks on it."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    def __enter__(self) -> "Reporter":
        if not self.quiet:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=self.console, transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)  # type: ignore[arg-type]
            self._progress = None

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        """Yield `advance(n=1, info="")`; the bar is removed from the live display when done."""
        if self._progress is None:
            yield lambda n=1, info="": None
            return
        tid = self._progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str = "") -> None:
            assert self._progress is not None
            self._progress.update(tid, advance=n, info=info)

        try:
            yield advance
        finally:
            if self._progress is not None:
                self._progress.remove_task(tid)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)


QUIET = Reporter(quiet=True)
