"""The audit repository: entries kept as given, listed oldest first with filters and
`after_id` paging."""

from __future__ import annotations

from typing import Any

import pytest

from podium.core.errors import Invalid
from podium.store import Database


def add(db: Database, **changes: Any) -> int:
    entry: dict[str, Any] = {
        "actor": "ab12cd34ef56",
        "actor_name": "ci",
        "action": "endpoint.create",
        "object_kind": "endpoint",
        "object_name": "iris-api",
        "project": "default",
        "before": None,
        "after": {"spec": {"model": "iris", "replicas": [1, 2]}},
        "address": "127.0.0.1",
        "result": 201,
        "detail": None,
        **changes,
    }
    with db.unit_of_work() as uow:
        return uow.audit.add(**entry).id


def test_an_entry_reads_back_as_written(database: Database) -> None:
    add(database, detail="x" * 5000)
    with database.unit_of_work(read_only=True) as uow:
        (entry,) = uow.audit.list()
    assert entry.after == {"spec": {"model": "iris", "replicas": [1, 2]}}
    assert (entry.actor, entry.action, entry.result) == ("ab12cd34ef56", "endpoint.create", 201)
    assert entry.at.tzinfo is not None
    assert entry.detail is not None and len(entry.detail) == 2000  # cut, not refused


def test_filters_and_pages(database: Database) -> None:
    first = add(database)
    add(database, actor="-", actor_name="anonymous", result=401, action="endpoint.pause")
    add(database, action="token.create", object_kind="token", project=None)
    add(database, project="team")
    with database.unit_of_work(read_only=True) as uow:
        assert len(uow.audit.list()) == 4
        assert [e.action for e in uow.audit.list(action="token")] == ["token.create"]
        assert len(uow.audit.list(action="endpoint")) == 3
        assert len(uow.audit.list(action="endpoint.create")) == 2
        assert [e.result for e in uow.audit.list(actor="anonymous")] == [401]
        assert len(uow.audit.list(actor="ab12cd34ef56")) == 3
        assert len(uow.audit.list(project="team")) == 1
        page = uow.audit.list(after_id=first, limit=2)
        assert [e.id for e in page] == [e.id for e in uow.audit.list()][1:3]
        with pytest.raises(Invalid):
            uow.audit.list(limit=0)


def test_newest_first_pages_back_with_before_id(database: Database) -> None:
    ids = [add(database, object_name=f"e{i}") for i in range(5)]
    add(database, project="team")
    with database.unit_of_work(read_only=True) as uow:
        newest = uow.audit.list(project="default", newest_first=True, limit=2)
        assert [e.id for e in newest] == [ids[4], ids[3]]
        older = uow.audit.list(project="default", newest_first=True, before_id=ids[3], limit=2)
        assert [e.id for e in older] == [ids[2], ids[1]]
        last = uow.audit.list(project="default", newest_first=True, before_id=ids[1], limit=2)
        assert [e.id for e in last] == [ids[0]]
        # before_id bounds the oldest-first order too, and after_id the newest-first one
        assert [e.id for e in uow.audit.list(before_id=ids[2])] == ids[:2]
        between = uow.audit.list(after_id=ids[0], before_id=ids[4], newest_first=True)
        assert [e.id for e in between] == [ids[3], ids[2], ids[1]]
