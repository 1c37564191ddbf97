"""Wake requests from any gateway or API process to the leading controller (issue 16).

In one process the gateway and the API call `Controller.wake` directly. With several
processes they call a `NotifyWaker` instead (it is a `core.routing.Waker`), which sends
`NOTIFY podium_wake, '<endpoint>'` ('' for "look at everything"); the controller process
runs a `WakeListener` that LISTENs on that channel and calls `Controller.wake` with the
endpoint. Every controller process listens (a follower's wake is simply ignored by its
loop, which does not run passes while it does not lead), so a failover needs no rewiring.

The waker is called on the gateway's event loop, so a call never does I/O: it records the
endpoint in a set and sets an event; its own thread and connection send what is pending.
Calls for the same endpoint before the thread sends coalesce into one notification (the
controller's pass looks at everything anyway). A wake sent while the database is away is
kept and sent after the reconnect; a wake the listener missed while *its* connection was
down is covered by the general wake it gives after every (re)connect. A wake the server
refuses outright (not a lost connection: a payload it cannot take) is logged and dropped,
so it never holds back the wakes pending with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from podium.coordination.pg_listen import (
    POLL_S,
    Backoff,
    Conn,
    Listening,
    connect,
    dsn_of,
    lost_connection,
)
from podium.core.routing import Waker
from podium.store import Database

log = logging.getLogger(__name__)

CHANNEL = "podium_wake"
_ALL = ""  # the payload of a wake that names no endpoint


class NotifyWaker:
    """A `Waker` for a process without the controller: `wake(endpoint)` from any thread,
    never blocking (module doc). `start()` before use, `close()` at the end."""

    def __init__(self, db: Database, *, name: str = "podium-wake-sender") -> None:
        self._dsn = dsn_of(db)
        self._name = name
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff()
        self.sent = 0  # notifications sent so far (for people and tests)
        self.dropped = 0  # wakes the database refused (logged, never retried)

    def __call__(self, endpoint: str | None = None) -> None:
        with self._lock:
            self._pending.add(endpoint or _ALL)
        self._due.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> set[str]:
        with self._lock:
            taken, self._pending = self._pending, set()
        return taken

    def _run(self) -> None:
        conn: Conn | None = None
        try:
            while not self._stop.is_set():
                self._due.wait(POLL_S)
                self._due.clear()
                taken = self._take()
                if not taken or self._stop.is_set():
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = connect(self._dsn, self._name)
                    while taken:
                        self._send(conn, min(taken))
                        taken.discard(min(taken))
                    self._backoff.reset()
                except Exception as e:
                    with self._lock:
                        self._pending |= taken  # sent again once the database answers
                    if conn is not None:
                        conn.close()
                    conn = None
                    wait = self._backoff.next()
                    log.warning(
                        "could not send a wake (%s: %s); again in %.1fs",
                        type(e).__name__,
                        str(e).strip()[:200],
                        wait,
                        exc_info=not lost_connection(e),
                    )
                    self._stop.wait(wait)
                    self._due.set()
        finally:
            if conn is not None:
                conn.close()

    def _send(self, conn: Conn, endpoint: str) -> None:
        """NOTIFY one wake; one the server refuses (not a lost connection) is dropped."""
        try:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, endpoint))
            self.sent += 1
        except psycopg.Error as e:
            if lost_connection(e):
                raise
            log.warning("dropped a wake for %r the database refused: %s", endpoint[:80], e)
            self.dropped += 1


class WakeListener:
    """In a controller process: `on_wake(endpoint or None)` for every wake any process
    sends, and `on_wake(None)` after each (re)connect (wakes sent meanwhile are lost)."""

    def __init__(
        self, db: Database, on_wake: Callable[[str | None], None], *, name: str = "podium-wakes"
    ) -> None:
        self._on_wake = on_wake
        self._listening = Listening(
            dsn_of(db),
            CHANNEL,
            name=name,
            on_notify=lambda _conn, payload: on_wake(payload or None),
            on_connect=lambda _conn: on_wake(None),
        )

    @property
    def listening(self) -> Listening:
        return self._listening

    def start(self) -> None:
        self._listening.start()

    def close(self) -> None:
        self._listening.close()


def _as_waker(waker: NotifyWaker) -> Waker:  # mypy: it implements the protocol
    return waker
