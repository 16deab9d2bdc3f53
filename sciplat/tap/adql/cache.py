"""Translations kept by the query's *shape*: its text with the numbers lifted out.

Parsing, checking, resolving, geometry and SQL generation take ~0.8 ms a query (idle; 1-1.5 ms
on the loaded machine), as much as DuckDB's whole answer to a cone. Clients send the same
query again and again with other numbers (a cone per position), so a translation is kept as a
*template*: the SQL text with a hole for each of the query's numbers and for each value
derived from them (see :mod:`.literals`), and filled in for the next query of the same shape.

Safety: the key is the query text with each number token (as sqlglot's tokenizer reads it)
replaced by its form (integer, decimal, exponent), so everything but the digits is identical,
and the holes take only those tokens' digits or SQL built by our own code from their values;
no text of the query is pasted anywhere it was not before. A template is stored only if
filling it with the numbers it was made from gives exactly the SQL translated directly, and
it serves another query only if every number the translation *decided* something on (TOP,
a BOX, a pgSphere radius...) is the same, the catalogue is the same object and the caller may
read every table it names.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.generator import Generator
from sqlglot.tokenizer_core import TokenType

from sciplat.tap.adql.literals import DERIVED, SLOT, Derived
from sciplat.tap.adql.parse import tokenize
from sciplat.tap.models.catalogue import Catalogue, ColumnInfo, TableInfo

SHAPES: Final = 512  # shapes kept (least recently used dropped)
VARIANTS: Final = 64  # templates per shape (different pinned numbers)
_FORMS: Final = (("i", re.compile(r"[0-9]+")), ("d", re.compile(r"[0-9]+\.[0-9]*")),
                 ("e", re.compile(r"[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+")))  # fmt: skip
_HOLE: Final = re.compile("\x00([0-9]+)\x00")


@dataclass(frozen=True)
class Query:
    """A query's shape (the cache key without the settings) and its numbers, in text order."""

    shape: str
    numbers: tuple[str, ...]
    starts: tuple[int, ...]  # where each number starts in the text


def lift(text: str) -> Query | None:
    """The shape and numbers of ``text``; None when it cannot be cached (or does not tokenize:
    the translation reports that)."""
    if "\x00" in text:
        return None
    try:
        tokens = tokenize(text)
    except TokenError:
        return None
    parts: list[str] = []
    numbers: list[str] = []
    starts: list[int] = []
    at = 0
    for token in tokens:
        if token.token_type != TokenType.NUMBER:
            continue
        form = next((f for f, pattern in _FORMS if pattern.fullmatch(token.text)), None)
        if form is None or text[token.start : token.end + 1] != token.text:
            return None
        parts += [text[at : token.start], "\x00", form]
        numbers.append(token.text)
        starts.append(token.start)
        at = token.end + 1
    parts.append(text[at:])
    return Query("".join(parts), tuple(numbers), tuple(starts))


def tag(tree: exp.Expr, query: Query) -> bool:
    """Mark each number literal of a freshly parsed tree with its slot; False when the parser
    did not keep every number as the literal it read (then the shape is not cached)."""
    slots = dict(zip(query.starts, range(len(query.numbers)), strict=True))
    seen = 0
    for literal in tree.find_all(exp.Literal):
        if literal.is_string:
            continue
        slot = slots.get(literal.meta.get("start", -1))
        if slot is None or literal.this != query.numbers[slot]:
            return False
        literal.meta[SLOT] = slot
        seen += 1
    return seen == len(query.numbers)


@dataclass(frozen=True)
class Template:
    """The SQL of one translation with holes, and what it says about its result."""

    parts: tuple[str | int | Derived, ...]  # text, a slot (the number), or a Derived
    limit: int | None
    columns: dict[str, ColumnInfo]
    tables: tuple[TableInfo, ...]  # the caller must (still) be allowed to read these
    catalogue: weakref.ref[Catalogue]

    def fill(self, numbers: tuple[str, ...], dialect: str) -> str:
        """The SQL for a query of this shape with these numbers (see :func:`lift`)."""
        out: list[str] = []
        generator: Generator | None = None
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, int):
                out.append(numbers[part])  # digits, '.', 'e', a sign: checked by lift()
            else:
                values = [sign * float(numbers[slot]) for slot, sign in part.inputs]
                if part.text is not None:
                    out.append(part.text(values))
                    continue
                generator = generator or _generator(dialect)
                out.append(generator.generate(part.build(values), copy=False))
        return "".join(out)


