"""nbcheck's table and JUnit XML (pure), and which files it picks up."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from sciplat.jobs.cli import Check, junit_xml, notebooks_in, table


def job(status: str, cached: bool = False, **kw: Any) -> dict[str, Any]:
    return {"id": "j", "status": status, "cached": cached, "cached_from": "j0", **kw}


CHECKS = [
    Check("intro.ipynb", job("done", cached=True), 0.0),
    Check(
        "deep/fit.ipynb",
        job("failed", error="failed in cell 4: ValueError: bad", error_source="fit(x)"),
        3.25,
    ),
]


def test_the_table_has_a_row_per_notebook_with_its_error() -> None:
    lines = table(CHECKS).splitlines()
    assert lines[0].split() == ["notebook", "result", "cached", "seconds", "error"]
    assert lines[1].split()[:4] == ["intro.ipynb", "PASS", "yes", "0.0"]
    assert lines[2].split()[:4] == ["deep/fit.ipynb", "FAILED", "no", "3.2"]
    assert lines[2].endswith("failed in cell 4: ValueError: bad")


def test_junit_xml_reports_failures_for_ci() -> None:
    suite = ET.fromstring(junit_xml(CHECKS))  # noqa: S314 - our own output
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["intro.ipynb", "deep/fit.ipynb"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "failed in cell 4: ValueError: bad"
    assert failure.text == "fit(x)"
    assert cases[0].find("failure") is None


def test_checkpoints_and_hidden_directories_are_skipped(tmp_path: Path) -> None:
    for name in ("b.ipynb", "a/c.ipynb", ".ipynb_checkpoints/b-checkpoint.ipynb",
                 ".git/x.ipynb", "notes.txt"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert [p.relative_to(tmp_path).as_posix() for p in notebooks_in(tmp_path)] == [
        "a/c.ipynb", "b.ipynb",
    ]  # fmt: skip
