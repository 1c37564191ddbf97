"""The durable task queue (`store.tasks`) on SQLite and PostgreSQL: enqueue, idempotency,
claim order and caps, fenced finish (a result recorded once), retries, dead-lettering and
expired leases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podium.core.clock import FakeClock
from podium.core.errors import Conflict
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from podium.store.tasks import NewTask, Outcome


def _new(body: bytes = b'{"x": 1}', **kw: object) -> NewTask:
    fields: dict[str, object] = {
        "endpoint": "echo",
        "project": "default",
        "method": "POST",
        "path": "/predict",
        "body": body,
        "headers": (("content-type", "application/json"),),
        "lease_s": 10.0,
    }
    fields.update(kw)
    return NewTask(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clocked(database: Database) -> Iterator[tuple[Database, FakeClock]]:
    """The migrated `database` (no password on this machine's servers) on a fake clock."""
    clock = FakeClock()
    db = Database(database.url, clock=clock)
    yield db, clock
    db.dispose()


def test_enqueue_then_claim_in_priority_then_fifo_order(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, _ = clocked
    with db.unit_of_work() as uow:
        low, _ = uow.tasks.enqueue(_new(b"1", priority=1))
        first, _ = uow.tasks.enqueue(_new(b"2", priority=5))
        second, _ = uow.tasks.enqueue(_new(b"3", priority=5))
        uow.tasks.enqueue(_new(b"4", endpoint="other"))
    with db.unit_of_work() as uow:
        claimed = uow.tasks.claim("d1", {"echo": 2})
    assert [c.id for c in claimed] == [first.id, second.id]
    assert [c.body for c in claimed] == [b"2", b"3"]
    assert claimed[0].attempt == 1
    assert claimed[0].headers == (("content-type", "application/json"),)
    with db.unit_of_work() as uow:
        assert [c.id for c in uow.tasks.claim("d2", {"echo": 5})] == [low.id]
        assert uow.tasks.claim("d2", {"echo": 5}) == []
        depth = uow.tasks.depth()
    assert depth["echo"].running == 3 and depth["echo"].pending == 0
    assert depth["other"].pending == 1


def test_same_idempotency_key_and_body_is_the_same_task(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, _ = clocked
    with db.unit_of_work() as uow:
        a, created_a = uow.tasks.enqueue(_new(idempotency_key="k1"))
        b, created_b = uow.tasks.enqueue(_new(idempotency_key="k1"))
    assert created_a and not created_b and a.id == b.id
    with pytest.raises(Conflict) as e, db.unit_of_work() as uow:
        uow.tasks.enqueue(_new(b"other", idempotency_key="k1"))
    assert e.value.field == "Idempotency-Key"


def test_a_result_is_recorded_once_even_when_the_task_ran_twice(
    clocked: tuple[Database, FakeClock],
) -> None:
    """Dispatcher 1's lease runs out, dispatcher 2 takes the task over and answers first;
    dispatcher 1's late answer is stale and changes nothing."""
    db, clock = clocked
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(_new())
        (one,) = uow.tasks.claim("d1", {"echo": 1})
    clock.advance(11)
    with db.unit_of_work() as uow:
        assert uow.tasks.release_expired() == 1
        (two,) = uow.tasks.claim("d2", {"echo": 1})
    assert two.attempt == 2
    with db.unit_of_work() as uow:
        ok = Outcome(AttemptOutcome.SUCCEEDED, status=200, result=b'{"y": 2}')
        assert uow.tasks.finish(task.id, two.attempt, "d2", ok) is TaskStatus.SUCCEEDED
        late = Outcome(AttemptOutcome.SUCCEEDED, status=200, result=b'{"y": "late"}')
        assert uow.tasks.finish(task.id, one.attempt, "d1", late) is None
    with db.unit_of_work(read_only=True) as uow:
        view = uow.tasks.get(task.id)
        attempts = uow.tasks.attempts(task.id)
    assert view.status is TaskStatus.SUCCEEDED and view.result == b'{"y": 2}'
    assert [a.outcome for a in attempts] == [AttemptOutcome.LEASE_EXPIRED, AttemptOutcome.SUCCEEDED]


def test_retries_then_dead_letters_with_every_reason(clocked: tuple[Database, FakeClock]) -> None:
    db, _ = clocked
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(_new(max_attempts=2))
    for n in (1, 2):
        with db.unit_of_work() as uow:
            (c,) = uow.tasks.claim("d", {"echo": 1})
            status = uow.tasks.finish(
                task.id, c.attempt, "d", Outcome(AttemptOutcome.RETRY, 500, f"boom {n}")
            )
        assert status is (TaskStatus.PENDING if n == 1 else TaskStatus.FAILED)
    with db.unit_of_work(read_only=True) as uow:
        view = uow.tasks.get(task.id)
        reasons = [a.reason for a in uow.tasks.attempts(task.id)]
    assert view.status is TaskStatus.FAILED and "dead-lettered" in (view.error or "")
    assert reasons == ["boom 1", "boom 2"]