_GENERATORS = threading.local()


def _generator(dialect: str) -> Generator:
    """sqlglot's SQL writer for ``dialect``, one per thread (making one costs ~20 us)."""
    made: dict[str, Generator] = _GENERATORS.__dict__.setdefault("by_dialect", {})
    if dialect not in made:
        made[dialect] = Dialect.get_or_raise(dialect).generator(comments=False)
    return made[dialect]


def template(
    tree: exp.Expr,
    dialect: str,
    limit: int | None,
    columns: dict[str, ColumnInfo],
    tables: tuple[TableInfo, ...],
    catalogue: Catalogue,
) -> Template:
    """The template of a translated tree (not changed): its holes in place of the slot
    literals and derived values, written by the same generator."""
    marked = tree.copy()
    holes: list[int | Derived] = []
    found: list[tuple[exp.Expr, int | Derived]] = []
    for node in marked.walk(prune=lambda n: DERIVED in n.meta):  # nothing inside a Derived
        hole: int | Derived | None = node.meta.get(DERIVED)
        if hole is None and isinstance(node, exp.Literal):
            hole = node.meta.get(SLOT)
        if hole is not None:
            found.append((node, hole))
    for node, hole in found:
        node.replace(exp.Var(this=f"\x00{len(holes)}\x00"))
        holes.append(hole)
    pieces = _HOLE.split(marked.sql(dialect=dialect, comments=False, copy=False))
    parts = [holes[int(p)] if i % 2 else p for i, p in enumerate(pieces)]
    return Template(tuple(parts), limit, columns, tables, weakref.ref(catalogue))


@dataclass
class _Shape:
    #: (pinned slots, {their numbers: template}); see Cache.get
    variants: list[tuple[tuple[int, ...], dict[tuple[str, ...], Template]]] = field(
        default_factory=list
    )


class Cache:
    """Templates by shape and settings; thread-safe, bounded."""

    def __init__(self, shapes: int = SHAPES) -> None:
        self._lock = threading.Lock()
        self._shapes: OrderedDict[tuple[object, ...], _Shape] = OrderedDict()
        self._max = shapes
        self.hits = 0
        self.misses = 0

    def get(
        self,
        key: tuple[object, ...],
        numbers: tuple[str, ...],
        catalogue: Catalogue,
        may_read: Callable[[TableInfo], bool],
    ) -> Template | None:
        """A template valid for these numbers. A template made while the translation pinned
        slots P serves any query agreeing on P: the translation reads the same values in the
        same order, so it takes the same path."""
        with self._lock:
            shape = self._shapes.get(key)
            if shape is not None:
                self._shapes.move_to_end(key)
                found = next(
                    (
                        t
                        for pinned, table in shape.variants
                        if (t := table.get(tuple(numbers[s] for s in pinned))) is not None
                    ),
                    None,
                )
            else:
                found = None
        if found is None or found.catalogue() is not catalogue:
            self.misses += 1
            return None
        if not all(may_read(t) for t in found.tables):
            return None  # translating says which table and why
        self.hits += 1
        return found

    def put(
        self,
        key: tuple[object, ...],
        numbers: tuple[str, ...],
        pinned: set[int],
        made: Template,
    ) -> None:
        order = tuple(sorted(pinned))
        values = tuple(numbers[s] for s in order)
        with self._lock:
            shape = self._shapes.setdefault(key, _Shape())
            self._shapes.move_to_end(key)
            table = next((t for p, t in shape.variants if p == order), None)
            if table is None:
                table = {}
                shape.variants.append((order, table))
            if len(table) >= VARIANTS:
                table.clear()
            table[values] = made
            while len(self._shapes) > self._max:
                self._shapes.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._shapes.clear()
