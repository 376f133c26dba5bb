"""CLI command groups beyond `pipeline`, one module each; mobilekd.cli registers them. Like cli.py,
they only parse options and call the library. `user_errors` maps user mistakes to exit code 2."""

from __future__ import annotations

import functools
from typing import Any, Callable

import typer
from rich.console import Console
from rich.markup import escape

from mobilekd.errors import MobileKDError

err = Console(stderr=True)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a MobileKDError as one line on stderr and exit 2; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MobileKDError as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper
