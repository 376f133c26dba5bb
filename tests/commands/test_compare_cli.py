"""mobilekd compare: deltas between runs on the terminal, as Markdown and as an HTML page with
the runs side by side on the Pareto plots; bad input exits 2."""

from __future__ import annotations

import copy
import json
import re

from typer.testing import CliRunner

from mobilekd.cli import app
from tests.test_gate import SUMMARY

runner = CliRunner()


def make_runs(tmp_path):
    dirs = []
    for name, temp, acc, size in (("t4", 4.0, 0.93, 13736), ("t2", 2.0, 0.95, 13736)):
        d = tmp_path / name
        d.mkdir()
        s = copy.deepcopy(SUMMARY)
        s["models"]["student"]["metrics"]["accuracy"] = acc
        s["artifacts"][1]["bytes"] = size
        s["artifacts"][1]["metrics"] = {"accuracy": acc - 0.01}
        s["gate"] = {"passed": acc > 0.94, "checks": [
            {"name": "accuracy[student]", "limit": 0.94, "kind": "min", "value": acc, "passed": acc > 0.94, "unit": ""}]}
        (d / "summary.json").write_text(json.dumps(s))
        (d / "pipeline.yaml").write_text(f"name: quickstart\ndistill:\n  temperature: {temp}\n  alpha: 0.3\n")
        dirs.append(d)
    return dirs


def test_terminal_shows_the_turned_knob_and_the_deltas(tmp_path):
    a, b = make_runs(tmp_path)
    r = runner.invoke(app, ["compare", str(a), str(b)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert re.search(r"distill.temperature +4.0 +2.0 +changed", r.output)
    assert "distill.alpha" not in r.output  # unchanged keys are not listed
    assert re.search(r"student accuracy +0.9300 +0.9500 +\+0.0200", r.output)  # 0.95 - 0.93
    assert re.search(r"pte/int8 accuracy +0.9200 +0.9400 +\+0.0200", r.output)  # the file's own metric
    assert re.search(r"pte/int8 size +13.74 kB +13.74 kB +=", r.output)
    assert re.search(r"accuracy\[student\] +0.9300 FAIL +0.9500 pass", r.output)


def test_markdown_and_html(tmp_path):
    a, b = make_runs(tmp_path)
    md, page = tmp_path / "c.md", tmp_path / "c.html"
    r = runner.invoke(app, ["compare", str(a), str(b), "--markdown", str(md), "--html", str(page)])
    assert r.exit_code == 0, r.output
    text = md.read_text()
    assert "| distill.temperature | 4.0 | 2.0 | changed |" in text
    assert "| student accuracy | 0.9300 | 0.9500 | +0.0200 |" in text
    html = page.read_text()
    assert html.count("<svg") == 2 and "<script" not in html
    assert "t4: executorch/int8" in html and "t2: executorch/int8" in html  # both runs on the plots
    r = runner.invoke(app, ["compare", str(a), str(b), "--markdown", "-"])
    assert r.output.startswith("### mobilekd compare")


def test_bad_input_exits_2(tmp_path):
    (a, _) = make_runs(tmp_path)
    r = runner.invoke(app, ["compare", str(a)])
    assert r.exit_code == 2 and "at least two" in r.output
    r = runner.invoke(app, ["compare", str(a), str(tmp_path / "nope")])
    assert r.exit_code == 2 and "summary.json" in r.output
