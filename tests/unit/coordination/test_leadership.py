"""The controller lease and its fence on a real PostgreSQL database (`coordination.
leadership`): two candidates, one leads; the other takes over once the first's connection
is gone (closed, or terminated by the server as for a SIGKILLed process); a stale leader's
write raises `Fenced` and changes nothing; a takeover waits for a write under way."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import psycopg
import pytest

from podium.backends.base import ReplicaSize
from podium.coordination.fenced_backend import FencedBackend
from podium.coordination.leadership import LeaseFence, PgLease, SoleLease, lease_for
from podium.core.errors import Fenced
from podium.core.phases import EndpointStatus, EventKind, ExitReason
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.locks import LockSpace
from tests.support.db import IN_THIS_DATABASE, postgres_url, sqlite_url
from tests.support.fake_backend import FakeBackend
from tests.support.server import wait_until

__all__ = ["postgres_url", "sqlite_url"]


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def leases(postgres_url: str) -> Iterator[tuple[PgLease, PgLease]]:
    a, b = PgLease(postgres_url, holder="a"), PgLease(postgres_url, holder="b")
    yield a, b
    a.release()
    b.release()


def _lease_row(db: Database) -> tuple[int, str | None]:
    with db.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT epoch, holder FROM controller_lease WHERE id = 1")
        epoch, holder = row.one()
    return int(epoch), holder


def _terminate_holder(url: str) -> None:
    """Kill the server side of whoever holds the controller's advisory lock, as the server
    does when a leader's process dies (its socket closes)."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            f"AND objid = 0 AND granted AND {IN_THIS_DATABASE}",
            (int(LockSpace.CONTROLLER),),
        ).fetchall()
        assert len(pids) == 1
        # Waits (up to 5 s) until the backend is gone, and its lock with it.
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pids[0][0],))


def _add_endpoint(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path="/nonexistent",
        )
        spec = EndpointSpec.model_validate(
            {"name": "spin", "model": "bundle:1", "framework": "python"}
        )
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=1
        )


def _event_count(db: Database) -> int:
    with db.unit_of_work(read_only=True) as uow:
        return len(uow.events.list("spin"))


@pytest.mark.postgres
def test_one_candidate_leads_and_the_other_takes_over_when_its_connection_closes(
    pg: Database, leases: tuple[PgLease, PgLease]
) -> None:
    a, b = leases
    assert a.try_acquire() and a.epoch == 1
    assert not b.try_acquire() and b.epoch == 0
    assert a.try_acquire() and a.epoch == 1  # asking again while leading changes nothing
    assert a.holds() and not b.holds()
    assert _lease_row(pg) == (1, "a")

    a.release()  # a graceful stop
    assert not a.holds() and a.epoch == 0
    # The server drops the lock once it has read a's goodbye: b's next tries get it.
    wait_until(b.try_acquire, 10, "b leads")
    assert b.epoch == 2
    assert _lease_row(pg) == (2, "b")
    assert not a.try_acquire()


@pytest.mark.postgres
def test_a_leader_whose_connection_dies_loses_the_lead_to_the_standby(
    postgres_url: str, pg: Database, leases: tuple[PgLease, PgLease]
) -> None:
    a, b = leases
    assert a.try_acquire()
    _terminate_holder(postgres_url)
    assert not a.holds()  # the dead connection is noticed, within the statement timeout
    assert b.try_acquire() and b.epoch == 2
    assert not a.try_acquire()  # reconnects, but the lock is b's now
    assert b.holds()


