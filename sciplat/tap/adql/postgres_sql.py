"""Geometry as pgSphere SQL (PostgreSQL): ``spoint``, ``scircle``, ``spoly`` and their operators.

pgSphere works in radians; ADQL in degrees. A point on a table's indexed (ra, dec) columns is
written exactly as the loader's GiST expression index, ``spoint(radians(ra), radians(dec))``, so
``point <@ circle`` and ``point <@ polygon`` use the index (PostgreSQL matches index expressions
structurally, whatever alias qualifies the columns). Constant shapes are folded to literals here
so the planner sees constants, not per-row function calls.
"""

from __future__ import annotations

import math

from sqlglot import exp

from sciplat.tap.adql.geometry import (
    GENERATED,
    Circle,
    Point,
    Polygon,
    constant,
    point_constant,
)
from sciplat.tap.errors import AdqlUnsupportedError

# pgSphere's text form of a polygon's vertices is radians; repr() keeps every bit of a float.
_SPOLY = exp.DataType.build("spoly", dialect="postgres", udt=True)


def _f(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _n(value: float) -> exp.Expr:
    literal = exp.Literal.number(repr(abs(float(value))))
    return exp.Paren(this=exp.Neg(this=literal)) if value < 0 else literal


def _copy(node: exp.Expr) -> exp.Expr:
    return (
        node.copy() if isinstance(node, exp.Column | exp.Literal) else exp.Paren(this=node.copy())
    )


def _radians(value: exp.Expr) -> exp.Expr:
    known = constant(value)
    return _n(math.radians(known)) if known is not None else _f("RADIANS", _copy(value))


def spoint(point: Point) -> exp.Expr:
    """``spoint(radians(ra), radians(dec))``, the form the loader's spatial index is built on."""
    return _f("spoint", _radians(point.ra), _radians(point.dec))


def scircle(circle: Circle) -> exp.Expr:
    """``scircle(centre, radians(radius))``."""
    return _f("scircle", spoint(circle.centre), _radians(circle.radius))


def spoly(polygon: Polygon) -> exp.Expr:
    """A constant polygon as an ``spoly`` literal (pgSphere takes any simple polygon).

    Raises:
        AdqlUnsupportedError: a vertex given by columns, or fewer than three vertices.
    """
    corners = [point_constant(v) for v in polygon.vertices]
    if any(c is None for c in corners) or len(corners) < 3:
        raise AdqlUnsupportedError("POLYGON vertices must be numbers here (not columns)")
    text = ",".join(
        f"({math.radians(ra % 360.0)!r},{math.radians(dec)!r})"
        for ra, dec in (c for c in corners if c is not None)
    )
    return exp.cast(exp.Literal.string("{" + text + "}"), _SPOLY)


def region(shape: Circle | Polygon) -> exp.Expr:
    """The pgSphere value of a region."""
    return scircle(shape) if isinstance(shape, Circle) else spoly(shape)


class PgSphereGeometry:
    """:class:`~sciplat.tap.adql.geometry.GeometrySql` for PostgreSQL with pgSphere."""

    def contains(self, point: Point, region_: Circle | Polygon) -> exp.Expr:
        """``spoint <@ scircle|spoly``: index-assisted on a table's indexed columns."""
        return exp.ArrayContainedBy(this=spoint(point), expression=region(region_))

    def distance(self, a: Point, b: Point) -> exp.Expr:
        """``DEGREES(spoint <-> spoint)``."""
        return _f("DEGREES", exp.Paren(this=exp.Distance(this=spoint(a), expression=spoint(b))))

    def intersects(self, a: Circle | Polygon, b: Circle | Polygon) -> exp.Expr:
        """``region && region`` (pgSphere's overlap operator)."""
        return exp.ArrayOverlaps(this=region(a), expression=region(b))

    def area(self, shape: Circle | Polygon) -> exp.Expr:
        """``DEGREES(DEGREES(area(region)))``: square degrees from pgSphere's steradians."""
        call = _f("area", region(shape))
        call.meta[GENERATED] = True
        return _f("DEGREES", _f("DEGREES", call))
