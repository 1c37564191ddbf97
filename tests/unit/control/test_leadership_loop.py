"""The controller's loop under a PostgreSQL lease (issue 16): a candidate that does not lead
only tries to take the lead (no poll, no start, no pass); on taking it, it acts; on losing
it, it stops acting at once and stops nothing; on taking it again it adopts its replicas
instead of starting new ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from podium.backends.base import ObservedReplica
from podium.control.loop import Controller
from podium.coordination.leadership import PgLease
from podium.core.phases import EndpointStatus
from podium.core.routing import InProcessRoutingSource
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.locks import LockSpace
from tests.support.db import IN_THIS_DATABASE, postgres_url
from tests.support.fake_backend import FakeBackend
from tests.support.server import wait_until

__all__ = ["postgres_url"]

pytestmark = pytest.mark.postgres


class WatchedBackend(FakeBackend):
    """Counts polls. Adopts no replica (`FakeBackend.adopt`): as the local backend, it
    adopts only strangers, so a controller that leads again must see its own replicas in
    `poll()`."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    async def poll(self) -> list[ObservedReplica]:
        self.polls += 1
        return await super().poll()


@pytest.fixture
def db(postgres_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(postgres_url)
    database.migrate()
    with database.unit_of_work() as uow:
        uow.models.add_version(
            "bundle",
            framework="python",
            sha256="0" * 64,
            size_bytes=1,
            files=1,
            source="test",
            path=str(tmp_path),
        )
        spec = EndpointSpec.model_validate(
            {"name": "spin", "model": "bundle:1", "framework": "python"}
        )
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=1
        )
    yield database
    database.dispose()


def _terminate_holder(url: str) -> None:
    """End the server side of the lock holder's connection (as when its process dies),
    waiting until it is gone (and its lock with it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = 'advisory' "
            f"AND classid = %s AND objid = 0 AND granted AND {IN_THIS_DATABASE}",
            (int(LockSpace.CONTROLLER),),
        )


def _waiting_for_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            f"AND NOT granted AND {IN_THIS_DATABASE}",
            (int(LockSpace.CONTROLLER),),
        ).fetchone()
    return row is not None and row[0] == 1


class Usurper:
    """Another leader that waits in line for the lock (blocking), so it gets it the moment
    the holder's connection ends, before the holder can try again; then raises the epoch
    as a leader does."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.thread = threading.Thread(target=self._take)

    def _take(self) -> None:
        self.conn.execute("SELECT pg_advisory_lock(%s, 0)", (int(LockSpace.CONTROLLER),))
        self.conn.execute("UPDATE controller_lease SET epoch = epoch + 1 WHERE id = 1")

    def release(self) -> None:
        self.conn.close()


def test_a_candidate_acts_only_while_it_leads(
    db: Database, postgres_url: str, tmp_path: Path
) -> None:
    other = PgLease(postgres_url, holder="other")
    assert other.try_acquire()  # someone else leads first
    backend = WatchedBackend()
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200)))
    controller = Controller(
        Settings(home=tmp_path / "home", database_url=postgres_url),
        db,
        backend,
        InProcessRoutingSource(),
        http=http,
        lease=PgLease(postgres_url, holder="candidate"),
    )
    controller.start()  # returns after its first try: a standby serves its other roles
    try:
        time.sleep(1.2)  # a few of its tries to lead
        assert not controller.leading
        assert backend.polls == 0 and backend.started == []
        assert controller.instruments.passes_ok == 0 and controller.instruments.epoch == 0

        other.release()
        wait_until(lambda: controller.leading, 10, "the candidate leads")
        wait_until(lambda: len(backend.live()) == 1, 10, "its replica started")
        assert controller.instruments.epoch == 2
        (replica,) = backend.live()

        # It loses the lead (its connection dies) and another takes it at once.
        usurper = Usurper(postgres_url)
        usurper.thread.start()
        wait_until(lambda: _waiting_for_lock(postgres_url), 10, "the usurper in line")
        _terminate_holder(postgres_url)
        usurper.thread.join(10)
        assert not usurper.thread.is_alive()
        wait_until(lambda: not controller.leading, 10, "the candidate stands down")
        polls = backend.polls
        time.sleep(1.2)
        assert backend.polls == polls  # no pass since
        assert backend.stopped == [] and backend.killed == []  # it stopped nothing
        assert backend.live() == [replica]

        usurper.release()  # it leads again: adopts the replica it still runs
        wait_until(lambda: controller.leading, 10, "the candidate leads again")
        wait_until(lambda: controller.instruments.passes_ok > 0 and backend.polls > polls, 10)
        wait_until(lambda: replica in controller.state.replicas, 10, "its replica adopted")
        assert controller.instruments.epoch == 4
        assert [s.replica_id for s in backend.started] == [replica]  # nothing started again
        assert backend.stopped == []
    finally:
        controller.stop()
        other.release()
