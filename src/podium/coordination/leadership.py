"""The controller lease: which one of several controller candidates leads (issue 16).

PostgreSQL (`PgLease`): leading is holding a session-level advisory lock
(`pg_try_advisory_lock(LockSpace.CONTROLLER, 0)`) on one dedicated psycopg connection. The
server drops a session lock as soon as its connection ends, however the process ends: a
SIGKILLed leader's socket is closed by the kernel, its backend sees EOF at once and the lock
is free for the next `try_acquire` of a standby (which retries every `RETRY_S`). A leader
cut off by the network is bounded by TCP keepalives and `tcp_user_timeout` on that
connection. Why an advisory lock and not a lease row renewed on a timer: no clock and no
renewal period to tune, and the release is as fast as the server notices the connection
is gone.

On taking the lock the new leader raises `controller_lease.epoch` (UPDATE … RETURNING) and
records who it is (`holder`: host, pid, a random id) and when. That epoch is the fencing
number: `LeaseFence.check` compares it with the row, `FOR SHARE`, inside every write of the
controller, so a stale leader (paused, partitioned) gets `Fenced` instead of acting, and
the new leader's UPDATE waits for a write of the old one already under way.

SQLite (`SoleLease`): `podium up` is one process on one home (the home lock makes sure),
so the lease is always held, with epoch 1, and its fence checks nothing.

All calls are blocking and bounded (connect timeout, statement timeout); the controller
makes them from its own thread. A lock serialises them, so `holds()` may also be asked from
a backend wrapper on that thread and from the metrics collector's.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from podium.coordination.fencing import Fence, SoleFence
from podium.core.errors import Fenced
from podium.store.locks import LockSpace
from podium.store.tables import ControllerLeaseRow

log = logging.getLogger("podium.coordination")

RETRY_S = 0.5  # a standby tries to take the lead this often
CONNECT_TIMEOUT_S = 3
STATEMENT_TIMEOUT_MS = 3000  # holds() and the epoch's UPDATE: bounded
LEASE_ROW = 1


class Lease(Protocol):
    """A controller candidate's claim to lead."""

    @property
    def epoch(self) -> int:
        """The fencing number this process leads under; 0 while it does not lead."""
        ...

    @property
    def sole(self) -> bool:
        """True for the one-process lease (`podium up` on SQLite): always held."""
        ...

    @property
    def fence(self) -> Fence:
        """The fence every controller write checks."""
        ...

    def try_acquire(self) -> bool:
        """Take the lead if nobody holds it (never waits for a holder); True if leading."""
        ...

    def holds(self) -> bool:
        """Does this process still lead (its connection alive, the epoch still its own)?
        Bounded in time; a False drops whatever was held."""
        ...

    def release(self) -> None:
        """Give the lead up (a standby takes it at its next try)."""
        ...


class SoleLease:
    """`podium up`: the only controller there is, always leading with epoch 1."""

    epoch = 1
    sole = True

    def __init__(self) -> None:
        self._fence = SoleFence()

    @property
    def fence(self) -> Fence:
        return self._fence

    def try_acquire(self) -> bool:
        return True

    def holds(self) -> bool:
        return True

    def release(self) -> None:
        return None


class LeaseFence:
    """`Fence` over a lease: the lease row must carry the epoch the lease leads under."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease

    @property
    def epoch(self) -> int:
        return self._lease.epoch

    def check(self, session: Session) -> None:
        epoch = self._lease.epoch
        if epoch == 0:
            raise Fenced("this controller does not lead; the action was refused")
        query = select(ControllerLeaseRow.epoch).where(ControllerLeaseRow.id == LEASE_ROW)
        if session.get_bind().dialect.name == "postgresql":
            # Held until the caller's transaction ends: a takeover's UPDATE waits for it.
            query = query.with_for_update(read=True)
        current = session.execute(query).scalar_one_or_none()
        if current != epoch:
            raise Fenced(
                f"this controller led with epoch {epoch}, the lease is now at epoch {current}; "
                "the action was refused"
            )


def holder_name() -> str:
    """Who a lease holder is, for people reading the row: host, pid and a random id (a
    pid alone repeats across hosts and restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:128]


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL of a PostgreSQL database as libpq takes it (no `+psycopg`)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgLease:
    """The lease on PostgreSQL: a session advisory lock on a connection of its own."""

    sole = False

    def __init__(self, database_url: str, *, holder: str | None = None) -> None:
        self._url = libpq_url(database_url)
        self.holder = holder or holder_name()
        self._conn: Any = None  # psycopg.Connection, autocommit: never idle in a transaction
        self._epoch = 0
        self._lock = threading.Lock()
        self._fence = LeaseFence(self)

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def fence(self) -> Fence:
        return self._fence

    def try_acquire(self) -> bool:
        with self._lock:
            if self._epoch and self._alive():
                return True
            try:
                conn = self._connection()
                got = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (int(LockSpace.CONTROLLER), 0)
                ).fetchone()
                if not got or not got[0]:
                    return False
                row = conn.execute(
                    "UPDATE controller_lease SET epoch = epoch + 1, holder = %s, "
                    "acquired_at = %s WHERE id = %s RETURNING epoch",
                    (self.holder, datetime.now(UTC), LEASE_ROW),
                ).fetchone()
            except Exception as e:  # psycopg.Error, or an OS error connecting
                log.warning("could not try to take the controller lead: %s", e)
                self._drop()
                return False
            if row is None:  # no lease row: the database is not migrated
                log.error("controller_lease has no row %d; is the database migrated?", LEASE_ROW)
                self._drop()
                return False
            self._epoch = int(row[0])
            log.info("took the controller lead with epoch %d (%s)", self._epoch, self.holder)
            return True

    def holds(self) -> bool:
        with self._lock:
            if not self._epoch:
                return False
            if self._alive():
                return True
            log.warning("lost the controller lead (epoch %d)", self._epoch)
            self._drop()
            return False

    def release(self) -> None:
        with self._lock:
            if self._epoch:
                log.info("gave the controller lead up (epoch %d)", self._epoch)
            self._drop()

    # ------------------------------------------------------------------ internals

    def _alive(self) -> bool:
        """The connection answers and the row still carries our epoch."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            row = self._conn.execute(
                "SELECT epoch FROM controller_lease WHERE id = %s", (LEASE_ROW,)
            ).fetchone()
        except Exception as e:
            log.warning("the controller lease's connection failed: %s", e)
            return False
        return row is not None and int(row[0]) == self._epoch

    def _connection(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        import psycopg  # the postgres extra; only a PostgreSQL server gets here

        self._conn = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            # A leader cut off by the network notices within seconds, not hours.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=8000,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            application_name="podium-controller-lease",
        )
        return self._conn

    def _drop(self) -> None:
        """Close the connection (the server drops the advisory lock with it)."""
        self._epoch = 0
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as e:  # already broken: nothing more to give back
                log.debug("closing the lease connection: %s", e)


def lease_for(database_url: str) -> Lease:
    """The lease a controller of this database takes: PostgreSQL's, or the sole one."""
    if make_url(database_url).get_backend_name() in ("postgresql", "postgres"):
        return PgLease(database_url)
    return SoleLease()


def _is_lease(sole: SoleLease, pg: PgLease, fence: LeaseFence) -> tuple[Lease, Lease, Fence]:
    return sole, pg, fence  # mypy: each implements its protocol
