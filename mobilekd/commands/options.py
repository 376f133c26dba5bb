"""CLI conventions shared by every command: a list option takes repeats and commas alike
(`--formats onnx,executorch` == `--formats onnx --formats executorch`), and a command's library
output goes to a log file beside its output."""

from __future__ import annotations

from pathlib import Path


def split_list(values: list[str] | str | None) -> list[str]:
    """Flatten repeated and comma-separated values; commas inside [...] stay (shapes like [1,3,8,8])."""
    if values is None:
        return []
    out: list[str] = []
    for v in [values] if isinstance(values, str) else values:
        depth, start = 0, 0
        for i, ch in enumerate(v):
            depth += ch == "["
            depth -= ch == "]"
            if ch == "," and depth == 0:
                out.append(v[start:i])
                start = i + 1
        out.append(v[start:])
    return [x.strip() for x in out if x.strip()]


def log_beside(output: Path | None, command: str) -> Path:
    """Where a command's captured library output goes: beside its output (a folder: inside it;
    a file: FILE.log); with no output, the system temp folder (never litter the working folder)."""
    if output is None:
        import tempfile

        return Path(tempfile.gettempdir()) / f"mobilekd-{command}.log"
    output = Path(output)
    if output.suffix == "":
        return output / f"{command}.log"
    return output.with_suffix(".log")


def flags_without_placeholders() -> None:
    """typer 0.29's rich help shows a `<bool>` value placeholder after every flag (`--force <bool>`,
    even `--help <bool>`), though a flag takes no value. Show none for flags; typer has no setting
    for this, so its one display method is wrapped."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_mobilekd", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "is_bool_flag", False):
            return None
        return original(self, ctx)  # type: ignore[arg-type]

    display_type_rich._mobilekd = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
