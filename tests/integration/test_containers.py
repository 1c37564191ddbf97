"""Container endpoints (issue 17) end to end: real podman, real `podium up` servers.

The image is the busybox test image (`tests.support.container_image`), built locally under
tags of this module only (`e2e-1`, `e2e-2`); the model a folder of two small files. Every
server runs with `PODIUM_CONTAINER_RUN_ARGS` lowering the ulimits (this machine refuses
podman's defaults). One server is shared by the tests that do not stop it; the restart
test and the no-engine test start their own. Containers are found by their name
(`podium-<replica id>`, replica ids start with the endpoint's name) and their
`podium.replica` label; a finalizer removes any this module's endpoints left behind, and
the images it built.

Every wait is on a condition with a deadline; nothing asserts on a duration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from podium.client import NotFound
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from tests.support.container_image import REPOSITORY, build_test_image, remove_image
from tests.support.server import ServerProcess, free_port, running_server, wait_until

PREFIX = "e2e-"  # every endpoint of this module: its containers are `podium-e2e-…`
TAGS = ("e2e-1", "e2e-2")
SERVER_ENV = {
    "PODIUM_CONTAINER_RUN_ARGS": "--ulimit nofile=1024:1024 --ulimit nproc=4096:4096",
    "PODIUM_TICK_S": "0.5",
    "PODIUM_RESTART_BACKOFF_S": "0.2",
    "PODIUM_STOP_TIMEOUT_S": "2",
}
KILLED = 128 + signal.SIGKILL  # the exit code of a container `podman kill` ends
LOAD_THREADS = 3
# A start retried: none for a start that cannot succeed (no engine, no image).
RETRIES = {EventKind.REPLICA_RESTARTED, EventKind.REPLICA_CRASHED, EventKind.REPLICA_READY}
MODEL_FILES = {"config.json": '{"kind": "tiny"}', "weights.bin": "0123456789"}


# ---------------------------------------------------------------------- podman


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def containers(name_prefix: str) -> list[dict[str, Any]]:
    """The containers (running or not) whose name starts with `podium-<name_prefix>`."""
    out = podman("ps", "-a", "--filter", f"name=^podium-{name_prefix}", "--format", "json")
    return list(json.loads(out or "[]"))


def running_ids(endpoint: str) -> set[str]:
    """The IDs of the running containers of `endpoint`'s replicas."""
    return {c["Id"] for c in containers(f"{endpoint}-r") if c["State"] == "running"}


def container_of(replica_id: str) -> dict[str, Any]:
    """The one container labelled `podium.replica=<replica_id>`."""
    out = podman("ps", "-a", "--filter", f"label=podium.replica={replica_id}", "--format", "json")
    found = json.loads(out or "[]")
    assert len(found) == 1, f"containers of {replica_id}: {found}"
    return dict(found[0])


def hostname(replica_id: str) -> str:
    """The hostname inside a replica's container: its short container ID."""
    return str(container_of(replica_id)["Id"])[:12]


def started_at(container_id: str) -> str:
    return podman("inspect", "--format", "{{.State.StartedAt}}", container_id).strip()


def remove_containers(name_prefix: str) -> None:
    for c in containers(name_prefix):
        podman("rm", "-f", "-t", "0", c["Id"], check=False)


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, str]]:
    """The test image under this module's tags (removed at the end)."""
    built = {tag: build_test_image(tag) for tag in TAGS}
    yield built
    for image in built.values():
        remove_image(image)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]
) -> Iterator[ServerProcess]:
    """One `podium up` for the tests that leave it running; its leftovers are removed."""
    try:
        with running_server(tmp_path_factory.mktemp("podium-ctr"), **SERVER_ENV) as s:
            yield s
    finally:
        remove_containers(PREFIX)  # a graceful stop removes them; a failed test may not


def push_files_model(server: ServerProcess, folder: Path, name: str = "e2e-files") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in MODEL_FILES.items():
        (folder / file).write_text(text, encoding="utf-8")
    with server.client() as c:
        c.push_model(folder, name)
    return name


