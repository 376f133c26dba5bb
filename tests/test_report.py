"""report.html from a hand-built run: one self-contained file with its tables, two trade-off plots
(inlined PNGs of the size we draw), the sensitivity table and the gate verdicts in red and green;
then opened in headless Chromium to check that it renders."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import struct
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


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def png_sizes(html_text: str) -> list[tuple[int, int]]:
    """(width, height) of each inlined PNG, read from its IHDR chunk (bytes 16..24, big-endian)."""
    p = Images()
    p.feed(html_text)
    sizes = []
    for src in p.srcs:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        sizes.append(struct.unpack(">II", png[16:24]))
    return sizes


def test_pareto_frontier_keeps_points_nothing_beats():
    # (1, .80) is beaten by nothing smaller; (2, .79) is beaten by (1, .80); (3, .90) and (10, .95) improve.
    assert pareto([(10, .95), (2, .79), (1, .80), (3, .90), (4, .90)]) == [(1, .80), (3, .90), (10, .95)]


def test_report_is_self_contained_with_tables_plots_sensitivity_and_verdicts(tmp_path):
    text = (run_dir(tmp_path) / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]https?:", text)  # nothing fetched
    assert png_sizes(text) == [(510, 380), (510, 380)]  # FIGSIZE 5.1 x 3.8 in at 100 dpi
    assert "accuracy vs size" in text and "accuracy vs latency" in text
    # the sensitivity table, largest drop first
    assert text.index("<td class='t'>classifier</td>") < text.index("<td class='t'>features.0</td>")
    # gate rows in green and red, and the headline verdict
    assert "<tr class='pass'><td class='t'>bytes[executorch,int8]</td>" in text
    assert "<tr class='fail'><td class='t'>accuracy[student_int8]</td>" in text
    assert "gate FAILED" in text
    # each file's size, native latency and phone estimate
    assert "13,736" in text and "0.004 / 0.007" in text and "android-midrange 0.08" in text


def test_report_without_gate_latency_or_sensitivity_still_renders():
    bare = {"pipeline": "bare", "models": {"teacher": {"params": 10, "metrics": {"accuracy": 0.5}}}, "artifacts": []}
    text = render(bare)
    assert "gate stage off" in text and "Quantization sensitivity" not in text
    assert png_sizes(text) == [(510, 380)]  # size plot only: the teacher has params but no latency


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path):
    import matplotlib.image

    report = run_dir(tmp_path) / "report.html"
    url = report.resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", url],
                         check=False, capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert png_sizes(dom.stdout) == [(510, 380), (510, 380)]  # Chromium parsed both plots
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'shot'}", "--window-size=1200,1800",
                    f"--screenshot={shot}", url], capture_output=True, timeout=60, check=True)
    rgb = matplotlib.image.imread(str(shot))[..., :3]
    assert rgb.shape[:2] == (1800, 1200)
    assert rgb.std() > 0.05  # not a blank page
    px = (rgb * 255).round().astype(int).reshape(-1, 3)
    # the gate's row backgrounds: green #e3f6e8 and red #fde7e9 are both on screen
    for color in ((0xE3, 0xF6, 0xE8), (0xFD, 0xE7, 0xE9)):
        assert (np.abs(px - color).sum(axis=1) <= 3).sum() > 500, color
