"""The chaos test of the task queue (issue 13): 1,000 tasks on a python model that sleeps a
random 0-200 ms and echoes its input, on 2 replicas; a replica is SIGKILLed every ~3 s and
`podium up` itself is SIGKILLed twice and restarted on the same home. At the end every task
has succeeded with its own input as result, and exactly one attempt of each is recorded as
the success (at least once delivery, the result recorded once).

Bounded: the tasks are all done within 240 s or the test fails. Only what the test started
is killed: the replicas of its own endpoint (pids from the API) and its own server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import func, select

from podium.core.tasks import AttemptOutcome, TaskStatus
from podium.store.tables import TaskAttemptRow, TaskRow
from tests.integration.tasks_kit import queue_db, write_tasker
from tests.support.server import ServerProcess, free_port, wait_running

TASKS = 1000
BUDGET_S = 240.0  # a bound, not a timing: ~30-60 s on the 2-core CI machine
REPLICA_KILL_EVERY_S = 3.0
# The server is SIGKILLed when this share of the tasks has ended (by progress, not by the
# clock: a fast machine must not finish before the second kill, a slow one kills as late).
SERVER_KILLS_AT = (0.2, 0.6)
NAME = "chaos"


def _statuses(server: ServerProcess) -> Counter[str]:
    db = queue_db(server.home)
    try:
        with db.engine.connect() as connection:
            rows = connection.execute(
                select(TaskRow.status, func.count()).group_by(TaskRow.status)
            ).all()
    finally:
        db.dispose()
    return Counter({status: count for status, count in rows})


def _replica_pids(server: ServerProcess) -> list[int]:
    try:
        with server.client() as c:
            ep = c.endpoint(NAME)
    except Exception:  # the server is restarting: no kill this time
        return []
    return [r.pid for r in ep.replicas if r.pid is not None and r.state == "ready"]


def test_a_thousand_tasks_survive_killed_replicas_and_a_killed_server(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "home",
        free_port(),
        {
            "PODIUM_TASK_SWEEP_S": "1",
            "PODIUM_CRASH_LOOP_THRESHOLD": "1000",
            "PODIUM_RESTART_BACKOFF_S": "0.2",
        },
    )
    server.start()
    killed: set[int] = set()
    try:
        with server.client() as c:
            c.push_model(write_tasker(tmp_path / "m"), "tasker", framework="python")
            c.deploy(
                {
                    "name": NAME,
                    "model": "tasker",
                    "framework": "python",
                    "scaling": {"min_replicas": 2, "max_replicas": 2},
                    "max_concurrency": 4,  # 4 task slots: ~40 tasks/s, the chaos has time
                    "timeout_s": 5,
                    "tasks": {"max_attempts": 20, "lease_s": 10},
                }
            )
            wait_running(c, NAME)
        inputs: dict[str, dict[str, int]] = {}
        submitting = time.monotonic()
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
            for i in range(TASKS):
                doc = {"i": i, "sleep_ms_random": 200}
                r = http.post(f"/endpoints/{NAME}/async/", json={"inputs": doc})
                assert r.status_code == 202, r.text
                inputs[r.json()["task_id"]] = doc
        start = time.monotonic()
        submitted_s = start - submitting
        next_replica_kill = start + REPLICA_KILL_EVERY_S
        server_kills = list(SERVER_KILLS_AT)
        while True:
            now = time.monotonic()
            assert now - start < BUDGET_S, f"not done in {BUDGET_S:g} s: {_statuses(server)}"
            statuses = _statuses(server)
            ended = statuses[TaskStatus.SUCCEEDED.value] + statuses[TaskStatus.FAILED.value]
            if ended == TASKS:
                break
            if server_kills and ended >= server_kills[0] * TASKS:
                server_kills.pop(0)
                server.stop(signal.SIGKILL)  # mid-flight: its leases must run out
                server.start()
            elif now >= next_replica_kill:
                next_replica_kill = now + REPLICA_KILL_EVERY_S
                pids = _replica_pids(server)
                if len(pids) == 2:  # one stays up: the endpoint never fails outright
                    victim = pids[len(killed) % 2]
                    os.kill(victim, signal.SIGKILL)
                    killed.add(victim)
            time.sleep(0.2)
        assert not server_kills, "the tasks ended before the server was killed twice"
        assert len(killed) >= 3
        db = queue_db(server.home)
        try:
            with db.engine.connect() as session:
                results = dict(
                    session.execute(
                        select(TaskRow.id, TaskRow.result).where(
                            TaskRow.status == TaskStatus.SUCCEEDED.value
                        )
                    ).all()
                )
                wins = Counter(
                    session.execute(
                        select(TaskAttemptRow.task_id).where(
                            TaskAttemptRow.outcome == AttemptOutcome.SUCCEEDED.value
                        )
                    ).scalars()
                )
                tries = session.execute(select(func.count()).select_from(TaskAttemptRow)).scalar()
        finally:
            db.dispose()
        assert set(results) == set(inputs)  # every task succeeded
        assert all(json.loads(results[t]) == {"echo": inputs[t]} for t in inputs)
        assert set(wins) == set(inputs) and set(wins.values()) == {1}
        assert tries is not None and tries > TASKS  # some ran more than once
        print(
            f"chaos: {TASKS} tasks submitted in {submitted_s:.1f} s, all done "
            f"{time.monotonic() - start:.1f} s later, "
            f"{tries} attempts, {len(killed)} replicas and 2 servers SIGKILLed"
        )
    finally:
        server.stop()
