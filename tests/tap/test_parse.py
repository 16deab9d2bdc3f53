"""ADQL parsing: what is accepted, and what is refused with which message."""

from __future__ import annotations

import pytest

from sciplat.tap.adql.parse import parse_adql
from sciplat.tap.errors import AdqlSyntaxError, AdqlUnsupportedError

ACCEPTED = [
    "SELECT TOP 5 a FROM t",
    "SELECT DISTINCT a, b AS c FROM s.t AS x WHERE x.a > 1 ORDER BY c DESC OFFSET 3",
    "SELECT a FROM t WHERE a BETWEEN 1 AND 2 AND b NOT IN (1, 2) OR c IS NOT NULL",
    "SELECT a FROM t WHERE s LIKE 'x%' AND s ILIKE 'Y%'",
    "SELECT COUNT(*), AVG(a), MIN(a), MAX(a), SUM(a) FROM t GROUP BY b HAVING COUNT(*) > 1",
    "SELECT ABS(a), CEILING(a), FLOOR(a), SQRT(a), EXP(a), LOG(a), LOG10(a), POWER(a, 2) FROM t",
    "SELECT SIN(a), COS(a), TAN(a), COT(a), ASIN(a), ACOS(a), ATAN(a), ATAN2(a, b) FROM t",
    "SELECT DEGREES(a), RADIANS(a), PI(), RAND(), ROUND(a, 2), TRUNCATE(a, 1), MOD(a, 3) FROM t",
    "SELECT LOWER(s), UPPER(s), COALESCE(s, 'x'), s || 'y' FROM t",
    "SELECT CAST(a AS INTEGER), CAST(a AS DOUBLE PRECISION), CAST(a AS VARCHAR(10)) FROM t",
    "SELECT a FROM t AS x JOIN u AS y ON x.a = y.a LEFT OUTER JOIN v USING (k)",
    "SELECT a FROM t NATURAL JOIN u CROSS JOIN w",
    "SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = t.a)",
    "SELECT a FROM (SELECT a FROM t) AS sub",
    "WITH near AS (SELECT a FROM t) SELECT a FROM near",
    "SELECT a FROM t UNION SELECT a FROM u",
    "SELECT a & 3, a | 4, a ^ 5, ~a FROM t",
    'SELECT "Mixed Case" FROM t',
    "SELECT a FROM t -- an ADQL comment\nWHERE a = 'it''s'",
    "SELECT 1 FROM t WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 1, 2, 0.5))",
    "SELECT DISTANCE(POINT(ra, dec), POINT(1, 2)), COORD1(POINT(ra, dec)) FROM t",
]


@pytest.mark.parametrize("query", ACCEPTED)
def test_accepted(query: str) -> None:
    parse_adql(query)


REFUSED = [
    ("SELECT a FROM t; DROP TABLE t", "exactly one query"),
    ("SELECT a FROM t;", "remove the ';'"),
    ("DROP TABLE t", "one SELECT statement"),
    ("DELETE FROM t", "one SELECT statement"),
    ("INSERT INTO t VALUES (1)", "not an ADQL function"),
    ("UPDATE t SET a = 1", "one SELECT statement"),
    ("CREATE TABLE x AS SELECT 1", "one SELECT statement"),
    ("ATTACH 'x.db'", "not valid ADQL"),
    ("COPY t TO '/tmp/x'", "one SELECT statement"),
    ("PRAGMA version", "one SELECT statement"),
    ("SELECT a FROM t /* hidden */", "'/* */' comments are not ADQL"),
    ("SELECT a::int FROM t", "CAST(x AS type)"),
    ("SELECT a % 2 FROM t", "MOD(x, y)"),
    ("SELECT a FROM t LIMIT 3", "SELECT TOP n"),
    ("SELECT read_csv('/etc/passwd') FROM t", "read_csv() at line 1 is not an ADQL function"),
    ("SELECT * FROM read_parquet('x.parquet')", "not an ADQL function"),
    ("SELECT * FROM duckdb_tables()", "not an ADQL function"),
    ("SELECT version() FROM t", "not an ADQL function"),
    ("SELECT sqrtt(a) FROM t", "did you mean SQRT"),
    ("SELECT CEIL(a) FROM t", "did you mean CEILING"),
    ("SELECT CASE WHEN a > 1 THEN 1 END FROM t", "CASE is not part of ADQL"),
    ("SELECT ROW_NUMBER() OVER () FROM t", "not an ADQL function"),
    ("SELECT TRUE FROM t", "TRUE/FALSE"),
    ("SELECT a FROM t WHERE a = ?", "'?'"),
    ("SELECT a FROM t WHERE a = $1", "not an ADQL identifier"),
    ("SELECT [1, 2] FROM t", "'['"),
    ("SELECT 0x1F FROM t", "hexadecimal"),
    ("SELECT a FROM t QUALIFY a > 1", "QUALIFY"),
    ("SELECT a FROM t GROUP BY ALL", "GROUP BY ALL"),
    ("SELECT CAST(a AS BLOB) FROM t", "CAST to"),
    ("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r", "WITH RECURSIVE"),
    ("SELECT a FROM t AS x ASOF JOIN u ON x.a >= u.a", "ASOF joins"),
    ("SELECT a IS DISTINCT FROM b FROM t", "not part of ADQL"),
    ("SELECT POINT(1) FROM t", "POINT takes 2 to 3 arguments"),
    ("SELECT a FROM t WHERE", "not valid ADQL at line 1"),
    ("SELECT a FROM t ORDER BY a NULLS FIRST", "NULLS FIRST/LAST"),
    ("SELECT \"read_csv\"('/etc/passwd') FROM t", "not part of ADQL"),
    ("SELECT * FROM t, LATERAL (SELECT 1) AS l", "not an ADQL function"),
    ("SELECT a FROM t WHERE a > ALL (SELECT 1)", "ALL is not part of ADQL"),
    ("SELECT * FROM t USING SAMPLE 10", "TABLESAMPLE"),
    ("SELECT * FROM glob('*')", "not an ADQL function"),
    ("SELECT getenv('HOME') FROM t", "not an ADQL function"),
    ("", "empty"),
]


@pytest.mark.parametrize(("query", "message"), REFUSED)
def test_refused(query: str, message: str) -> None:
    with pytest.raises(AdqlSyntaxError) as caught:
        parse_adql(query)
    assert message in caught.value.message


def test_catalog_qualified_table_is_unsupported() -> None:
    with pytest.raises(AdqlUnsupportedError, match=r"schema\.table"):
        parse_adql("SELECT a FROM db.s.t")


def test_semicolon_inside_string_and_quoted_name_is_data() -> None:
    parse_adql("SELECT \"a;b\" FROM t WHERE s = 'x; DROP TABLE t'")
