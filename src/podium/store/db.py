"""The database: one Engine, migrations, and units of work.

`Database(url)` builds the engine but connects to nothing until used. One `Database` serves
every thread of the process (FastAPI's threadpool, the controller thread): the engine's
pool hands each unit of work its own connection, and a unit of work (one Session, one
transaction) belongs to the thread that opened it.

SQLite (the default, one machine): every connection runs in WAL mode (readers never block
the writer) with `foreign_keys=ON`, `synchronous=NORMAL` and a 5 s busy timeout. SQLite
allows one writer at a time, and a transaction that reads first and writes later cannot
wait for the lock: it fails at once with "database is locked". So every unit of work begins
`BEGIN IMMEDIATE`, taking the write lock up front; concurrent writers, in this process or
another, then queue on the busy timeout instead of failing. Transactions are short, so the
queue is too. A `unit_of_work(read_only=True)` begins `DEFERRED` with `PRAGMA query_only`
on: it never waits for writers.

Migrations on SQLite are serialized by a file lock next to the database
(`podium.db.migrate.lock`, waited for up to `MIGRATE_LOCK_TIMEOUT_S`), taken before the
first connection, and run with a long busy timeout (`MIGRATE_BUSY_TIMEOUT_S`): a migration
can hold the write lock longer than a unit of work, and processes migrating one file at
once (servers, tests, the alembic CLI) must wait for each other, not fail.

PostgreSQL (`postgresql://…`, driver psycopg 3): READ COMMITTED; writers of one model or
endpoint serialize on advisory locks (see `locks`). Every connection is opened within
`PG_CONNECT_TIMEOUT_S` and every statement (but a migration's) ends within
`PG_STATEMENT_TIMEOUT_MS`; a statement that ran out of time is `Unavailable`.

`db.fenced(check)` is a view of the same database (same engine and pool) whose writing
units of work call `check(session)` first, in their own transaction: the controller hands
such a view to its parts, so every write it makes checks its fencing number
(`podium.coordination.fencing`) in one place.

Lock contention and lost connections surface as `core.errors` (`Retryable`, `Unavailable`);
every other database error propagates as it is (it is a bug).
"""

from __future__ import annotations

import copy
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from podium.core.clock import Clock, SystemClock
from podium.core.errors import Invalid, Retryable, Unavailable
from podium.store.audit import AuditRepo
from podium.store.callback_keys import CallbackKeyRepo
from podium.store.callbacks import CallbackQueue
from podium.store.coordination import GatewayReportRepo, RoutingStateRepo
from podium.store.endpoints import EndpointRepo
from podium.store.events import EventRepo
from podium.store.files import FileRepo
from podium.store.jobs import JobRepo
from podium.store.locks import LockSpace
from podium.store.memory import EndpointMemoryRepo
from podium.store.metrics import MetricRepo
from podium.store.models import ModelRepo
from podium.store.projects import ProjectRepo
from podium.store.replicas import ReplicaRepo
from podium.store.requests import RequestRepo
from podium.store.secrets import SecretRepo
from podium.store.spec_cache import SpecCache
from podium.store.stats import StatsRepo
from podium.store.task_views import TaskViews
from podium.store.tasks import TaskRepo
from podium.store.tokens import TokenRepo
from podium.store.usage import UsageRepo

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATE_LOCK_TIMEOUT_S = 300.0  # waiting for other processes migrating the same file
MIGRATE_BUSY_TIMEOUT_S = 60.0  # waiting for the write lock held by a unit of work

BUSY_TIMEOUT_S = 5.0  # a unit of work waits this long for the write lock
PG_CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout (whole seconds)
PG_STATEMENT_TIMEOUT_MS = 60_000  # any one statement (migrations: none)
PG_POOL_TIMEOUT_S = 10.0  # waiting for a pooled connection when all are in use
_SQLITE_PRAGMAS = (
    f"busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
    "foreign_keys=ON",
    "synchronous=NORMAL",
)
_READ_ONLY = "podium_read_only"
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization, deadlock, lock
_CANCELED = "57014"  # statement_timeout: the database did not answer in time


