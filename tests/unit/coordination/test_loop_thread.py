"""`LoopThread`: an iteration that raises is logged once per outage and never ends the
thread; `on_exit` runs on the thread after the iteration in progress at `close()`."""

from __future__ import annotations

import logging
import threading

import pytest

from podium.coordination.loop_thread import LoopThread
from tests.unit.coordination.helpers import DEADLINE_S, wait_for


def test_failures_are_logged_once_per_outage_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def once() -> None:
        calls.append(1)
        if len(calls) <= 5:
            raise ValueError("the database is away")

    loop = LoopThread("podium-test-loop", 0.001, once, what="the test loop")
    with caplog.at_level(logging.INFO, logger="podium.coordination.loop_thread"):
        loop.start()
        try:
            wait_for(lambda: len(calls) >= 8, "iterations after the outage")
        finally:
            assert loop.close()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "the test loop failed: ValueError: the database is away",
        "the test loop works again",
    ]


def test_on_exit_runs_after_the_iteration_in_progress() -> None:
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def once() -> None:
        inside.set()
        release.wait(DEADLINE_S)
        order.append("iteration")

    loop = LoopThread(
        "podium-test-loop", 0.01, once, what="x", on_exit=lambda: order.append("exit")
    )
    loop.start()
    assert inside.wait(DEADLINE_S)
    assert not loop.close(timeout=0.01)  # still inside the iteration
    release.set()
    assert loop.close()
    assert order == ["iteration", "exit"]