@pytest.mark.postgres
def test_a_stale_leaders_write_is_fenced_and_changes_nothing(
    postgres_url: str, pg: Database, leases: tuple[PgLease, PgLease]
) -> None:
    a, b = leases
    _add_endpoint(pg)
    assert a.try_acquire()
    as_a = pg.fenced(a.fence.check)
    with as_a.unit_of_work() as uow:  # a leads: its write goes through
        uow.events.add("spin", EventKind.SPEC, "written by a")
    before = _event_count(pg)

    # a's connection dies but a does not know yet (paused, partitioned); b takes over.
    _terminate_holder(postgres_url)
    assert b.try_acquire() and b.epoch == 2
    stale = LeaseFence(_Frozen(1))  # a as it still believes it is: epoch 1
    with (
        pytest.raises(Fenced, match=r"epoch 1.*epoch 2"),
        pg.fenced(stale.check).unit_of_work() as uow,
    ):
        uow.events.add("spin", EventKind.SPEC, "written by a stale leader")
    assert _event_count(pg) == before
    # and a, once it has looked, knows it does not lead: epoch 0 is refused outright.
    assert not a.holds()
    with pytest.raises(Fenced, match="does not lead"), as_a.unit_of_work() as uow:
        uow.events.add("spin", EventKind.SPEC, "written after standing down")
    assert _event_count(pg) == before
    with pg.fenced(b.fence.check).unit_of_work() as uow:  # the new leader writes
        uow.events.add("spin", EventKind.SPEC, "written by b")
    assert _event_count(pg) == before + 1


@pytest.mark.postgres
def test_a_takeover_waits_for_the_old_leaders_write_under_way(
    postgres_url: str, pg: Database, leases: tuple[PgLease, PgLease]
) -> None:
    """The fence holds the lease row FOR SHARE: b's epoch UPDATE waits until a's
    transaction ends, so no write of a commits after b's tenure began."""
    a, b = leases
    _add_endpoint(pg)
    assert a.try_acquire()
    took: list[bool] = []
    with pg.fenced(a.fence.check).unit_of_work() as uow:
        uow.events.add("spin", EventKind.SPEC, "a's write under way")
        _terminate_holder(postgres_url)  # the lock is free; a's transaction is not over
        thread = threading.Thread(target=lambda: took.append(b.try_acquire()))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and not took  # b waits on the row a holds FOR SHARE
    thread.join(10)  # a's transaction ended: b's UPDATE goes through
    assert took == [True] and b.epoch == 2
    assert _event_count(pg) == 1


class _Frozen:
    """A lease as a stale leader sees it: it still believes it leads with `epoch`."""

    sole = False

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


@pytest.mark.postgres
def test_the_backend_refuses_actions_once_the_lead_is_gone(
    postgres_url: str, pg: Database, leases: tuple[PgLease, PgLease]
) -> None:
    a, _ = leases
    inner = FakeBackend()
    backend = FencedBackend(inner, a)
    with pytest.raises(Fenced, match="stopping replica r1"):
        asyncio.run(backend.stop("r1"))  # a does not lead yet
    assert a.try_acquire()
    a.release()
    backend.forget_lead()
    with pytest.raises(Fenced, match="killing replica"):
        asyncio.run(backend.kill("r1", ExitReason.UNHEALTHY))
    assert inner.started == []
    # Observation passes through, optional protocols included (no counted devices here).
    assert backend.room_for(ReplicaSize(cpus=1, memory_mb=512, gpus=1)) is None


def test_sqlite_has_the_sole_lease_always_held(sqlite_url: str) -> None:
    lease = lease_for(sqlite_url)
    assert isinstance(lease, SoleLease)
    assert lease.try_acquire() and lease.holds() and lease.epoch == 1 and lease.sole
    lease.release()
    assert lease.holds()  # one process: nothing to give up
    assert isinstance(lease_for("postgresql://u@127.0.0.1/x"), PgLease)


def test_a_fenced_view_checks_writes_only_and_a_refusal_writes_nothing(sqlite_url: str) -> None:
    """`Database.fenced`: the one place every controller write is checked (SQLite here:
    the view itself does not depend on the dialect)."""
    db = Database(sqlite_url)
    db.migrate()
    try:
        _add_endpoint(db)
        checked: list[bool] = []

        def refuse(session: object) -> None:
            checked.append(True)
            raise Fenced("not the leader")

        fenced = db.fenced(refuse)
        with fenced.unit_of_work(read_only=True) as uow:  # reads are not checked
            assert uow.endpoints.get("spin").name == "spin"
        assert checked == []
        with pytest.raises(Fenced), fenced.unit_of_work() as uow:
            uow.events.add("spin", EventKind.SPEC, "refused")
        assert checked == [True] and _event_count(db) == 0
        with db.unit_of_work() as uow:  # the database itself is not fenced
            uow.events.add("spin", EventKind.SPEC, "the API's write")
        assert _event_count(db) == 1
    finally:
        db.dispose()
