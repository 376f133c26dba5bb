"""The boundary with the user's own code: any exception raised inside a loader, factory or model
that came in by an import path becomes a UserCodeError (exit 2) that names that path, with the
original exception chained so that logs/error.log holds its full traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mobilekd.errors import MobileKDError, UserCodeError


def is_import_path(spec: str) -> bool:
    return ":" in spec


@contextmanager
def calling(key: str, spec: str, action: str = "raised") -> Iterator[None]:
    """Run user code; a non-mobilekd exception becomes `key: spec raised Type: message`."""
    try:
        yield
    except MobileKDError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the user's code raises is the user's to fix
        message = str(e).strip().splitlines()[0][:500] if str(e).strip() else "(no message)"
        raise UserCodeError(f"{key}: {spec} {action} {type(e).__name__}: {message}") from e
