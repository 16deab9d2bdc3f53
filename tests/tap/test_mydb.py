"""MyDB: users' own tables over REST (ASGI), their access rules, names, quota, CLI handlers."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sciplat.tap.app import create_app
from sciplat.tap.cli import table_drop, table_list, table_share, table_storage_used
from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapParameterError
from sciplat.tap.services.mydb import user_schema
from sciplat.tap.services.mydb_formats import columns_of, normalize
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import TapServices, build_tap
from tests.tap.conftest import TOKENS, fake_hub
from tests.tap.test_upload import targets, votable_bytes

# ada (good-token, group astro) from conftest, plus these
USERS = {
    "mydb-eve": {"name": "eve", "groups": ["astro"], "scopes": ["access:services"]},
    "mydb-mal": {"name": "mal", "groups": ["other"], "scopes": ["access:services"]},
    "mydb-odd": {"name": "Jo.Doe-1_x", "groups": [], "scopes": ["access:services"]},
}
CSV = b"id,ra,dec,note\n1,56.75,24.12,pleiades\n2,10.5,-5.25,\n3,0.0,0.0,origin\n"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", autouse=True)
def _tokens() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for token, owner in USERS.items():
            mp.setitem(TOKENS, token, owner)
        yield


def make_services(hipparcos_dir: Path, tmp_path: Path, limit: int | None = None) -> TapServices:
    return build_tap(TapConfig(default_maxrec=1000), tmp_path, hub=fake_hub(),
                     backend=DuckDBBackend(hipparcos_dir), jobs_dir=tmp_path / "jobs",
                     table_storage=lambda _n, _g: limit, mydb_dir=tmp_path)  # fmt: skip


@pytest.fixture
async def services(hipparcos_dir: Path, tmp_path: Path) -> AsyncIterator[TapServices]:
    built = make_services(hipparcos_dir, tmp_path)
    await built.jobs.start()
    yield built
    await built.jobs.stop()
    built.jobs.store.close()
    built.mydb.store.close()
    built.backend.close()


@pytest.fixture
async def client(services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as c:
        yield c


async def put_csv(client: httpx.AsyncClient, name: str, token: str = "good-token",  # noqa: S107 - the fake hub's
                  body: bytes = CSV) -> httpx.Response:  # fmt: skip
    headers = {**auth(token), "Content-Type": "text/csv"}
    return await client.put(f"/api/tap/tables/{name}", content=body, headers=headers)


async def query(client: httpx.AsyncClient, adql: str, token: str | None = "good-token") -> str:  # noqa: S107
    headers = auth(token) if token else {}
    r = await client.post("/api/tap/sync", data={"QUERY": adql, "LANG": "ADQL",
                                                 "FORMAT": "csv"}, headers=headers)  # fmt: skip
    return r.text.replace('"', "")  # pyarrow quotes CSV strings


def test_user_schema_is_one_to_one_and_an_adql_identifier() -> None:
    assert user_schema("ada") == "user_ada"
    names = ["a_b", "a-b", "a.b", "a__b", "a_2db", "A-b", "ä", "a_", "a__"]
    schemas = [user_schema(n) for n in names]
    assert len(set(schemas)) == len(names)
    assert all(s.isascii() and s.replace("_", "").isalnum() and s[0].isalpha() for s in schemas)
    assert user_schema("Jo.Doe-1_x") == "user__4ao_2e_44oe_2d1__x"


async def test_save_csv_then_query_and_describe(client: httpx.AsyncClient) -> None:
    r = await put_csv(client, "user_ada.marks")
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3 and r.json()["owner"] == "ada"
    assert (await put_csv(client, "user_ada.marks")).status_code == 200  # replaced
    text = await query(client, "SELECT id, note FROM user_ada.marks ORDER BY id")
    assert text.splitlines() == ["id,note", "1,pleiades", "2,", "3,origin"]
    # schema.table.column and a join with the catalogue
    text = await query(client, "SELECT user_ada.marks.id, h.hip FROM user_ada.marks "
                       "JOIN hipparcos.main AS h ON h.hip = user_ada.marks.id + 1 ORDER BY 1")
    assert text.splitlines()[1:] == ["1,2", "2,3", "3,4"]
    r = await client.get("/api/tap/tables/user_ada.marks", headers=auth("good-token"))
    assert r.status_code == 200 and "<name>user_ada.marks</name>" in r.text
    assert "<name>hipparcos.main</name>" not in r.text
    # VOSI's child resource works for catalogue tables too (anonymous: public schemas only)
    r = await client.get("/api/tap/tables/hipparcos.main")
    assert r.status_code == 200 and "<name>hpmag</name>" in r.text
    for hidden in ("user_ada.marks", "nosuch.table", "hipparcos"):
        r = await client.get(f"/api/tap/tables/{hidden}")
        assert r.status_code == 404 and "is not available" in r.text


async def test_parquet_and_votable_bodies_keep_units(client: httpx.AsyncClient) -> None:
    field = pa.field("mag", pa.float64(), metadata={"unit": "mag", "ucd": "phot.mag"})
    table = pa.Table.from_arrays([pa.array([1.5, 2.5]), pa.array(["a", "b"])],
                                 schema=pa.schema([field, pa.field("n", pa.large_string())]))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = await client.put("/api/tap/tables/user_ada.pq", content=buf.getvalue(), headers={
        **auth("good-token"), "Content-Type": "application/vnd.apache.parquet"})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post("/api/tap/sync", headers=auth("good-token"), data={
        "QUERY": "SELECT mag FROM user_ada.pq", "LANG": "ADQL"})  # fmt: skip
    assert 'unit="mag"' in r.text and 'ucd="phot.mag"' in r.text
    r = await client.put("/api/tap/tables/user_ada.vot", content=r.content, headers={
        **auth("good-token"), "Content-Type": "application/x-votable+xml"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["columns"][0]["unit"] == "mag"


async def _wait(client: httpx.AsyncClient, job: str) -> None:
    """Poll (UWS WAIT, with a deadline) until the job is COMPLETED."""
    deadline = time.monotonic() + 60
    phase = ""
    while phase not in ("COMPLETED", "ERROR") and time.monotonic() < deadline:
        r = await client.get(f"/api/tap/async/{job}/phase", headers=auth("good-token"))
        phase = r.text.strip()
        await client.get(f"/api/tap/async/{job}", params={"WAIT": 5, "PHASE": phase},
                         headers=auth("good-token"))  # fmt: skip
    assert phase == "COMPLETED"


async def test_save_from_async_job_result(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/tap/async", headers=auth("good-token"), data={
        "QUERY": "SELECT TOP 5 hip, hpmag FROM hipparcos.main ORDER BY hip", "LANG": "ADQL",
        "PHASE": "RUN"})  # fmt: skip
    job = r.headers["location"].rsplit("/", 1)[1]
    await _wait(client, job)
    r = await client.put(f"/api/tap/tables/user_ada.bright?job={job}", headers=auth("good-token"))
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 5
    assert [c["unit"] for c in r.json()["columns"]] == ["", "mag"]
    assert r.json()["truncated"] is False
    r = await client.post("/api/tap/async", headers=auth("good-token"), data={
        "QUERY": "SELECT hip FROM hipparcos.main", "LANG": "ADQL", "FORMAT": "json",
        "MAXREC": 2, "PHASE": "RUN"})  # fmt: skip
    as_json = r.headers["location"].rsplit("/", 1)[1]
    await _wait(client, as_json)
    r = await client.put(f"/api/tap/tables/user_ada.j?job={as_json}", headers=auth("good-token"))
    assert r.status_code == 400 and "RESPONSEFORMAT=votable, csv or parquet" in r.text
    r = await client.post("/api/tap/async", headers=auth("good-token"), data={
        "QUERY": "SELECT hip FROM hipparcos.main", "LANG": "ADQL", "FORMAT": "parquet",
        "MAXREC": 2, "PHASE": "RUN"})  # fmt: skip
    cut = r.headers["location"].rsplit("/", 1)[1]
    await _wait(client, cut)
    r = await client.put(f"/api/tap/tables/user_ada.cut?job={cut}", headers=auth("good-token"))
    assert r.status_code == 201 and r.json()["rows"] == 2 and r.json()["truncated"] is True
    # a job reads the owner's tables (with the groups the job was created with)
    r = await client.post("/api/tap/async", headers=auth("good-token"), data={
        "QUERY": "SELECT SUM(hip) AS s FROM user_ada.bright", "LANG": "ADQL", "FORMAT": "csv",
        "PHASE": "RUN"})  # fmt: skip
    reads = r.headers["location"].rsplit("/", 1)[1]
    await _wait(client, reads)
    r = await client.get(f"/api/tap/async/{reads}/results/result", headers=auth("good-token"))
    assert r.text.replace('"', "").splitlines() == ["s", "15"]
    # another user's job is "no such job" for them
    r = await client.put(f"/api/tap/tables/user_eve.stolen?job={job}", headers=auth("mydb-eve"))
    assert r.status_code == 404


async def test_sharing_controls_queries_tap_schema_and_tables(client: httpx.AsyncClient) -> None:
    before = await query(client, "SELECT * FROM user_ada.shared", "mydb-eve")
    assert (await put_csv(client, "user_ada.shared")).status_code == 201
    assert (await put_csv(client, "user_ada.private")).status_code == 201
    # not shared: eve is told exactly what she was told before it existed
    assert await query(client, "SELECT * FROM user_ada.shared", "mydb-eve") == before
    assert "is not available" in before
    r = await client.post("/api/tap/tables/user_ada.shared/sharing", headers=auth("good-token"),
                          data={"group": "astro", "action": "share"})  # fmt: skip
    assert r.status_code == 200 and r.json()["shared_with"] == ["astro"]
    text = await query(client, "SELECT COUNT(*) AS n FROM user_ada.shared", "mydb-eve")
    assert text.splitlines() == ["n", "3"]
    listed = await query(client, "SELECT table_name FROM TAP_SCHEMA.tables "
                         "WHERE schema_name LIKE 'user%' ORDER BY 1", "mydb-eve")  # fmt: skip
    assert listed.splitlines()[1:] == ["user_ada.shared"]
    cols = await query(client, "SELECT column_name FROM TAP_SCHEMA.columns "
                       "WHERE table_name = 'user_ada.shared' ORDER BY column_index", "mydb-eve")
    assert cols.splitlines()[1:] == ["id", "ra", "dec", "note"]
    mine = await query(client, "SELECT TAP_SCHEMA.tables.table_name FROM TAP_SCHEMA.tables "
                       "WHERE TAP_SCHEMA.tables.schema_name = 'user_ada' ORDER BY 1")
    assert mine.splitlines()[1:] == ["user_ada.private", "user_ada.shared"]
    joined = await query(client, "SELECT COUNT(*) AS n FROM TAP_SCHEMA.tables AS t JOIN "
                         "TAP_SCHEMA.columns AS c ON c.table_name = t.table_name "
                         "WHERE t.table_name = 'user_ada.private'")  # fmt: skip
    assert joined.splitlines() == ["n", "4"]
    for token, sees in (("mydb-eve", True), ("mydb-mal", False), (None, False)):
        r = await client.get("/api/tap/tables", headers=auth(token) if token else {})
        assert ("user_ada.shared" in r.text) is sees and "user_ada.private" not in r.text
        assert "hipparcos.main" in r.text
    assert "user_ada" not in await query(client, "SELECT * FROM TAP_SCHEMA.tables", "mydb-mal")
    # mal is outside astro; eve may read but not change it
    assert await query(client, "SELECT * FROM user_ada.shared", "mydb-mal") == before
    r = await client.get("/api/tap/tables/user_ada.shared/sharing", headers=auth("mydb-eve"))
    assert r.status_code == 200 and "shared_with" not in r.json()
    r = await client.delete("/api/tap/tables/user_ada.shared", headers=auth("mydb-eve"))
    assert r.status_code == 403 and "only its owner, ada" in r.text
    r = await client.post("/api/tap/tables/user_ada.shared/sharing", headers=auth("good-token"),
                          data={"group": "astro", "action": "unshare"})  # fmt: skip
    assert r.json()["shared_with"] == []
    assert await query(client, "SELECT * FROM user_ada.shared", "mydb-eve") == before
    r = await client.delete("/api/tap/tables/user_ada.shared", headers=auth("good-token"))
    assert r.status_code == 204
    assert "is not available" in await query(client, "SELECT * FROM user_ada.shared")


async def test_other_users_tables_refused_like_missing_ones(client: httpx.AsyncClient) -> None:
    assert (await put_csv(client, "user_ada.secret")).status_code == 201
    for path in ("user_ada.secret", "user_ada.nosuch"):
        for method in ("GET", "DELETE"):
            r = await client.request(method, f"/api/tap/tables/{path}", headers=auth("mydb-mal"))
            assert r.status_code == 404
            assert r.text == f"table '{path}' is not available. TAP_SCHEMA.tables lists the " \
                "tables you can query.\n"
        r = await client.post(f"/api/tap/tables/{path}/sharing", headers=auth("mydb-mal"),
                              data={"group": "other"})  # fmt: skip
        assert r.status_code == 404
    # writing another's schema, even over an existing table
    r = await put_csv(client, "user_ada.secret", "mydb-mal")
    assert r.status_code == 403 and "only your own schema, user_mal" in r.text
    assert "is not available" in await query(client, "SELECT * FROM user_ada.secret", None)
    r = await put_csv(client, "user_mal/../user_ada.t", "mydb-mal")  # the client drops ../
    assert r.status_code == 403 and "only your own schema, user_mal" in r.text
    r = await put_csv(client, "user_ada.x", "nope-token")
    assert r.status_code == 401
    r = await client.put("/api/tap/tables/user_ada.x", content=CSV)
    assert r.status_code == 401


@pytest.mark.parametrize("name", [
    "user_ada", "user_ada.", ".t", "user_ada.a.b", "user_ada..t", "user_ada%2F..%2Fuser_eve.t",
    "user_ada.t/x", '"user_ada"."t"', "user_ada.t'--", "user_ada.t;drop", "user_ada.1t",
    "user_ada." + "t" * 64, "user_ada.t%00", "user_ada.tëst",
])  # fmt: skip
async def test_bad_names_are_refused(client: httpx.AsyncClient, name: str) -> None:
    r = await put_csv(client, name)
    assert r.status_code == 400, (name, r.text)
    assert "is not a table name: write <schema>.<table>" in r.text


async def test_reserved_words_are_not_table_names(client: httpx.AsyncClient) -> None:
    r = await put_csv(client, "user_ada.select")
    assert r.status_code == 400 and "'select' is an ADQL reserved word" in r.text


@pytest.mark.parametrize("schema", ["TAP_SCHEMA", "tap_upload", "hipparcos", "sciplat_meta",
                                    "information_schema", "main", "mine"])  # fmt: skip
async def test_reserved_schemas_are_refused(client: httpx.AsyncClient, schema: str) -> None:
    r = await put_csv(client, f"{schema}.t")
    assert r.status_code == 400 and "save your tables in your own schema, user_ada" in r.text


async def test_odd_user_names_get_their_own_schema(client: httpx.AsyncClient) -> None:
    schema = user_schema("Jo.Doe-1_x")
    r = await put_csv(client, f"{schema}.t", "mydb-odd")
    assert r.status_code == 201, r.text
    text = await query(client, f"SELECT COUNT(*) AS n FROM {schema}.t", "mydb-odd")  # noqa: S608
    assert text.splitlines() == ["n", "3"]
    r = await put_csv(client, "user_jo_2edoe_2d1_x.t", "mydb-odd")
    assert r.status_code == 403


async def test_bad_bodies_are_refused(client: httpx.AsyncClient) -> None:
    cases = [
        ("text/plain", CSV, "Content-Type text/plain cannot be stored"),
        ("text/csv", b"a b,c\n1,2\n", "cannot be used in ADQL"),
        ("text/csv", b"a,A\n1,2\n", "two columns are called 'A'"),
        ("application/vnd.apache.parquet", b"not parquet", "body cannot be read"),
        ("application/x-votable+xml", b"<nope/>", "not a VOTable"),
    ]
    for mime, body, message in cases:
        r = await client.put("/api/tap/tables/user_ada.t", content=body,
                             headers={**auth("good-token"), "Content-Type": mime})  # fmt: skip
        assert r.status_code == 400 and message in r.text, (mime, r.text)


async def test_body_limit(hipparcos_dir: Path, tmp_path: Path) -> None:
    services = build_tap(TapConfig(mydb_max_bytes=1024), tmp_path, hub=fake_hub(),
                         backend=DuckDBBackend(hipparcos_dir), mydb_dir=tmp_path)  # fmt: skip
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        r = await put_csv(client, "user_ada.big", body=CSV * 100)
    services.backend.close()
    assert r.status_code == 400 and "mydb_max_bytes" in r.text


async def test_table_storage_quota(hipparcos_dir: Path, tmp_path: Path) -> None:
    services = make_services(hipparcos_dir, tmp_path, limit=2000)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        first = await put_csv(client, "user_ada.one")
        assert first.status_code == 201, first.text
        used = first.json()["bytes"]
        assert used <= 2000 < 2 * used  # a second table does not fit, a replacement does
        assert (await put_csv(client, "user_ada.one")).status_code == 200
        r = await put_csv(client, "user_ada.two")
        assert r.status_code == 403
        assert "quota table_storage exceeded" in r.text
        assert f"use {used / 1024:.1f} KiB of 2.0 KiB and user_ada.two needs" in r.text
        assert "is not available" in await query(client, "SELECT * FROM user_ada.two")
        assert not list((tmp_path / "mydb" / "user_ada").glob(".*tmp"))  # no leftovers
        assert table_storage_used(TapConfig(data_dir=str(tmp_path)), tmp_path, "ada") == used
    services.backend.close()
    services = make_services(hipparcos_dir, tmp_path / "zero", limit=0)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        r = await put_csv(client, "user_ada.one")
        assert r.status_code == 403 and "quota table_storage is 0" in r.text
    services.backend.close()


async def test_cli_list_share_drop(client: httpx.AsyncClient, services: TapServices) -> None:
    assert table_list(services) == "no user tables"
    assert (await put_csv(client, "user_ada.t1")).status_code == 201
    assert (await put_csv(client, "user_eve.t2", "mydb-eve")).status_code == 201
    out = table_list(services, "ada").splitlines()
    assert len(out) == 2 and out[1].startswith("user_ada.t1") and out[1].endswith("-")
    # operators share with any group
    assert table_share(services, "user_ada.t1", "other", True).endswith("shared with: other")
    text = await query(client, "SELECT COUNT(*) AS n FROM user_ada.t1", "mydb-mal")
    assert text.splitlines() == ["n", "3"]
    assert table_share(services, "user_ada.t1", "other", False).endswith("shared with: nobody")
    assert "is not available" in await query(client, "SELECT * FROM user_ada.t1", "mydb-mal")
    assert table_drop(services, "user_eve.t2").startswith("dropped user_eve.t2 of eve")
    assert "user_eve" not in table_list(services)
    # a user shares only with a group they are in
    r = await client.post("/api/tap/tables/user_ada.t1/sharing", headers=auth("good-token"),
                          data={"group": "other"})  # fmt: skip
    assert r.status_code == 403 and "groups you are in (yours: astro)" in r.text


async def test_user_tables_with_uploads_and_bare_names(client: httpx.AsyncClient) -> None:
    assert (await put_csv(client, "user_ada.marks")).status_code == 201
    # an upload named like the names user tables get under the upload schema does not clash
    r = await client.post("/api/tap/sync", headers=auth("good-token"), data={
        "QUERY": "SELECT COUNT(*) AS n FROM TAP_UPLOAD.mydb_0 AS u, user_ada.marks AS m",
        "LANG": "ADQL", "FORMAT": "csv", "UPLOAD": "mydb_0,param:f"},
        files={"f": ("t.xml", votable_bytes(targets()))})  # fmt: skip
    assert r.text.replace("\"", "").splitlines() == ["n", str(3 * len(targets()))], r.text
    # a user table's name without its schema, when no other table has it
    text = await query(client, "SELECT MAX(id) AS m FROM marks")
    assert text.splitlines() == ["m", "3"]


def test_column_types_are_made_queryable() -> None:
    table = normalize(pa.table({
        "b": pa.array([1, -2], pa.int8()), "u": pa.array([1, 2**40], pa.uint64()),
        "h": pa.array([1.5, 2.0], pa.float16()),
        "d": pa.array(["x", "y"]).dictionary_encode(),
        "t": pa.array([0, 86_400_000_000], pa.timestamp("us")),
        "n": pa.array([None, None], pa.null()), "s": pa.array(["a", "b"], pa.large_string()),
    }))  # fmt: skip
    assert [str(f.type) for f in table.schema] == [
        "int16", "int64", "float", "string", "string", "string", "string"]
    assert table.column("t").to_pylist()[1].startswith("1970-01-02")
    assert [c.datatype for c in columns_of(table)] == [
        "short", "long", "float", "char", "char", "char", "char"]
    with pytest.raises(TapParameterError, match="column 'l' has type list<item: int64>"):
        normalize(pa.table({"l": pa.array([[1], [2]])}))
    with pytest.raises(TapParameterError, match="the table has no columns"):
        normalize(pa.table({}))