@pytest.fixture(scope="module")
def model(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    return push_files_model(server, tmp_path_factory.mktemp("files") / "e2e-files")


def container_spec(name: str, model: str, image: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "framework": "container",
        "container": {"image": image, "health_route": "/health"},
        **extra,
    }


def ready_replicas(server: ServerProcess, name: str) -> list[Any]:
    with server.client() as c:
        return [r for r in c.endpoint(name).replicas if r.state is ReplicaState.READY]


def remove_endpoint(server: ServerProcess, name: str) -> None:
    """Delete `name` and wait until its containers are gone (a stop removes them)."""
    with server.client() as c:
        c.delete(name)
    wait_until(lambda: not containers(f"{name}-r"), timeout=60, what=f"{name}'s containers gone")


# ---------------------------------------------------------------------- load


@dataclass
class Load:
    """What a bounded closed-loop load saw: 200s, failures, the bodies of the 200s."""

    ok: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)
    last_body: str = ""


@contextmanager
def under_load(
    url: str, headers: dict[str, str], *, threads: int = LOAD_THREADS, body: bytes | None = None
) -> Iterator[Load]:
    """`threads` clients, each sending one request after the other (GET, or POST of
    `body`) until the block ends."""
    report, lock, stop = Load(), threading.Lock(), threading.Event()

    def client() -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            while not stop.is_set():
                try:
                    r = http.get(url) if body is None else http.post(url, content=body)
                except httpx.HTTPError as e:
                    with lock:
                        report.failures.append(f"{type(e).__name__}: {e}")
                    continue
                with lock:
                    if r.status_code != 200:
                        report.failures.append(f"HTTP {r.status_code}: {r.text[:300]}")
                        continue
                    report.ok += 1
                    report.bodies[r.text.strip()] += 1
                    report.last_body = r.text.strip()

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    try:
        yield report
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)


# ---------------------------------------------------------------------- tests


def test_deploy_from_a_spec_file_call_and_logs_through_the_cli(
    server: ServerProcess, model: str, images: dict[str, str], tmp_path: Path
) -> None:
    name = f"{PREFIX}echo"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"name: {name}\n"
        f"model: {model}\n"
        "framework: container\n"
        "env:\n  FROM_ENDPOINT: endpoint-value\n"
        "container:\n"
        f"  image: {images['e2e-1']}\n"
        "  health_route: /health\n"
        "  pull_policy: never\n"
        "  env:\n    FROM_CONTAINER: container-value\n",
        encoding="utf-8",
    )
    startup = server.log_path.read_text(errors="replace")
    assert "containers: podman " in startup and "/podman)" in startup  # the start-up line
    out = server.cli("deploy", "-f", str(spec), "--wait", "--timeout", "90").stdout
    assert f"endpoint {name} created" in out
    url = f"{server.url}/endpoints/{name}"
    with httpx.Client(headers=server.headers, timeout=30) as http:
        echo = http.post(f"{url}/cgi-bin/echo", content=b'{"hello": [1, 2]}')
        assert echo.status_code == 200, echo.text
        assert echo.json() == {"hello": [1, 2]}
        listed = http.get(f"{url}/cgi-bin/model")
        assert listed.status_code == 200, listed.text
        assert set(MODEL_FILES) <= set(listed.text.split()), listed.text  # at /repository

        def env(var: str) -> str:
            got = http.get(f"{url}/cgi-bin/env?{var}")
            assert got.status_code == 200, got.text
            return got.text.strip()

        assert env("PORT") == "8080"  # the container's port (published on 127.0.0.1)
        assert env("PODIUM_MODEL_PATH") == "/repository"
        assert env("FROM_ENDPOINT") == "endpoint-value"
        assert env("FROM_CONTAINER") == "container-value"
        assert http.get(f"{url}/version").text.strip() == "e2e-1"

    [replica] = ready_replicas(server, name)
    ctr = container_of(replica.replica_id)
    assert ctr["State"] == "running" and ctr["Names"] == [f"podium-{replica.replica_id}"]
    assert {p["host_ip"] for p in ctr.get("Ports") or []} <= {"127.0.0.1"}, ctr["Ports"]

    shown = [""]

    def logged() -> bool:
        shown[0] = text = server.cli("logs", name).stdout
        return f"{replica.replica_id} | listening on 8080" in text and "response:200" in text

    try:
        wait_until(logged, timeout=30, what="the container's own lines in `podium logs`")
    except AssertionError as e:
        raise AssertionError(f"{e}; `podium logs` printed:\n{shown[0]}") from None
    server.cli("rm", name)
    wait_until(lambda: not containers(f"{name}-r"), timeout=60, what="the container removed")


