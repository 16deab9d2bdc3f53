"""VOSI documents (capabilities, availability, tables) as XML text: pure functions."""

from __future__ import annotations

from xml.sax.saxutils import escape

from sciplat.tap.models.catalogue import Catalogue, ForeignKey
from sciplat.tap.tap_schema import published_name

_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_VS = 'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
_GEOMETRY = ("POINT", "CIRCLE", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE", "COORD1",
             "COORD2", "COORDSYS")  # fmt: skip
_OUTPUTS = (
    ("ivo://ivoa.net/std/TAPRegExt#output-votable-binary2", "application/x-votable+xml",
     "votable"),
    ("ivo://ivoa.net/std/TAPRegExt#output-votable-td",
     "application/x-votable+xml;serialization=TABLEDATA", "votable/td"),
    (None, "text/csv;header=present", "csv"),
    (None, "application/json", "json"),
    (None, "application/vnd.apache.parquet", "parquet"),
)  # fmt: skip


def _e(text: str) -> str:
    return escape(text or "")


def capabilities(
    base_url: str,
    default_maxrec: int,
    max_maxrec: int,
    timeout: float,
    upload_bytes: int = 0,
    retention_seconds: int = 0,
    async_seconds: tuple[int, int] = (0, 0),
    url_uploads: bool = False,
) -> str:
    """The VOSI capabilities of the service at ``base_url``; the upload limits, job retention
    and async execution duration (default, hard) are left out where 0. ``url_uploads``: tables
    may also be uploaded by http(s) URL (the TAPRegExt upload-http/upload-https methods)."""
    geo = "".join(f"<feature><form>{f}</form></feature>" for f in _GEOMETRY)
    outputs = "".join(
        (f'<outputFormat ivo-id="{ivo}">' if ivo else "<outputFormat>")
        + f"<mime>{_e(mime)}</mime><alias>{alias}</alias></outputFormat>\n"
        for ivo, mime, alias in _OUTPUTS
    )
    methods = ("inline", "http", "https") if url_uploads else ("inline",)
    upload = "".join(
        f'<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-{m}"/>\n' for m in methods
    ) if upload_bytes else ""
    upload_limit = (
        f'<uploadLimit><hard unit="byte">{upload_bytes}</hard></uploadLimit>\n'
        if upload_bytes else ""
    )
    retention = (
        f"<retentionPeriod><default>{retention_seconds}</default>"
        f"<hard>{retention_seconds}</hard></retentionPeriod>\n"
        if retention_seconds else ""
    )
    duration = (
        f"<default>{async_seconds[0]}</default><hard>{async_seconds[1]}</hard>"
        if async_seconds[1] else f"<hard>{int(timeout)}</hard>"
    )
    vosi = "".join(
        f'<capability standardID="ivo://ivoa.net/std/VOSI#{name}">'
        f'<interface xsi:type="vs:ParamHTTP"><accessURL use="full">{_e(base_url)}/{name}'
        "</accessURL></interface></capability>\n"
        for name in ("capabilities", "availability", "tables")
    )
    examples = (
        '<capability standardID="ivo://ivoa.net/std/DALI#examples">'
        '<interface xsi:type="vr:WebBrowser">'
        f'<accessURL use="full">{_e(base_url)}/examples</accessURL></interface></capability>\n'
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        f'{_XSI} {_VS} xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" '
        'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0">\n'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">\n'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{_e(base_url)}</accessURL></interface>\n'
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        "<description>ADQL 2.1; geometry on ICRS positions in degrees</description>"
        '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">'
        f"{geo}</languageFeatures></language>\n{outputs}{upload}{retention}"
        f"<executionDuration>{duration}</executionDuration>\n"
        f'<outputLimit><default unit="row">{default_maxrec}</default>'
        f'<hard unit="row">{max_maxrec}</hard></outputLimit>\n{upload_limit}'
        f"</capability>\n{vosi}{examples}</vosi:capabilities>\n"
    )


def availability(available: bool, note: str) -> str:
    """The VOSI availability document."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"<vosi:available>{'true' if available else 'false'}</vosi:available>"
        f"<vosi:note>{_e(note)}</vosi:note></vosi:availability>\n"
    )


def tableset(catalogue: Catalogue) -> str:
    """The VOSI tables document: every schema, table and column with units and UCDs."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {_XSI} {_VS}>\n'
    ]
    for schema in catalogue.schemas:
        out.append(f"<schema><name>{_e(schema.name)}</name>")
        if schema.description:
            out.append(f"<description>{_e(schema.description)}</description>")
        for table in (t for t in catalogue.tables if t.schema == schema.name):
            out.append(f'\n<table type="{_e(table.table_type)}"><name>{_e(table.qualified)}</name>')
            if table.description:
                out.append(f"<description>{_e(table.description)}</description>")
            for col in table.columns:
                out.append(f"\n<column><name>{_e(published_name(col.name))}</name>")
                for tag, value in (("description", col.description), ("unit", col.unit),
                                   ("ucd", col.ucd), ("utype", col.utype)):  # fmt: skip
                    if value:
                        out.append(f"<{tag}>{_e(value)}</{tag}>")
                size = f' arraysize="{_e(col.arraysize)}"' if col.arraysize else ""
                out.append(f'<dataType xsi:type="vs:VOTableType"{size}>{_e(col.datatype)}'
                           "</dataType>")  # fmt: skip
                out.extend(f"<flag>{flag}</flag>" for flag, on in
                           (("indexed", col.indexed), ("principal", col.principal),
                            ("std", col.std)) if on)  # fmt: skip
                out.append("</column>")
            out.extend(_foreign_key(k) for k in catalogue.keys
                       if k.from_table.lower() == table.qualified.lower())  # fmt: skip
            out.append("</table>")
        out.append("</schema>\n")
    out.append("</vosi:tableset>\n")
    return "".join(out)


def _foreign_key(key: ForeignKey) -> str:
    pairs = "".join(
        f"<fkColumn><fromColumn>{_e(published_name(f))}</fromColumn>"
        f"<targetColumn>{_e(published_name(t))}</targetColumn></fkColumn>"
        for f, t in key.columns
    )
    desc = f"<description>{_e(key.description)}</description>" if key.description else ""
    target = f"<targetTable>{_e(key.target_table)}</targetTable>"
    return f"\n<foreignKey>{target}{pairs}{desc}</foreignKey>"
