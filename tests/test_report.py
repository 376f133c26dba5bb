"""report.html from a hand-built run: one self-contained file (inline SVG plots, no script) with
its sections (run metadata, curves, files at their own metric, latency, trade-off, errors, pruning,
sensitivity at full precision, gate); then opened in headless Chromium, screenshotted, and each
section and plot checked present and non-empty."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from mobilekd.report import pareto, render, render_run
from mobilekd.store import write_json
from tests.test_gate import SUMMARY

EAGER = {"teacher": {"runtime": "torch-eager", "threads": 1, "p50": 0.09},
         "student": {"runtime": "torch-eager", "threads": 1, "p50": 0.05}}
SENSITIVITY = [{"layer": "features.0", "drop": 0.004, "metric": "accuracy"},
               {"layer": "classifier", "drop": 0.021, "metric": "accuracy"}]
GATE = {"passed": False, "checks": [
    {"name": "bytes[executorch,int8]", "limit": 1e6, "kind": "max", "value": 13736.0, "passed": True, "unit": "B"},
    {"name": "accuracy[student_int8]", "limit": 0.95, "kind": "min", "value": 0.92, "passed": False, "unit": ""}]}


def run_dir(tmp_path: Path) -> Path:
    """A run directory as the pipeline leaves it: summary.json plus the stage results report.py reads."""
    d = tmp_path / "run"
    artifacts = copy.deepcopy(SUMMARY["artifacts"])
    artifacts[1]["latency_ms"] = {"p50": 0.012, "p90": 0.015, "runtime": "executorch-python"}  # as summary.py derives
    artifacts[1]["latency_native_ms"] = {"p50": 0.004, "p90": 0.007}
    summary = {**SUMMARY, "artifacts": artifacts, "mobilekd_version": "0.1.0", "gate": GATE,
               "data": {"dataset": "digits", "task": "classification", "sizes": {"test": 360}},
               "stages": {"distill": {"status": "ran", "seconds": 12.5}, "prune": {"status": "off", "seconds": 0.0}}}
    write_json(d / "summary.json", summary)
    write_json(d / "bench" / "stage.json", {"result": {"eager": EAGER}})
    write_json(d / "quantize" / "sensitivity.json", SENSITIVITY)
    write_json(d / "quantize" / "stage.json", {"result": {"sensitivity": "quantize/sensitivity.json"}})
    render_run(d)
    return d


HISTORY = [{"epoch": 1, "loss": 1.2, "kd_kl": 0.4, "val_accuracy": 0.81},
           {"epoch": 2, "loss": 0.7, "kd_kl": 0.2, "val_accuracy": 0.88}]
PRUNE = {"method": "structured", "ratio": 0.3, "params_before": 40506, "params_after": 19381, "macs_before": 9,
         "macs_after": 5, "pruned_layers": {"features.0": [32, 22], "classifier.0": [128, 90]}}
BREAKDOWN = {"model": "student_int8", "labels": ["a", "b"], "confusion": [[9, 1], [2, 8]],
             "per_class": [{"class": "a", "support": 10, "precision": 9 / 11, "recall": 0.9, "f1": 0.857142857},
                           {"class": "b", "support": 10, "precision": 8 / 9, "recall": 0.8, "f1": 0.842105263}]}


class Sections(HTMLParser):
    """For each <section id=...>: how many <svg> it holds and how many drawn shapes in them."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.svgs: dict[str, int] = {}
        self.shapes: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.current = a.get("id")
            self.svgs.setdefault(self.current, 0)
            self.shapes.setdefault(self.current, 0)
        elif tag == "svg" and self.current:
            self.svgs[self.current] += 1
        elif tag in ("path", "use", "rect", "text") and self.current:
            self.shapes[self.current] += 1


def sections(text: str) -> Sections:
    p = Sections()
    p.feed(text)
    return p


def full_run(tmp_path: Path) -> str:
    """The hand-built run with everything a full pipeline adds: run metadata, a file's own metric,
    training history, pruning widths and the classifier breakdown."""
    d = run_dir(tmp_path)
    summary = json.loads((d / "summary.json").read_text())
    summary["artifacts"][1]["metrics"] = {"accuracy": 0.917}  # the .pte measured on its own runtime
    summary["run"] = {"started": "2026-12-02T00:00:00+00:00", "seconds": 80.1, "command": "mobilekd pipeline run",
                      "seed": 0, "host": {"os": "Linux 6", "cpu": "EPYC", "cores": 2, "threads": 2},
                      "versions": {"mobilekd": "0.1.0", "torch": "2.13.0"}, "git": {"commit": "a" * 40, "dirty": True}}
    text = render(summary, EAGER, SENSITIVITY, histories={"distill": HISTORY}, prune=PRUNE, breakdown=BREAKDOWN)
    (d / "report.html").write_text(text)
    return text


def test_pareto_frontier_keeps_points_nothing_beats():
    # (1, .80) is beaten by nothing smaller; (2, .79) is beaten by (1, .80); (3, .90) and (10, .95) improve.
    assert pareto([(10, .95), (2, .79), (1, .80), (3, .90), (4, .90)]) == [(1, .80), (3, .90), (10, .95)]


