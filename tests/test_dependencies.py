"""Every third-party package mobilekd/ imports is declared in pyproject.toml (dependencies or an
extra), read from the code with ast, so a new import cannot ship undeclared."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "sklearn": "scikit-learn", "torch_pruning": "torch-pruning"}


def imported_packages() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "mobilekd").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("mobilekd", "__future__")}


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in reqs}


def test_every_import_is_declared():
    missing = sorted(n for n in imported_packages()
                     if DISTRIBUTION.get(n, n).lower().replace("_", "-") not in declared())
    assert not missing, f"imported by mobilekd/ but not in pyproject.toml: {missing}"


def test_the_scan_sees_imports():
    assert {"torch", "numpy", "pydantic", "yaml"} <= imported_packages()
