"""TAP hot path: ADQL translation (sqlglot vs queryparser vs a lark LALR grammar), HEALPix cone
ranges, DuckDB cones (sorted vs unsorted), VOTable writing (ours vs astropy), and a 1° cone
through the HTTP service.

Run from the checkout: ``python bench/tap.py [--rows 10000000] [--json FILE]``. Optional
competitors (queryparser-python3, lark, healpy) are measured when installed, skipped otherwise.
Everything runs in this process (uvicorn in a thread on a free loopback port) and in a temporary
directory removed at the end. Numbers are medians (and p90 where it matters) in milliseconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from sciplat.tap import healpix  # noqa: E402
from sciplat.tap.adql.parse import parse_adql  # noqa: E402
from sciplat.tap.adql.translate import translate  # noqa: E402
from sciplat.tap.models.catalogue import SchemaInfo  # noqa: E402
from sciplat.tap.output.votable import write_votable  # noqa: E402
from sciplat.tap.storage.duckdb import DuckDBBackend  # noqa: E402
from sciplat.tap.storage.readers import hipparcos_path, read_hipparcos  # noqa: E402

CONE = (
    "SELECT TOP 100 hip, ra, dec, hpmag FROM hipparcos.main WHERE "
    "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 1.0))"
)
RESULTS: dict[str, Any] = {}

# A compact ADQL subset (SELECT/FROM/WHERE/ORDER, expressions, functions) for lark's LALR parser:
# enough to parse the cone query, so the parse time is a lower bound for a full ADQL grammar.
LARK_GRAMMAR = r"""
?start: query
query: "SELECT"i ("TOP"i INT)? items "FROM"i tables ("WHERE"i cond)? ("ORDER"i "BY"i expr)?
items: "*" | expr ("AS"i? NAME)? ("," expr ("AS"i? NAME)?)*
tables: qname ("AS"i? NAME)? ("," qname ("AS"i? NAME)?)*
?cond: cond_and | cond "OR"i cond_and
?cond_and: pred | cond_and "AND"i pred
?pred: expr COMP expr | "NOT"i pred | "(" cond ")"
?expr: term | expr ("+"|"-"|"||") term
?term: atom | term ("*"|"/") atom
?atom: NUMBER | STRING | qname | NAME "(" (expr ("," expr)*)? ")" | "(" expr ")" | "-" atom
qname: NAME ("." NAME)*
COMP: "=" | "<>" | "<=" | ">=" | "<" | ">"
STRING: /'([^']|'')*'/
%import common.CNAME -> NAME
%import common.INT
%import common.NUMBER
%import common.WS
%ignore WS
"""


def timed(f: Callable[[], object], n: int) -> list[float]:
    f()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, samples: list[float]) -> None:
    p50 = statistics.median(samples)
    p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
    RESULTS[name] = {"p50_ms": round(p50, 3), "p90_ms": round(p90, 3), "n": len(samples)}
    print(f"{name:58s} p50 {p50:9.3f} ms   p90 {p90:9.3f} ms   (n={len(samples)})")


def bench_translation(backend: DuckDBBackend) -> None:
    catalogue = backend.catalogue()
    report("translate: sciplat (sqlglot + checks + geometry)",
           timed(lambda: translate(CONE, catalogue, maxrec=1000), 500))  # fmt: skip
    report("parse only: sqlglot + ADQL checks", timed(lambda: parse_adql(CONE), 500))
    try:
        from queryparser.adql import ADQLQueryTranslator  # noqa: PLC0415
    except ImportError:
        print("queryparser-python3 not installed: skipped")
    else:
        report("translate: queryparser-python3 (ANTLR) to PostgreSQL",
               timed(lambda: ADQLQueryTranslator(CONE).to_postgresql(), 10))  # fmt: skip
    try:
        from lark import Lark  # noqa: PLC0415
    except ImportError:
        print("lark not installed: skipped")
    else:
        parser = Lark(LARK_GRAMMAR, parser="lalr")
        report("parse only: lark LALR, ADQL subset (no checks, no SQL)",
               timed(lambda: parser.parse(CONE), 500))  # fmt: skip
    report("HEALPix ranges of a 1 deg cone (order 12)",
           timed(lambda: healpix.disc_ranges(12, 56.75, 24.12, 1.0), 2000))  # fmt: skip


def bench_hipparcos(backend: DuckDBBackend) -> None:
    sql = translate(CONE, backend.catalogue(), maxrec=1000).sql
    report("DuckDB: 1 deg cone on Hipparcos (118k rows)", timed(lambda: backend.run(sql, 30), 200))


def bench_synthetic(rows: int, directory: Path) -> None:
    rng = np.random.default_rng(1)
    ra = rng.uniform(0, 360, rows)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, rows)))
    pix = healpix.ang2pix(12, ra, dec)
    table = pa.table({"id": np.arange(rows), "ra": ra, "dec": dec, "healpix": pix,
                      "mag": rng.normal(15, 2, rows)})  # fmt: skip
    order = np.argsort(pix, kind="stable")
    con = duckdb.connect(str(directory / "synthetic.duckdb"))
    con.register("unsorted", table)
    con.register("sorted_rows", table.take(pa.array(order)))
    con.execute("CREATE TABLE s AS SELECT * FROM sorted_rows")
    con.execute("CREATE TABLE u AS SELECT * FROM unsorted")
    ranges = healpix.disc_ranges(12, 56.75, 24.12, 1.0)
    prefilter = " OR ".join(f"healpix BETWEEN {lo} AND {hi}" for lo, hi in ranges)
    exact = (
        "POWER(SIN(RADIANS(24.12 - dec) / 2), 2) + COS(RADIANS(dec)) * 0.9126915874035028"
        " * POWER(SIN(RADIANS(56.75 - ra) / 2), 2) <= 7.615242180438042e-05"
    )
    for name, table_name, where in (
        ("sorted, HEALPix ranges + exact", "s", f"({prefilter}) AND {exact}"),
        ("unsorted, HEALPix ranges + exact", "u", f"({prefilter}) AND {exact}"),
        ("sorted, exact test only (full scan)", "s", exact),
    ):
        query = f"SELECT id, ra, dec, mag FROM {table_name} WHERE {where}"  # noqa: S608
        n = 50 if "only" not in name and "unsorted" not in name else 5
        report(f"DuckDB {rows:,} rows: {name}",
               timed(lambda q=query: con.sql(q).to_arrow_table(), n))  # fmt: skip
    con.close()


def bench_votable() -> None:
    rng = np.random.default_rng(2)
    table = pa.table({f"c{i}": rng.normal(size=100_000) for i in range(20)})
    for serialization in ("binary2", "tabledata"):
        report(f"VOTable {serialization}, 100k rows x 20 doubles: sciplat",
               timed(lambda s=serialization: write_votable(table, {}, s), 3))  # fmt: skip
    from astropy.io.votable import from_table  # noqa: PLC0415
    from astropy.table import Table  # noqa: PLC0415

    vo = from_table(Table(table.to_pydict()))
    for serialization in ("binary2", "tabledata"):
        write = lambda s=serialization: vo.to_xml(io.BytesIO(), tabledata_format=s)  # noqa: E731
        report(f"VOTable {serialization}, 100k rows x 20 doubles: astropy", timed(write, 1))


def bench_http(directory: Path) -> None:
    import httpx  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415

    from sciplat.tap.app import create_app  # noqa: PLC0415
    from sciplat.tap.config import TapConfig  # noqa: PLC0415
    from sciplat.tap.wiring import build_tap  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    backend = DuckDBBackend(directory)
    app = create_app(build_tap(TapConfig(), directory, backend=backend))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port}/api/tap/sync"
    with httpx.Client() as client:
        form = {"LANG": "ADQL", "QUERY": CONE}
        report("HTTP /api/tap/sync: 1 deg cone, BINARY2 (uvicorn, keep-alive)",
               timed(lambda: client.post(url, data=form), 200))  # fmt: skip
    server.should_exit = True
    thread.join(timeout=10)
    backend.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=0, help="synthetic catalogue size (0: skip)")
    parser.add_argument("--row-group-size", type=int, default=16_384)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="tap-bench-") as tmp:
        directory = Path(tmp)
        backend = DuckDBBackend(directory / "tap", row_group_size=args.row_group_size)
        info, data = read_hipparcos(hipparcos_path())
        backend.load_table(info, SchemaInfo("hipparcos", "demo"), data)
        bench_translation(backend)
        bench_hipparcos(backend)
        backend.close()
        if args.rows:
            bench_synthetic(args.rows, directory)
        bench_votable()
        bench_http(directory / "tap")
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
