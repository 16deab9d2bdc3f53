"""ADQL geometry (POINT, CIRCLE, POLYGON, BOX; CONTAINS, INTERSECTS, DISTANCE, AREA...) → SQL.

:func:`rewrite_geometry` finds the geometry calls in a resolved tree and asks a
:class:`GeometrySql` (one per backend) for plain SQL. Geometry values themselves (a POINT in the
SELECT list, say) are refused: the backends here have no geometry type.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import numpy as np
from sqlglot import exp

from sciplat.tap.adql.literals import value_of
from sciplat.tap.errors import AdqlSyntaxError, AdqlUnsupportedError

#: Set in ``node.meta`` of a backend's own SQL function that shares an ADQL name (pgSphere's
#: ``area``), so it is not mistaken for a geometry value left in the query.
GENERATED: Final = "sciplat_generated"
_CONSTRUCTORS: Final = frozenset(
    {"POINT", "CIRCLE", "POLYGON", "BOX", "AREA", "CENTROID", "REGION"}
)


@dataclass(frozen=True)
class Point:
    ra: exp.Expr
    dec: exp.Expr


@dataclass(frozen=True)
class Circle:
    centre: Point
    radius: exp.Expr


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[Point, ...]


Shape = Point | Circle | Polygon


class GeometrySql(Protocol):
    """How one backend writes geometry predicates; every result is a plain SQL expression."""

    def contains(self, point: Point, region: Circle | Polygon) -> exp.Expr:
        """A boolean: the point lies in the region."""
        ...

    def distance(self, a: Point, b: Point) -> exp.Expr:
        """The great-circle distance in degrees."""
        ...


@runtime_checkable
class RegionSql(Protocol):
    """What a backend with a spherical-geometry type (pgSphere) adds to :class:`GeometrySql`."""

    def intersects(self, a: Circle | Polygon, b: Circle | Polygon) -> exp.Expr:
        """A boolean: the two regions overlap."""
        ...

    def area(self, shape: Circle | Polygon) -> exp.Expr:
        """The area in square degrees."""
        ...


def constant(node: exp.Expr) -> float | None:
    """The value of a numeric literal (or its negation), else None; the translation depends on
    it, so a cached translation is reused only for the same value (see :mod:`.literals`)."""
    return value_of(node)


def is_constant(node: exp.Expr) -> bool:
    """A number (literal, negated or in parentheses), without depending on its value."""
    return value_of(node, pinning=False) is not None


def point_constant(point: Point) -> tuple[float, float] | None:
    """(ra, dec) of a point given by two numbers, else None."""
    ra, dec = constant(point.ra), constant(point.dec)
    return None if ra is None or dec is None else (ra, dec)


def _name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    if isinstance(node, exp.Contains):
        return "CONTAINS"
    return ""


def _args(node: exp.Expr) -> list[exp.Expr]:
    if isinstance(node, exp.Contains):
        return [node.this, node.expression]
    return list(node.expressions)


def _strip_coordsys(name: str, args: list[exp.Expr]) -> list[exp.Expr]:
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        system = args[0].this.strip().upper()
        if system and system.split()[0] != "ICRS":
            raise AdqlUnsupportedError(
                f"{name}('{args[0].this}', ...): only ICRS coordinates are supported; "
                "give ICRS positions (or leave the coordinate system out)"
            )
        return args[1:]
    return args


def shape_of(node: exp.Expr) -> Shape:
    """Read a POINT, CIRCLE or POLYGON call (with or without its coordinate system).

    Raises:
        AdqlSyntaxError: wrong arguments.
        AdqlUnsupportedError: BOX, REGION, CENTROID, non-ICRS systems, or not a geometry.
    """
    name = _name(node)
    args = _strip_coordsys(name, _args(node))
    if name == "POINT" and len(args) == 2:
        return Point(args[0], args[1])
    if name == "CIRCLE":
        if len(args) == 2 and _name(args[0]) == "POINT":
            centre = shape_of(args[0])
            assert isinstance(centre, Point)  # noqa: S101 - POINT always reads as a Point
            return Circle(centre, args[1])
        if len(args) == 3:
            return Circle(Point(args[0], args[1]), args[2])
    if name == "POLYGON":
        if all(_name(a) == "POINT" for a in args) and len(args) >= 3:
            return Polygon(tuple(p for p in map(shape_of, args) if isinstance(p, Point)))
        if len(args) >= 6 and len(args) % 2 == 0:
            return Polygon(tuple(Point(args[i], args[i + 1]) for i in range(0, len(args), 2)))
    if name == "BOX":
        return _box(node, args)
    if name in {"REGION", "CENTROID"}:
        raise AdqlUnsupportedError(f"{name} is not supported by this service")
    if name in {"POINT", "CIRCLE", "POLYGON"}:
        raise AdqlSyntaxError(f"{name} has the wrong number of arguments: {node.sql()}")
    raise AdqlUnsupportedError(
        f"{node.sql()} is not a geometry this service understands: write POINT, CIRCLE or "
        "POLYGON with numbers or columns"
    )


def rewrite_geometry(tree: exp.Expr, sql: GeometrySql) -> exp.Expr:
    """Replace every geometry call in ``tree`` (in place) by plain SQL from ``sql``.

    Raises:
        AdqlSyntaxError: a malformed geometry call.
        AdqlUnsupportedError: a geometry value where only predicates and numbers can go.
    """
    for cmp in list(tree.find_all(exp.EQ, exp.NEQ)):
        left, right = cmp.this, cmp.expression
        call, other = (left, right) if _is_predicate(left) else (right, left)
        if _is_predicate(call) and constant(other) in (0.0, 1.0):
            value = constant(other)
            truth = (value == 1.0) == isinstance(cmp, exp.EQ)
            predicate = exp.paren(_predicate(call, sql), copy=False)
            cmp.replace(predicate if truth else exp.not_(predicate, copy=False))
    for call in list(tree.find_all(exp.Anonymous, exp.Contains)):
        name = _name(call)
        if name in {"CONTAINS", "INTERSECTS"}:
            predicate = exp.paren(_predicate(call, sql), copy=False)
            call.replace(exp.cast(predicate, "INTEGER"))
        elif name == "DISTANCE":
            call.replace(_distance(call, sql))
        elif name in {"COORD1", "COORD2"}:
            point = shape_of(call.expressions[0])
            if not isinstance(point, Point):
                raise AdqlSyntaxError(f"{name} takes a POINT: {call.sql()}")
            call.replace(point.ra if name == "COORD1" else point.dec)
        elif name == "AREA":
            call.replace(_area(call, sql))
        elif name == "COORDSYS":
            call.replace(exp.Literal.string("ICRS"))
    leftover = next(
        (
            n
            for n in tree.find_all(exp.Anonymous)
            if _name(n) in _CONSTRUCTORS and not n.meta.get(GENERATED)
        ),
        None,
    )
    if leftover is not None:
        raise AdqlUnsupportedError(
            f"{leftover.sql()}: geometry values can only be used inside CONTAINS, INTERSECTS, "
            "DISTANCE, COORD1 and COORD2 here (select the coordinates as numbers instead)"
        )
    return tree


def _is_predicate(node: exp.Expr) -> bool:
    return _name(node) in {"CONTAINS", "INTERSECTS"}


def _predicate(call: exp.Expr, sql: GeometrySql) -> exp.Expr:
    name = _name(call)
    a, b = (shape_of(arg) for arg in _args(call))
    if name == "INTERSECTS" and isinstance(b, Point):
        a, b = b, a
    if isinstance(a, Point) and isinstance(b, Circle | Polygon):
        return sql.contains(a, b)
    if name == "INTERSECTS" and isinstance(sql, RegionSql) and not isinstance(a, Point):
        assert not isinstance(b, Point)  # noqa: S101 - a point was swapped to the front above
        return sql.intersects(a, b)
    if name == "INTERSECTS" and isinstance(a, Circle) and isinstance(b, Circle):
        reach = exp.Add(this=exp.paren(a.radius), expression=exp.paren(b.radius))
        return exp.LTE(this=sql.distance(a.centre, b.centre), expression=reach)
    raise AdqlUnsupportedError(
        f"{call.sql()}: this service implements CONTAINS(POINT, CIRCLE|POLYGON) and "
        "INTERSECTS of a point or circle with a circle or polygon"
    )


def _distance(call: exp.Expr, sql: GeometrySql) -> exp.Expr:
    args = list(call.expressions)
    if len(args) == 4:
        return sql.distance(Point(args[0], args[1]), Point(args[2], args[3]))
    if len(args) == 2:
        a, b = shape_of(args[0]), shape_of(args[1])
        if isinstance(a, Point) and isinstance(b, Point):
            return sql.distance(a, b)
    raise AdqlSyntaxError(f"DISTANCE takes two POINTs or four numbers: {call.sql()}")


def _box(node: exp.Expr, args: list[exp.Expr]) -> Polygon:
    """BOX(ra, dec, width, height) (or BOX(POINT, width, height)): the polygon of its corners.

    ADQL 2.0 defines a box as the equivalent polygon; corners are centre ± half the size in
    each coordinate, joined by great circles (as POLYGON), so both backends agree exactly.
    """
    if len(args) == 3 and _name(args[0]) == "POINT":
        centre = shape_of(args[0])
        assert isinstance(centre, Point)  # noqa: S101 - POINT always reads as a Point
        args = [centre.ra, centre.dec, args[1], args[2]]
    values = [constant(a) for a in args]
    if len(args) != 4:
        raise AdqlSyntaxError(f"BOX takes a centre and a width and height: {node.sql()}")
    if any(v is None for v in values):
        raise AdqlUnsupportedError(f"{node.sql()}: BOX takes numbers here (not columns)")
    ra, dec, width, height = (float(v) for v in values if v is not None)
    if not (0 < width < 180 and 0 < height < 180 and abs(dec) + height / 2 < 90):
        raise AdqlUnsupportedError(
            f"{node.sql()}: a BOX must be smaller than 180 degrees each way and not reach a pole"
        )
    corners = [(ra - width / 2, dec - height / 2), (ra + width / 2, dec - height / 2),
               (ra + width / 2, dec + height / 2), (ra - width / 2, dec + height / 2)]  # fmt: skip
    return Polygon(tuple(Point(_number(x), _number(y)) for x, y in corners))


def _number(value: float) -> exp.Expr:
    literal = exp.Literal.number(repr(abs(value)))
    return exp.Neg(this=literal) if value < 0 else literal


def _area(call: exp.Expr, sql: GeometrySql) -> exp.Expr:
    """AREA(CIRCLE|POLYGON|BOX) in square degrees.

    Raises:
        AdqlUnsupportedError: the area of a point, or of a polygon given by columns.
    """
    shape = shape_of(call.expressions[0])
    if isinstance(shape, Point):
        raise AdqlUnsupportedError(f"{call.sql()}: a POINT has no area")
    if isinstance(sql, RegionSql):
        return sql.area(shape)
    if isinstance(shape, Circle):  # 2π(1 - cos r) steradians
        cap = exp.Sub(this=exp.Literal.number(1), expression=exp.Anonymous(
            this="COS", expressions=[exp.Anonymous(this="RADIANS", expressions=[
                exp.paren(shape.radius.copy())])]))  # fmt: skip
        steradians = exp.Mul(this=exp.Mul(this=exp.Literal.number(2), expression=exp.Anonymous(
            this="PI", expressions=[])), expression=exp.paren(cap))  # fmt: skip
        return exp.Anonymous(this="DEGREES", expressions=[
            exp.Anonymous(this="DEGREES", expressions=[steradians])])  # fmt: skip
    return exp.cast(exp.Literal.number(repr(polygon_area(shape))), "DOUBLE")  # not DECIMAL


def polygon_area(polygon: Polygon) -> float:
    """Area of a constant convex polygon in square degrees (sum of its fan's spherical triangles).

    Raises:
        AdqlUnsupportedError: vertices not numbers, or not convex.
    """
    convex_normals(polygon)  # refuses what the fan would get wrong
    vecs = [_unit(*c) for c in (point_constant(v) for v in polygon.vertices) if c is not None]
    total = 0.0
    a = vecs[0]
    for b, c in itertools.pairwise(vecs[1:]):  # Van Oosterom & Strackee's triangle formula
        # tan(E/2) = |a . (b x c)| / (1 + a . b + b . c + c . a)
        triple = abs(float(np.dot(a, np.cross(b, c))))
        total += 2 * math.atan2(triple, 1 + float(np.dot(a, b) + np.dot(b, c) + np.dot(c, a)))
    return math.degrees(math.degrees(total))


def convex_normals(polygon: Polygon) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Edge normals (pointing inwards), centre and bounding radius (degrees) of a polygon.

    Raises:
        AdqlUnsupportedError: vertices not numbers, or the polygon is not convex.
    """
    corners = [point_constant(v) for v in polygon.vertices]
    if any(c is None for c in corners):
        raise AdqlUnsupportedError("POLYGON vertices must be numbers here (not columns)")
    vecs = [_unit(ra, dec) for ra, dec in (c for c in corners if c is not None)]
    centre = np.sum(vecs, axis=0)
    centre /= np.linalg.norm(centre)
    normals = [np.cross(vecs[i], vecs[(i + 1) % len(vecs)]) for i in range(len(vecs))]
    signs = [float(np.dot(n, centre)) for n in normals]
    if all(s < 0 for s in signs):
        normals = [-n for n in normals]
    elif not all(s > 0 for s in signs):
        raise AdqlUnsupportedError("only convex polygons (vertices in order) are supported")
    for i, n in enumerate(normals):
        if any(float(np.dot(n, v)) < -1e-12 for v in vecs):
            raise AdqlUnsupportedError(
                f"POLYGON is not convex at vertex {i + 2}: only convex polygons are supported"
            )
    radius = max(math.degrees(math.acos(min(1.0, float(np.dot(centre, v))))) for v in vecs)
    return normals, centre, radius


def _unit(ra: float, dec: float) -> np.ndarray:
    r, d = math.radians(ra), math.radians(dec)
    return np.array([math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)])