def test_killed_container_under_load_is_replaced(
    server: ServerProcess, model: str, images: dict[str, str]
) -> None:
    name = f"{PREFIX}kill"
    scaling = {"min_replicas": 2, "max_replicas": 2}
    with server.client() as c:
        c.deploy(container_spec(name, model, images["e2e-1"], scaling=scaling))
    wait_until(lambda: len(ready_replicas(server, name)) == 2, 90, "2 ready replicas")
    victim, survivor = ready_replicas(server, name)
    victim_host = hostname(victim.replica_id)

    # Each answer names the container that served it (its hostname: an external server's
    # answer carries no replica header).
    url = f"{server.url}/endpoints/{name}/cgi-bin/env?HOSTNAME"
    with under_load(url, server.headers) as load:
        wait_until(lambda: load.bodies[victim_host] >= 10, 30, "the victim serving")
        podman("kill", victim_host)  # SIGKILL
        wait_until(
            lambda: (
                len(ids := {r.replica_id for r in ready_replicas(server, name)}) == 2
                and victim.replica_id not in ids
            ),
            90,
            "a replacement replica",
        )
        [new] = {r.replica_id for r in ready_replicas(server, name)} - {survivor.replica_id}
        new_host = hostname(new)
        wait_until(lambda: load.bodies[new_host] >= 10, 30, "the replacement serving")
    # The requests the victim was serving when it was killed fail, with a 502 that names
    # the crash and its exit code: they may have reached the server, so the gateway never
    # re-sends them (as for a process replica: test_resilience.py). Every other request is
    # served: those that met the dead container's port were re-sent to the other replica.
    # (A 502 waits at most 2 s for the backend to learn the exit; on a busy machine it may
    # say only that the replica closed the connection.)
    crashed = f"the replica crashed while serving this request: crashed: exit code {KILLED}"
    closed = "the replica closed the connection without answering this request"
    in_flight = [f for f in load.failures if "HTTP 502" in f and (crashed in f or closed in f)]
    assert in_flight == load.failures, load.failures[:5]
    assert len(load.failures) <= LOAD_THREADS  # at most the one each client had in flight
    assert set(load.bodies) == {victim_host, hostname(survivor.replica_id), new_host}

    with server.client() as c:
        events = c.events(name)
    crashes = [
        e
        for e in events
        if e.kind is EventKind.REPLICA_CRASHED and e.data.get("replica_id") == victim.replica_id
    ]
    assert crashes, [(e.kind, e.message) for e in events]
    assert crashes[0].data.get("exit_code") == KILLED, crashes[0]
    assert f"exit code {KILLED}" in crashes[0].message, crashes[0].message
    assert any("response:200" in line for line in crashes[0].data.get("log_tail", [])), crashes[0]
    assert EventKind.REPLICA_RESTARTED in {e.kind for e in events}
    wait_until(lambda: not containers(victim.replica_id), 30, "the killed container removed")
    remove_endpoint(server, name)


def test_rolling_to_a_new_image_tag_under_load(
    server: ServerProcess, model: str, images: dict[str, str]
) -> None:
    name = f"{PREFIX}roll"
    with server.client() as c:
        c.deploy(container_spec(name, model, images["e2e-1"]))
    wait_until(lambda: len(ready_replicas(server, name)) == 1, 90, "a ready replica")
    [old] = ready_replicas(server, name)

    def rolled() -> bool:
        with server.client() as c:
            ep = c.endpoint(name)
        return (
            ep.revision == 2
            and ep.status is EndpointStatus.RUNNING
            and bool(ep.replicas)
            and all(r.revision == 2 and r.state is ReplicaState.READY for r in ep.replicas)
        )

    with under_load(f"{server.url}/endpoints/{name}/version", server.headers) as load:
        wait_until(lambda: load.ok >= 20, 30, "load flowing")
        new_block = {"image": images["e2e-2"], "health_route": "/health"}
        with server.client() as c:
            c.update(name, {"container": new_block})
        wait_until(rolled, 90, "the rollout to e2e-2")
        seen = load.ok
        wait_until(lambda: load.ok >= seen + 20, 30, "load after the rollout")
    assert load.failures == [], load.failures[:5]
    assert set(load.bodies) == {"e2e-1", "e2e-2"}, load.bodies
    assert load.last_body == "e2e-2"
    answer = httpx.get(f"{server.url}/endpoints/{name}/version", headers=server.headers)
    assert answer.status_code == 200 and answer.text.strip() == "e2e-2"
    wait_until(lambda: not containers(old.replica_id), 30, "the old container removed")
    remove_endpoint(server, name)


