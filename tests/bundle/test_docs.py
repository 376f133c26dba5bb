"""docs/bundle.md documents every field of both schemas (walked recursively, $refs followed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mobilekd.bundle.manifest import load_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "bundle.md"


def field_paths(schema: dict[str, Any], node: dict[str, Any] | None = None, prefix: str = "") -> set[str]:
    """Dotted paths of every property: `files[].min_runtime.opset`, `metrics.<name>.params`."""
    node = schema if node is None else node
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    out: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        out |= {path} | field_paths(schema, sub, path)
    if isinstance(node.get("items"), dict):
        out |= field_paths(schema, node["items"], prefix + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        out |= field_paths(schema, node["additionalProperties"], prefix + ".<name>")
    for alt in node.get("oneOf", []) + node.get("anyOf", []):
        out |= field_paths(schema, alt, prefix)
    return out


def test_walker_on_a_hand_made_schema() -> None:
    schema = {"properties": {"a": {"$ref": "#/$defs/x"}, "b": {"items": {"properties": {"c": {}}}}},
              "$defs": {"x": {"properties": {"d": {}}}}}
    assert field_paths(schema) == {"a", "a.d", "b", "b[].c"}


@pytest.mark.parametrize("name", ["manifest.schema.json", "golden.schema.json"])
def test_every_schema_field_is_documented(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    paths = field_paths(load_schema(name))
    assert len(paths) > 10
    missing = sorted(p for p in paths if f"`{p}`" not in text)
    assert not missing, f"docs/bundle.md does not document {name} field(s): {missing}"
