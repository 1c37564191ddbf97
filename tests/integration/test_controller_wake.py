"""Whatever needs the controller wakes it at once: a real `podium up` whose controller
passes only once an hour on its own (`PODIUM_TICK_S=3600`).

The first pass runs when the controller starts, before the server answers its health
check (`Controller.start` waits for it); after that, with no replica starting, stopping or
due for a probe, the controller sleeps for the whole tick. Every endpoint here probes its
ready replicas once an hour too (`SLOW_PROBES`: otherwise a ready replica's probe, every
second by default, would bring a pass that hides a missing wake). So each reaction below,
seen within a generous wait of a minute, can only come from a wake:

* a request held by the gateway's activator (scale from zero);
* a request that finds its replica dead (the gateway's `on_replica_failure`), and the
  restart after the crash backoff (a timer the controller sleeps until, not the tick);
* the API's create, scale, update (new revision), pause, resume and wake.

Nothing asserts on a duration.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from podium.client import PodiumClient
from podium.core.errors import NotFound
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_until

HOUR = "3600"
PROMPT_S = 60  # "promptly": well inside the hour the controller would otherwise sleep
WAIT = {"X-Podium-Wait-Timeout": str(PROMPT_S)}
SLOW_PROBES = {
    "readiness": {"path": "/health/ready", "period_s": 3600},
    "liveness": {"path": "/health/live", "period_s": 3600, "timeout_s": 2},
}


def spec(name: str, low: int, high: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": "quick",
        "framework": "python",
        "scaling": {"min_replicas": low, "max_replicas": high},
        **SLOW_PROBES,
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("wake")
    with running_server(tmp / "home", PODIUM_TICK_S=HOUR) as s, s.client() as c:
        # Created at zero (the API writes scaled_to_zero itself): the controller has
        # nothing to do for it until something wakes it.
        c.push_model(write_python_bundle(tmp / "quick"), "quick")
        c.deploy(spec("cold", 0, 1))
        c.deploy(spec("nudge", 0, 1))
        yield s


def ready(c: PodiumClient, name: str, revision: int | None = None) -> list[Any]:
    """The endpoint's ready replicas (of `revision`, if given)."""
    return [
        r
        for r in c.endpoint(name).replicas
        if r.state is ReplicaState.READY and (revision is None or r.revision == revision)
    ]


def settle() -> None:
    """Let the controller go to sleep for the hour before the next action.

    A replica that has just become ready gets its first ready-state probe 0.05 s later, and
    an action the API committed just before that pass would be seen without a wake. No API
    shows that pass, so this waits far longer than it takes. It can only make the test
    stricter (an action then has nothing but its wake), never make it fail.
    """
    time.sleep(1.0)


def step(what: str, check: Any) -> None:
    """Wait (at most PROMPT_S) for the controller to have acted on `what`."""
    wait_until(check, PROMPT_S, what)


def test_a_held_request_wakes_the_controller_and_is_answered(server: ServerProcess) -> None:
    settle()  # after the passes the fixture's creates woke
    with server.client() as c:
        assert c.endpoint("cold").status is EndpointStatus.SCALED_TO_ZERO
        assert c.endpoint("cold").replicas == []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=PROMPT_S + 30) as http:
        r = http.post("/endpoints/cold/", json={"inputs": "hello"}, headers=WAIT)
    assert r.status_code == 200, r.text
    assert r.json()["echo"] == "hello"
    with server.client() as c:
        woke = [e.message for e in c.events("cold") if e.kind is EventKind.SCALED]
        assert any(m.startswith("scaled 0→1") and "held" in m for m in woke), woke


def test_a_request_that_finds_its_replica_dead_gets_a_new_one(server: ServerProcess) -> None:
    """SIGKILL leaves the replica in the routing table (no probe for an hour); the request
    that finds it refusing connections wakes the controller, which sees the exit, restarts
    the replica after the crash backoff, and the request is answered by the new one."""
    with server.client() as c:
        c.deploy(spec("sturdy", 1, 1))
        step("sturdy running", lambda: len(ready(c, "sturdy")) == 1)
        (old,) = ready(c, "sturdy")
    settle()  # else that pass might poll the backend after the kill below
    assert old.pid is not None
    os.kill(old.pid, signal.SIGKILL)
    wait_until(lambda: _gone(old.pid), 30, f"replica process {old.pid} to end")
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=PROMPT_S + 30) as http:
        r = http.post("/endpoints/sturdy/", json={"inputs": 1}, headers=WAIT)
    assert r.status_code == 200, r.text
    assert r.headers["x-podium-replica"] != old.replica_id
    with server.client() as c:
        kinds = {(e.kind, e.data.get("replica_id")) for e in c.events("sturdy")}
        assert (EventKind.REPLICA_CRASHED, old.replica_id) in kinds
        assert any(k is EventKind.REPLICA_RESTARTED for k, _ in kinds), kinds
        (new,) = ready(c, "sturdy")
        assert new.replica_id != old.replica_id and new.pid != old.pid
        c.delete("sturdy")
        step("sturdy deleted", lambda: _deleted(c, "sturdy"))


def test_api_actions_are_acted_on_at_once(server: ServerProcess) -> None:
    """Each step waits for the previous one to be done (no replica starting or stopping)
    and settles, so the controller is asleep for the hour when the next action is sent."""
    with server.client() as c:
        c.deploy(spec("acts", 1, 1))
        step("create: a ready replica", lambda: len(ready(c, "acts")) == 1)
        step("create: running", lambda: c.endpoint("acts").status is EndpointStatus.RUNNING)

        settle()
        c.scale("acts", 2, 2)
        step("scale: two ready replicas", lambda: len(ready(c, "acts")) == 2)

        settle()
        rev = c.update("acts", {"env": {"ACTS": "2"}}).revision
        assert rev == 2
        step(
            "update: revision 2 rolled out",
            lambda: len(ready(c, "acts", 2)) == 2 and len(c.endpoint("acts").replicas) == 2,
        )

        settle()
        c.pause("acts")
        step(
            "pause: no replica left",
            lambda: (
                c.endpoint("acts").replicas == []
                and c.endpoint("acts").status is EndpointStatus.PAUSED
            ),
        )

        settle()
        c.resume("acts")
        step("resume: two ready replicas", lambda: len(ready(c, "acts", 2)) == 2)
        step("resume: running", lambda: c.endpoint("acts").status is EndpointStatus.RUNNING)

        assert c.endpoint("nudge").replicas == []
        settle()
        c.wake("nudge")
        step("wake: a ready replica", lambda: len(ready(c, "nudge")) == 1)

        settle()
        c.delete("acts")
        step("delete: gone", lambda: _deleted(c, "acts"))


def _deleted(c: PodiumClient, name: str) -> bool:
    try:
        c.endpoint(name)
    except NotFound:
        return True
    return False


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie its parent (the server) has not reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
