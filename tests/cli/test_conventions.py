"""CLI conventions: -h everywhere, flags shown without a value placeholder, --from listing the
stages, `pipeline list` finding the recipes folder's files, and list options taking repeats and
commas alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobilekd.cli import STAGE_NAMES, app
from mobilekd.commands.options import log_beside, split_list

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["pipeline"], ["pipeline", "run"], ["export"], ["gate"], ["compare"],
                                  ["bench"], ["bench", "calibrate"], ["bundle", "verify"]])
def test_dash_h_is_help(args):
    r = runner.invoke(app, [*args, "-h"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    assert "Usage:" in r.output


def test_flags_have_no_value_placeholder():
    r = runner.invoke(app, ["pipeline", "run", "-h"], env={"COLUMNS": "250"})
    assert "<bool>" not in r.output
    assert re.search(r"--force +Re-run every stage", r.output)
    # --from names every stage, in order
    assert "Re-run from this stage on: data, teacher, distill, prune, quantize, export, verify, bench, gate, bundle." in r.output


def test_cli_stage_names_are_the_pipelines():
    from mobilekd.pipeline import STAGES

    assert STAGE_NAMES == tuple(STAGES)


def test_pipeline_list_shows_each_recipe_file(tmp_path, monkeypatch):
    from mobilekd import catalog

    r = runner.invoke(app, ["pipeline", "list"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == sorted(p.stem for p in catalog.recipes_dir().glob("*.yaml"))
    assert re.match(r"quickstart +the whole road on scikit-learn's 8x8 digits", lines[names.index("quickstart")])
    # a recipe dropped into the folder is listed with no code change
    (tmp_path / "zz_new.yaml").write_text("# mobilekd zz new: a new recipe\nname: zz\n")
    monkeypatch.setattr(catalog, "recipes_dir", lambda: tmp_path)
    assert catalog.recipes() == [("zz_new", "a new recipe")]


def test_lists_take_repeats_and_commas_alike():
    assert split_list(["onnx,executorch", "coreml"]) == ["onnx", "executorch", "coreml"]
    assert split_list("onnx, executorch") == ["onnx", "executorch"]
    # commas inside a shape stay: two inputs, comma-separated, or repeated
    assert split_list(["x:float32[1,3,8,8],y:int64[1,5]"]) == ["x:float32[1,3,8,8]", "y:int64[1,5]"]
    assert split_list(["x:float32[1,3,8,8]", "y:int64[1,5]"]) == ["x:float32[1,3,8,8]", "y:int64[1,5]"]


def test_a_commands_log_goes_beside_its_output(tmp_path):
    assert log_beside(tmp_path / "out", "export") == tmp_path / "out" / "export.log"
    assert log_beside(tmp_path / "bench.json", "bench") == tmp_path / "bench.log"
    import tempfile

    assert log_beside(None, "bench") == Path(tempfile.gettempdir()) / "mobilekd-bench.log"
