"""The durable task queue (`store.tasks`) on SQLite and PostgreSQL: enqueue, idempotency,
claim order and caps, fenced finish (a result recorded once), retries, dead-lettering and
expired leases."""

from __future__ import annotations

import pytest

from podium.core.clock import FakeClock
from podium.core.errors import Conflict, NotFound
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from podium.store.tables import JobRow, TaskRow
from podium.store.task_records import NewTask, Outcome
from podium.store.tasks import retry_delay
from tests.unit.store.task_kit import new_task


def _new(body: bytes = b'{"x": 1}', **kw: object) -> NewTask:
    return new_task(body, **kw)


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
    """A failed attempt is retried after a delay (0.5 s, then doubling: a restarting
    replica is not hammered), then dead-lettered with every reason."""
    db, clock = clocked
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(_new(max_attempts=2))
    for n in (1, 2):
        if n == 2:
            with db.unit_of_work() as uow:
                assert uow.tasks.claim("d", {"echo": 1}) == []  # not yet: its delay
            clock.advance(retry_delay(1))
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


def test_retry_delays_double_up_to_a_ceiling() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4, 7, 20)] == [0.5, 1.0, 2.0, 4.0, 30.0, 30.0]


def test_a_sweep_never_gives_back_a_newer_attempt(clocked: tuple[Database, FakeClock]) -> None:
    """Review finding 1: server A reads an expired lease, server B sweeps the same task and
    claims it again (attempt 2) before A writes. A's write must not touch attempt 2: the
    task stays running under B, and B's answer is recorded."""
    db, clock = clocked
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(_new())
        uow.tasks.claim("a", {"echo": 1})
    clock.advance(11)
    with db.unit_of_work() as uow:
        (seen_by_a,) = uow.tasks.expired_leases()  # A reads, then is slow
    with db.unit_of_work() as uow:
        assert uow.tasks.release_expired() == 1  # B's sweep
        (two,) = uow.tasks.claim("b", {"echo": 1})
    with db.unit_of_work() as uow:
        assert uow.tasks.release(seen_by_a) is False  # A's write finds attempt 2
        assert uow.tasks.get(task.id).status is TaskStatus.RUNNING
        ok = Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"{}")
        assert uow.tasks.finish(task.id, two.attempt, "b", ok) is TaskStatus.SUCCEEDED


def test_job_lines_do_not_expire_before_their_job_and_expired_rows_are_pruned(
    clocked: tuple[Database, FakeClock],
) -> None:
    """A line of a job still running keeps its result past its TTL (the output needs it);
    a lone task expires (result and request body deleted) and is deleted 7 days later."""
    from podium.store.tasks import PRUNE_AFTER_S

    db, clock = clocked
    with db.unit_of_work() as uow:
        lone, _ = uow.tasks.enqueue(_new(b"lone", ttl_s=60))
        uow.session.execute(
            JobRow.__table__.insert().values(
                id="job_1", project="default", endpoint="echo", kind="podium",
                status="in_progress", method="POST", path="/", concurrency=1,
                input_file="file_1", lines_total=1, labels={}, created_at=0.0,
                updated_at=0.0,
            )
        )  # fmt: skip
        (line,) = uow.tasks.enqueue_many([_new(b"line", ttl_s=60, job_id="job_1", line=0)])
    clock.advance(61)
    with db.unit_of_work() as uow:
        assert uow.tasks.expire() == (1, [])
        assert uow.tasks.get(line).status is TaskStatus.PENDING
        assert uow.tasks.get(lone.id).status is TaskStatus.EXPIRED
        body = (
            uow.session.execute(TaskRow.__table__.select().where(TaskRow.__table__.c.id == lone.id))
            .one()
            ._mapping["body"]
        )
    assert body == b""
    clock.advance(PRUNE_AFTER_S)
    with db.unit_of_work() as uow:
        assert uow.tasks.prune() == 1
        assert uow.tasks.prune() == 0
        with pytest.raises(NotFound):
            uow.tasks.get(lone.id)
        uow.tasks.enqueue(_new(b"again", idempotency_key="k"))  # keys of pruned rows free
