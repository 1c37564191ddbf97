"""The API's views of the task queue (`store.task_views`), the callback keys
(`store.callback_keys`) and the callback queue (`store.callbacks`), on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from podium.core.clock import FakeClock
from podium.core.errors import Conflict, NotFound
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from podium.store.secret_box import SecretBox
from podium.store.task_records import NewTask, Outcome
from tests.unit.store.task_kit import new_task


def _new(body: bytes = b"{}", **kw: object) -> NewTask:
    return new_task(body, **kw)


def test_positions_follow_the_claim_order(clocked: tuple[Database, FakeClock]) -> None:
    db, _ = clocked
    with db.unit_of_work() as uow:
        a, _ = uow.tasks.enqueue(_new(b"a", priority=5))
        b, _ = uow.tasks.enqueue(_new(b"b", priority=1))
        c, _ = uow.tasks.enqueue(_new(b"c", priority=9))
        d, _ = uow.tasks.enqueue(_new(b"d", priority=5))
        uow.tasks.enqueue(_new(b"e", endpoint="other", priority=9))
    with db.unit_of_work(read_only=True) as uow:
        tasks = [uow.tasks.get(t.id) for t in (a, b, c, d)]
        assert uow.task_views.positions(tasks) == {c.id: 1, a.id: 2, d.id: 3, b.id: 4}
    with db.unit_of_work() as uow:
        (claimed,) = uow.tasks.claim("d1", {"echo": 1})
    assert claimed.id == c.id
    with db.unit_of_work(read_only=True) as uow:
        assert uow.task_views.position(uow.tasks.get(c.id)) is None
        assert uow.task_views.position(uow.tasks.get(b.id)) == 3


def test_pages_newest_first_filtered(clocked: tuple[Database, FakeClock]) -> None:
    db, clock = clocked
    with db.unit_of_work() as uow:
        old, _ = uow.tasks.enqueue(_new(b"old"))
    clock.advance(10)
    born = clock.now().timestamp()
    with db.unit_of_work() as uow:
        ids = [uow.tasks.enqueue(_new(str(i).encode()))[0].id for i in range(3)]
        uow.task_views.cancel(ids[1])
    with db.unit_of_work(read_only=True) as uow:
        page = uow.task_views.list_page("echo", limit=2)
        assert [t.id for t in page] == [ids[2], ids[1]]
        rest = uow.task_views.list_page("echo", before=page[-1].seq, limit=10)
        assert [t.id for t in rest] == [ids[0], old.id]
        assert [t.id for t in uow.task_views.list_page("echo", born_at=born)] == ids[::-1]
        cancelled = uow.task_views.list_page("echo", status=TaskStatus.CANCELLED)
        assert [(t.id, t.error) for t in cancelled] == [(ids[1], "cancelled by the caller")]
        assert uow.task_views.list_page("nobody") == []


def test_cancel_is_for_unfinished_tasks_only(clocked: tuple[Database, FakeClock]) -> None:
    db, clock = clocked
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(_new(callback_url="http://127.0.0.1/hook"))
        (claimed,) = uow.tasks.claim("d1", {"echo": 1})
    clock.advance(2)
    with db.unit_of_work() as uow:
        view = uow.task_views.cancel(task.id)
        attempts = uow.tasks.attempts(task.id)
    assert view.status is TaskStatus.CANCELLED
    assert view.finished_at == clock.now().timestamp()
    assert (view.callback_state, view.lease_until) == ("pending", None)
    assert [(a.outcome, a.reason) for a in attempts] == [
        (AttemptOutcome.CANCELLED, "cancelled by the caller")
    ]
    with db.unit_of_work() as uow:
        stale = uow.tasks.finish(task.id, claimed.attempt, "d1", Outcome(AttemptOutcome.SUCCEEDED))
        assert stale is None
        with pytest.raises(Conflict) as e:
            uow.task_views.cancel(task.id)
        assert e.value.field == "status"
        with pytest.raises(NotFound):
            uow.task_views.cancel("task_000")


def test_deleting_an_endpoint_cancels_its_unfinished_tasks(
    clocked: tuple[Database, FakeClock],
) -> None:
    """A re-created endpoint of the same name must not run the old one's queue: every
    pending and running task is cancelled with the reason, a callback is due for those
    that asked, a finished task and another endpoint's tasks are left alone."""
    db, _ = clocked
    with db.unit_of_work() as uow:
        running, _ = uow.tasks.enqueue(_new(b"r"))
        uow.tasks.claim("d1", {"echo": 1})
        called, _ = uow.tasks.enqueue(_new(b"c", callback_url="http://127.0.0.1/hook"))
        quiet, _ = uow.tasks.enqueue(_new(b"q"))
        other, _ = uow.tasks.enqueue(_new(b"o", endpoint="other"))
    with db.unit_of_work() as uow:
        assert uow.task_views.cancel_endpoint("echo", "its endpoint was deleted") == 3
        views = {t: uow.tasks.get(t) for t in (running.id, called.id, quiet.id, other.id)}
        (attempt,) = uow.tasks.attempts(running.id)
        assert uow.tasks.claim("d2", {"echo": 5}) == []
    for t in (running.id, called.id, quiet.id):
        assert views[t].status is TaskStatus.CANCELLED
        assert views[t].error == "its endpoint was deleted"
    assert views[called.id].callback_state == "pending"
    assert views[quiet.id].callback_state is None
    assert views[other.id].status is TaskStatus.PENDING
    assert (attempt.outcome, attempt.reason) == (
        AttemptOutcome.CANCELLED,
        "its endpoint was deleted",
    )


