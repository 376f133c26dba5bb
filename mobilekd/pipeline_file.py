"""Reading a pipeline file: YAML -> overrides -> validated `PipelineConfig`, with errors a person
can act on (dotted path, value, what was expected; YAML syntax errors with their line)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from mobilekd.config import PipelineConfig
from mobilekd.errors import ConfigError

BUILTIN = ("quickstart", "fashion", "shopping_guide")


def builtin_path(name: str = "quickstart") -> Path:
    """Path of a built-in recipe shipped inside the package."""
    return Path(str(resources.files("mobilekd") / "recipes" / f"{name}.yaml"))


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, refusing missing, empty, malformed and non-mapping files."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pipeline file not found (expected a YAML file)")
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if doc is None:
        raise ConfigError(f"{path}: the file is empty (expected a mapping with name, data, teacher, ...)")
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of stage names to settings, got a {type(doc).__name__}"
        )
    return doc


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `--set a.b=value` overrides; the value is parsed as YAML (`null` switches a stage off)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. distill.epochs=2")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value {raw!r} is not valid YAML") from None
        node = doc
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a section (it is {child!r})")
            node = child
        node[parts[-1]] = value
    return doc


def validate(doc: dict[str, Any], source: str = "pipeline") -> PipelineConfig:
    """Validate a parsed document; every problem is listed, one per line."""
    try:
        cfg = PipelineConfig.model_validate(doc)
    except ValidationError as e:
        lines = [format_error(err) for err in e.errors()]
        raise ConfigError(f"{source}: invalid pipeline:\n  " + "\n  ".join(lines)) from None
    from mobilekd.data.registry import check_options
    from mobilekd.models import check_model_name

    check_options(cfg.data)
    if cfg.teacher.model is not None:
        check_model_name("teacher.model", cfg.teacher.model)
    if cfg.distill is not None:
        check_model_name("distill.student", cfg.distill.student)
    return cfg


def load_pipeline(path: Path | str | None = None, overrides: Sequence[str] = ()) -> PipelineConfig:
    """The public entry point: a file (or the built-in quickstart), plus overrides, validated."""
    p = builtin_path() if path is None else Path(path)
    if path is not None and not p.exists() and str(path) in BUILTIN:
        p = builtin_path(str(path))
    doc = apply_overrides(read_yaml(p), overrides)
    return validate(doc, source=str(p))


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def format_error(err: dict[str, Any]) -> str:
    """One pydantic error as `dotted.path: what was expected, got VALUE`."""
    loc = [str(x) for x in err["loc"] if not str(x).startswith(("function-", "tagged-union"))]
    # Drop pydantic's union branch names (e.g. 'DistillConfig') from the path.
    loc = [x for x in loc if not (x[:1].isupper() and x.endswith(("Config", "Options", "Quant")))]
    path = ".".join(loc) or "(top level)"
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"{path}: must be {_BOUNDS[kind]} {bound}, got {value!r}"
    if kind == "extra_forbidden":
        known = _known_keys(err["loc"][:-1])
        hint = f"; expected one of: {', '.join(known)}" if known else ""
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "literal_error":
        return f"{path}: must be one of {ctx.get('expected')}, got {value!r}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{path}: {msg[0].lower() + msg[1:]}, got {value!r}"


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the model at `loc`, to suggest what the user may have meant."""
    model: Any = PipelineConfig
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = _model_of(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _model_of(arg)
        if inner is not None:
            return inner
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def resolved_yaml(cfg: PipelineConfig) -> str:
    """The resolved pipeline, every default filled in, as written to the run directory."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
