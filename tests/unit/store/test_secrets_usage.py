"""Secrets (ciphertext only) and replica usage in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from podium.core.errors import NotFound
from podium.store import Database
from podium.store.tables import ProjectRow
from podium.store.usage import GroupBy, RowSize, totals

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def ensure_projects(db: Database, *names: str) -> None:
    """The projects a test's secrets belong to (`default` too: the PostgreSQL fixture empties
    every table after a test, the row migration 0003 wrote included)."""
    with db.unit_of_work() as uow:
        for name in names:
            if uow.session.get(ProjectRow, name) is None:
                uow.session.add(ProjectRow(name=name, created_at=T0))


def test_a_secret_is_created_replaced_listed_without_value_and_deleted(
    database: Database,
) -> None:
    ensure_projects(database, "default", "team")
    with database.unit_of_work() as uow:
        assert not uow.secrets.any()
        first = uow.secrets.put("default", "hf", "cipher-1", by="tok1")
        uow.secrets.put("team", "db-pass", "cipher-2", by="tok1")
    with database.unit_of_work() as uow:
        again = uow.secrets.put("default", "hf", "cipher-3", by="tok2")
    assert again.created_by == "tok1" and again.created_at == first.created_at
    assert again.updated_at >= first.updated_at
    with database.unit_of_work(read_only=True) as uow:
        assert uow.secrets.any()
        assert uow.secrets.get_ciphertext("default", "hf") == "cipher-3"
        assert uow.secrets.exists("team", "db-pass")
        assert not uow.secrets.exists("default", "db-pass")  # secrets are per project
        every = uow.secrets.list()
        only_team = uow.secrets.list(["team"])
    assert [(r.project, r.name) for r in every] == [("default", "hf"), ("team", "db-pass")]
    assert [r.name for r in only_team] == ["db-pass"]
    assert not any("cipher" in repr(r) for r in every)  # records carry no ciphertext
    with database.unit_of_work() as uow:
        uow.secrets.delete("team", "db-pass")
    with database.unit_of_work() as uow, pytest.raises(NotFound) as e:
        uow.secrets.delete("team", "db-pass")
    assert e.value.field == "name"
    with database.unit_of_work(read_only=True) as uow, pytest.raises(NotFound):
        uow.secrets.get_ciphertext("team", "db-pass")
    with database.unit_of_work() as uow, pytest.raises(NotFound) as no_project:
        uow.secrets.put("nowhere", "db-pass", "cipher", by="tok1")
    assert no_project.value.field == "project"


def _open(
    db: Database,
    rid: str,
    at: datetime,
    *,
    endpoint: str = "spin",
    project: str = "default",
    instance_type: str = "cpu-small",
) -> None:
    with db.unit_of_work() as uow:
        uow.usage.open(
            rid, endpoint=endpoint, project=project, instance_type=instance_type, started_at=at
        )


def test_usage_intervals_are_clipped_to_the_period_and_filtered(database: Database) -> None:
    _open(database, "a", _h(0))
    _open(database, "b", _h(1), endpoint="team.chat", project="team", instance_type="gpu-small")
    _open(database, "c", _h(-5))
    with database.unit_of_work() as uow:
        assert uow.usage.close("a", _h(3))
        assert not uow.usage.close("a", _h(9))  # already closed: the first end stays
        uow.usage.close("c", _h(-4))  # before the period: not counted
        uow.usage.open(
            "b", endpoint="other", project="team", instance_type="cpu-large", started_at=_h(5)
        )  # a second open of an open row changes nothing
    with database.unit_of_work(read_only=True) as uow:
        found = uow.usage.intervals(_h(1), _h(4))
        team = uow.usage.intervals(_h(1), _h(4), projects=["team"])
        spin = uow.usage.intervals(_h(1), _h(4), endpoint="spin")
    # "a" ran 0..3, clipped to 1..3; "b" is still open: it counts up to the end asked for.
    assert {(i.replica_id, i.seconds) for i in found} == {("a", 7200.0), ("b", 10800.0)}
    assert [i.replica_id for i in team] == ["b"]
    assert [i.replica_id for i in spin] == ["a"]
    by_endpoint = totals(found, GroupBy.ENDPOINT)
    assert [(t.project, t.group, t.instance_type, t.replica_seconds) for t in by_endpoint] == [
        ("default", "spin", "cpu-small", 7200.0),
        ("team", "team.chat", "gpu-small", 10800.0),
    ]


def test_usage_by_day_splits_an_interval_at_utc_midnight(database: Database) -> None:
    # 22:00 on March 1st to 01:30 on March 2nd: 2 h on the 1st, 1.5 h on the 2nd.
    _open(database, "a", _h(0))
    with database.unit_of_work() as uow:
        uow.usage.close("a", _h(3.5))
    with database.unit_of_work(read_only=True) as uow:
        found = uow.usage.intervals(_h(-24), _h(24))
    days = totals(found, GroupBy.DAY)
    assert [(t.group, t.replica_seconds) for t in days] == [
        ("2026-03-01", 7200.0),
        ("2026-03-02", 5400.0),
    ]


def test_rows_left_open_for_replicas_gone_are_closed(database: Database) -> None:
    _open(database, "gone", _h(0))
    _open(database, "live", _h(0))
    with database.unit_of_work() as uow:
        assert uow.usage.close_all_but(["live"], _h(2)) == 1
    with database.unit_of_work(read_only=True) as uow:
        assert uow.usage.open_ids() == ["live"]
        found = {i.replica_id: i.seconds for i in uow.usage.intervals(_h(0), _h(10))}
    assert found == {"gone": 7200.0, "live": 36000.0}


def test_a_row_closed_at_a_stop_opens_again_when_its_replica_is_adopted(
    database: Database,
) -> None:
    _open(database, "a", _h(0))
    with database.unit_of_work() as uow:
        uow.usage.close_all_but((), _h(1))  # the controller stopped, leaving "a" running
        uow.usage.open(
            "a", endpoint="spin", project="default", instance_type="cpu-small", started_at=_h(2)
        )  # the next server adopted it: it ran all along, from its first start
    with database.unit_of_work(read_only=True) as uow:
        assert uow.usage.open_ids() == ["a"]
        (span,) = uow.usage.intervals(_h(0), _h(3))
    assert (span.start, span.end) == (_h(0), _h(3))


def test_an_adopted_row_opened_without_a_size_gets_its_size(database: Database) -> None:
    """A `custom` replica running across the upgrade to 0006 has a row without a size: the
    server that adopts it fills the size in, so the report can price it; a size already
    recorded is kept."""
    _open(database, "a", _h(0), instance_type="custom")
    size, other = RowSize(cpus=2, memory_mb=4096, gpus=1), RowSize(cpus=8, memory_mb=1, gpus=0)
    with database.unit_of_work() as uow:
        uow.usage.open("a", endpoint="spin", project="default", instance_type="custom", size=size)
        uow.usage.open("a", endpoint="spin", project="default", instance_type="custom", size=other)
    with database.unit_of_work(read_only=True) as uow:
        (span,) = uow.usage.intervals(_h(0), _h(1))
    assert span.size == size and span.start == _h(0)
