"""The task queue's operations for the API and the dispatcher (`store.tasks`), on SQLite and
PostgreSQL: cancel, TTL expiry, listing, queue position, and which held tasks are still
running under their attempt."""

from __future__ import annotations

import pytest

from podium.core.clock import FakeClock
from podium.core.errors import Conflict
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from podium.store.task_records import NewTask, Outcome
from tests.unit.store.task_kit import new_task


def _new(body: bytes = b"{}", **kw: object) -> NewTask:
    return new_task(body, **{"ttl_s": 100.0, **kw})


def test_cancel_a_pending_or_running_task_but_not_a_finished_one(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, _ = clocked
    with db.unit_of_work() as uow:
        pending, _ = uow.tasks.enqueue(_new(b"1", callback_url="https://h/x"))
        running, _ = uow.tasks.enqueue(_new(b"2"))
        done, _ = uow.tasks.enqueue(_new(b"3", endpoint="other"))
    with db.unit_of_work() as uow:
        uow.tasks.claim("d1", {"echo": 5, "other": 1})
        uow.tasks.claim("d1", {})
    with db.unit_of_work() as uow:
        uow.tasks.finish(done.id, 1, "d1", Outcome(AttemptOutcome.SUCCEEDED, 200, result=b"{}"))
    with db.unit_of_work() as uow:
        uow.tasks.enqueue(_new(b"4"))  # pending
        a = uow.task_views.cancel(pending.id)
        b = uow.task_views.cancel(running.id)
        with pytest.raises(Conflict) as e:
            uow.task_views.cancel(done.id)
    assert e.value.field == "status"
    assert (a.status, b.status) == (TaskStatus.CANCELLED, TaskStatus.CANCELLED)
    assert a.callback_state == "pending" and b.callback_state is None
    with db.unit_of_work() as uow:
        (attempt,) = uow.tasks.attempts(running.id)
        late = uow.tasks.finish(running.id, 1, "d1", Outcome(AttemptOutcome.SUCCEEDED, 200))
        assert uow.tasks.still_running("d1", [(running.id, 1)]) == set()
    assert attempt.outcome is AttemptOutcome.CANCELLED
    assert late is None  # the answer after a cancel is stale


def test_still_running_names_only_the_owners_current_attempts(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, clock = clocked
    with db.unit_of_work() as uow:
        t1, _ = uow.tasks.enqueue(_new(b"1"))
        t2, _ = uow.tasks.enqueue(_new(b"2"))
        uow.tasks.claim("d1", {"echo": 2})
    clock.advance(11)
    with db.unit_of_work() as uow:
        uow.tasks.release_expired()
        (again,) = uow.tasks.claim("d2", {"echo": 1})
        assert again.id == t1.id and again.attempt == 2
    with db.unit_of_work() as uow:
        held = [(t1.id, 1), (t2.id, 1)]
        assert uow.tasks.still_running("d1", held) == set()  # t1 is d2's, t2 is pending
        assert uow.tasks.still_running("d2", [(t1.id, 2)]) == {t1.id}
        assert uow.tasks.still_running("d2", [(t1.id, 1)]) == set()
        assert uow.tasks.still_running("d2", []) == set()


def test_expire_ends_pending_and_finished_tasks_past_their_ttl_and_names_their_files(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, clock = clocked
    with db.unit_of_work() as uow:
        waiting, _ = uow.tasks.enqueue(_new(b"1"))
        filed, _ = uow.tasks.enqueue(_new(b"2", endpoint="other"))
        running, _ = uow.tasks.enqueue(_new(b"3", endpoint="third", lease_s=500.0))
        young, _ = uow.tasks.enqueue(_new(b"4", ttl_s=1000.0))
    with db.unit_of_work() as uow:
        uow.tasks.claim("d", {"other": 1, "third": 1})
    with db.unit_of_work() as uow:
        ok = Outcome(AttemptOutcome.SUCCEEDED, 200, result_file="file_1", result_type="image/png")
        uow.tasks.finish(filed.id, 1, "d", ok)
    clock.advance(101)
    with db.unit_of_work() as uow:
        count, files = uow.tasks.expire()
    assert (count, files) == (2, ["file_1"])
    with db.unit_of_work() as uow:
        statuses = {
            t: uow.tasks.get(t).status for t in (waiting.id, filed.id, running.id, young.id)
        }
        gone = uow.tasks.get(filed.id)
        assert uow.tasks.expire() == (0, [])
    assert statuses == {
        waiting.id: TaskStatus.EXPIRED,
        filed.id: TaskStatus.EXPIRED,
        running.id: TaskStatus.RUNNING,  # expires once it ends
        young.id: TaskStatus.PENDING,
    }
    assert (gone.result, gone.result_file) == (None, None)


def test_list_newest_first_by_status_with_a_cursor_and_queue_positions(
    clocked: tuple[Database, FakeClock],
) -> None:
    db, _ = clocked
    with db.unit_of_work() as uow:
        a, _ = uow.tasks.enqueue(_new(b"a"))
        b, _ = uow.tasks.enqueue(_new(b"b", priority=9))
        c, _ = uow.tasks.enqueue(_new(b"c"))
        d, _ = uow.tasks.enqueue(_new(b"d", priority=1))
        uow.tasks.enqueue(_new(b"x", endpoint="other"))
    with db.unit_of_work() as uow:
        uow.task_views.cancel(c.id)
        page = uow.task_views.list_page("echo", limit=2)
        rest = uow.task_views.list_page("echo", before=page[-1].seq, limit=10)
        pending = uow.task_views.list_page("echo", status=TaskStatus.PENDING)
        positions = uow.task_views.positions(pending)
        assert uow.tasks.pending_count("echo") == 3
    assert [t.id for t in page] == [d.id, c.id]
    assert [t.id for t in rest] == [b.id, a.id]
    assert [t.id for t in pending] == [d.id, b.id, a.id]
    assert positions == {b.id: 1, a.id: 2, d.id: 3}  # higher priority first, then first in
