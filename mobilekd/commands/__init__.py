"""CLI command groups beyond `pipeline`, one module each; mobilekd.cli registers them. Like cli.py,
they only parse options and call the library. `user_errors` maps every failure to its exit code
(2 the user's input or code, 3 a bug in mobilekd) and one short screen; the full traceback goes to
an error.log (the run directory's logs/error.log when a run was under way), never bare to the
terminal unless --debug asked for it."""

from __future__ import annotations

import functools
import os
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import click
import typer
from rich.console import Console
from rich.markup import escape

from mobilekd.errors import MobileKDError, UserCodeError, stage_of

err = Console(stderr=True)

EXIT_PASSED, EXIT_FAILED, EXIT_USER, EXIT_INTERNAL = 0, 1, 2, 3
DEBUG = {"on": False}  # set by the global --debug option (or MOBILEKD_DEBUG=1)


def debug_on() -> bool:
    return DEBUG["on"] or os.environ.get("MOBILEKD_DEBUG", "") not in ("", "0")


def write_error_log(e: BaseException, log: Path | None = None) -> Path | None:
    """Write the full traceback of `e` to `log` (default: a per-user temp folder); None if unwritable."""
    if log is None:
        log = Path(tempfile.gettempdir()) / f"mobilekd-{os.getuid() if hasattr(os, 'getuid') else 'user'}" / "error.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        stage = stage_of(e)
        tmp = log.with_name(f".{log.name}.tmp{os.getpid()}")
        tmp.write_text((f"stage: {stage}\n" if stage else "") + text, encoding="utf-8")
        os.replace(tmp, log)
        return log
    except OSError:
        return None


def _root_cause(e: BaseException) -> BaseException:
    """The user's own exception behind a UserCodeError, for the one-line 'cause'."""
    return e.__cause__ if e.__cause__ is not None else e


def report_error(e: BaseException) -> int:
    """Print the one short screen for `e` and return its exit code (2 or 3)."""
    internal = not isinstance(e, MobileKDError)
    code = EXIT_INTERNAL if internal else getattr(e, "exit_code", EXIT_USER)
    log = getattr(e, "mobilekd_log", None)
    if log is None and (internal or isinstance(e, UserCodeError)):
        log = write_error_log(e)
    stage = stage_of(e)
    if internal:
        where = f" in stage {stage}" if stage else ""
        err.print(f"[bold red]internal error{where}:[/] a bug in mobilekd (exit 3)", highlight=False)
        err.print(f"  {escape(type(e).__name__)}: {escape(str(e)[:2000])}", highlight=False, soft_wrap=True)
    else:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        if stage:
            err.print(f"  in stage: {stage}", highlight=False)
        if isinstance(e, UserCodeError):
            cause = _root_cause(e)
            err.print(f"  exception: {escape(type(cause).__name__)}: {escape(str(cause)[:2000])}",
                      highlight=False, soft_wrap=True)
    if debug_on():
        err.print("".join(traceback.format_exception(type(e), e, e.__traceback__)), highlight=False,
                  markup=False, soft_wrap=True)
    elif log is not None:
        hint = "; please attach it to a bug report" if internal else ""
        err.print(f"  full traceback: {log} (or run with --debug){hint}", highlight=False, soft_wrap=True)
    return code


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map every failure of a command to its exit code and one short screen; no bare traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            err.print("[bold red]interrupted[/]", highlight=False)
            raise typer.Exit(130) from None
        except Exception as e:  # noqa: BLE001 - the one place every failure becomes an exit code
            raise typer.Exit(report_error(e)) from None

    return wrapper
