"""The numbers of an ADQL query as *slots*, so that one translation can serve many queries.

A query's number literals are tagged with their index (``node.meta[SLOT]``) before it is
translated. While a translation runs, every read of a number's value for a decision (a
``TOP``, a ``= 1`` after CONTAINS, a BOX corner, a pgSphere radius in radians) goes through
:func:`value_of` and *pins* that slot: a cached translation is reused only by queries whose
pinned numbers are the same. Numbers the SQL only carries through (copied literals) and values
computed from numbers by a :class:`Derived` (a DuckDB cone's cos(dec) and HEALPix ranges)
are not pinned; :mod:`sciplat.tap.adql.cache` writes them into the SQL for each query.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlglot import exp

SLOT: Final = "sciplat_slot"  # meta of a Literal: the index of the query's number it holds
DERIVED: Final = "sciplat_derived"  # meta of a node built from numbers: its Derived

_PINNED: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "sciplat_pinned", default=None
)


def recording() -> tuple[set[int], contextvars.Token[set[int] | None]]:
    """Start recording pinned slots (in this context); give the token to :func:`stop`."""
    pinned: set[int] = set()
    return pinned, _PINNED.set(pinned)


def stop(token: contextvars.Token[set[int] | None]) -> None:
    _PINNED.reset(token)


def pin(node: exp.Expr) -> None:
    """The translation decides something from this literal's value: record its slot."""
    slot = node.meta.get(SLOT) if isinstance(node, exp.Literal) else None
    pinned = _PINNED.get()
    if slot is not None and pinned is not None:
        pinned.add(slot)


def value_of(node: exp.Expr, *, pinning: bool = True) -> float | None:
    """The value of a numeric literal (or its negation, in parentheses or not), else None.

    ``pinning=False`` only for values that end up in the SQL through a :class:`Derived`.
    """
    if isinstance(node, exp.Paren):
        return value_of(node.this, pinning=pinning)
    if isinstance(node, exp.Neg):
        inner = value_of(node.this, pinning=pinning)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        if pinning:
            pin(node)
        return float(node.this)
    return None


def reader(node: exp.Expr) -> tuple[int, float] | None:
    """(slot, sign) of a number written as a slot literal, negated or in parentheses."""
    sign = 1.0
    while isinstance(node, exp.Paren | exp.Neg):
        sign = -sign if isinstance(node, exp.Neg) else sign
        node = node.this
    slot = node.meta.get(SLOT) if isinstance(node, exp.Literal) else None
    return None if slot is None or node.is_string else (slot, sign)


@dataclass(frozen=True)
class Derived:
    """SQL computed from some of the query's numbers: ``build(values)``, values in the order of
    ``inputs`` ((slot, sign) pairs, see :func:`reader`). ``build`` must depend on nothing else
    that can differ between queries of one shape."""

    inputs: tuple[tuple[int, float], ...]
    build: Callable[[list[float]], exp.Expr]
    #: the SQL text of ``build(values)`` written directly (sqlglot's generator costs ~50 us a
    #: node); a template is only kept if this gives exactly what the generator wrote
    text: Callable[[list[float]], str] | None = None


def derived(
    inputs: list[exp.Expr],
    build: Callable[[list[float]], exp.Expr],
    text: Callable[[list[float]], str] | None = None,
) -> exp.Expr:
    """``build`` applied to the values of ``inputs`` now; marked so a cached translation can
    apply it to another query's numbers. Inputs that are not slots (numbers the parser made
    up) pin nothing and are read now, which is only right when there are none: then the
    inputs' values are pinned instead."""
    values = [value_of(n, pinning=False) for n in inputs]
    if any(v is None for v in values):
        raise ValueError("derived() takes numeric literals")  # a programming error
    node = build([v for v in values if v is not None])
    readers = [reader(n) for n in inputs]
    if all(r is not None for r in readers):
        node.meta[DERIVED] = Derived(tuple(r for r in readers if r is not None), build, text)
    else:
        for n in inputs:
            value_of(n)  # pins what can be pinned; the rest is the same in every query
    return node
