"""Stopping PostgreSQL statements from outside: repeated cancel requests (used by
:mod:`sciplat.tap.storage.postgres`, with :class:`~sciplat.tap.storage.watchdog.Watchdog` for
deadlines)."""

from __future__ import annotations

import threading
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
