"""GET /endpoints answers the JSON of `EndpointList` byte for byte, though each spec's JSON
is dumped once per stored spec (`store.spec_cache`) and spliced into its view dumped
without it (`views.endpoints_json`): for specs with every optional block, over-bound
stored ones and strings that look like the JSON around them, endpoints of a project,
replicas and figures, on SQLite and PostgreSQL; and an updated, re-created or elsewhere
changed endpoint is never answered with its old spec's JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.api.services import views
from podium.core.bounds import STORED
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.schemas import EndpointList
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import ReplicaRecord
from tests.support.db import database, postgres_shared_url, sqlite_url
from tests.support.live import insert, point
from tests.unit.api.test_apply import COMMAND_FIELDS, CONTAINER_FIELDS, EVERY_FIELD

__all__ = ["database", "postgres_shared_url", "sqlite_url"]

# Strings that hold what the splice looks for (`,"status":`), quotes, escapes, non-ASCII.
TRICKY = {"note": 'a,"status":"x"}', "path": "C:\\models\\\n", "owner": "Zoë ✓ 模型"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=50_000.0)  # 2026-01-01 + 50000 s: a multiple of 10 in unix time


@pytest.fixture
def db(database: Database, clock: FakeClock) -> Iterator[Database]:
    """The migrated store on a fake clock: two dumps of one list are the same instant."""
    clocked = Database(database.url, clock=clock)
    yield clocked
    clocked.dispose()


def settings() -> Settings:
    return Settings(home=Path("/nonexistent/podium"), port=8123)  # only its URL is read


def create(db: Database, name: str, project: str = "default", **fields: Any) -> None:
    """An endpoint with every field of the spec set (`fields` on top; `context=STORED`: as
    an older Podium stored it, past today's bounds)."""
    context = fields.pop("context", None)
    body = {**EVERY_FIELD, **fields, "name": name, "project": project}
    spec = EndpointSpec.model_validate(body, context=context)
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref="iris:1", status=EndpointStatus.PENDING, desired_replicas=1
        )


def answers(db: Database) -> tuple[bytes, bytes]:
    """The list as the route answers it, and as a plain dump of the same views."""
    with db.unit_of_work(read_only=True) as uow:
        records = uow.endpoints.list()
        spliced = views.endpoints_json(uow, settings(), records)
        plain = EndpointList.model_construct(items=views.endpoints(uow, settings(), records))
    return spliced, plain.model_dump_json().encode()


def listed_specs(db: Database) -> dict[str, Any]:
    spliced, plain = answers(db)
    assert spliced == plain
    return {item["key"]: item["spec"] for item in json.loads(spliced)["items"]}


def test_the_spliced_list_is_the_plain_dump_byte_for_byte(db: Database, clock: FakeClock) -> None:
    with db.unit_of_work() as uow:
        uow.projects.create("team")
    create(db, "every-field")
    create(db, "commanded", **COMMAND_FIELDS)
    create(db, "boxed", **CONTAINER_FIELDS)
    create(db, "tricky", labels=TRICKY, env={"QUOTE": '"', "SLASH": "\\/"})
    create(db, "plain", project="team", labels={}, visibility="protected")
    create(db, "over-bound", labels={f"k{i}": "v" * 300 for i in range(80)}, context=STORED)
    rid = "every-field-r1-a"
    with db.unit_of_work() as uow:
        started = clock.now()
        uow.replicas.upsert(
            ReplicaRecord(rid, "every-field", 1, ReplicaState.READY, "127.0.0.1", 9000, 42, started)
        )
        uow.events.add("every-field", EventKind.REPLICA_READY, "ready", {"replica_id": rid})
    served = clock.now().timestamp() - 20  # a closed slot of the last 5 minutes
    insert(
        db,
        point("every-field", "", served, requests=6, errors_5xx=1, latency_sum_ms=30.0),
        point("every-field", rid, served, requests=6, latency_sum_ms=30.0),
    )
    for _ in range(2):  # the specs' JSON dumped, then from the cache
        spliced, plain = answers(db)
        assert spliced == plain
        parsed = EndpointList.model_validate_json(spliced, context=STORED)  # the over-bound one
        assert parsed == EndpointList.model_validate_json(plain, context=STORED)
    items = {item["key"]: item for item in json.loads(spliced)["items"]}
    assert list(items) == sorted(items) and len(items) == 6
    assert items["tricky"]["spec"]["labels"] == TRICKY
    assert items["tricky"]["status"] == "pending"
    assert items["team.plain"]["visibility"] == "protected"
    assert items["every-field"]["requests"] == 6
    assert items["every-field"]["replicas"][0]["requests"] == 6
    with db.unit_of_work(read_only=True) as uow:  # the list's views, one by one
        for record in uow.endpoints.list():
            view = views.endpoint(uow, settings(), record)
            assert items[record.name]["spec"] == json.loads(view.spec.model_dump_json())


def test_a_changed_endpoint_is_never_answered_with_its_old_spec(db: Database) -> None:
    create(db, "ep-a", timeout_s=5)
    assert listed_specs(db)["ep-a"]["timeout_s"] == 5.0
    with db.unit_of_work() as uow:  # updated
        spec = EndpointSpec.model_validate({**EVERY_FIELD, "name": "ep-a", "timeout_s": 6})
        uow.endpoints.update_spec("ep-a", spec, new_revision_model_ref=None, desired_replicas=1)
    assert listed_specs(db)["ep-a"]["timeout_s"] == 6.0
    with db.unit_of_work() as uow:  # re-created within one tick of the clock
        uow.endpoints.delete("ep-a")
    create(db, "ep-a", timeout_s=7)
    assert listed_specs(db)["ep-a"]["timeout_s"] == 7.0
    other = Database(db.url)  # another server: this one's cache is not told
    try:
        with other.unit_of_work() as uow:
            spec = EndpointSpec.model_validate({**EVERY_FIELD, "name": "ep-a", "timeout_s": 8})
            uow.endpoints.update_spec("ep-a", spec, new_revision_model_ref=None, desired_replicas=1)
    finally:
        other.dispose()
    assert listed_specs(db)["ep-a"]["timeout_s"] == 8.0
