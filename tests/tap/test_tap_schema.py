"""TAP_SCHEMA rows and /tables as TAP 1.1 and taplint want them: reserved column names
delimited, TAP_SCHEMA's own foreign keys, NULL (not "") for absent metadata, strings typed as
strings in results."""

from __future__ import annotations

import io

import pyarrow as pa
from astropy.io.votable import parse

from sciplat.tap.models.catalogue import Catalogue, ColumnInfo, ForeignKey, SchemaInfo, TableInfo
from sciplat.tap.output.vosi import tableset
from sciplat.tap.output.votable import write_votable
from sciplat.tap.tap_schema import (
    build_rows,
    published_name,
    read_catalogue,
    stored_name,
    with_tap_schema,
)

SOURCES = TableInfo("survey", "sources", (
    ColumnInfo("id", "long", "source id", ucd="meta.id"),
    ColumnInfo("size", "double", "a column named like an ADQL reserved word", unit="arcsec"),
    ColumnInfo("flag", "char", arraysize="*"),
))  # fmt: skip
OBJECTS = TableInfo("survey", "objects", (ColumnInfo("id", "long"),
                                          ColumnInfo("source", "long")))  # fmt: skip
CATALOGUE = Catalogue(
    schemas=(SchemaInfo("survey"),),
    tables=(SOURCES, OBJECTS),
    keys=(ForeignKey("survey.obj_src", "survey.objects", "survey.sources", (("source", "id"),)),),
)


def _rows(name: str) -> list[dict[str, object]]:
    return list(build_rows(CATALOGUE)[name].to_pylist())


def test_reserved_words_are_published_delimited_and_read_back_plain() -> None:
    assert published_name("size") == '"size"'
    assert published_name("Select") == '"Select"'
    assert published_name("ra") == "ra"
    assert published_name("dec") == "dec"  # not an ADQL reserved word
    assert stored_name('"size"') == "size"
    names = {(r["table_name"], r["column_name"]) for r in _rows("columns")}
    assert ("TAP_SCHEMA.columns", '"size"') in names  # TAP 1.1 §4.3
    assert ("survey.sources", '"size"') in names
    assert ("survey.sources", "size") not in names


def test_tap_schema_lists_its_own_foreign_keys_once() -> None:
    keys = {(r["from_table"], r["target_table"]) for r in _rows("keys")}
    assert {
        ("TAP_SCHEMA.tables", "TAP_SCHEMA.schemas"),
        ("TAP_SCHEMA.columns", "TAP_SCHEMA.tables"),
        ("TAP_SCHEMA.keys", "TAP_SCHEMA.tables"),
        ("TAP_SCHEMA.key_columns", "TAP_SCHEMA.keys"),
        ("survey.objects", "survey.sources"),
    } <= keys
    assert len(_rows("keys")) == 6  # keys→tables twice (from_table, target_table)
    pairs = {(r["key_id"], r["from_column"], r["target_column"]) for r in _rows("key_columns")}
    assert ("survey.obj_src", "source", "id") in pairs
    assert len(pairs) == 6
    # read back (as a backend does), then published again: not doubled
    back = _read_back(CATALOGUE)
    assert back.keys == CATALOGUE.keys
    assert len(with_tap_schema(back).keys) == 6


def test_absent_metadata_is_null_not_empty() -> None:
    sources = [r for r in _rows("columns") if r["table_name"] == "survey.sources"]
    flag = next(r for r in sources if r["column_name"] == "flag")
    assert flag["utype"] is None and flag["unit"] is None and flag["ucd"] is None
    assert flag["description"] is None
    assert all(r["utype"] is None for r in _rows("tables") + _rows("schemas") + _rows("keys"))


def test_read_back_gives_the_same_catalogue() -> None:
    back = _read_back(CATALOGUE)
    assert back.table("survey", "sources") == SOURCES
    assert back.table("survey", "sources").column("size") is not None  # type: ignore[union-attr]


def test_tables_document_delimits_names_and_lists_foreign_keys() -> None:
    doc = tableset(with_tap_schema(CATALOGUE))
    assert "<column><name>&quot;size&quot;</name>" in doc or '<column><name>"size"</name>' in doc
    assert (
        "<foreignKey><targetTable>survey.sources</targetTable><fkColumn><fromColumn>source"
        "</fromColumn><targetColumn>id</targetColumn></fkColumn></foreignKey>"
    ) in doc
    assert "<targetTable>TAP_SCHEMA.schemas</targetTable>" in doc


def test_strings_are_strings_even_when_short_or_empty() -> None:
    """STILTS/TOPCAT read char without arraysize (or arraysize=1) as one character, so short
    string columns are declared at least 2 wide; a column declared a single char stays one."""
    table = pa.table({"s": ["a", "", None], "c": ["x", "y", "z"], "e": ["", "", ""]})
    meta = {"s": ColumnInfo("s", "char", arraysize="*"), "c": ColumnInfo("c", "char")}
    for serialization in ("binary2", "tabledata"):
        doc = write_votable(table, meta, serialization)
        assert b'<FIELD name="s" datatype="char" arraysize="2"/>' in doc
        assert b'<FIELD name="c" datatype="char"/>' in doc
        assert b'<FIELD name="e" datatype="char" arraysize="2"/>' in doc
        rows = parse(io.BytesIO(doc)).get_first_table().to_table()
        assert [str(v) for v in rows["s"].filled("")] == ["a", "", ""]
        assert [str(v) for v in rows["c"]] == ["x", "y", "z"]


def _read_back(catalogue: Catalogue) -> Catalogue:
    rows = {name: table.to_pylist() for name, table in build_rows(catalogue).items()}
    return read_catalogue(rows, {})