def test_report_is_self_contained_with_every_section(tmp_path):
    text = full_run(tmp_path)
    assert not re.search(r"(src|href)=['\"]https?:", text) and "<script" not in text  # nothing fetched, no script
    assert "<img" not in text  # plots are inline SVG, not PNGs
    sec = sections(text)
    for key in ("run", "curves", "files", "latency", "tradeoff", "errors", "pruning", "sensitivity", "gate"):
        assert f"sec-{key}" in sec.svgs, key
    for key in ("curves", "latency", "tradeoff", "errors", "pruning"):  # each has a drawn plot
        assert sec.svgs[f"sec-{key}"] >= 1 and sec.shapes[f"sec-{key}"] > 10, key
    assert sec.svgs["sec-tradeoff"] == 2
    assert "accuracy vs size</text>" in text  # svg text stays text (selectable)
    # run metadata
    assert "EPYC" in text and "aaaaaaaaaaaa (dirty)" in text and "torch 2.13.0" in text
    # each file at its own metric: the .pte's 0.917; the onnx and coreml files were not measured
    assert "<b>0.9170</b>" in text and text.count("not measured</span>") == 2
    assert "Not measured, so not plotted: onnx/int8, coreml/int8." in text
    # latency rows: the native runner's p50 0.004 at 1 thread
    assert "<td class='t'>executorch-native</td><td class=''>1</td><td class=''>0.004</td>" in text
    # sensitivity, largest drop first
    assert text.index("<td class='t'>classifier</td>") < text.index("<td class='t'>features.0</td><td class=''>0.004")
    # pruning widths before/after, per-class F1
    assert "<td class='t'>features.0</td><td class=''>32</td><td class=''>22</td>" in text
    assert "Lowest F1: b (0.8421)" in text
    # gate rows in green and red, named by target, compact units
    assert ("<tr class='pass'><td class='t'>bytes[executorch,int8]</td><td class=''>&lt;= 1 MB</td>"
            "<td class=''>13.74 kB</td>") in text
    assert "<tr class='fail'><td class='t'>accuracy[student_int8]</td>" in text
    assert "gate FAILED" in text


def test_sensitivity_is_printed_at_full_precision():
    text = render({"pipeline": "p", "models": {}, "artifacts": []},
                  sensitivity=[{"layer": "fc", "drop": 0.8625, "metric": "accuracy"}])
    assert "<td class=''>0.8625</td>" in text


def test_a_file_is_never_plotted_at_another_models_metric():
    from mobilekd.report import trade_off_points

    # SUMMARY has no artifacts[].metrics: only the PyTorch models are points (student_int8 has no
    # size of its own), the files are "not measured"
    points = trade_off_points(SUMMARY, EAGER)
    assert sorted(p["label"] for p in points) == ["student (torch)", "teacher (torch)"]


def test_report_without_gate_latency_or_sensitivity_still_renders():
    bare = {"pipeline": "bare", "models": {"teacher": {"params": 10, "metrics": {"accuracy": 0.5}}}, "artifacts": []}
    text = render(bare)
    assert "gate stage off" in text and "sec-sensitivity" not in text
    assert sections(text).svgs["sec-tradeoff"] == 1  # size plot only: the teacher has params but no latency


def test_report_rerenders_from_a_run_directory(tmp_path):
    text = (run_dir(tmp_path) / "report.html").read_text()
    assert "sec-gate" in text and "<svg" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path):
    full_run(tmp_path)
    check_in_chromium(tmp_path / "run" / "report.html", tmp_path, gate_colors=True)


def check_in_chromium(report: Path, tmp: Path, gate_colors: bool = False,
                      plotted: tuple[str, ...] = ("curves", "latency", "tradeoff", "errors", "pruning")) -> None:
    """Chromium parses every section and plot (its DOM), and its screenshot is a drawn page."""
    import matplotlib.image

    url = report.resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'dom'}", "--dump-dom", url],
                         check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    sec = sections(dom.stdout)
    for key in ("run", "pipeline", "models", "files", "gate", *plotted):
        assert f"sec-{key}" in sec.svgs, key
    for key in plotted:
        assert sec.svgs[f"sec-{key}"] >= 1 and sec.shapes[f"sec-{key}"] > 10, key
    shot = tmp / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'shot'}", "--window-size=1200,6000",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    rgb = matplotlib.image.imread(str(shot))[..., :3]
    assert rgb.shape[:2] == (6000, 1200)
    assert rgb.std() > 0.05  # not a blank page
    if gate_colors:
        px = (rgb * 255).round().astype(int).reshape(-1, 3)
        # the gate's row backgrounds: green #e3f6e8 and red #fde7e9 are both on screen
        for color in ((0xE3, 0xF6, 0xE8), (0xFD, 0xE7, 0xE9)):
            assert (np.abs(px - color).sum(axis=1) <= 3).sum() > 500, color
