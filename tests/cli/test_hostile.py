"""Hostile input never crashes: binary, non-UTF-8, alias bombs, huge files, deep nesting, duplicate
keys, tabs and odd --set values end in exit 2 with a message, within a second; hypothesis fuzzes the
pipeline loader, the --set parser and the budget parser (the only outcomes: accepted, or a
MobileKDError, which the CLI turns into exit 2)."""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mobilekd.cli import app
from mobilekd.errors import MobileKDError
from mobilekd.gate import parse_budgets
from mobilekd.pipeline_file import apply_overrides, validate
from mobilekd.yaml_input import parse_yaml_text
from tests.conftest import tiny_pipeline

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Import the CLI's modules once, so the timings below measure the refusal, not Python's imports."""
    runner.invoke(app, ["pipeline", "validate", "--no-models"])


def refused_fast(path, *needles, extra=()):
    t0 = time.perf_counter()
    r = runner.invoke(app, ["pipeline", "validate", str(path), "--no-models", *extra])
    seconds = time.perf_counter() - t0
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.output, f"{n!r} not in {r.output}"
    assert seconds < 1.0, seconds
    return r.output


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize("name, content, needles", [
    ("binary", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), ["binary file", "NUL"]),
    ("latin-1", "name: caf\xe9\n".encode("latin-1"), ["not UTF-8 text", "byte 9 is 0xe9"]),
    ("alias bomb", BOMB.encode(), ["alias bomb"]),
    ("recursive alias", b"a: &a [*a, *a]\n", ["recursive alias"]),
    ("deep nesting", b"name: " + b"[" * 5000 + b"]" * 5000 + b"\n", ["nesting"]),
    ("duplicate keys", b"name: a\nseed: 1\nname: b\n", ["duplicate key 'name'", "first at line 1", "line 3"]),
    ("tabs", b"name: x\ndata:\n\tdataset: digits\n", ["invalid YAML", "line 3", "not tabs"]),
    ("unhashable key", b"? [a, b]\n: 1\n", ["mapping key must be a plain value"]),
])
def test_hostile_file(tmp_path, name, content, needles):
    p = tmp_path / "p.yaml"
    p.write_bytes(content)
    refused_fast(p, *needles)


def test_50_mb_file_is_refused_without_reading_it(tmp_path):
    p = tmp_path / "big.yaml"
    with open(p, "wb") as fh:
        fh.write(b"name: x\n")
        fh.truncate(50_000_000)
    refused_fast(p, "50.0 MB", "under 1,000 kB")


@pytest.mark.parametrize("item, needles", [
    ("distill.epochs", ["expected KEY.PATH=VALUE"]),
    ("=3", ["expected KEY.PATH=VALUE"]),
    ("a..b=1", ["expected KEY.PATH=VALUE"]),
    ("distill.epochs=[1", ["invalid YAML"]),
    ("distill.epochs=\x00", ["NUL"]),
    ("name=&a [*a]", ["recursive alias"]),
    ("seed.x=1", ["seed is not a section"]),
    ("gate.budgets.7.max=1", ["has 1 entries", "index 0..0"]),
    ("gate.budgets.x.max=1", ["expected an index"]),
    ("distill.epochs=1e999", ["distill.epochs"]),
    ("name={a: 1}", ["name"]),
    ("teacher=3", ["teacher"]),
    ("distill.temperature=.nan", ["distill.temperature"]),
])
def test_hostile_set(write_yaml, item, needles):
    refused_fast(write_yaml(tiny_pipeline()), *needles, extra=("--set", item))


def test_set_indexes_a_list(write_yaml):
    r = runner.invoke(app, ["pipeline", "validate", str(write_yaml(tiny_pipeline())), "--no-models",
                            "--set", "gate.budgets.0.max=5"])
    assert r.exit_code == 0, r.output


# -- fuzzing: only "accepted" or a MobileKDError, fast ---------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
yaml_values = st.recursive(yaml_scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                              st.dictionaries(st.text(max_size=10), c, max_size=4)),
                           max_leaves=20)
SECTIONS = ["name", "seed", "data", "teacher", "distill", "prune", "quantize", "export", "verify", "bench", "gate",
            "bundle"]


def accepted_or_refused(fn, *args) -> None:
    try:
        fn(*args)
    except MobileKDError:
        pass


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_pipeline_text(text):
    def load(t):
        doc = parse_yaml_text(t, "fuzz.yaml")
        if isinstance(doc, dict):
            validate(doc)

    accepted_or_refused(load, text)


@FUZZ
@given(st.dictionaries(st.sampled_from(SECTIONS), yaml_values, max_size=6))
def test_fuzz_pipeline_structure(changes):
    doc = {**tiny_pipeline(), **changes}
    accepted_or_refused(validate, doc)


@FUZZ
@given(st.lists(st.text(max_size=40), max_size=3),
       st.lists(st.tuples(st.lists(st.sampled_from(SECTIONS + ["epochs", "0", "budgets", "max", "x"]), min_size=1,
                                   max_size=3), st.text(max_size=20)), max_size=3))
def test_fuzz_set_parser(raw_items, structured):
    items = raw_items + [".".join(path) + "=" + value for path, value in structured]
    accepted_or_refused(lambda: validate(apply_overrides(tiny_pipeline(), items)))


budget_keys = st.sampled_from(["metric", "format", "variant", "runtime", "threads", "profile", "model", "against",
                               "min", "max", "direction", "typo"])
budget_values = st.one_of(yaml_scalars, st.sampled_from(["bytes", "accuracy", "accuracy_drop", "latency_p90_ms",
                                                          "onnx", "int8", "student", "teacher", "upper", "lower",
                                                          "executorch-native", "android-midrange"]))


@FUZZ
@given(st.one_of(yaml_values, st.fixed_dictionaries({"budgets": st.lists(
    st.dictionaries(budget_keys, budget_values, max_size=6), max_size=3)})))
def test_fuzz_budget_parser(doc):
    accepted_or_refused(parse_budgets, doc, "fuzz.yaml")


def test_fuzzed_text_through_the_cli_is_0_or_2(tmp_path):
    """A sample through the real command: exit 0 or 2, never a traceback."""
    import random

    rng = random.Random(14)
    alphabet = "ab:{}[]-&*!? \n\t'\"#,|>%@`0123456789"
    for i in range(40):
        p = tmp_path / f"f{i}.yaml"
        p.write_text("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))))
        r = runner.invoke(app, ["pipeline", "validate", str(p), "--no-models"])
        assert r.exit_code in (0, 2) and "Traceback" not in r.output, (p.read_text(), r.output)


def test_safe_yaml_refuses_python_tags():
    with pytest.raises(MobileKDError, match="invalid YAML"):
        parse_yaml_text("a: !!python/object/apply:os.system [echo hi]\n", "x.yaml")
    assert parse_yaml_text("a: &x 1\nb: *x\n", "x.yaml") == yaml.safe_load("a: 1\nb: 1\n")
