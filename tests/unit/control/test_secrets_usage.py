"""Secrets and usage in the controller, on fake time: a replica's environment gets the
secrets its revision names (decrypted here, never written anywhere), a missing secret
fails the revision with a reason naming it, and each replica's time is a usage row from its
start to its end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podium.control.loop import Controller
from podium.core.phases import EndpointStatus, EventKind
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.secret_box import SecretBox
from podium.store.usage import RowSize
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, sqlite_url, status

__all__ = ["sqlite_url"]

VALUE = "pw-Zq8-never-written-anywhere"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # FakeClock's


def _spec(**extra: object) -> EndpointSpec:
    return EndpointSpec.model_validate(
        {
            "name": "spin",
            "model": "bundle:1",
            "framework": "python",
            "timeout_s": 2,
            "scaling": {"min_replicas": 2, "max_replicas": 2},
            "env": {"PLAIN": "1"},
            "env_from_secrets": {"DB_PASSWORD": "db-pass"},
            **extra,
        }
    )


@pytest.fixture
def db(sqlite_url: str, tmp_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    box = SecretBox(tmp_path / "home" / "secret.key")  # the Harness's home
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
        uow.secrets.put("default", "db-pass", box.encrypt(VALUE, may_create=True), by="t")
        uow.endpoints.create(
            _spec(), model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=2
        )
    yield database
    database.dispose()


def _everything_written(db: Database) -> str:
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("spin")
        events = uow.events.list("spin")
    return "\n".join([str(ep.status_reason), *(f"{e.message} {e.data}" for e in events)])


def test_the_replica_env_gets_the_secret_and_usage_follows_its_life(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 3)  # clock 1001..1003: both start in the first pass
        assert len(h.routed()) == 2
        first = h.backend.started[0].replica_id
        h.backend.crash(first)
        await h.passes(ctl, 10)  # the crash is seen at 1004; a restart follows

    h.run(steps)
    assert status(db) is EndpointStatus.RUNNING
    for launch in h.backend.started:
        assert launch.env == {"PLAIN": "1", "DB_PASSWORD": VALUE}
    assert VALUE not in _everything_written(db)
    assert VALUE not in caplog.text
    with db.unit_of_work(read_only=True) as uow:
        ids = uow.usage.open_ids()
        spans = uow.usage.intervals(EPOCH, EPOCH + timedelta(seconds=1013))
    first, second = h.backend.started[0].replica_id, h.backend.started[1].replica_id
    live = set(h.backend.live())
    assert set(ids) == live and first not in live
    by_id = {s.replica_id: s for s in spans}
    assert by_id[first].start == EPOCH + timedelta(seconds=1001)
    assert by_id[first].end == EPOCH + timedelta(seconds=1004)  # closed when it exited
    assert by_id[second].end == EPOCH + timedelta(seconds=1013)  # open: up to the end asked
    assert {s.instance_type for s in spans} == {"cpu-small"}
    assert {s.project for s in spans} == {"default"}


def test_a_missing_secret_fails_the_revision_naming_it(tmp_path: Path, db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.secrets.delete("default", "db-pass")  # after the deploy-time check passed
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)

    h.run(steps)
    with db.unit_of_work(read_only=True) as uow:
        ep = uow.endpoints.get("spin")
        failed = [e for e in uow.events.list("spin") if e.kind is EventKind.STATUS]
    assert ep.status is EndpointStatus.FAILED
    assert ep.status_reason is not None
    assert "secret 'db-pass' (env_from_secrets.DB_PASSWORD) does not exist" in ep.status_reason
    assert failed and h.backend.started == []
    with db.unit_of_work(read_only=True) as uow:
        assert uow.usage.open_ids() == []


def test_values_the_controller_decrypted_are_masked_in_what_it_writes(
    tmp_path: Path, db: Database
) -> None:
    """A message that would carry a value (a replica printing its environment in an error,
    say) is written with `***` instead."""
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)
        ctl.journal.event("spin", EventKind.SPEC, f"oops {VALUE}", detail=[f"x={VALUE}"])
        ctl.act.exits.fail("spin", ctl.state.memory_of("spin"), f"bad: {VALUE}")
        await h.passes(ctl, 1)

    h.run(steps)
    with db.unit_of_work(read_only=True) as uow:
        (oops,) = [e for e in uow.events.list("spin") if e.message.startswith("oops")]
        ep = uow.endpoints.get("spin")
        memory = uow.memory.get("spin")
    assert oops.message == "oops ***" and oops.data == {"detail": ["x=***"]}
    assert ep.status is EndpointStatus.FAILED and ep.status_reason == "bad: ***"
    assert memory is not None and memory.failure == "bad: ***"
    assert VALUE not in _everything_written(db)


def test_rows_left_open_by_a_previous_server_are_closed_at_start(
    tmp_path: Path, db: Database
) -> None:
    with db.unit_of_work() as uow:
        uow.usage.open(
            "spin-old",
            endpoint="spin",
            project="default",
            instance_type="cpu-small",
            started_at=EPOCH,
        )
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 1)

    h.run(steps)
    with db.unit_of_work(read_only=True) as uow:
        (old,) = [
            s
            for s in uow.usage.intervals(EPOCH, EPOCH + timedelta(days=1))
            if s.replica_id == "spin-old"
        ]
    assert old.end == EPOCH + timedelta(seconds=1001)  # the new server's first pass


def test_a_stopping_controller_ends_every_open_usage_row(tmp_path: Path, db: Database) -> None:
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)
        h.clock.advance(5)
        ctl.journal.end_usage()  # what the loop does last when it stops

    h.run(steps)
    with db.unit_of_work(read_only=True) as uow:
        assert uow.usage.open_ids() == []
        spans = uow.usage.intervals(EPOCH, EPOCH + timedelta(days=1))
    assert len(spans) == 2
    assert {s.end for s in spans} == {EPOCH + timedelta(seconds=1007)}


def test_a_resources_replica_records_its_size_on_its_usage_row(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The usage report prices a `custom` replica by the size its row records."""
    database = Database(sqlite_url)
    database.migrate()
    spec = _spec(
        env_from_secrets={},
        scaling={"min_replicas": 1, "max_replicas": 1},
        resources={"cpus": 0.5, "memory": "3Gi", "gpus": 0},
    )
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
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.PENDING, desired_replicas=1
        )
    h = Harness(tmp_path, database, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)

    try:
        h.run(steps)
        with database.unit_of_work(read_only=True) as uow:
            (span,) = uow.usage.intervals(EPOCH, EPOCH + timedelta(days=1))
    finally:
        database.dispose()
    assert (span.instance_type, span.size) == ("custom", RowSize(0.5, 3072, 0))
