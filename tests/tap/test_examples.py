"""/examples: a DALI examples document (XHTML + RDFa) whose every query runs, advertised in
the capabilities; the operator's own examples join the generated ones."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig, TapExample
from sciplat.tap.services.examples import example_ids
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import fake_hub

XHTML = "{http://www.w3.org/1999/xhtml}"
OWN = TapExample(name="Brightest stars", query="SELECT TOP 3 hip, hpmag FROM hipparcos.main "
                 "ORDER BY hpmag", description="The three brightest Hipparcos stars.")  # fmt: skip


@pytest.fixture
async def client(hipparcos_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    backend = DuckDBBackend(hipparcos_dir)
    services = build_tap(TapConfig(examples=(OWN,)), hipparcos_dir, hub=fake_hub(),
                         backend=backend)  # fmt: skip
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as c:
        yield c
    backend.close()


def _examples(text: str) -> list[dict[str, str]]:
    """Each ``typeof="example"`` element's id, resource, name and query (the RDFa a client
    such as TOPCAT reads)."""
    root = ET.fromstring(text)  # noqa: S314 - our own document, parsed to check its form
    assert root.get("vocab") == "http://www.ivoa.net/rdf/examples#"
    found = []
    for node in root.iter():
        if node.get("typeof") != "example":
            continue
        props = {p.get("property"): "".join(p.itertext()) for p in node.iter() if p.get("property")}
        found.append({"id": node.get("id", ""), "resource": node.get("resource", ""), **props})
    return found


async def test_every_example_is_well_formed_and_runs(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/tap/examples")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xhtml+xml")
    examples = _examples(r.text)
    names = [e["name"] for e in examples]
    assert names[0] == "Tables of this service"
    assert "Cone search in hipparcos.main" in names
    assert names[-1] == "Brightest stars"  # the operator's, after the generated ones
    assert len({e["id"] for e in examples}) == len(examples)
    for example in examples:
        assert example["resource"] == "#" + example["id"]
        form = {"LANG": "ADQL", "QUERY": example["query"]}
        answer = await client.post("/api/tap/sync", data=form)
        status = parse(io.BytesIO(answer.content)).resources[0].infos[0]
        assert status.value == "OK", (example["name"], status.content)
        table = parse(io.BytesIO(answer.content)).get_first_table().to_table()
        assert len(table) > 0, example["name"]


async def test_capabilities_advertise_the_examples(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/tap/capabilities")
    root = ET.fromstring(r.text)  # noqa: S314 - our own document
    caps = {c.get("standardID"): c for c in root.iter("capability")}
    examples = caps["ivo://ivoa.net/std/DALI#examples"]
    url = "".join(examples.iter("accessURL").__next__().itertext())
    assert url == "http://tap.test/api/tap/examples"


def test_ids_are_unique_xml_names() -> None:
    same = [TapExample(name="2 stars!", query="x"), TapExample(name="2 stars?", query="y")]
    assert example_ids(same) == ["x-2-stars", "x-2-stars-2"]
