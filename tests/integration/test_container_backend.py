"""Container replicas through the real LocalBackend and real podman (the busybox test image,
`tests/support/container_image.py`): serve, stop, kill, exit, out of memory, adoption by a
second backend, pull policy `never`, no engine.

One xdist group: the tests share the image (built once)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from podium.artifacts.sources import NodeCache
from podium.backends.base import AdoptCandidate, ModelSource, ObservedReplica
from podium.backends.container_runtime import memory_limit_mib
from podium.backends.model_cache import ModelCache
from podium.core.clock import FakeClock
from podium.core.container_spec import ContainerSpec, PullPolicy
from podium.core.errors import LoadError
from podium.core.phases import ExitReason
from podium.core.settings import ContainerNetwork, ContainerSettings, Settings
from podium.core.spec import InstanceType
from tests.support.container_image import build_test_image, engine_program, remove_image
from tests.unit.backends.conftest import SyncLocal, launch, wait_exit, wait_for

pytestmark = pytest.mark.xdist_group("containers")

RUN_ARGS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
SMALL = InstanceType(name="cpu-small", cpus=1, memory_mb=256)
TINY = InstanceType(name="cpu-tiny", cpus=0.5, memory_mb=64)
TAG = "ctr-backend"


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The test image under this module's own tag, removed when the module is done."""
    built = build_test_image(TAG)
    yield built
    remove_image(built)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_text("w", encoding="utf-8")
    return folder


