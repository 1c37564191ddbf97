"""One thread, one PostgreSQL connection LISTENing on a channel, which reconnects by itself.

Notifications (`NOTIFY`) reach only the sessions LISTENing when they are sent, so a
connection that drops loses whatever was sent meanwhile. `Listening` therefore calls
`on_connect` after every (re)connect, so its owner re-reads what it follows, and `on_tick`
every `tick_s` whatever happens (the safety net for a notification lost some other way).
Its connection is its own (psycopg 3, autocommit), never one of the store's pool: a pooled
connection goes back to the pool and its LISTEN with it.

Every call to the server on its connection has a limit: `connect_timeout` when connecting,
`statement_timeout` on every statement, and `notifies(timeout=…)` so the thread sees
`close()` within `POLL_S` (the store's engine has the same limits, `store.db`). While the
database is away it retries with a doubling backoff (`Backoff`).

Errors: a lost connection (`lost_connection`: psycopg's `OperationalError` or
`InterfaceError`) means reconnecting. Any other error from a callback (a query the server
refused, a missing table before migrations, a row that does not decode) is logged with its
message, once until the callback succeeds again, and the thread goes on: reconnecting would
not cure it. Anything else that escapes (a bad DSN option, say) is logged with its
traceback and the thread starts again after the backoff: it never ends silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

from podium.store import Database
from podium.store.coordination import STATEMENT_TIMEOUT_MS

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5  # psycopg's connect_timeout (whole seconds)
POLL_S = 0.5  # how often the thread looks at `close()` while waiting for notifications


def libpq_dsn(url: str) -> str:
    """The libpq form of a store URL (`postgresql+psycopg://…` → `postgresql://…`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"coordination needs PostgreSQL, not {parsed.get_backend_name()}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def dsn_of(db: Database) -> str:
    """The libpq DSN of a store's PostgreSQL database (password included: never log it)."""
    return libpq_dsn(db.engine.url.render_as_string(hide_password=False))


def lost_connection(e: BaseException) -> bool:
    """The connection is gone or unusable (reconnect), not a statement the server refused."""
    return isinstance(e, psycopg.OperationalError | psycopg.InterfaceError)


def connect(dsn: str, application_name: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection whose statements time out (named in `pg_stat_activity`)."""
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name=application_name[:63],
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
    )


@dataclass
class Backoff:
    """Seconds to wait before the next reconnect: doubles from `first` up to `most`."""

    first: float = 0.1
    most: float = 5.0
    _next: float = 0.0

    def reset(self) -> None:
        self._next = 0.0

    def next(self) -> float:
        self._next = self.first if self._next == 0.0 else min(self._next * 2, self.most)
        return self._next


Conn = psycopg.Connection[tuple[object, ...]]


class Listening:
    """A daemon thread LISTENing on `channel` with a connection of its own.

    `on_connect(conn)` runs after each (re)connect, `on_notify(conn, payload)` for each
    notification, `on_tick(conn)` every `tick_s` (None: never). Callbacks run on this
    thread and may query `conn`; a lost connection from them (or from the wait) makes the
    thread close it and reconnect after a backoff. Any other exception from a callback is
    logged and the thread goes on (module doc).
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        name: str,
        on_notify: Callable[[Conn, str], None],
        on_connect: Callable[[Conn], None] = lambda conn: None,
        on_tick: Callable[[Conn], None] = lambda conn: None,
        tick_s: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if not channel.isidentifier():
            raise ValueError(f"channel {channel!r} is not a plain identifier")
        self._dsn = dsn
        self._channel = channel
        self._name = name
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._on_tick = on_tick
        self._tick_s = tick_s
        self._backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None  # the callback failure logged last (logged once)
        self.connects = 0  # successful (re)connects so far (for people and tests)
        self.connected = threading.Event()  # set while a LISTENing connection is up

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (it sees the request within `POLL_S`) and close its connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._dsn, self._name) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    self.connects += 1
                    self.connected.set()
                    self._backoff.reset()
                    self._guarded(self._on_connect, conn)
                    self._serve(conn)
            except Exception as e:
                self.connected.clear()
                if self._stop.is_set():
                    break
                wait = self._backoff.next()
                if lost_connection(e):
                    log.warning(
                        "%s: lost PostgreSQL (%s: %s); reconnecting in %.1fs",
                        self._name,
                        type(e).__name__,
                        str(e).strip()[:200],
                        wait,
                    )
                else:
                    log.exception("%s: failed; starting again in %.1fs", self._name, wait)
                self._stop.wait(wait)
            finally:
                self.connected.clear()

    def _serve(self, conn: Conn) -> None:
        """Wait for notifications until closed; tick every `tick_s` (monotonic time)."""
        clock = time.monotonic
        due = clock() + self._tick_s if self._tick_s is not None else None
        while not self._stop.is_set():
            wait = POLL_S if due is None else max(0.0, min(POLL_S, due - clock()))
            # Collected first: the generator holds the connection, a callback may query it.
            notes = list(conn.notifies(timeout=wait, stop_after=1))
            for note in notes:
                self._guarded(self._on_notify, conn, note.payload)
            if due is not None and clock() >= due:
                self._guarded(self._on_tick, conn)
                due = clock() + (self._tick_s or 0.0)

    def _guarded(self, callback: Callable[..., None], *args: object) -> None:
        """Run a callback: a lost connection propagates (reconnect); any other error is
        logged with its message, once until a callback succeeds again."""
        try:
            callback(*args)
        except Exception as e:
            if lost_connection(e):
                raise
            failure = f"{type(e).__name__}: {str(e).strip()[:300]}"
            if failure != self._failure:
                log.warning("%s: callback failed (%s)", self._name, failure, exc_info=True)
            self._failure = failure
        else:
            if self._failure is not None:
                log.info("%s: callbacks succeed again", self._name)
            self._failure = None
