"""Output formats: Parquet, unicodeChar VOTable strings, RESPONSEFORMAT aliases, capabilities."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse

from sciplat.tap.app import create_app
from sciplat.tap.models.catalogue import ColumnInfo
from sciplat.tap.output.votable import write_votable
from sciplat.tap.services.query import parse_format
from sciplat.tap.wiring import TapServices

QUERY = "SELECT TOP 4 hip, ra, hpmag FROM hipparcos.main ORDER BY hip"


@pytest.fixture
async def client(tap_services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(tap_services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as c:
        yield c


async def test_parquet_result(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/tap/sync", data={"QUERY": QUERY, "FORMAT": "parquet",
                                                 "MAXREC": "3"})  # fmt: skip
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("hip").to_pylist() == [1, 2, 3]
    assert table.schema.metadata[b"QUERY_STATUS"] == b"OVERFLOW"
    ra = table.schema.field("ra").metadata
    assert ra[b"unit"] == b"deg"
    assert ra[b"ucd"].startswith(b"pos.eq.ra")
    sync = await client.post("/api/tap/sync", data={"QUERY": QUERY, "FORMAT": "votable"})
    expected = parse(io.BytesIO(sync.content)).get_first_table().to_table()
    assert table.column("hpmag").to_pylist() == pytest.approx(list(expected["hpmag"][:3]))


@pytest.mark.parametrize(
    ("value", "fmt", "mime"),
    [
        ("votable", "votable", "application/x-votable+xml"),
        ("application/x-votable+xml", "votable", "application/x-votable+xml"),
        ("text/xml", "votable", "text/xml"),
        ("application/x-votable+xml;serialization=TABLEDATA", "votable-td",
         "application/x-votable+xml;serialization=TABLEDATA"),
        ("votable/td", "votable-td", "application/x-votable+xml;serialization=TABLEDATA"),
        ("votable/b2", "votable", "application/x-votable+xml;serialization=BINARY2"),
        ("csv", "csv", "text/csv;header=present"),
        ("text/csv", "csv", "text/csv;header=present"),
        ("json", "json", "application/json"),
        ("parquet", "parquet", "application/vnd.apache.parquet"),
        ("application/vnd.apache.parquet", "parquet", "application/vnd.apache.parquet"),
    ],
)  # fmt: skip
def test_response_format_aliases(value: str, fmt: str, mime: str) -> None:
    assert parse_format(value) == (fmt, mime)


@pytest.mark.parametrize("serialization", ["binary2", "tabledata"])
def test_non_ascii_strings_are_unicode_char(serialization: str) -> None:
    names = ["Алькиона", "Zürich", None, "北京", "😀 star", "", "ascii"]
    table = pa.table({"name": names, "plain": ["a", "b", "c", "d", "e", "f", "<&>"]})
    doc = write_votable(table, {"name": ColumnInfo("name", "char", unit="")}, serialization)
    votable = parse(io.BytesIO(doc)).get_first_table()
    assert votable.get_field_by_id("name").datatype == "unicodeChar"
    assert votable.get_field_by_id("name").arraysize == "8"  # UTF-16 code units of the widest
    assert votable.get_field_by_id("plain").datatype == "char"
    back = votable.to_table()
    assert [str(v) for v in back["name"]] == [n or "" for n in names]
    assert list(back["plain"]) == ["a", "b", "c", "d", "e", "f", "<&>"]


async def test_unicode_from_a_query(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/tap/sync", data={"QUERY": "SELECT TOP 1 'Ærø 北' AS s "
                                                 "FROM hipparcos.main"})  # fmt: skip
    assert parse(io.BytesIO(r.content)).get_first_table().array["s"][0] == "Ærø 北"


async def test_capabilities_advertise_async_uploads_and_parquet(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/tap/capabilities")
    root = ET.fromstring(r.text)  # noqa: S314 - our own service's document
    text = r.text
    assert "ivo://ivoa.net/std/TAPRegExt#upload-inline" in text
    assert "<mime>application/vnd.apache.parquet</mime>" in text
    assert '<uploadLimit><hard unit="byte">' in text
    assert "<retentionPeriod>" in text
    assert root.tag.endswith("capabilities")
