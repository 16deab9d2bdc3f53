"""One thread for every running query's deadline (both catalogue backends use it)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Watchdog:
    """Calls each registered callback at its deadline unless it was removed first.

    One thread serves every query: starting a ``threading.Timer`` per query cost about 1 ms on
    this busy 2-CPU machine, as much as a whole indexed cone search.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._live: set[int] = set()
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, seconds: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` in ``seconds`` (from the watchdog's thread); returns a key."""
        deadline = time.monotonic() + seconds
        with self._cond:
            key = next(self._keys)
            # wake the thread only for a new earliest deadline: waking it for every query would
            # hand the GIL back and forth on each one
            earliest = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, key, callback))
            self._live.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="tap-watch")
                self._thread.start()
            elif earliest:
                self._cond.notify()
        return key

    def remove(self, key: int) -> None:
        """Forget a callback that has not run yet."""
        with self._cond:
            self._live.discard(key)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, key, callback = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(key)
            callback()
