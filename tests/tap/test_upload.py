"""TAP_UPLOAD: VOTables sent with a query, joined with the catalogue, refused when too big."""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import numpy as np
import pyarrow as pa
import pytest
from astropy.io.votable import parse
from astropy.table import MaskedColumn, Table

from sciplat.tap.adql.translate import translate
from sciplat.tap.app import create_app
from sciplat.tap.errors import QueryFailedError, TapParameterError, UnknownTableError
from sciplat.tap.services.upload import parse_upload_param, read_votable
from sciplat.tap.storage.backend import QueryCancel
from sciplat.tap.wiring import TapServices

Make = Callable[..., Awaitable[TapServices]]
ADA = {"Authorization": "Bearer good-token"}
JOIN = (
    "SELECT u.name, m.hip FROM TAP_UPLOAD.targets AS u JOIN hipparcos.main AS m "
    "ON 1 = CONTAINS(POINT('ICRS', m.ra, m.dec), CIRCLE('ICRS', u.ra, u.dec, 0.001)) "
    "ORDER BY m.hip"
)


def votable_bytes(table: Table) -> bytes:
    out = io.BytesIO()
    table.write(out, format="votable", tabledata_format="binary2")
    return out.getvalue()


def targets() -> Table:
    """Alcyone and Maia (hip 17702, 17573) at their Hipparcos positions, and an empty spot."""
    table = Table(
        {
            "name": ["Alcyone", "Maia", "nothing"],
            "ra": [56.87115, 56.45669, 10.0],
            "dec": [24.10514, 24.36775, -80.0],
        }
    )
    table["ra"].unit = "deg"
    table["ra"].meta["ucd"] = "pos.eq.ra"
    return table


async def _client(services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        yield client


@pytest.fixture
async def client(started_tap: Make) -> AsyncIterator[httpx.AsyncClient]:
    services = await started_tap(max_upload_bytes=64 * 1024, max_upload_rows=1000)
    async for c in _client(services):
        yield c


def _status(body: bytes) -> tuple[str, str]:
    info = parse(io.BytesIO(body)).resources[0].infos[0]
    return info.value, info.content or ""


async def _sync(client: httpx.AsyncClient, query: str, upload: str | None,
                files: dict[str, bytes], **params: str) -> httpx.Response:  # fmt: skip
    data = {"LANG": "ADQL", "QUERY": query, **params}
    if upload is not None:
        data["UPLOAD"] = upload
    parts = {name: (f"{name}.xml", body, "application/x-votable+xml")
             for name, body in files.items()}  # fmt: skip
    return await client.post("/api/tap/sync", data=data, files=parts or None, headers=ADA)


async def test_upload_join_finds_the_stars(client: httpx.AsyncClient) -> None:
    r = await _sync(client, JOIN, "targets,param:t", {"t": votable_bytes(targets())})
    assert r.status_code == 200
    rows = parse(io.BytesIO(r.content)).get_first_table().to_table()
    assert [(str(n), int(h)) for n, h in zip(rows["name"], rows["hip"], strict=True)] == [
        ("Maia", 17573), ("Alcyone", 17702)
    ]  # fmt: skip


async def test_uploaded_values_units_and_nulls_come_back(client: httpx.AsyncClient) -> None:
    table = Table()
    table["id"] = MaskedColumn(np.array([1, 2, 3], dtype=np.int32), mask=[False, True, False])
    table["flux"] = MaskedColumn([1.5, np.nan, -2.0], mask=[False, False, True], unit="mJy")
    table["label"] = ["Zürich", "plain", "北京"]
    table["flag"] = [True, False, True]
    r = await _sync(client, "SELECT * FROM tap_upload.Mine ORDER BY label", "mine,param:f",
                    {"f": votable_bytes(table)})  # fmt: skip
    back = parse(io.BytesIO(r.content)).get_first_table()
    assert back.get_field_by_id("label").datatype == "unicodeChar"
    result = back.to_table()
    assert list(result["label"]) == ["Zürich", "plain", "北京"]  # code point order
    assert list(result["id"].mask) == [False, True, False]
    assert list(result["flux"].mask) == [False, True, True]  # a float NaN reads as null
    assert result["flux"][0] == 1.5
    assert str(result["flux"].unit) == "mJy"
    assert list(result["flag"]) == [True, False, True]


async def test_upload_is_visible_to_its_own_query_only(client: httpx.AsyncClient) -> None:
    body = votable_bytes(targets())
    assert (await _sync(client, JOIN, "targets,param:t", {"t": body})).status_code == 200
    r = await _sync(client, "SELECT * FROM TAP_UPLOAD.targets", None, {})
    status, message = _status(r.content)
    assert status == "ERROR"
    assert "was not uploaded with this query (uploaded: none)" in message
    r = await _sync(client, "SELECT * FROM TAP_UPLOAD.other", "targets,param:t", {"t": body})
    assert "uploaded: TAP_UPLOAD.targets" in _status(r.content)[1]


def test_backend_keeps_uploads_on_the_querys_own_cursor(tap_services: TapServices) -> None:
    backend = tap_services.backend
    parts = ".".join(f'"{p}"' for p in backend.upload_schema.split("."))
    upload = {"mine": pa.table({"x": list(range(1000))})}
    mine = f'{parts}."mine"'
    long_sql = f"SELECT SUM(SIN(a.x * b.x)) AS s FROM {mine} a, {mine} b, {mine} c"  # noqa: S608
    cancel = QueryCancel()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            backend.run(long_sql, 60, uploads=upload, cancel=cancel)
        except QueryFailedError as exc:
            failure.append(exc)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        # while that query (and its upload) lives, another query cannot see the upload
        with pytest.raises(QueryFailedError, match="mine"):
            backend.run(f"SELECT * FROM {mine}", 10)  # noqa: S608 - fixed test SQL
    finally:
        cancel.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert "aborted" in str(failure[0])


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        ("1abc,param:t", "'1abc' is not allowed"),
        ("a-b,param:t", "'a-b' is not allowed"),
        (f"{'x' * 65},param:t", "is not allowed"),
        ("t,param:t;T,param:t", "used twice"),
        ("t", "is not 'name,uri'"),
        ("t,http://127.0.0.1:8081/hub/api/users", "cannot be fetched by this service"),
        ("t,file:///etc/passwd", "cannot be fetched by this service"),
        ("t,param:missing", "no file part called 'missing'"),
    ],
)
async def test_bad_upload_parameters(client: httpx.AsyncClient, upload: str, message: str) -> None:
    r = await _sync(client, "SELECT * FROM TAP_UPLOAD.t", upload,
                    {"t": votable_bytes(targets())})  # fmt: skip
    status, text = _status(r.content)
    assert status == "ERROR"
    assert message in text


