"""Error types. User mistakes raise a MobileKDError subclass (exit code 2 at the CLI, no traceback);
bugs stay ordinary exceptions so that they are seen and fixed."""

from __future__ import annotations


class MobileKDError(Exception):
    """A mistake in what the user gave us: a file, a value, a path. The message names the key, the
    value and what was expected."""

    exit_code = 2


class ConfigError(MobileKDError):
    """A pipeline file, a --set override or a budget file that does not validate."""


class DataError(MobileKDError):
    """A data directory or dataset file that is missing, corrupt or of the wrong shape."""


class ModelError(MobileKDError):
    """A model factory or checkpoint that cannot be imported, built or loaded."""


class StageError(MobileKDError):
    """A stage that cannot run with what the earlier stages produced."""


class ExportError(MobileKDError):
    """A model that a target format cannot take; names the operator and what to try."""


class BundleError(MobileKDError):
    """A bundle that cannot be read (unreadable zip, unsafe path, missing manifest)."""


class UserCodeError(MobileKDError):
    """An exception raised inside the user's own code (a dataset loader, a model factory, a model's
    forward), named by the import path that brought it in; its traceback goes to logs/error.log."""


class LockError(MobileKDError):
    """Another live `pipeline run` holds the run directory."""


def stage_of(e: BaseException) -> str | None:
    """The pipeline stage an error was raised in, when the run loop tagged it."""
    return getattr(e, "mobilekd_stage", None)
