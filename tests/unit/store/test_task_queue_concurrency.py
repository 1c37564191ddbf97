"""Two dispatchers on one queue never run the same task at once (issue 13).

Each dispatcher is a separate process with its own `Database` (its own connections: `SKIP
LOCKED` on PostgreSQL and `BEGIN IMMEDIATE` on SQLite are about separate connections), claims
in small batches from a queue of 500 tasks, "runs" each task from its claim to its recorded
finish, and writes down (task, attempt, owner, start, end, status). Every task must succeed
exactly once, and no task may be held by two dispatchers at overlapping times.

A dispatcher that dies with tasks claimed (a process that exits holding them): once their
lease (1 s) has run out the other recovers them (`release_expired`), runs and finishes them,
each result recorded once. The same on a fake clock in one process, with two `Database`
objects (two connection pools) on one store, where the one that "died" only hung: its late
answer is stale and changes nothing.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from podium.core.clock import FakeClock
from podium.core.errors import Retryable
from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store import Database
from podium.store.task_records import NewTask, Outcome

TASKS = 500
BATCH = 7  # tasks one claim takes at most: small, so the dispatchers interleave
CAP = TASKS // 2 + 3 * BATCH  # tasks one dispatcher takes at most: each takes part
ENDPOINT = "q"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated store of its own: a SQLite file, or a fresh PostgreSQL database."""
    value = request.getfixturevalue("postgres_url" if request.param == "postgres" else "sqlite_url")
    db = Database(value)
    db.migrate()
    db.dispose()
    yield value


def _new(n: int, lease_s: float = 60.0) -> list[NewTask]:
    return [
        NewTask(ENDPOINT, "default", "POST", "/predict", f'{{"i": {i}}}'.encode(), lease_s=lease_s)
        for i in range(n)
    ]


def _dispatch(url: str, owner: str, barrier: Barrier, out: str) -> None:
    """A dispatcher: claim up to BATCH, run and finish each, until the queue is empty or
    it has claimed CAP tasks.

    The cap (a little over half the queue) makes both dispatchers take part whatever the
    machine's scheduling: on a loaded machine one process may not run at all until the
    other has taken everything, and the test would then show no concurrency. Leases (60 s)
    never run out here, so an empty claim means every task is held or done. A busy store
    (`Retryable`) is tried again, as the dispatcher's loop does."""
    db = Database(url)
    lines: list[str] = []
    taken = 0
    try:
        barrier.wait(60)
        while taken < CAP:
            try:
                with db.unit_of_work() as uow:
                    claimed = uow.tasks.claim(owner, {ENDPOINT: min(BATCH, CAP - taken)})
            except Retryable:
                continue
            if not claimed:
                break
            taken += len(claimed)
            start = time.monotonic_ns()  # held from here until its finish is committed
            for task in claimed:
                while True:
                    try:
                        with db.unit_of_work() as uow:
                            status = uow.tasks.finish(
                                task.id, task.attempt, owner, Outcome(AttemptOutcome.SUCCEEDED, 200)
                            )
                        break
                    except Retryable:
                        continue
                end = time.monotonic_ns()
                record = [task.id, task.attempt, owner, start, end, status and status.value]
                lines.append(json.dumps(record))
                start = end
    finally:
        db.dispose()
        Path(out).write_text("".join(line + "\n" for line in lines))


def _claim_and_die(url: str, owner: str, n: int, out: str) -> None:
    """A dispatcher that claims `n` tasks and dies before finishing any (no cleanup)."""
    db = Database(url)
    with db.unit_of_work() as uow:
        claimed = uow.tasks.claim(owner, {ENDPOINT: n})
    Path(out).write_text(json.dumps([t.id for t in claimed]))
    os._exit(0)


def _run_until_drained(db: Database, owner: str, deadline_s: float = 120) -> list[list[object]]:
    """Claim, run and finish; with nothing to claim, recover expired leases; stop once no
    task is pending or running. Returns (task, attempt, status of the finish) per run."""
    runs: list[list[object]] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with db.unit_of_work() as uow:
            claimed = uow.tasks.claim(owner, {ENDPOINT: BATCH})
        for task in claimed:
            with db.unit_of_work() as uow:
                status = uow.tasks.finish(
                    task.id, task.attempt, owner, Outcome(AttemptOutcome.SUCCEEDED, 200)
                )
            runs.append([task.id, task.attempt, status and status.value])
        if claimed:
            continue
        with db.unit_of_work() as uow:
            uow.tasks.release_expired()
            if not uow.tasks.depth():
                return runs
        time.sleep(0.05)  # the dead dispatcher's lease still runs
    raise AssertionError(f"the queue was not drained within {deadline_s:g} s")


