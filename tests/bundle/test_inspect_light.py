"""`mobilekd bundle inspect` reads a manifest: it must import neither torch nor scikit-learn."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_light_imports import assert_light


def test_bundle_inspect_is_light(digits_run: Path):
    out = assert_light("bundle", "inspect", str(digits_run / "bundle" / "bundle"))
    assert ".pte" in out and ".onnx" in out