def test_scale_to_zero_and_back(server: ServerProcess, model: str, images: dict[str, str]) -> None:
    name = f"{PREFIX}zero"
    scaling = {"min_replicas": 0, "max_replicas": 1, "scale_to_zero_after": "1s"}
    with server.client() as c:
        c.deploy(container_spec(name, model, images["e2e-1"], scaling=scaling))
        c.wait_for(name, {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
    assert not containers(f"{name}-r")
    url = f"{server.url}/endpoints/{name}/cgi-bin/echo"
    for round_ in (1, 2):  # from zero, back to zero, from zero again
        woke = httpx.post(url, content=b'{"wake": 1}', headers=server.headers, timeout=90)
        assert woke.status_code == 200, woke.text
        assert woke.json() == {"wake": 1}
        assert len(running_ids(name)) == 1, f"round {round_}: one container serves"
        with server.client() as c:
            c.wait_for(name, {EndpointStatus.SCALED_TO_ZERO}, timeout=60)
        wait_until(lambda: not containers(f"{name}-r"), 30, "no container at zero")
    with server.client() as c:
        kinds = [e.kind for e in c.events(name)]
    assert EventKind.REPLICA_CRASHED not in kinds
    remove_endpoint(server, name)


def test_a_container_deaf_to_sigterm_is_killed_at_the_stop_timeout(
    server: ServerProcess, model: str, images: dict[str, str]
) -> None:
    """The container's PID 1 traps SIGTERM and goes on serving, saying once a second how
    long it has ignored the signal. A pause's stop must escalate after
    PODIUM_STOP_TIMEOUT_S (2 s) and end the container, not only its `podman run` client (a
    killed client leaves its container running). Its log proves the escalation: SIGTERM
    reached the container and was ignored for a second or more before the container ended;
    a stop that removed the container at once would leave no such line."""
    name = f"{PREFIX}deaf"
    deaf = (
        "trap 'i=0; while :; do echo \"TERM ignored for $i s\"; i=$((i+1)); sleep 1; done' "
        "TERM; /bin/httpd -f -p {port} -h /www & while :; do wait; done"
    )
    block = {
        "image": images["e2e-1"],
        "command": ["/bin/sh", "-c", deaf],
        "health_route": "/health",
    }
    with server.client() as c:
        c.deploy({"name": name, "model": model, "framework": "container", "container": block})
    wait_until(lambda: len(ready_replicas(server, name)) == 1, 90, "a ready replica")
    [replica] = ready_replicas(server, name)
    assert replica.pid is not None
    with server.client() as c:
        c.pause(name)
    wait_until(lambda: not containers(f"{name}-r"), 60, "the deaf container removed")
    wait_until(lambda: gone(replica.pid), 30, "its podman client gone")  # type: ignore[arg-type]
    with server.client() as c:
        lines = [x.line for x in c.logs(name, replica=replica.replica_id, tail=1000)]
        stopped = [e for e in c.events(name) if e.kind is EventKind.REPLICA_STOPPED]
    said = "\n".join(lines)
    assert "TERM ignored for 0 s" in said, lines[-20:]
    assert "TERM ignored for 1 s" in said, lines[-20:]  # alive a second after SIGTERM
    assert [e.data.get("replica_id") for e in stopped] == [replica.replica_id]
    remove_endpoint(server, name)


def test_missing_image_with_pull_policy_never_fails_naming_both(
    server: ServerProcess, model: str
) -> None:
    name = f"{PREFIX}never"
    image = f"{REPOSITORY}:e2e-missing-{uuid.uuid4().hex[:8]}"
    block = {"image": image, "pull_policy": "never"}
    with server.client() as c:
        c.deploy({"name": name, "model": model, "framework": "container", "container": block})

    def failed() -> bool:
        with server.client() as c:
            return c.endpoint(name).status is EndpointStatus.FAILED

    wait_until(failed, 60, f"{name} failed")
    with server.client() as c:
        reason = c.endpoint(name).status_reason or ""
        kinds = [e.kind for e in c.events(name)]
    assert image in reason and "never" in reason, reason
    assert not set(kinds) & RETRIES, kinds  # failed at the first start, not after retries
    assert not containers(f"{name}-r")
    with server.client() as c:
        c.delete(name)


def test_restarted_server_adopts_its_containers(tmp_path: Path, images: dict[str, str]) -> None:
    """`podium up` killed (SIGKILL: nothing stops the replicas) and started again on the
    same home adopts the running containers: same IDs, never restarted, still serving.
    One replica's `podman run` client is killed too while no server runs: its container is
    adopted by itself, its log still followed. The server's graceful stop then removes
    both containers."""
    server = ServerProcess(tmp_path / "home", free_port(), dict(SERVER_ENV))
    name = f"{PREFIX}adopt"
    server.start()
    try:
        model = push_files_model(server, tmp_path / "files")
        scaling = {"min_replicas": 2, "max_replicas": 2}
        with server.client() as c:
            c.deploy(container_spec(name, model, images["e2e-1"], scaling=scaling))
        wait_until(lambda: len(ready_replicas(server, name)) == 2, 90, "2 ready replicas")
        replicas = ready_replicas(server, name)
        before = {r.replica_id: container_of(r.replica_id)["Id"] for r in replicas}
        starts = {cid: started_at(cid) for cid in before.values()}
        orphan = replicas[0]  # its client goes too
        assert orphan.pid is not None

        server.stop(signal.SIGKILL)
        os.kill(orphan.pid, signal.SIGKILL)
        wait_until(lambda: gone(orphan.pid), 30, "the orphan's client gone")  # type: ignore[arg-type]
        assert running_ids(name) == set(before.values())  # they outlive server and client
        server.start()
        wait_until(lambda: len(ready_replicas(server, name)) == 2, 60, "2 ready replicas again")
        after = {
            r.replica_id: container_of(r.replica_id)["Id"] for r in ready_replicas(server, name)
        }
        assert after == before  # the same replicas, in the same containers
        assert {cid: started_at(cid) for cid in before.values()} == starts  # never restarted
        assert running_ids(name) == set(before.values())
        with server.client() as c:
            logged = len(c.logs(name, replica=orphan.replica_id, tail=10_000))
        hosts = {hostname(replica_id) for replica_id in before}
        url = f"{server.url}/endpoints/{name}/cgi-bin/env?HOSTNAME"
        with under_load(url, server.headers) as load:
            wait_until(lambda: set(load.bodies) == hosts, 30, "both containers serving")
        assert load.failures == [], load.failures[:5]

        def orphan_logs_flow() -> bool:
            with server.client() as c:
                return len(c.logs(name, replica=orphan.replica_id, tail=10_000)) > logged

        wait_until(orphan_logs_flow, 30, "new lines in the adopted container's log")
        with server.client() as c:
            events = c.events(name)
        adopted = {e.data.get("replica_id") for e in events if e.kind is EventKind.REPLICA_ADOPTED}
        assert adopted == set(before), [(e.kind, e.message) for e in events]
        restarts = [
            e for e in events if e.kind in (EventKind.REPLICA_CRASHED, EventKind.REPLICA_RESTARTED)
        ]
        assert not restarts, [(e.kind, e.message) for e in restarts]
    finally:
        server.stop()  # graceful: the replicas go with it, containers included
        left = containers(f"{name}-r")
        remove_containers(f"{name}-r")
    assert not left, f"containers left after a graceful stop: {left}"


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_no_container_engine_fails_the_deploy_at_once(
    tmp_path: Path, images: dict[str, str]
) -> None:
    """A server whose PATH has neither podman nor docker: a container endpoint is refused
    at once (422 naming `container`, saying there is no container engine) and nothing is
    stored. (A replica start without an engine, a spec stored before the engine went away,
    fails at its first start: tests/integration/test_container_backend.py.)"""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**SERVER_ENV, "PATH": str(empty), "PODIUM_CONTAINER_ENGINE": "auto"}
    with running_server(tmp_path / "home", **env) as server:
        startup = server.log_path.read_text(errors="replace")
        assert "containers: none (no container engine on this node" in startup
        model = push_files_model(server, tmp_path / "files")
        name = f"{PREFIX}noengine"
        spec = container_spec(name, model, images["e2e-1"])
        resp = httpx.post(
            f"{server.url}/api/v1/endpoints", json=spec, headers=server.headers, timeout=30
        )
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert problem["field"] == "container", problem
        assert "no container engine" in problem["detail"], problem
        with server.client() as c, pytest.raises(NotFound):
            c.endpoint(name)
        assert not containers(f"{name}-r")