def test_two_dispatcher_processes_never_run_one_task_at_once(url: str, tmp_path: Path) -> None:
    db = Database(url)
    try:
        with db.unit_of_work() as uow:
            ids = set(uow.tasks.enqueue_many(_new(TASKS)))
        ctx = multiprocessing.get_context("spawn")  # no connection pool inherited
        barrier = ctx.Barrier(2)
        outs = {owner: tmp_path / f"{owner}.jsonl" for owner in ("d1", "d2")}
        procs = [
            ctx.Process(target=_dispatch, args=(url, owner, barrier, str(out)))
            for owner, out in outs.items()
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(240)
        assert [p.exitcode for p in procs] == [0, 0]
        records = [
            json.loads(line) for out in outs.values() for line in out.read_text().splitlines()
        ]
        runs: dict[str, list[tuple[int, str, int, int, str]]] = defaultdict(list)
        for task_id, attempt, owner, start, end, status in records:
            runs[task_id].append((attempt, owner, start, end, status))
        assert set(runs) == ids
        # No two dispatchers held a task at overlapping times (here: none held one twice).
        for held in runs.values():
            for i, (_, o1, s1, e1, _) in enumerate(held):
                for _, o2, s2, e2, _ in held[i + 1 :]:
                    assert o1 == o2 or e1 <= s2 or e2 <= s1
        assert {len(held) for held in runs.values()} == {1}
        assert {held[0][0] for held in runs.values()} == {1}  # attempt 1: never re-run
        assert {held[0][4] for held in runs.values()} == {"succeeded"}
        by_owner = {o: sum(1 for h in runs.values() if h[0][1] == o) for o in outs}
        assert sum(by_owner.values()) == TASKS
        assert all(n > 0 for n in by_owner.values())  # both took part
        with db.unit_of_work(read_only=True) as uow:
            views = [uow.tasks.get(t) for t in sorted(ids)]
            attempts = {t: uow.tasks.attempts(t) for t in sorted(ids)}
            depth = uow.tasks.depth()
        assert {v.status for v in views} == {TaskStatus.SUCCEEDED}
        assert {v.attempts for v in views} == {1}
        assert {v.result_status for v in views} == {200}
        assert {len(a) for a in attempts.values()} == {1}
        assert {a[0].outcome for a in attempts.values()} == {AttemptOutcome.SUCCEEDED}
        assert {a[0].owner for a in attempts.values()} == {"d1", "d2"}
        assert depth == {}
    finally:
        db.dispose()


def test_tasks_held_by_a_dispatcher_process_that_died_are_taken_over(
    url: str, tmp_path: Path
) -> None:
    db = Database(url)
    try:
        with db.unit_of_work() as uow:
            ids = uow.tasks.enqueue_many(_new(30, lease_s=1.0))
        out = tmp_path / "dead.json"
        ctx = multiprocessing.get_context("spawn")
        dead = ctx.Process(target=_claim_and_die, args=(url, "dead", 10, str(out)))
        dead.start()
        dead.join(120)
        assert dead.exitcode == 0
        held = json.loads(out.read_text())
        assert held == ids[:10]
        runs = _run_until_drained(db, "alive")
        assert sorted(r[0] for r in runs) == sorted(ids)  # each run once by the survivor
        attempts = {r[0]: r[1] for r in runs}
        assert [attempts[i] for i in ids] == [2] * 10 + [1] * 20
        assert {r[2] for r in runs} == {"succeeded"}
        with db.unit_of_work(read_only=True) as uow:
            views = [uow.tasks.get(i) for i in ids]
            logs = [uow.tasks.attempts(i) for i in ids]
        assert {v.status for v in views} == {TaskStatus.SUCCEEDED}
        assert [[(a.owner, a.outcome) for a in log] for log in logs] == [
            [("dead", AttemptOutcome.LEASE_EXPIRED), ("alive", AttemptOutcome.SUCCEEDED)]
        ] * 10 + [[("alive", AttemptOutcome.SUCCEEDED)]] * 20
    finally:
        db.dispose()


def test_the_tasks_of_a_dead_dispatcher_are_taken_over_after_the_lease(url: str) -> None:
    clock = FakeClock()
    dead, alive = Database(url, clock=clock), Database(url, clock=clock)
    try:
        with alive.unit_of_work() as uow:
            ids = uow.tasks.enqueue_many(_new(20, lease_s=30.0))
        with dead.unit_of_work() as uow:
            taken = uow.tasks.claim("dead", {ENDPOINT: 8})  # then it stops: no finish
        assert [t.id for t in taken] == ids[:8]
        clock.advance(29)
        with alive.unit_of_work() as uow:
            assert uow.tasks.release_expired() == 0  # the lease still runs
            rest = uow.tasks.claim("alive", {ENDPOINT: 50})
        assert [t.id for t in rest] == ids[8:]  # the dead one's tasks are not claimable
        for t in rest:
            with alive.unit_of_work() as uow:
                uow.tasks.finish(t.id, t.attempt, "alive", Outcome(AttemptOutcome.SUCCEEDED, 200))
        clock.advance(1.5)  # the lease ran out
        with alive.unit_of_work() as uow:
            assert uow.tasks.release_expired() == 8
            again = uow.tasks.claim("alive", {ENDPOINT: 50})
        assert [(t.id, t.attempt) for t in again] == [(i, 2) for i in ids[:8]]
        for t in again:
            with alive.unit_of_work() as uow:
                status = uow.tasks.finish(
                    t.id, t.attempt, "alive", Outcome(AttemptOutcome.SUCCEEDED, 201)
                )
            assert status is TaskStatus.SUCCEEDED
        # The dead dispatcher's answer comes after all (it hung rather than died): stale.
        with dead.unit_of_work() as uow:
            late = uow.tasks.finish(
                taken[0].id, taken[0].attempt, "dead", Outcome(AttemptOutcome.SUCCEEDED, 299)
            )
        assert late is None
        with alive.unit_of_work(read_only=True) as uow:
            views = {i: uow.tasks.get(i) for i in ids}
            first = uow.tasks.attempts(ids[0])
            depth = uow.tasks.depth()
        assert {v.status for v in views.values()} == {TaskStatus.SUCCEEDED}
        assert [views[i].result_status for i in ids] == [201] * 8 + [200] * 12
        assert [views[i].attempts for i in ids] == [2] * 8 + [1] * 12
        assert [(a.attempt, a.owner, a.outcome, a.status) for a in first] == [
            (1, "dead", AttemptOutcome.LEASE_EXPIRED, None),
            (2, "alive", AttemptOutcome.SUCCEEDED, 201),
        ]
        assert depth == {}
    finally:
        dead.dispose()
        alive.dispose()
