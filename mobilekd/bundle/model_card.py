"""MODEL_CARD.md: the bundle's manifest told to a person (what the model does, what it learned
from, how well it does, what it must not be used for, and how to load each file on a phone).
Rendered from the manifest alone, so the card can never disagree with the files it describes."""

from __future__ import annotations

from typing import Any

_RUNTIME_NAME = {"onnx": "ONNX Runtime", "executorch": "ExecuTorch", "coreml": "Core ML"}


def render(manifest: dict[str, Any]) -> str:
    m = manifest
    files = m["files"]
    first = files[0]
    lines = [f"# Model card: {m['pipeline']['name']}", ""]
    lines += _what(m, first) + _data(m) + _metrics(m) + _files(files) + _budgets(m) + _limits(m, files)
    lines += _loading(m, files, first)
    lines += ["## Checking the bundle", "",
              f"`{m['golden']['path']}` holds {m['golden']['samples']} real held-out inputs and, for each file, the "
              "outputs it must give and the tolerance (see docs/bundle.md of mobilekd). Run the same inputs in the "
              "app's own test and compare. On a computer: `mobilekd bundle verify <bundle dir or zip>`.", "",
              f"Made by mobilekd {m['mobilekd_version']} (pipeline version {m['pipeline']['version']}).", ""]
    return "\n".join(lines)


def _what(m: dict[str, Any], first: dict[str, Any]) -> list[str]:
    post, vocab = m["postprocessing"], m["vocabulary"]
    ins = ", ".join(_tensor(t) for t in first["inputs"])
    outs = ", ".join(_tensor(t) for t in first["outputs"])
    if m["task"] == "classification":
        does = (f"A classifier over {vocab['size']} classes (names in `{vocab['path']}`, index -> name). "
                f"It returns one {post['output']} vector; apply {post['activation']} for probabilities and take the "
                f"top {post['top_k']}.")
    else:
        does = (f"A recommender that scores {vocab['size']} items (rows of `{vocab['path']}`, index -> item). "
                f"It returns raw {post['output']}; rank them and show the top {post['top_k']}.")
    return ["## What it does", "", does, "", f"- Inputs: {ins}", f"- Outputs: {outs}",
            f"- Preprocessing: {_kv(m['preprocessing'])}", f"- Postprocessing: {_kv(post['details'])}", ""]


def _data(m: dict[str, Any]) -> list[str]:
    d = m["dataset"]
    out = ["## Data it learned from", "", f"Dataset: **{d['name']}**.", ""]
    if d["license"]:
        out += [f"License: {d['license']}", ""]
    if d["citation"]:
        out += ["Citation:", "", "```", d["citation"].strip(), "```", ""]
    return out


def _metrics(m: dict[str, Any]) -> list[str]:
    models = m["metrics"]
    if not models:
        return []
    names = sorted({k for v in models.values() for k in v.get("metrics", {})})
    out = ["## Metrics (held-out test split)", "", "| model | params | " + " | ".join(names) + " |",
           "|---|---|" + "---|" * len(names)]
    for model, v in models.items():
        vals = [f"{v['metrics'][n]:.4f}" if n in v.get("metrics", {}) else "" for n in names]
        out.append(f"| {model} | {v.get('params') or ''} | " + " | ".join(vals) + " |")
    return out + [""]


def _files(files: list[dict[str, Any]]) -> list[str]:
    out = ["## Files", "", "| file | format | variant | bytes | needs | parity on held-out data |", "|---|---|---|---|---|---|"]
    for f in files:
        rt = f["min_runtime"]
        need = f"{_RUNTIME_NAME[f['format']]} {rt['min_version'] or '(see manifest)'}"
        if f["format"] == "onnx":
            need += f" (opset {rt.get('opset')})"
        parity = f["parity"]["status"] if f["parity"] else "not checked"
        out.append(f"| `{f['path']}` | {f['format']} | {f['variant']} | {f['bytes']} | {need}+ | {parity} |")
    return out + [""]


