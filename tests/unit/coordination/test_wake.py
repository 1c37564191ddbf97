"""`NotifyWaker` → `WakeListener` on the real PostgreSQL server: a wake from any thread or
an event loop reaches the controller's callback, repeated wakes coalesce, a wake sent while
the sender's session is gone is kept and delivered, and the listener reconnects (with a
general wake, since what was sent meanwhile is lost)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.coordination.wake import NotifyWaker, WakeListener
from podium.store import Database
from tests.unit.coordination.helpers import terminate, wait_for

pytestmark = pytest.mark.postgres


class Heard:
    """What the controller's callback was called with (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.wakes: list[str | None] = []

    def __call__(self, endpoint: str | None) -> None:
        with self._lock:
            self.wakes.append(endpoint)

    def named(self, endpoint: str) -> int:
        with self._lock:
            return self.wakes.count(endpoint)


@pytest.fixture
def heard(pg: Database) -> Iterator[tuple[Heard, WakeListener]]:
    h = Heard()
    listener = WakeListener(pg, h, name="podium-wakes-test")
    listener.start()
    wait_for(listener.listening.connected.is_set, "the listener to connect")
    yield h, listener
    listener.close()


@pytest.fixture
def waker(pg: Database) -> Iterator[NotifyWaker]:
    w = NotifyWaker(pg, name="podium-wake-sender-test")
    w.start()
    yield w
    w.close()


def test_a_wake_from_an_event_loop_reaches_the_listener(
    heard: tuple[Heard, WakeListener], waker: NotifyWaker
) -> None:
    h, _ = heard

    async def gateway_loop() -> None:  # as the gateway calls it: on its loop, no await
        waker("iris")
        waker()

    asyncio.run(gateway_loop())
    wait_for(lambda: h.named("iris") == 1, "the endpoint's wake")
    wait_for(lambda: h.wakes.count(None) >= 2, "the general wake (after the connect one)")


def test_many_wakes_of_one_endpoint_coalesce(
    heard: tuple[Heard, WakeListener], waker: NotifyWaker
) -> None:
    h, _ = heard
    for _ in range(2000):
        waker("busy")
    waker("last")
    wait_for(lambda: h.named("last") == 1, "the last wake")
    assert 1 <= h.named("busy") < 2000
    assert waker.sent < 2001


def test_a_wake_from_another_process_reaches_the_listener(
    pg: Database, heard: tuple[Heard, WakeListener]
) -> None:
    h, _ = heard
    url = pg.engine.url.render_as_string(hide_password=False)
    child = (
        "from podium.coordination.wake import NotifyWaker\n"
        "from podium.store import Database\n"
        f"w = NotifyWaker(Database({url!r})); w.start(); w('from-child')\n"
        "import time\n"
        "while w.sent == 0: time.sleep(0.01)\n"
        "w.close()\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run(
        [sys.executable, "-c", child],
        check=True,
        timeout=60,
        cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
    )
    wait_for(lambda: h.named("from-child") == 1, "the child's wake")


def test_a_wake_survives_the_senders_lost_session(
    pg: Database, heard: tuple[Heard, WakeListener], waker: NotifyWaker
) -> None:
    h, _ = heard
    waker("first")
    wait_for(lambda: h.named("first") == 1, "the first wake")
    assert terminate(pg, "podium-wake-sender-test") == 1
    waker("second")  # its connection is dead: it reconnects and sends
    wait_for(lambda: h.named("second") == 1, "the wake after the reconnect")


def test_the_listener_reconnects_and_wakes_once_for_what_it_missed(
    pg: Database, heard: tuple[Heard, WakeListener], waker: NotifyWaker
) -> None:
    h, listener = heard
    general = h.wakes.count(None)
    assert terminate(pg, "podium-wakes-test") == 1
    wait_for(lambda: listener.listening.connects == 2, "the listener to reconnect")
    wait_for(lambda: h.wakes.count(None) == general + 1, "the general wake after it")
    waker("after")
    wait_for(lambda: h.named("after") == 1, "a wake after the reconnect")


def test_a_wake_the_database_refuses_is_dropped_and_holds_back_no_other(
    heard: tuple[Heard, WakeListener], waker: NotifyWaker
) -> None:
    """A payload over PostgreSQL's 8000 bytes is refused every time: it is logged and
    dropped, and the wakes pending with it are sent."""
    h, _ = heard
    waker("a" * 9000)  # sent first (in name order)
    waker("iris")
    wait_for(lambda: h.named("iris") >= 1, "the wake sent with the refused one")
    assert waker.dropped == 1
    waker("iris")
    wait_for(lambda: h.named("iris") >= 2, "a later wake")
