"""No machine-specific absolute path anywhere in the repository (docs, recipes, code, results):
a path under a home or work folder of one machine works there only; the repository uses paths relative
to its root (../shared/datasets) or options and environment variables."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

# Built from parts so this file does not match itself.
HOMES = "|".join(["wo" + "rk", "ro" + "ot", "home/[a-z][a-z0-9_-]*", "Users/[A-Za-z][A-Za-z0-9_-]*"])
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:" + HOMES + r")/")


def test_no_file_holds_a_machine_path():
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    offenders = []
    for rel in files:
        path = REPO / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        for n, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)
