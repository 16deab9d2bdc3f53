"""Stopping PostgreSQL statements from outside: repeated cancel requests, and one watchdog
thread for every running query's deadline (used by :mod:`sciplat.tap.storage.postgres`)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg


class Canceller:
    """Sends cancel requests for one connection's statement until told to stop.

    One request is not always enough: PostgreSQL drops a cancel that reaches a parallel query's
    leader while it is still starting its workers (seen on 15.20 for requests within the first
    0.1-0.2 s), so the request is repeated every half second. :meth:`stop` waits for the sender,
    so no late request can reach the connection's next statement.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin cancelling (idempotent; does nothing after :meth:`stop`)."""
        with self._lock:
            if self._thread is None and not self._done.is_set():
                self._thread = threading.Thread(target=self._send, daemon=True)
                self._thread.start()

    def _send(self) -> None:
        while not self._done.is_set():
            try:
                self._conn.cancel_safe(timeout=5)
            except psycopg.Error:
                return  # the connection is gone: nothing left to stop
            self._done.wait(0.5)

    def stop(self) -> None:
        """No more requests: returns once the sender has finished."""
        with self._lock:
            self._done.set()
            thread = self._thread
        if thread is not None:
            thread.join()


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
