"""`bundle verify` on the tiny digits run: intact passes; each kind of damage fails, naming it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from mobilekd.bundle.verify import verify_bundle
from mobilekd.cli import app
from mobilekd.store import read_json, sha256_file, size_bytes, write_json

runner = CliRunner()


def _statuses(path: Path) -> dict[str, str]:
    return {c.name: c.status for c in verify_bundle(path).checks}


def _failed(path: Path) -> dict[str, str]:
    return {c.name: c.detail for c in verify_bundle(path).failures}


def test_stage_result_and_summary_keep_dir_and_zip(digits_run: Path) -> None:
    summary = read_json(digits_run / "summary.json")
    assert summary["bundle"] == {"dir": "bundle/bundle", "zip": "bundle/bundle.zip"}
    result = read_json(digits_run / "bundle" / "stage.json")["result"]
    # 3 formats x 2 variants chosen (tiny_pipeline exports fp32 and int8 of each)
    assert len(result["files"]) == 6 and result["golden_samples"] == 2


def test_intact_bundle_passes_as_folder_and_zip(digits_run: Path) -> None:
    for path in (digits_run / "bundle" / "bundle", digits_run / "bundle" / "bundle.zip"):
        s = _statuses(path)
        assert "failed" not in s.values()
        assert s["golden models/student_int8.onnx"] == "passed"
        assert s["golden models/student_int8.pte"] == "passed"
        assert s["golden models/student_fp32.pte"] == "passed"
        assert s["golden models/student_int8.mlpackage"] == "not_executed"  # Linux: spec only, never passed
    result = runner.invoke(app, ["bundle", "verify", str(digits_run / "bundle" / "bundle.zip")])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output


def test_flipped_byte_in_a_model_file(bundle_copy: Path) -> None:
    model = bundle_copy / "models" / "student_int8.pte"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    failed = _failed(bundle_copy)
    assert list(failed) == ["sha256 models/student_int8.pte"]
    assert "was changed or damaged" in failed["sha256 models/student_int8.pte"]
    assert _statuses(bundle_copy)["golden models/student_int8.pte"] == "skipped"  # a damaged file is never run
    result = runner.invoke(app, ["bundle", "verify", str(bundle_copy)])
    assert result.exit_code == 1
    assert "sha256 models/student_int8.pte" in result.output


def _edit_golden(root: Path, path: str, delta: float) -> None:
    golden = read_json(root / "golden.json")
    entry = next(e for e in golden["expected"] if e["path"] == path)
    entry["outputs"][0]["logits"]["data"][3] += delta
    (root / "golden.json").write_text(json.dumps(golden))


def test_edited_golden_output_is_caught_by_its_digest(bundle_copy: Path) -> None:
    _edit_golden(bundle_copy, "models/student_fp32.onnx", 1.0)
    failed = _failed(bundle_copy)
    assert "sha256 golden.json" in failed
    assert "golden models/student_fp32.onnx" in failed


def test_edited_golden_output_with_a_matching_digest_fails_the_rerun(bundle_copy: Path) -> None:
    # Someone edits golden.json AND the manifest's digest: the re-run still catches it. The file
    # gives the old logit, which is now 1.0 away: max_abs_err 1 > the fp32 tolerance 1e-4.
    _edit_golden(bundle_copy, "models/student_fp32.onnx", 1.0)
    manifest = read_json(bundle_copy / "manifest.json")
    asset = next(a for a in manifest["assets"] if a["path"] == "golden.json")
    asset.update(sha256=sha256_file(bundle_copy / "golden.json"), bytes=size_bytes(bundle_copy / "golden.json"))
    write_json(bundle_copy / "manifest.json", manifest)
    failed = _failed(bundle_copy)
    assert list(failed) == ["golden models/student_fp32.onnx"]
    assert "no longer gives its golden outputs: max_abs_err 1 > 0.0001" in failed["golden models/student_fp32.onnx"]


def test_manifest_missing_a_field(bundle_copy: Path) -> None:
    manifest = read_json(bundle_copy / "manifest.json")
    del manifest["files"][1]["sha256"]
    del manifest["gate"]
    write_json(bundle_copy / "manifest.json", manifest)
    failed = _failed(bundle_copy)
    assert list(failed) == ["manifest schema"]
    assert "(top level): 'gate' is a required property" in failed["manifest schema"]
    assert "files[1]: 'sha256' is a required property" in failed["manifest schema"]
    result = runner.invoke(app, ["bundle", "verify", str(bundle_copy)])
    assert result.exit_code == 1 and "'sha256' is a required property" in result.output


def test_unlisted_file_is_named(bundle_copy: Path) -> None:
    (bundle_copy / "models" / "extra.onnx").write_bytes(b"x")
    assert "models/extra.onnx" in _failed(bundle_copy)["unlisted files"]


def test_zip_with_a_dotdot_path_is_refused(digits_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(digits_run / "bundle" / "bundle.zip") as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("../escape.txt", "x")
    result = runner.invoke(app, ["bundle", "verify", str(bad)])
    assert result.exit_code == 2
    assert "'../escape.txt' contains '..'" in result.output
    assert not (tmp_path.parent / "escape.txt").exists()


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty"
    empty.mkdir()
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an end-of-archive record and nothing else
    cases = {text: "not a bundle folder or a zip", tmp_path / "missing": "does not exist",
             empty: "no manifest.json found"}
    for path, message in cases.items():
        result = runner.invoke(app, ["bundle", "verify", str(path)])
        assert result.exit_code == 2, (path, result.output)
        assert message in result.output
    assert runner.invoke(app, ["bundle", "verify", str(truncated)]).exit_code == 2


def test_max_bytes_option(digits_run: Path) -> None:
    result = runner.invoke(app, ["bundle", "verify", str(digits_run / "bundle" / "bundle.zip"), "--max-bytes", "1000"])
    assert result.exit_code == 2 and "expands beyond the limit" in result.output


def test_inspect_prints_files_io_and_metrics(digits_run: Path) -> None:
    result = runner.invoke(app, ["bundle", "inspect", str(digits_run / "bundle" / "bundle.zip")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for text in ("models/student_int8.pte", "executorch", "image", "1x1x8x8", "logits", "1x10", "accuracy",
                 "student_int8", "labels.json"):
        assert text in result.output


def test_symlink_in_a_bundle_folder_is_refused(bundle_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (bundle_copy / "models" / "link.txt").symlink_to(outside)
    assert "symbolic links are not allowed in a bundle: models/link.txt" in _failed(bundle_copy)["unlisted files"]
