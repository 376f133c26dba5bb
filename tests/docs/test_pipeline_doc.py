"""docs/pipeline.md documents every key of PipelineConfig (walked from the pydantic models), with
its type and default as the models give them, and names no key the models do not have."""

from __future__ import annotations

import re

from mobilekd.config import PipelineConfig
from tests.conftest import REPO
from tests.docs.config_paths import config_paths

DOC = REPO / "docs" / "pipeline.md"


def reference_rows() -> dict[str, list[str]]:
    text = DOC.read_text()
    table = text[text.index("## Every key"):]
    rows = {}
    for line in table.splitlines():
        m = re.match(r"\| `([^`]+)` \|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", m.group(2))]
    return rows


def test_every_pipeline_key_is_documented():
    rows = reference_rows()
    paths = [p for p, _ in config_paths(PipelineConfig)]
    missing = [p for p in paths if p not in rows]
    assert not missing, f"docs/pipeline.md lacks: {', '.join(missing)}"
    unknown = [p for p in rows if p not in paths]
    assert not unknown, f"docs/pipeline.md documents keys that do not exist: {', '.join(unknown)}"


def test_documented_defaults_match_the_models():
    rows = reference_rows()
    for path, field in config_paths(PipelineConfig):
        documented = rows[path][1]
        if field.is_required():
            assert documented == "required", path
        elif isinstance(field.default, (int, float, str)) and not isinstance(field.default, bool):
            assert documented == f"`{field.default}`", path
        elif isinstance(field.default, bool):
            assert documented == str(field.default).lower(), path


def test_issue_keys_are_there():
    rows = reference_rows()
    for key in ("quantize.sensitivity", "quantize.max_metric_drop", "quantize.max_float_layers", "quantize.qat_epochs",
                "quantize.qat_lr", "quantize.calibration_samples", "prune.finetune_epochs", "prune.finetune_lr",
                "bench.profiles", "bench.native", "bench.eager"):
        assert rows[key][2], key  # a meaning, not an empty cell