def normalize_url(url: str) -> URL:
    """Parse a database URL: SQLite files, or PostgreSQL through psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise Invalid(f"{url!r} is not a database URL", field="database_url") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
            return parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite" and parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise Invalid(
                "SQLite needs a file (sqlite:////absolute/path.db): an in-memory database "
                "is private to one connection",
                field="database_url",
            )
        return parsed.set(drivername="sqlite+pysqlite", database=os.path.abspath(database))
    raise Invalid(
        f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or postgresql://…",
        field="database_url",
    )


class UnitOfWork:
    """The repositories of one transaction, sharing one Session."""

    def __init__(
        self,
        session: Session,
        clock: Clock,
        specs: SpecCache | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self.session = session
        self.models = ModelRepo(session, clock)
        self.endpoints = EndpointRepo(session, clock, specs, keep_specs=read_only)
        self.replicas = ReplicaRepo(session)
        self.events = EventRepo(session, clock)
        self.memory = EndpointMemoryRepo(session, clock)
        self.tokens = TokenRepo(session, clock)
        self.audit = AuditRepo(session, clock)
        self.projects = ProjectRepo(session, clock)
        self.secrets = SecretRepo(session, clock)
        self.usage = UsageRepo(session, clock)
        self.requests = RequestRepo(session, clock)  # request records (issue 12)
        self.metrics = MetricRepo(session)
        self.stats = StatsRepo(session, clock)  # summaries of metric_points
        self.tasks = TaskRepo(session, clock)  # the async task queue (issue 13)
        self.task_views = TaskViews(session, clock)  # the API's pages, positions, cancel
        self.callback_keys = CallbackKeyRepo(session, clock)  # tasks' callback signing keys
        self.callbacks = CallbackQueue(session, clock)  # callbacks due for delivery
        self.files = FileRepo(session, clock)  # the file store's rows (issue 13)
        self.jobs = JobRepo(session, clock)  # batch jobs (issue 13)
        self.routing_state = RoutingStateRepo(session)  # the shared routing table (issue 16)
        self.gateway_reports = GatewayReportRepo(session)  # every gateway's load (issue 16)


class Database:
    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self._url = normalize_url(url)
        self._clock = clock or SystemClock()
        self._engine = self._create_engine()
        self._specs = SpecCache()  # parsed endpoint specs, shared by every unit of work
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        read_options: dict[str, Any] = {_READ_ONLY: True}
        if self.dialect == "postgresql":
            read_options["postgresql_readonly"] = True  # reset when back in the pool
        self._read_sessions = sessionmaker(
            self._engine.execution_options(**read_options), expire_on_commit=False
        )
        # Called with the session at the start of every writing unit of work (`fenced`).
        self._before_write: Callable[[Session], None] | None = None

    def fenced(self, check: Callable[[Session], None]) -> Database:
        """This database (same engine, same pool) with `check(session)` run first in every
        writing unit of work, inside its transaction: raising there rolls the unit back
        before it wrote anything. Reading units of work are not checked."""
        view = copy.copy(self)
        view._before_write = check
        return view

    @property
    def url(self) -> str:
        """The URL with its password masked (safe to log or show)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    @property
    def engine(self) -> Engine:
        return self._engine

    def __repr__(self) -> str:
        return f"Database({self.url!r})"

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        rendered = self._url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        with self._translate_errors(), self.migration_connection() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextmanager
    def migration_connection(self) -> Iterator[Connection]:
        """A connection in a transaction that only one migrator holds at a time.

        Used by `migrate()` and by `migrations/env.py` when run from the alembic CLI.
        Creates the folder of a SQLite file first.
        """
        if self.dialect == "postgresql":
            with self._engine.begin() as conn:
                conn.execute(text("SET LOCAL statement_timeout = 0"))  # a migration may be long
                conn.execute(select(func.pg_advisory_xact_lock(int(LockSpace.MIGRATE), 0)))
                yield conn
            return
        path = Path(self._url.database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.migrate.lock", timeout=MIGRATE_LOCK_TIMEOUT_S, mode=0o600)
        try:
            lock.acquire()
        except Timeout:
            raise Retryable(
                f"another process has been migrating {path} for {MIGRATE_LOCK_TIMEOUT_S:g}s",
                retry_after=5.0,
            ) from None
        try:
            with self._engine.connect() as conn:
                raw = conn.connection.dbapi_connection  # before BEGIN: no autobegin here
                assert raw is not None
                raw.execute(f"PRAGMA busy_timeout={int(MIGRATE_BUSY_TIMEOUT_S * 1000)}")
                try:
                    with conn.begin():
                        yield conn
                finally:
                    raw.execute(f"PRAGMA {_SQLITE_PRAGMAS[0]}")  # back to the pool's timeout
        finally:
            lock.release()

    def dispose(self) -> None:
        """Close every pooled connection (the Database stays usable and reconnects)."""
        self._engine.dispose()

    # ------------------------------------------------------------------ units of work

    @contextmanager
    def unit_of_work(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises.

        `read_only=True` for blocks that only read: they never wait for writers, and a
        write inside fails. Do not nest units of work in one thread: on SQLite the inner
        one would wait for the outer one's write lock.
        """
        factory = self._read_sessions if read_only else self._sessions
        with self._translate_errors(), factory() as session, session.begin():
            if not read_only and self._before_write is not None:
                self._before_write(session)
            yield UnitOfWork(session, self._clock, self._specs, read_only=read_only)

    # ------------------------------------------------------------------ internals

    def _create_engine(self) -> Engine:
        if self._url.get_backend_name() == "sqlite":
            engine = create_engine(
                self._url,
                connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
                pool_size=5,
                max_overflow=15,
                hide_parameters=True,  # errors never carry row values into logs
            )
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        try:
            return create_engine(
                self._url,
                pool_pre_ping=True,
                pool_size=5,
                max_overflow=15,
                pool_timeout=PG_POOL_TIMEOUT_S,
                # Every call has a limit: connecting to a host that does not answer (a
                # failover, a partition) would otherwise wait for the OS's TCP retries
                # (about 2 min), and a statement for as long as the server takes.
                connect_args={
                    "connect_timeout": PG_CONNECT_TIMEOUT_S,
                    "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}",
                },
                # A store error's text never carries the row values (captured payloads, a
                # secret's ciphertext, client addresses) into a log line.
                hide_parameters=True,
            )
        except ModuleNotFoundError:
            raise Invalid(
                "PostgreSQL needs psycopg 3: pip install 'podium[postgres]'", field="database_url"
            ) from None

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as e:
            translated = _translated(e)
            if translated is None:
                raise
            raise translated from e


def _translated(e: DBAPIError) -> Exception | None:
    """The `core.errors` equivalent of a transient or connection error, else None."""
    if not isinstance(e, OperationalError | InterfaceError):
        return None
    message = str(e.orig).lower()
    sqlstate = getattr(e.orig, "sqlstate", None) or ""
    if sqlstate in _TRANSIENT_SQLSTATES or "database is locked" in message or "is busy" in message:
        return Retryable("the database is busy; try again", retry_after=0.5)
    if sqlstate == _CANCELED:
        return Unavailable("the database did not answer in time")
    if e.connection_invalidated or sqlstate.startswith("08") or "connect" in message:
        return Unavailable(f"the database is unavailable: {e.orig}")
    return None


def _sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Leave transaction control to SQLAlchemy (`_sqlite_begin`), not the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        _use_wal(cursor)
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent: once per file), waiting for other connections.

    The switch needs the file to itself, and SQLite fails it at once, without the busy
    timeout, while another connection still in rollback mode writes (the first connection
    of another process to a new file, say): retry until the busy timeout has passed.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_begin(conn: Connection) -> None:
    read_only = bool(conn.get_execution_options().get(_READ_ONLY))
    conn.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
    conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")
