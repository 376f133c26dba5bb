"""The public `mobilekd.run_pipeline` states its keyword arguments (no **kwargs relay), the same
ones as the run loop's, so help() and type checkers see the real API."""

from __future__ import annotations

import inspect

import mobilekd
from mobilekd import pipeline


def test_run_pipeline_states_the_loops_keywords():
    public = inspect.signature(mobilekd.run_pipeline).parameters
    loop = inspect.signature(pipeline.run_pipeline).parameters
    assert not [p for p in public.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert list(public)[1:] == list(loop)[1:]
    assert all(public[n].default == loop[n].default for n in list(loop)[1:])