async def test_not_a_votable(client: httpx.AsyncClient) -> None:
    r = await _sync(client, "SELECT * FROM TAP_UPLOAD.t", "t,param:t", {"t": b"ra,dec\n1,2\n"})
    assert "UPLOAD t: not a VOTable that can be read" in _status(r.content)[1]


async def test_oversize_uploads_are_refused(started_tap: Make) -> None:
    services = await started_tap(max_upload_bytes=4096, max_upload_rows=50)
    big = Table({"x": np.arange(2000, dtype=np.float64)})
    many = Table({"x": np.arange(51, dtype=np.int16)})
    async for client in _client(services):
        r = await _sync(client, "SELECT * FROM TAP_UPLOAD.t", "t,param:t",
                        {"t": votable_bytes(big)})  # fmt: skip
        status, text = _status(r.content)
        assert status == "ERROR"
        assert "larger than this service accepts" in text
        assert "4096 bytes, max_upload_bytes" in text
        r = await _sync(client, "SELECT * FROM TAP_UPLOAD.t", "t,param:t",
                        {"t": votable_bytes(many)})  # fmt: skip
        assert "more than 50 rows" in _status(r.content)[1]
        ok = await _sync(client, "SELECT COUNT(*) AS n FROM TAP_UPLOAD.t", "t,param:t",
                         {"t": votable_bytes(many[:50])})  # fmt: skip
        assert parse(io.BytesIO(ok.content)).get_first_table().array["n"][0] == 50


async def test_async_job_with_an_upload(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/tap/async",
        data={"LANG": "ADQL", "QUERY": JOIN, "UPLOAD": "targets,param:t", "PHASE": "RUN"},
        files={"t": ("t.xml", votable_bytes(targets()), "application/x-votable+xml")},
        headers=ADA,
    )
    assert r.status_code == 303, r.text
    url = r.headers["location"].removeprefix("http://tap.test")
    for _ in range(20):
        job = await client.get(url, params={"WAIT": "5"}, headers=ADA)
        if "COMPLETED" in job.text or "ERROR" in job.text:
            break
    assert "<uws:phase>COMPLETED</uws:phase>" in job.text, job.text
    body = (await client.get(f"{url}/results/result", headers=ADA)).content
    assert list(parse(io.BytesIO(body)).get_first_table().to_table()["hip"]) == [17573, 17702]


def test_parse_upload_param_lowercases_and_splits() -> None:
    assert parse_upload_param("Mine,param:a; other,param:b") == [
        ("mine", "param:a"), ("other", "param:b")
    ]  # fmt: skip
    with pytest.raises(TapParameterError, match="at most 16"):
        parse_upload_param(";".join(f"t{i},param:p" for i in range(17)))


def test_read_votable_refuses_array_columns() -> None:
    table = Table({"v": np.zeros((3, 2))})
    with pytest.raises(TapParameterError, match="holds arrays"):
        read_votable("t", votable_bytes(table))


def test_unknown_upload_is_an_unknown_table(tap_services: TapServices) -> None:
    with pytest.raises(UnknownTableError, match="uploaded: none"):
        translate("SELECT * FROM TAP_UPLOAD.t", tap_services.backend.catalogue())


async def test_xtype_of_an_uploaded_column_is_kept(client: httpx.AsyncClient) -> None:
    doc = (
        b'<?xml version="1.0"?><VOTABLE version="1.4" '
        b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        b'<FIELD name="t" datatype="char" arraysize="*" xtype="timestamp"/>'
        b'<FIELD name="c" datatype="char" arraysize="1"/><DATA><TABLEDATA>'
        b"<TR><TD>2020-01-01T00:00:00</TD><TD>x</TD></TR></TABLEDATA></DATA></TABLE>"
        b"</RESOURCE></VOTABLE>"
    )
    r = await _sync(client, "SELECT t, c FROM TAP_UPLOAD.u", "u,param:u", {"u": doc})
    table = parse(io.BytesIO(r.content)).get_first_table()
    assert table.get_field_by_id("t").xtype == "timestamp"
    assert b'<FIELD name="c" datatype="char"/>' in r.content  # one character: no arraysize
    assert table.array["t"][0] == "2020-01-01T00:00:00"
