"""The built-in recipes: every YAML file in the package's recipes folder, found by listing it (so
a recipe added there is runnable by name and shown by `mobilekd pipeline list` with no code change)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path


def recipes_dir() -> Path:
    return Path(str(resources.files("mobilekd") / "recipes"))


def recipe_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in recipes_dir().glob("*.yaml")))


def describe(path: Path) -> str:
    """A recipe's one line: its first comment, less the leading 'mobilekd <name>:'."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip()
            return re.sub(r"^mobilekd [\w -]+?:\s*", "", text)
        if line.strip():
            break
    return ""


def recipes() -> list[tuple[str, str]]:
    """(name, one-line description) of each built-in recipe, sorted by name."""
    return [(name, describe(recipes_dir() / f"{name}.yaml")) for name in recipe_names()]
