"""Shared pieces of the coordination tests: a fence on the lease row, routes, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

from podium.core.errors import Fenced
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, ReplicaRoute
from podium.store import Database

DEADLINE_S = 15.0  # generous: the machine is shared


class LeaseFence:
    """The fence a leading controller holds (the `lead` branch builds the real one): the
    lease row's epoch, read FOR SHARE in the caller's transaction."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def check(self, session: Session) -> None:
        current = session.execute(
            text("SELECT epoch FROM controller_lease WHERE id = 1 FOR SHARE")
        ).scalar_one()
        if current != self.epoch:
            raise Fenced(f"the lease is at epoch {current}, not {self.epoch}")


def lead(db: Database, epoch: int) -> LeaseFence:
    """Set the lease to `epoch` (as a takeover would) and return its fence."""
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE controller_lease SET epoch = :e WHERE id = 1"), {"e": epoch})
    return LeaseFence(epoch)


def route(name: str, *ports: int, max_concurrency: int = 8) -> EndpointRoute:
    return EndpointRoute(
        name=name,
        status=EndpointStatus.RUNNING,
        replicas=tuple(ReplicaRoute(f"{name}-r{p}", "127.0.0.1", p, 1) for p in ports),
        max_concurrency=max_concurrency,
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def terminate(db: Database, application_name: str) -> int:
    """End the server sessions of this application name (as a failover or a restart of
    PostgreSQL would); returns how many."""
    with db.engine.begin() as conn:
        return len(
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :n AND datname = current_database()"
                ),
                {"n": application_name},
            ).all()
        )
