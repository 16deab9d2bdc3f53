"""A clock tests move by hand, for code that takes its time source as a parameter."""

from __future__ import annotations


class Clock:
    """Returns ``now``; tests advance it (``clock.now += 60``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