def test_callback_keys(clocked: tuple[Database, FakeClock], tmp_path: Path) -> None:
    db, _ = clocked
    box = SecretBox(tmp_path / "secret.key")
    with db.unit_of_work() as uow:
        assert uow.callback_keys.get("echo", box) is None
        key = uow.callback_keys.get_or_create("echo", box)
    assert len(key) == 32 and (tmp_path / "secret.key").exists()
    with db.unit_of_work() as uow:
        assert uow.callback_keys.get_or_create("echo", box) == key
        stored = uow.session.execute(text("SELECT ciphertext FROM callback_keys")).scalar_one()
        assert key.hex() not in stored  # encrypted at rest
        new = uow.callback_keys.rotate("echo", box)
    assert new != key and len(new) == 32
    with db.unit_of_work() as uow:
        assert uow.callback_keys.get("echo", box) == new
        uow.callback_keys.delete_for("echo")
        assert uow.callback_keys.get("echo", box) is None


def test_callback_queue_takes_due_ones_and_records(clocked: tuple[Database, FakeClock]) -> None:
    db, clock = clocked
    with db.unit_of_work() as uow:
        task, _ = uow.tasks.enqueue(_new(callback_url="http://127.0.0.1/hook"))
        uow.tasks.enqueue(_new(b"plain"))  # no callback: never due
        assert uow.callbacks.take(10, 30.0) == []  # not ended: nothing due
        for _ in range(2):
            (c,) = uow.tasks.claim("d1", {"echo": 1})
            uow.tasks.finish(c.id, c.attempt, "d1", Outcome(AttemptOutcome.SUCCEEDED, 200))
    with db.unit_of_work() as uow:
        (due,) = uow.callbacks.take(10, 30.0)
        assert due.id == task.id
        assert uow.callbacks.take(10, 30.0) == []  # held while it is delivered
    with db.unit_of_work() as uow:
        assert uow.callbacks.record(task.id, error="HTTP 500", retry_in=4.0) == "pending"
    clock.advance(3)
    with db.unit_of_work() as uow:
        assert uow.callbacks.take(10, 30.0) == []
    clock.advance(1)
    with db.unit_of_work() as uow:
        (again,) = uow.callbacks.take(10, 30.0)
        assert (again.callback_attempts, again.callback_error) == (1, "HTTP 500")
        assert uow.callbacks.record(task.id, error=None, retry_in=None) == "delivered"
        view = uow.tasks.get(task.id)
    assert (view.callback_state, view.callback_attempts, view.callback_error) == (
        "delivered",
        2,
        None,
    )
