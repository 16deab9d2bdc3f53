"""The VOTable writer, read back by astropy (the reference reader)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
from astropy.io.votable import parse

from sciplat.tap.models.catalogue import ColumnInfo
from sciplat.tap.output.text import write_csv, write_json
from sciplat.tap.output.votable import error_votable, write_votable

TABLE = pa.table({
    "i": pa.array([1, None, 3], pa.int32()),
    "l": pa.array([2**40, 5, None], pa.int64()),
    "s": pa.array([10, None, -3], pa.int16()),
    "d": [1.5, None, float("nan")],
    "f": pa.array([0.25, 2.0, None], pa.float32()),
    "t": ["x", None, "a<b&c"],
    "b": [True, None, False],
})  # fmt: skip


@pytest.mark.parametrize("serialization", ["binary2", "tabledata"])
def test_astropy_reads_back_values_nulls_and_metadata(serialization: str) -> None:
    meta = {"d": ColumnInfo("d", "double", "a position", unit="deg", ucd="pos.eq.ra")}
    doc = write_votable(TABLE, meta, serialization)
    table = parse(io.BytesIO(doc)).get_first_table().to_table()
    assert list(table["i"].filled(-1)) == [1, -1, 3]
    assert list(table["l"].filled(-1)) == [2**40, 5, -1]
    assert list(table["s"].filled(0)) == [10, 0, -3]
    assert table["d"][0] == 1.5 and np.ma.is_masked(table["d"][1])
    assert table["f"][0] == np.float32(0.25)
    assert list(table["t"])[::2] == ["x", "a<b&c"]
    assert bool(table["b"][0]) is True and bool(table["b"][2]) is False
    assert str(table["d"].unit) == "deg"
    assert table["d"].meta["ucd"] == "pos.eq.ra"
    assert table["d"].description == "a position"


@pytest.mark.parametrize("serialization", ["binary2", "tabledata"])
def test_doubles_round_trip_exactly(serialization: str) -> None:
    values = np.random.default_rng(1).normal(size=1000) * 1e5
    doc = write_votable(pa.table({"x": values}), {}, serialization)
    back = parse(io.BytesIO(doc)).get_first_table().to_table()["x"]
    assert np.array_equal(np.asarray(back), values)


def test_status_infos_around_the_table() -> None:
    doc = write_votable(TABLE, {}, overflow=True).decode()
    assert doc.index('value="OK"') < doc.index("<TABLE>") < doc.index('value="OVERFLOW"')


def test_empty_result_is_a_valid_table() -> None:
    empty = pa.table({"a": pa.array([], pa.float64()), "b": pa.array([], pa.string())})
    for serialization in ("binary2", "tabledata"):
        doc = write_votable(empty, {}, serialization)
        assert len(parse(io.BytesIO(doc)).get_first_table().to_table()) == 0


def test_error_document_escapes_the_message() -> None:
    doc = error_votable("column 'x' <is> not & known")
    info = parse(io.BytesIO(doc)).resources[0].infos[0]
    assert (info.name, info.value) == ("QUERY_STATUS", "ERROR")
    assert info.content == "column 'x' <is> not & known"


def test_csv_and_json() -> None:
    assert write_csv(TABLE).decode().splitlines()[0] == '"i","l","s","d","f","t","b"'
    body = write_json(TABLE, {}, overflow=False).decode()
    assert '"data": [[1, 1099511627776, 10, 1.5, 0.25, "x", true]' in body
