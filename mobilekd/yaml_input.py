"""Reading user YAML safely and saying what is wrong with it: `parse_yaml_text` (limits on size,
aliases and depth; duplicate keys refused; syntax errors with their line), `read_text_file`, and
`format_error`, the one wording of a validation error for pipeline files, budget files and data
options. Depends on nothing of mobilekd's but errors, so every reader can import it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from pydantic import BaseModel

from mobilekd.errors import ConfigError

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


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def dotted(loc: Sequence[Any]) -> str:
    """`gate.budgets.0.max`: the form `--set` takes."""
    return ".".join(str(x) for x in loc)


def indexed(loc: Sequence[Any]) -> str:
    """`budgets[0].max`: list indexes in brackets, as in a budget file's error list."""
    return "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")


def format_error(err: dict[str, Any], root: type[BaseModel] | None = None, *,
                 label: Callable[[Sequence[Any]], str] = dotted) -> str:
    """One pydantic error as `path: what was expected, got VALUE`; an unknown key lists the keys
    the model under `root` at that path takes."""
    loc = [x for x in err["loc"] if not str(x).startswith(("function-", "tagged-union"))]
    # Drop pydantic's union branch names (e.g. 'DistillConfig') from the path.
    loc = [x for x in loc if not (str(x)[:1].isupper() and str(x).endswith(("Config", "Options", "Quant")))]
    path = label(loc) or "(top level)"
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"{path}: must be {_BOUNDS[kind]} {bound}, got {value!r}"
    if kind == "extra_forbidden":
        known = _known_keys(root, err["loc"][:-1]) if root is not None else []
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


def _known_keys(root: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the model at `loc` under `root`, to suggest what the user may have meant."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):  # a list entry: the same model as its list
            continue
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