def _budgets(m: dict[str, Any]) -> list[str]:
    gate = m["gate"]
    if gate is None:
        return ["## Budgets", "", "No budgets were set (the gate stage was off).", ""]
    from mobilekd.tables import check_cells  # the one rendering of a gate check

    out = ["## Budgets", "", f"All budgets met: **{'yes' if gate['passed'] else 'NO'}**.", "",
           "| check | bound | value | met |", "|---|---|---|---|"]
    for c in gate["checks"]:
        name, bound, value, passed = check_cells(c)
        out.append(f"| `{name}` | {bound} | {value} | {'yes' if passed else 'NO'} |")
    return out + [""]


def _limits(m: dict[str, Any], files: list[dict[str, Any]]) -> list[str]:
    out = ["## Limits", "",
           f"- Trained and measured only on {m['dataset']['name']}; inputs unlike its examples (other sensors, "
           "other domains, other preprocessing) give answers with no guarantee.",
           "- Outputs are not calibrated probabilities of being right; do not use them for decisions with "
           "legal, medical or financial effect without your own evaluation."]
    if any(f["variant"] == "int8" for f in files):
        out.append("- int8 files approximate the float model: a few answers may differ (see the metrics table).")
    if any(f["parity"] and f["parity"]["status"] == "not_executed" for f in files):
        out.append("- Core ML files were checked for their interface only (they run only on Apple OSes); run the "
                   "golden vectors in your iOS test.")
    out += [f"- {n}" for n in m["dataset"]["notes"]]
    return out + [""]


def _loading(m: dict[str, Any], files: list[dict[str, Any]], first: dict[str, Any]) -> list[str]:
    by = {f["format"]: f["path"] for f in files}
    x = first["inputs"][0]
    shape = ", ".join(str(d) for d in x["shape"])
    out = ["## Loading it in an app", ""]
    if "onnx" in by:
        out += ["### Android, ONNX Runtime (`com.microsoft.onnxruntime:onnxruntime-android`)", "", "```kotlin",
                "val env = OrtEnvironment.getEnvironment()",
                f"val session = env.createSession(assets.open(\"{by['onnx']}\").readBytes(), OrtSession.SessionOptions())",
                f"val x = OnnxTensor.createTensor(env, buffer, longArrayOf({shape}))  // {x['dtype']} \"{x['name']}\"",
                f"val out = session.run(mapOf(\"{x['name']}\" to x))  // \"{first['outputs'][0]['name']}\"",
                "```", "", "Docs: https://onnxruntime.ai/docs/get-started/with-java.html", ""]
    if "executorch" in by:
        out += ["### Android, ExecuTorch (`org.pytorch:executorch-android`)", "", "```kotlin",
                f"val module = org.pytorch.executorch.Module.load(filesDir.path + \"/{by['executorch'].split('/')[-1]}\")",
                f"val x = Tensor.fromBlob(data, longArrayOf({shape}))  // {x['dtype']}",
                "val out = module.forward(EValue.from(x))[0].toTensor()",
                "```", "", "Docs: https://pytorch.org/executorch/stable/using-executorch-android.html", ""]
    if "coreml" in by:
        out += ["### iOS, Core ML", "", "```swift",
                f"// Add {by['coreml'].split('/')[-1]} to the Xcode target (Xcode compiles it), or at run time:",
                "let compiled = try MLModel.compileModel(at: packageURL)",
                "let model = try MLModel(contentsOf: compiled)",
                f"let x = try MLMultiArray(shape: [{shape}], dataType: .float32)  // \"{x['name']}\"",
                f"let out = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: [\"{x['name']}\": x]))",
                "```", "", "Docs: https://developer.apple.com/documentation/coreml/mlmodel", ""]
        if x["dtype"] in ("int64", "int8", "uint8"):
            out += [f"Core ML takes integer inputs as int32: pass `{x['name']}` as an `.int32` MLMultiArray.", ""]
    return out


def _tensor(t: dict[str, Any]) -> str:
    rng = ""
    if t.get("low") is not None and t.get("high") is not None:  # floats: [low, high]; integer ids: [low, high)
        close = "]" if t["dtype"].startswith("float") else ")"
        rng = f" in [{t['low']:g}, {t['high']:g}{close}"
    return f"`{t['name']}` {t['dtype']}[{', '.join(str(d) for d in t['shape'])}]{rng}"


def _kv(d: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in d.items()) or "none"