def container_settings(**kwargs: object) -> ContainerSettings:
    kwargs.setdefault("run_args", RUN_ARGS)
    return ContainerSettings(runtime="runc", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", containers=container_settings())


@pytest.fixture
def backend(settings: Settings) -> Iterator[SyncLocal]:
    b = SyncLocal(settings)
    yield b
    b.close()


@pytest.fixture
def rid() -> Iterator[str]:
    """A replica id no other test (or helper) uses; its container removed afterwards."""
    replica_id = f"ctrb-r1-{uuid.uuid4().hex[:6]}"
    yield replica_id
    podman("rm", "-f", "-t", "0", f"podium-{replica_id}")


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [engine_program(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def exists(name: str) -> bool:
    return podman("container", "exists", name).returncode == 0


def container_launch(rid: str, model: Path, spec: ContainerSpec, **kwargs: object):  # type: ignore[no-untyped-def]
    kwargs.setdefault("instance_type", SMALL)
    return launch(rid, model, runtime="container", container=spec, **kwargs)


def healthy(r: ObservedReplica) -> bool:
    try:
        return httpx.get(f"http://{r.host}:{r.port}/health", timeout=2).text.strip() == "ok"
    except httpx.HTTPError:
        return False


def test_serves_on_its_port_and_stops_gracefully(
    backend: SyncLocal, model: Path, image: str, rid: str
) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    spec = ContainerSpec(image=image, env={"GREETING": "hello"})
    r = backend.start(container_launch(rid, model, spec, env={"API_KEY": secret}))
    assert r.host == "127.0.0.1"
    wait_for(lambda: healthy(r), "the container to answer")
    base = f"http://127.0.0.1:{r.port}"
    assert httpx.get(f"{base}/cgi-bin/env?API_KEY").text.strip() == secret
    assert httpx.get(f"{base}/cgi-bin/env?GREETING").text.strip() == "hello"
    assert httpx.get(f"{base}/cgi-bin/env?PORT").text.strip() == "8080"
    assert httpx.get(f"{base}/cgi-bin/model").text.split() == ["weights.bin"]
    # The secret is on no command line, and its env file is gone once the container runs.
    argv = " ".join(psutil.Process(r.pid).cmdline())  # type: ignore[arg-type]
    assert secret not in argv and "127.0.0.1:" in argv and "--memory 256m" in argv
    assert not list((backend._settings.run_dir).glob("*.container.env"))
    # Labels, limits, the model mounted read-only.
    labels = podman("container", "inspect", "--format", "{{json .Config.Labels}}", f"podium-{rid}")
    assert f'"podium.replica":"{rid}"' in labels.stdout
    assert '"podium.home":' in labels.stdout
    assert httpx.post(f"{base}/cgi-bin/echo", content=b'{"x": 1}').json() == {"x": 1}

    backend.stop(rid)
    exit_ = wait_exit(backend, rid)
    assert exit_.exit_reason is ExitReason.STOPPED and exit_.exit_code == 0
    assert not exists(f"podium-{rid}")
    assert "listening on 8080" in "\n".join(backend.logs(rid))


def test_a_stop_the_container_ignores_escalates_to_killing_the_container(
    settings: Settings, model: Path, image: str, rid: str
) -> None:
    clock = FakeClock()
    b = SyncLocal(settings, clock=clock)
    try:
        deaf = "trap '' TERM; echo deaf; while true; do sleep 1; done"
        spec = ContainerSpec(image=image, command=["/bin/sh", "-c", deaf])
        r = b.start(container_launch(rid, model, spec))
        wait_for(lambda: "deaf" in "\n".join(b.logs(rid)), "the container to run")
        b.stop(rid)
        for _ in range(3):  # SIGTERM reached it and was ignored; no deadline passed yet
            assert [o.alive for o in b.poll()] == [True]
        assert exists(f"podium-{rid}")
        clock.advance(settings.control.stop_timeout_s + 1)
        exit_ = wait_exit(b, rid)
        assert exit_.exit_reason is ExitReason.STOPPED
        assert exit_.error is not None and "did not exit within" in exit_.error
        assert not exists(f"podium-{rid}")  # the container, not only its client
        assert not psutil.pid_exists(r.pid or 0) or _zombie(r.pid)
    finally:
        b.close()


def test_host_network_serves_on_a_free_host_port(
    tmp_path: Path, model: Path, image: str, rid: str
) -> None:

    containers = container_settings(network=ContainerNetwork.HOST)
    b = SyncLocal(Settings(home=tmp_path / "home", containers=containers))
    try:
        r = b.start(container_launch(rid, model, ContainerSpec(image=image)))
        wait_for(lambda: healthy(r), "the container to answer on the host's network")
        env = httpx.get(f"http://127.0.0.1:{r.port}/cgi-bin/env?PORT").text.strip()
        assert env == str(r.port)
    finally:
        b.close()
    assert not exists(f"podium-{rid}")


def test_a_first_poll_removes_this_servers_leftover_containers(
    settings: Settings, model: Path, image: str, rid: str
) -> None:
    first = SyncLocal(settings)
    r = first.start(container_launch(rid, model, ContainerSpec(image=image)))
    wait_for(lambda: healthy(r), "the container to answer")
    first.close(stop_replicas=False)  # the store then forgot it: nothing to adopt
    other = SyncLocal(Settings(home=settings.home.parent / "other", containers=settings.containers))
    try:
        other.poll()
        assert exists(f"podium-{rid}")  # another home's: left alone
    finally:
        other.close()
    second = SyncLocal(settings)
    try:
        assert second.poll() == []
        assert not exists(f"podium-{rid}")
    finally:
        second.close()


def test_kill_removes_the_container(backend: SyncLocal, model: Path, image: str, rid: str) -> None:
    r = backend.start(container_launch(rid, model, ContainerSpec(image=image)))
    wait_for(lambda: healthy(r), "the container to answer")
    backend.kill(rid, ExitReason.UNHEALTHY)
    exit_ = wait_exit(backend, rid)
    assert exit_.exit_reason is ExitReason.UNHEALTHY
    assert not exists(f"podium-{rid}")


def test_exit_reports_the_code_and_removes_the_container(
    backend: SyncLocal, model: Path, image: str, rid: str
) -> None:
    spec = ContainerSpec(image=image, command=["/bin/sh", "-c", "echo bye from $PORT; exit 3"])
    backend.start(container_launch(rid, model, spec))
    exit_ = wait_exit(backend, rid)
    assert exit_.exit_reason is ExitReason.CRASHED and exit_.exit_code == 3
    assert exit_.error == "exit code 3"
    assert "bye from 8080" in backend.logs(rid)[-1]
    assert not exists(f"podium-{rid}")


def test_out_of_memory_in_the_container_is_said(
    backend: SyncLocal, model: Path, image: str, rid: str
) -> None:
    r = backend.start(container_launch(rid, model, ContainerSpec(image=image), instance_type=TINY))
    wait_for(lambda: healthy(r), "the container to answer")
    assert r.pid is not None
    limit = memory_limit_mib(
        int(podman("container", "inspect", "--format", "{{.State.Pid}}", f"podium-{rid}").stdout)
    )
    if limit != TINY.memory_mb:
        pytest.skip(f"this machine does not enforce --memory (limit read back: {limit})")
    with pytest.raises(httpx.HTTPError):  # the kernel kills the hog; its answer is cut
        httpx.get(f"http://127.0.0.1:{r.port}/cgi-bin/hog?200", timeout=30).raise_for_status()
        raise httpx.HTTPError("answered")
    exit_ = wait_exit(backend, rid)
    assert exit_.exit_reason is ExitReason.OOM
    assert exit_.error is not None and "out of memory: limit 64 MiB" in exit_.error
    assert "ran out of memory" in (backend.exit_cause(rid) or "")
    assert not exists(f"podium-{rid}")


def test_an_hf_models_linked_files_read_inside_the_container(
    settings: Settings, tmp_path: Path, image: str, rid: str
) -> None:
    """An hf:// model is a hub cache snapshot whose files are relative links into the
    repo's `blobs`: they must resolve inside the container too (found offline here)."""
    sha = "1" * 40
    repo = tmp_path / "cache" / "hf" / "models--acme--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "abc123").write_text("hub-config-ok", encoding="utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha, encoding="utf-8")
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to("../../blobs/abc123")
    cache = NodeCache(tmp_path / "cache", env={"HF_HUB_OFFLINE": "1"})
    b = SyncLocal(settings, models=ModelCache(cache, settings.download))
    try:
        read = "cat /repository/config.json; echo; exit 3"
        spec = ContainerSpec(image=image, command=["/bin/sh", "-c", read])
        it = container_launch(rid, snapshot, spec)
        b.start(dataclasses.replace(it, model=ModelSource(ref=f"hf://acme/tiny@{sha}")))
        exit_ = wait_exit(b, rid)
        assert exit_.exit_code == 3, b.logs(rid)
        assert "hub-config-ok" in b.logs(rid), b.logs(rid)
    finally:
        b.close()


def candidate(r: ObservedReplica) -> AdoptCandidate:
    return AdoptCandidate(
        replica_id=r.replica_id,
        endpoint=r.endpoint,
        revision=r.revision,
        host=r.host,
        port=r.port,
        pid=r.pid,
        started_at=r.started_at,
        log_location=r.log_location,
    )


def test_a_second_backend_adopts_by_client_and_by_container(
    settings: Settings, model: Path, image: str
) -> None:
    ids = [f"ctrb-r1-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    first = SyncLocal(settings)
    second: SyncLocal | None = None
    try:
        started = [first.start(container_launch(i, model, ContainerSpec(image=image))) for i in ids]
        for r in started:
            wait_for(lambda r=r: healthy(r), "the containers to answer")
        first.close(stop_replicas=False)
        # The second one's client dies with the server's host, say: its container runs on.
        os.kill(started[1].pid, signal.SIGKILL)  # type: ignore[arg-type]
        wait_for(lambda: _zombie(started[1].pid), "the client to end")
        assert exists(f"podium-{ids[1]}")

        second = SyncLocal(settings)
        # The third one is not a candidate (its row is gone): a stray, removed on adoption.
        adopted = second.adopt([candidate(started[0]), candidate(started[1])])
        assert {a.replica_id for a in adopted} == {ids[0], ids[1]}
        assert not exists(f"podium-{ids[2]}")
        by_id = {a.replica_id: a for a in adopted}
        assert by_id[ids[1]].pid != started[1].pid  # now the container's own process
        for a in adopted:
            assert healthy(a)
            assert {r.replica_id for r in second.poll() if r.alive} >= {ids[0], ids[1]}
        # The adopted container's log is followed again (busybox httpd -v logs each answer).
        before = sum("response:" in line for line in second.logs(ids[1], 1000))
        httpx.get(f"http://127.0.0.1:{started[1].port}/version")
        wait_for(
            lambda: sum("response:" in line for line in second.logs(ids[1], 1000)) > before,
            "the log to flow",
        )
        assert ids[0] in second.resources([ids[0]])  # metered on the container's process

        second.close()
        for i in ids:
            assert not exists(f"podium-{i}")
    finally:
        if second is not None:
            second.close()
        for i in ids:
            podman("rm", "-f", "-t", "0", f"podium-{i}")


def _zombie(pid: int | None) -> bool:
    """Gone, or a zombie nobody reaps (its parent, the first backend, is this process)."""
    try:
        return psutil.Process(pid or 0).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def test_pull_policy_never_with_a_missing_image(backend: SyncLocal, model: Path, rid: str) -> None:
    missing = f"localhost/podium-test/absent-{uuid.uuid4().hex[:8]}:1"
    spec = ContainerSpec(image=missing, pull_policy=PullPolicy.NEVER)
    with pytest.raises(LoadError) as e:
        backend.start(container_launch(rid, model, spec))
    assert str(e.value) == f"image {missing} is not on this node and pull_policy is never"
    assert backend.poll() == []


def test_no_engine_fails_the_start_at_once(tmp_path: Path, model: Path, image: str) -> None:
    settings = Settings(
        home=tmp_path / "home", containers=container_settings(engine="/nonexistent/podman")
    )
    b = SyncLocal(settings)
    try:
        with pytest.raises(LoadError) as e:
            b.start(container_launch("ctrb-r1-none", model, ContainerSpec(image=image)))
        assert "container engine /nonexistent/podman is not installed" in str(e.value)
        assert b.containers.describe().startswith("none (container engine")
    finally:
        b.close()


def test_an_engine_that_refuses_the_run_is_a_load_error(
    tmp_path: Path, model: Path, image: str, rid: str
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        containers=container_settings(run_args=(*RUN_ARGS, "--no-such-flag")),
    )
    b = SyncLocal(settings)
    try:
        with pytest.raises(LoadError) as e:
            b.start(container_launch(rid, model, ContainerSpec(image=image)))
        assert "podman could not run the container" in str(e.value)
        assert "no-such-flag" in str(e.value)
        assert b.poll() == []
    finally:
        b.close()
