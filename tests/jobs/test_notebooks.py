"""The result cache's key and what notebooks declare (pure, no platform)."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import pytest

from sciplat.jobs.errors import JobRequestError
from sciplat.jobs.services import notebooks as nbs


def notebook(*sources: str, **meta: Any) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# title"))
    if sources:
        nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata.update(meta)
    return nb


def key(nb: nbformat.NotebookNode, params: dict[str, Any] | None = None, env: str = "e@1",
        inputs: dict[str, str] | None = None) -> str:  # fmt: skip
    return nbs.cache_key(nbs.code_sources(nb), params or {}, env, inputs or {})


def test_outputs_counts_and_metadata_do_not_change_the_key() -> None:
    nb = notebook("n = 1", "print(n)")
    run = nbs.parse_notebook(json.loads(nbformat.writes(nb)), "run")
    run.cells[2].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    run.cells[2].execution_count = 7
    run.cells[2].metadata["execution"] = {"iopub.status.busy": "2026-11-28T10:00:00Z"}
    run.cells[0].source = "# another title"  # markdown is not code
    assert key(nb) == key(run)


def test_code_parameters_environment_and_inputs_each_change_the_key() -> None:
    nb = notebook("n = 1", "print(n)")
    base = key(nb, {"n": 2}, "e@1", {"data.csv": "aa"})
    assert key(notebook("n = 1", "print(n + 1)"), {"n": 2}, "e@1", {"data.csv": "aa"}) != base
    assert key(nb, {"n": 3}, "e@1", {"data.csv": "aa"}) != base
    assert key(nb, {"n": 2}, "e@2", {"data.csv": "aa"}) != base
    assert key(nb, {"n": 2}, "f@1", {"data.csv": "aa"}) != base
    assert key(nb, {"n": 2}, "e@1", {"data.csv": "ab"}) != base
    assert key(nb, {"n": 2}, "e@1", {"data.csv": "aa"}) == base


def test_parameters_are_canonical() -> None:
    nb = notebook("a = b = 0")
    assert key(nb, {"a": 1, "b": [1, 2]}) == key(nb, {"b": [1, 2], "a": 1})
    assert key(nb, {"a": 1}) != key(nb, {"a": 1.5})


def test_metadata_declares_inputs_and_opts_out() -> None:
    nb = notebook("x = 1", sciplat={"inputs": ["data.csv", "data.csv", "sub/b.fits"]})
    assert nbs.declared_inputs(nb) == ["data.csv", "sub/b.fits"]
    assert nbs.cache_allowed(nb)
    assert not nbs.cache_allowed(notebook("x = 1", sciplat={"cache": False}))
    with pytest.raises(JobRequestError, match="list of file paths"):
        nbs.declared_inputs(notebook("x = 1", sciplat={"inputs": "data.csv"}))


def test_parameters_are_injected_after_the_parameters_cell_as_papermill_does() -> None:
    nb = notebook("n = 1", "print(n)")
    out = nbformat.reads(nbs.parameterise(nb, {"n": 5, "name": "Vega"}), 4)
    tags = [c.metadata.get("tags", []) for c in out.cells]
    assert tags[1] == ["parameters"] and tags[2] == ["injected-parameters"]
    assert 'n = 5\nname = "Vega"' in out.cells[2].source


def test_a_non_notebook_is_refused_with_its_name() -> None:
    with pytest.raises(JobRequestError, match=r"report\.ipynb is not a Jupyter notebook"):
        nbs.parse_notebook(b'{"cells": 3}', "report.ipynb")


def test_html_rendering_shows_outputs() -> None:
    nb = notebook("print('hello')")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello from the job\n")]
    html = nbs.render_html(nbformat.writes(nb).encode())
    assert "<html" in html and "hello from the job" in html
