"""mobilekd export FACTORY --input ... --formats ... --out DIR."""

from __future__ import annotations


def export_command() -> None:
    """Export any model (not yet wired)."""
