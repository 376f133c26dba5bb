"""Reading a pipeline file: YAML -> overrides -> validated `PipelineConfig`, with errors a person
can act on (dotted path, value, what was expected; YAML syntax errors with their line)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import ValidationError

from mobilekd.catalog import recipe_names
from mobilekd.config import PipelineConfig
from mobilekd.errors import ConfigError
from mobilekd.yaml_input import format_error, parse_yaml_text, read_yaml

BUILTIN = recipe_names()  # every YAML in mobilekd/recipes, runnable by name


def builtin_path(name: str = "quickstart") -> Path:
    """Path of a built-in recipe shipped inside the package."""
    return Path(str(resources.files("mobilekd") / "recipes" / f"{name}.yaml"))


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `--set a.b=value` overrides; the value is parsed as YAML (`null` switches a stage off);
    a numeric part indexes a list (`gate.budgets.0.max=5`)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. distill.epochs=2")
        value = parse_yaml_text(raw, f"--set {item!r}: value") if raw.strip() else None
        node: Any = doc
        parts = [p.strip() for p in key.split(".")]
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {item!r}: {'.'.join(parts[:depth]) or 'the list'} has "
                                      f"{len(node)} entries; expected an index 0..{len(node) - 1}, got {part!r}")
                if last:
                    node[int(part)] = value
                    break
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parts[:depth])} is not a section (it is {node!r:.60})")
            if last:
                node[part] = value
                break
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
    return doc


def validate(doc: dict[str, Any], source: str = "pipeline") -> PipelineConfig:
    """Validate a parsed document; every problem is listed, one per line."""
    try:
        cfg = PipelineConfig.model_validate(doc)
    except ValidationError as e:
        lines = [format_error(err, PipelineConfig) for err in e.errors()]
        raise ConfigError(f"{source}: invalid pipeline:\n  " + "\n  ".join(lines)) from None
    from mobilekd.data.registry import check_options
    from mobilekd.models import check_model_name

    from mobilekd.validate import check_config

    check_options(cfg.data)
    if cfg.teacher.model is not None:
        check_model_name("teacher.model", cfg.teacher.model)
    if cfg.distill is not None:
        check_model_name("distill.student", cfg.distill.student)
    try:
        check_config(cfg)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg


def pipeline_source(path: Path | str | None) -> Path:
    """The file a pipeline argument names: a path, else the built-in recipe of that name."""
    p = builtin_path() if path is None else Path(path)
    if path is not None and not p.exists() and str(path) in BUILTIN:
        p = builtin_path(str(path))
    return p


def load_pipeline(path: Path | str | None = None, overrides: Sequence[str] = ()) -> PipelineConfig:
    """The public entry point: a file (or the built-in quickstart), plus overrides, validated."""
    p = builtin_path() if path is None else Path(path)
    if path is not None and not p.exists() and str(path) in BUILTIN:
        p = builtin_path(str(path))
    doc = apply_overrides(read_yaml(p), overrides)
    return validate(doc, source=str(p))


def resolved_yaml(cfg: PipelineConfig) -> str:
    """The resolved pipeline, every default filled in, as written to the run directory."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
