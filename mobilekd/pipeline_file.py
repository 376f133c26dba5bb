"""Reading a pipeline file: YAML -> overrides -> validated `PipelineConfig`, with errors a person
can act on (dotted path, value, what was expected; YAML syntax errors with their line)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from mobilekd.config import PipelineConfig
from mobilekd.errors import ConfigError

from mobilekd.catalog import recipe_names

BUILTIN = recipe_names()  # every YAML in mobilekd/recipes, runnable by name


def builtin_path(name: str = "quickstart") -> Path:
    """Path of a built-in recipe shipped inside the package."""
    return Path(str(resources.files("mobilekd") / "recipes" / f"{name}.yaml"))


MAX_BYTES = 1_000_000  # a pipeline or budget file is a few kB; refuse anything over 1 MB before parsing
MAX_NODES = 100_000  # YAML nodes after expanding aliases (a "billion laughs" bomb expands to 10^9)
MAX_DEPTH = 64


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys (the second silently winning hides a mistake)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, f"a mapping key must be a plain value, got {type(key).__name__}", key_node.start_mark) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _check_size(node: yaml.Node) -> str | None:
    """Why a composed YAML graph is unsafe to build (too many nodes once aliases are expanded, a
    recursive alias, nesting too deep), or None. Shared alias targets are counted once per use
    through memoisation, so the check itself stays linear in the file."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise _Unsafe(f"nesting deeper than {MAX_DEPTH} levels")
        if id(n) in sizes:
            return sizes[id(n)]
        if id(n) in active:
            raise _Unsafe("a recursive alias (an anchor that contains itself)")
        active.add(id(n))
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(c, depth + 1) for c in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in n.value)
        active.discard(id(n))
        if total > MAX_NODES:
            raise _Unsafe(f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)")
        sizes[id(n)] = total
        return total

    try:
        size(node, 0)
    except _Unsafe as e:
        return str(e)
    return None


class _Unsafe(Exception):
    pass


def _bracket_depth(text: str) -> int:
    """The deepest run of unclosed [ and { (quotes ignored: an over-estimate, which only refuses sooner)."""
    depth = deepest = 0
    for m in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if m.group() in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse one YAML document safely: limits on size, aliases and depth; duplicate keys refused;
    every problem a ConfigError naming `source` (and the line where YAML knows it)."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters is too long (expected under {MAX_BYTES:,})")
    if "\x00" in text:
        raise ConfigError(f"{source}: contains NUL characters; expected a YAML text file")
    if _bracket_depth(text) > MAX_DEPTH:  # PyYAML's scanner is quadratic in flow nesting: refuse first
        raise ConfigError(f"{source}: refused: nesting deeper than {MAX_DEPTH} levels")
    try:
        loader = _StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            problem = _check_size(node)
            if problem:
                raise ConfigError(f"{source}: refused: {problem}")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        if "\t" in str(problem) or "'\\t'" in str(problem):
            problem += " (YAML indents with spaces, not tabs)"
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{source}: refused: nesting too deep (expected at most {MAX_DEPTH} levels)") from None


def read_text_file(path: Path, what: str = "YAML file") -> str:
    """A small UTF-8 text file, or a ConfigError saying why not (missing, huge, binary, not UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found (expected a {what})")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ConfigError(f"{path}: the file is {size / 1e6:.1f} MB; expected a {what} under {MAX_BYTES // 1000:,} kB")
    data = path.read_bytes()
    if b"\x00" in data:
        raise ConfigError(f"{path}: looks like a binary file (it contains NUL bytes); expected a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start} is 0x{data[e.start]:02x}); "
                          f"expected a {what} saved as UTF-8") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, refusing missing, empty, malformed, hostile and non-mapping files."""
    path = Path(path)
    doc = parse_yaml_text(read_text_file(path, "pipeline YAML file"), str(path))
    if doc is None:
        raise ConfigError(f"{path}: the file is empty (expected a mapping with name, data, teacher, ...)")
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of stage names to settings, got a {type(doc).__name__}"
        )
    return doc


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
        lines = [format_error(err) for err in e.errors()]
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
