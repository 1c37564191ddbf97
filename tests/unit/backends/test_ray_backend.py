"""RayBackend's logic against a fake of its one Ray wrapper (`ray_calls.RayApi`): what it asks
Ray for, and how it reads what Ray and the actors answer. No cluster here (the integration
test, tests/integration/test_ray_backend.py, runs a real one); the clock is fake."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from podium.backends.base import AdoptCandidate, ModelSource, Readiness, ReplicaLaunch
from podium.backends.ray_backend import LOST_AFTER_MISSES, RayBackend
from podium.backends.ray_calls import ActorGone, CallTimeout, Placement
from podium.backends.ray_fetch import FetchAccess
from podium.backends.ray_replica import ReplicaHost
from podium.core.clock import FakeClock
from podium.core.errors import LoadError, Unavailable
from podium.core.phases import ExitReason
from podium.core.settings import Settings
from podium.core.spec import CommandSpec, ContainerSpec, InstanceType

SIZE = InstanceType(name="cpu-medium", cpus=2, memory_mb=512, gpus=1)


@dataclass
class FakeActor:
    placement: Placement
    args: tuple[Any, ...]
    alive: bool = True  # the actor itself
    replica_alive: bool = True
    exit_code: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    start_answer: dict[str, Any] | None = None
    calls: list[str] = field(default_factory=list)
    silent: bool = False  # every call times out
    log: list[str] = field(default_factory=lambda: ["line 1", "line 2"])


class FakeRay:
    """`RayApi` in memory: actors answer as `ReplicaHost` would."""

    def __init__(self) -> None:
        self.actors: dict[str, FakeActor] = {}
        self.killed: list[str] = []
        self.start_answer: dict[str, Any] | None = None
        self.closed = False

    async def connect(self) -> None:
        return None

    async def create(self, placement: Placement, cls: type, *args: Any) -> Any:
        assert cls is ReplicaHost
        self.actors[placement.name] = FakeActor(placement, args, start_answer=self.start_answer)
        return placement.name

    def _answer(self, handle: Any, method: str, *args: Any) -> Any:
        actor = self.actors[handle]
        actor.calls.append(method)
        if not actor.alive:
            raise ActorGone("The actor died because its node died.")
        if actor.silent:
            raise CallTimeout(f"{method}: no answer")
        if method == "start":
            return actor.start_answer or {
                "host": "10.0.0.7",
                "port": 40001,
                "pid": 77,
                "node": "node-a" * 8,
                "launched_at": 1.0,
            }
        if method == "state":
            return {
                "alive": actor.replica_alive,
                "exit_code": actor.exit_code,
                "status": actor.status,
                "launched_at": 1.0,
            }
        if method == "terminate":
            return None
        if method == "kill_replica":
            actor.replica_alive, actor.exit_code = False, -9
            return None
        if method == "where":
            return {"node": "node-a", "host": "10.0.0.7"}
        if method == "logs":
            return actor.log[-args[0] :]
        if method == "follow_from_tail":
            return actor.log[-args[0] :], 100
        if method == "read_from":
            return ["line 3"], args[0] + 7
        if method == "resources":
            return {"cpu_percent": 12.5, "rss_bytes": 1000, "cpus": 2.0, "gpus": 1}
        raise AssertionError(method)

    async def call(self, handle: Any, method: str, *args: Any, timeout: float) -> Any:
        return self._answer(handle, method, *args)

    def call_blocking(self, handle: Any, method: str, *args: Any, timeout: float) -> Any:
        return self._answer(handle, method, *args)

    async def kill(self, handle: Any) -> None:
        self.killed.append(handle)
        self.actors[handle].alive = False

    async def lookup(self, name: str) -> Any | None:
        actor = self.actors.get(name)
        return name if actor is not None and actor.alive else None

    async def shutdown(self) -> None:
        self.closed = True


def launch(replica_id: str = "iris-r1-a", **kwargs: Any) -> ReplicaLaunch:
    kwargs.setdefault("runtime", "sklearn")
    return ReplicaLaunch(
        replica_id=replica_id,
        endpoint="iris",
        revision=1,
        model=ModelSource("iris:1", digest="ab" * 32, location="/srv/artifacts/iris/1"),
        instance_type=SIZE,
        **kwargs,
    )


@pytest.fixture
def ray() -> FakeRay:
    return FakeRay()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(tmp_path: Path, ray: FakeRay, clock: FakeClock) -> RayBackend:
    settings = Settings(home=tmp_path / "home")
    return RayBackend(
        settings, FetchAccess("http://10.0.0.1:8000", "pod_x_secret"), calls=ray, clock=clock
    )


async def test_a_replica_asks_ray_for_its_size_spread_and_answers_on_its_node(
    backend: RayBackend, ray: FakeRay
) -> None:
    assert (await backend.prepare(launch().model)).state is Readiness.READY
    seen = await backend.start(launch())
    actor = ray.actors["iris-r1-a"]
    assert actor.placement == Placement(
        name="iris-r1-a", cpus=2, gpus=1, memory_bytes=512 * 2**20, spread=True
    )
    assert actor.args[1] == FetchAccess("http://10.0.0.1:8000", "pod_x_secret")
    assert (seen.host, seen.port, seen.alive) == ("10.0.0.7", 40001, True)
    assert [r.replica_id for r in await backend.poll()] == ["iris-r1-a"]
    startup = backend.startup("iris-r1-a")
    assert startup is not None and startup.start_mode == "spawn"


async def test_a_dead_node_reports_its_replica_lost_once(backend: RayBackend, ray: FakeRay) -> None:
    await backend.start(launch())
    ray.actors["iris-r1-a"].alive = False  # its node died: the actor with it
    [report] = await backend.poll()
    assert (report.alive, report.exit_reason) == (False, ExitReason.LOST)
    assert "node died" in (report.error or "")
    assert await backend.poll() == []
    assert (backend.exit_cause("iris-r1-a") or "").startswith("lost")


async def test_an_actor_that_never_answers_is_lost_after_some_polls(
    backend: RayBackend, ray: FakeRay
) -> None:
    await backend.start(launch())
    ray.actors["iris-r1-a"].silent = True
    for _ in range(LOST_AFTER_MISSES - 1):
        [report] = await backend.poll()
        assert report.alive
    [report] = await backend.poll()
    assert (report.alive, report.exit_reason) == (False, ExitReason.LOST)
    assert ray.killed == ["iris-r1-a"]


async def test_a_replica_that_fails_to_load_is_read_from_its_status_and_its_actor_freed(
    backend: RayBackend, ray: FakeRay
) -> None:
    await backend.start(launch())
    actor = ray.actors["iris-r1-a"]
    actor.replica_alive, actor.exit_code = False, 3
    actor.status = {"state": "load_failed", "error": "not a skops file"}
    [report] = await backend.poll()
    assert (report.exit_reason, report.error) == (ExitReason.LOAD_FAILED, "not a skops file")
    assert ray.killed == ["iris-r1-a"]  # Ray frees its CPUs
    assert backend.logs("iris-r1-a", 1) == ["line 2"]  # kept once the actor is gone


async def test_kill_kills_the_replica_then_the_actor_and_poll_tells_why(
    backend: RayBackend, ray: FakeRay
) -> None:
    await backend.start(launch())
    await backend.kill("iris-r1-a", ExitReason.UNHEALTHY)
    assert ray.actors["iris-r1-a"].calls[-1] == "kill_replica"
    assert ray.killed == ["iris-r1-a"]
    [report] = await backend.poll()
    assert report.exit_reason is ExitReason.UNHEALTHY


async def test_a_stop_past_its_timeout_is_escalated(
    backend: RayBackend, ray: FakeRay, clock: FakeClock
) -> None:
    await backend.start(launch())
    await backend.stop("iris-r1-a")
    assert "terminate" in ray.actors["iris-r1-a"].calls
    [report] = await backend.poll()
    assert report.alive  # still finishing its requests
    clock.advance(31)
    [report] = await backend.poll()  # escalates: kills it
    assert ray.killed == ["iris-r1-a"]
    [report] = await backend.poll()
    assert (report.alive, report.exit_reason) == (False, ExitReason.STOPPED)


async def test_a_model_the_node_cannot_have_is_a_load_error_and_leaves_no_actor(
    backend: RayBackend, ray: FakeRay
) -> None:
    ray.start_answer = {"error": "model iris:1: the fetched files have sha256 00…", "load": True}
    with pytest.raises(LoadError, match="sha256"):
        await backend.start(launch())
    assert ray.killed == ["iris-r1-a"]
    assert await backend.poll() == []


async def test_a_replica_ray_cannot_place_in_time_is_unavailable(
    backend: RayBackend, ray: FakeRay
) -> None:
    async def never(handle: Any, method: str, *args: Any, timeout: float) -> Any:
        raise CallTimeout("start: no answer within 600s")

    ray.call = never  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="could not be placed"):
        await backend.start(launch())
    assert ray.killed == ["iris-r1-a"]


async def test_a_command_framework_is_refused_before_anything_is_placed(
    backend: RayBackend, ray: FakeRay
) -> None:
    command = CommandSpec(command=sys.executable, args=["-m", "http.server", "{port}"])
    with pytest.raises(LoadError, match="not supported on the ray backend"):
        await backend.start(launch(command=command))
    assert ray.actors == {}


async def test_a_container_endpoint_is_refused_naming_container_and_what_to_do(
    backend: RayBackend, ray: FakeRay
) -> None:
    """Ray's `image_uri` runs Ray's worker inside the image, not any HTTP server: refused
    before anything is placed, saying where such an endpoint runs."""
    for block in (
        ContainerSpec(image="ghcr.io/org/server:1"),
        ContainerSpec(),  # a preset run from its official image
    ):
        with pytest.raises(LoadError, match="local backend") as refused:
            await backend.start(launch(runtime="container", container=block))
        assert refused.value.field == "container"
        assert "container endpoints do not run on the ray backend" in refused.value.message
    assert ray.actors == {}


async def test_logs_and_resources_come_from_the_actor(backend: RayBackend) -> None:
    await backend.start(launch())
    assert backend.logs("iris-r1-a", 200) == ["line 1", "line 2"]
    assert backend.kept_logs("iris") == ["iris-r1-a"]
    lines, follower = backend.follow_logs("iris-r1-a", 1)
    assert lines == ["line 2"]
    assert follower.read_new() == ["line 3"]
    used = await backend.resources(["iris-r1-a", "unknown"])
    assert list(used) == ["iris-r1-a"]
    assert (used["iris-r1-a"].cpu_percent, used["iris-r1-a"].gpus) == (12.5, 1)


async def test_a_restarted_server_adopts_the_live_actors_only(
    tmp_path: Path, ray: FakeRay, clock: FakeClock
) -> None:
    settings = Settings(home=tmp_path / "home")
    first = RayBackend(settings, FetchAccess("http://h"), calls=ray, clock=clock)
    await first.start(launch("iris-r1-a"))
    await first.start(launch("iris-r1-b"))
    await first.close(stop_replicas=False)  # the actors keep running
    assert ray.killed == []
    ray.actors["iris-r1-b"].replica_alive = False

    second = RayBackend(settings, FetchAccess("http://h"), calls=ray, clock=clock)
    candidates = [
        AdoptCandidate(rid, "iris", 1, "10.0.0.7", 40001, 77, clock.now())
        for rid in ("iris-r1-a", "iris-r1-b", "iris-r1-gone")
    ]
    adopted = await second.adopt(candidates)
    assert [r.replica_id for r in adopted] == ["iris-r1-a"]
    assert ray.killed == ["iris-r1-b"]  # its replica had ended: the actor is freed


async def test_close_stops_every_replica_and_leaves_the_cluster(
    backend: RayBackend, ray: FakeRay
) -> None:
    await backend.start(launch("iris-r1-a"))
    ray.actors["iris-r1-a"].replica_alive = False  # exits on its SIGTERM
    await backend.close()
    assert "terminate" in ray.actors["iris-r1-a"].calls
    assert ray.killed == ["iris-r1-a"]
    assert ray.closed
    with pytest.raises(Unavailable):
        await backend.start(launch("iris-r1-b"))


async def test_adoption_with_the_cluster_out_of_reach_is_tried_again_not_given_up(
    backend: RayBackend, ray: FakeRay, clock: FakeClock
) -> None:
    async def unreachable() -> None:
        raise Unavailable("connecting to Ray: Ray did not answer within 30s")

    ray.connect = unreachable  # type: ignore[method-assign]
    candidate = AdoptCandidate("iris-r1-a", "iris", 1, "10.0.0.7", 40001, 77, clock.now())
    with pytest.raises(Unavailable):
        await backend.adopt([candidate])
    assert await backend.adopt([]) == []  # nothing to adopt: no call into Ray at all


async def test_start_phases_missed_by_the_last_poll_are_read_once_more(
    backend: RayBackend, ray: FakeRay
) -> None:
    await backend.start(launch())
    await backend.poll()  # still loading: no start times yet
    times = {"main": 2.0, "imported": 3.0, "loaded": 5.0, "listening": 5.5}
    ray.actors["iris-r1-a"].status = {"times": times}  # written just before its probe passed
    report = backend.startup("iris-r1-a")
    assert report is not None
    assert set(report.phases) == {"spawn", "import", "load", "listen"}
    assert report.listening_at == 5.5
    calls = ray.actors["iris-r1-a"].calls
    assert calls.count("state") == 2
    backend.startup("iris-r1-a")
    assert calls.count("state") == 2  # known now: no second read
