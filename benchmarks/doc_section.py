"""The one writer of docs/benchmarks.md sections: each benchmark owns the text between its
`<!-- begin NAME -->` and `<!-- end NAME -->` markers and replaces only that, atomically."""

from __future__ import annotations

from pathlib import Path


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with section `name` set to `body` (appended at the end when it is not there yet)."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    section = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        return text[: text.index(begin)] + section + text[text.index(end) + len(end):]
    return text.rstrip("\n") + "\n\n" + section + "\n"


def write_section(doc: Path, name: str, body: str) -> None:
    from mobilekd.store import write_text

    write_text(doc, replace_section(doc.read_text() if doc.exists() else "# Benchmarks\n", name, body))
