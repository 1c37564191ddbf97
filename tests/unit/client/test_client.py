"""The SDK against the real server app over real HTTP (`tests.support.inproc`): the real
routes, validation, store and problem+json errors; the test plays the controller."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from podium.client import (
    Conflict,
    EndpointSpec,
    EndpointStatus,
    Invalid,
    LoadError,
    LogLine,
    NotFound,
    OutOfMemory,
    PodiumClient,
    PodiumError,
    Unavailable,
)
from tests.support.inproc import InProcessPodium
from tests.unit.client.test_packing import make_model

SPEC = {"name": "iris", "model": "iris", "framework": "sklearn"}


@pytest.fixture
def pushed(client: PodiumClient, tmp_path: Path) -> Path:
    folder = make_model(tmp_path)
    client.push_model(folder, "iris", framework="sklearn")
    return folder


def stored_folder(podium: InProcessPodium, name: str, version: int) -> Path:
    with podium.podium.db.unit_of_work(read_only=True) as uow:
        return Path(uow.models.get(name, version).path)


def test_health_and_instance_types(client: PodiumClient) -> None:
    assert client.health()["status"] == "ok"
    assert "cpu-small" in {t.name for t in client.instance_types()}


def test_push_folder_streams_a_valid_tar_gz(
    client: PodiumClient, podium: InProcessPodium, tmp_path: Path
) -> None:
    folder = make_model(tmp_path)
    version = client.push_model(folder, "iris", framework="sklearn")
    assert (version.ref, version.version, version.framework) == ("iris:1", 1, "sklearn")
    assert (version.created, version.source, version.files) == (True, "upload:iris.tar.gz", 3)
    assert podium.requests == [
        "POST /api/v1/models/iris/versions?filename=iris.tar.gz&framework=sklearn"
    ]
    # The server unpacked what the client packed: every file, no link.
    stored = stored_folder(podium, "iris", 1)
    files = sorted(str(p.relative_to(stored)) for p in stored.rglob("*") if p.is_file())
    assert files == ["model.skops", "sub/config.json", "sub/deeper/vocab.txt"]
    assert (stored / "sub" / "config.json").read_text() == '{"a": 1}'
    assert (stored / "model.skops").read_bytes() == b"\x00weights\xff"


def test_push_same_folder_twice_is_a_duplicate(client: PodiumClient, pushed: Path) -> None:
    again = client.push_model(pushed, "iris", framework="sklearn")
    assert (again.version, again.created) == (1, False)
    assert [v.version for v in client.model("iris").versions] == [1]


def test_push_single_file_as_is(
    client: PodiumClient, podium: InProcessPodium, tmp_path: Path
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx-bytes" * 1000)
    version = client.push_model(str(model), "digits")
    assert (version.size_bytes, version.files, version.source) == (10_000, 1, "upload:model.onnx")
    assert podium.requests == ["POST /api/v1/models/digits/versions?filename=model.onnx"]
    assert (stored_folder(podium, "digits", 1) / "model.onnx").read_bytes() == model.read_bytes()


def test_push_missing_path_sends_nothing(
    client: PodiumClient, podium: InProcessPodium, tmp_path: Path
) -> None:
    with pytest.raises(Invalid) as info:
        client.push_model(tmp_path / "nope", "iris")
    assert info.value.field == "path"
    assert podium.requests == []


def test_push_bad_name_is_invalid_with_field(client: PodiumClient, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"x")
    with pytest.raises(Invalid) as info:
        client.push_model(tmp_path / "m.bin", "Bad_Name")
    assert info.value.field == "name"


def test_models_listing_and_deletion(client: PodiumClient, pushed: Path, tmp_path: Path) -> None:
    (pushed / "model.skops").write_bytes(b"v2")
    client.push_model(pushed, "iris", framework="sklearn")
    [model] = client.models()
    assert (model.name, model.latest, len(model.versions)) == ("iris", 2, 2)
    assert client.model("iris").latest == 2
    assert client.model_version("iris", 1).ref == "iris:1"
    client.delete_model("iris:1")
    assert [v.version for v in client.model("iris").versions] == [2]
    client.delete_model("iris")
    with pytest.raises(NotFound, match="iris"):
        client.model("iris")
    with pytest.raises(Invalid):
        client.delete_model("hf://org/model")


def test_a_used_version_cannot_be_deleted(client: PodiumClient, pushed: Path) -> None:
    client.deploy(SPEC)
    with pytest.raises(Conflict, match="iris"):
        client.delete_model("iris:1")
    assert client.model_version("iris", 1).used_by == ["iris"]


def test_deploy_validates_locally_and_sends_nothing(
    client: PodiumClient, podium: InProcessPodium
) -> None:
    bad = {**SPEC, "scaling": {"min_replicas": 3, "max_replicas": 1}}
    with pytest.raises(Invalid) as info:
        client.deploy(bad)
    assert info.value.field == "scaling.max_replicas"
    assert info.value.message == "min_replicas (3) must not exceed max_replicas (1)"
    with pytest.raises(Invalid) as info:
        client.deploy({**SPEC, "colour": "red"})
    assert (info.value.field, info.value.message) == ("colour", "unknown field")
    assert podium.requests == []


def test_deploy_and_manage_an_endpoint(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    ep = client.deploy(EndpointSpec(**SPEC, labels={"team": "ml"}))
    assert (ep.name, ep.status, ep.model_ref, ep.revision) == (
        "iris",
        EndpointStatus.PENDING,
        "iris:1",
        1,
    )
    assert ep.url == f"{podium.url}/endpoints/iris"  # the fake added a trailing slash
    with pytest.raises(Conflict) as conflict:
        client.deploy(SPEC)
    assert conflict.value.field == "name"

    podium.ready("iris")
    running = client.wait_for("iris", {EndpointStatus.RUNNING}, timeout=5, poll=0.01)
    assert (running.ready_replicas, running.desired_replicas) == (1, 1)
    assert [r.replica_id for r in running.replicas] == ["iris-r1-000000"]

    updated = client.update("iris", {"env": {"A": "1"}})
    assert (updated.revision, updated.spec.env, updated.status) == (
        2,
        {"A": "1"},
        EndpointStatus.UPDATING,
    )
    assert updated.spec.labels == {"team": "ml"}  # only the fields given were sent
    assert [r.number for r in client.revisions("iris")] == [1, 2]
    assert client.revisions("iris")[1].spec["env"] == {"A": "1"}

    assert client.pause("iris").status is EndpointStatus.PAUSED
    with pytest.raises(Conflict) as paused:
        client.wake("iris")
    assert paused.value.field == "status"
    assert client.resume("iris").status is EndpointStatus.PENDING
    scaled = client.scale("iris", 0, 2)
    assert (scaled.spec.scaling.min_replicas, scaled.spec.scaling.max_replicas) == (0, 2)
    assert scaled.desired_replicas == 1  # kept within the new bounds; the autoscaler decides
    assert client.wake("iris").desired_replicas == 1
    assert client.delete("iris").status is EndpointStatus.DELETING
    assert client.endpoint("iris").status is EndpointStatus.DELETING  # until replicas stop
    podium.gone("iris")
    with pytest.raises(NotFound):
        client.endpoint("iris")


def test_list_filters_are_applied_by_the_server(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy({**SPEC, "labels": {"team": "ml", "tier": "gold"}})
    client.deploy({**SPEC, "name": "daisy", "labels": {"team": "ml"}})
    client.deploy({**SPEC, "name": "rose", "labels": {"team": "web"}})
    podium.ready("iris")
    client.pause("rose")

    def names(**filters: object) -> list[str]:
        return [e.name for e in client.endpoints(**filters)]  # type: ignore[arg-type]

    assert names() == ["daisy", "iris", "rose"]
    assert names(status="running") == ["iris"]
    assert names(status=EndpointStatus.PAUSED) == ["rose"]
    assert names(status="pending") == ["daisy"]
    assert names(label="team=ml") == ["daisy", "iris"]
    assert names(label={"team": "ml", "tier": "gold"}) == ["iris"]
    assert names(label={"team": "other"}) == []
    assert names(name="ris") == ["iris"]
    assert names(name="s", label="team=ml") == ["daisy", "iris"]
    assert names(name="s", label="team=ml", status="running") == ["iris"]
    with pytest.raises(Invalid) as info:
        client.endpoints(status="sleepy")
    assert info.value.field == "status"


def test_server_side_errors_keep_the_field(client: PodiumClient, pushed: Path) -> None:
    with pytest.raises(Invalid) as info:
        client.deploy({**SPEC, "instance_type": "tpu-huge"})
    assert info.value.field == "instance_type"
    with pytest.raises(NotFound) as missing:
        client.deploy({**SPEC, "name": "other", "model": "missing"})
    assert missing.value.field == "model"
    with pytest.raises(Invalid) as framework:
        client.deploy({**SPEC, "name": "other", "framework": "cobol"})
    assert framework.value.field == "framework"
    client.deploy(SPEC)
    with pytest.raises(Conflict) as resume:
        client.resume("iris")
    assert resume.value.field == "status"


def test_scale_bounds_are_checked_before_sending(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy(SPEC)
    podium.requests.clear()
    with pytest.raises(Invalid) as info:
        client.scale("iris", 3, 1)
    assert info.value.field == "scaling.max_replicas"
    assert str(info.value) == "min_replicas (3) must not exceed max_replicas (1)"
    with pytest.raises(Invalid) as low:
        client.scale("iris", -1, 1)
    assert low.value.field == "scaling.min_replicas"
    assert podium.requests == []
    # The server refuses them too, naming the field (for clients that do not check first).
    answer = httpx.post(
        f"{podium.url}/api/v1/endpoints/iris/scale",
        json={"min_replicas": 3, "max_replicas": 1},
        headers=podium.headers,
    )
    assert (answer.status_code, answer.json()["field"]) == (422, "max_replicas")
    scaled = client.scale("iris", 0, 3)
    assert scaled.spec.scaling.model_dump(include={"min_replicas", "max_replicas"}) == {
        "min_replicas": 0,
        "max_replicas": 3,
    }
    assert client.events("iris")[-1].message == "scale bounds set to min 0, max 3 by user"


def test_events(client: PodiumClient, podium: InProcessPodium, pushed: Path) -> None:
    client.deploy(SPEC)
    podium.ready("iris")
    events = client.events("iris")
    assert [e.kind.value for e in events] == ["spec", "replica_ready", "status"]
    assert events[2].message == "status pending → running: replicas ready"
    assert client.events("iris", after=events[0].id, limit=1) == events[1:2]
    with pytest.raises(NotFound):
        client.events("ghost")


def test_logs(client: PodiumClient, podium: InProcessPodium, pushed: Path) -> None:
    client.deploy({**SPEC, "scaling": {"min_replicas": 2, "max_replicas": 2}})
    first, second = podium.ready("iris")
    lines = client.logs("iris", tail=2)
    assert [(x.replica_id, x.line) for x in lines] == [
        (first, f"log line 4 of {first}"),
        (first, f"log line 5 of {first}"),
        (second, f"log line 4 of {second}"),
        (second, f"log line 5 of {second}"),
    ]
    only = client.logs("iris", tail=1, replica=second)
    assert [(x.replica_id, x.line) for x in only] == [(second, f"log line 5 of {second}")]
    with pytest.raises(NotFound) as info:
        client.logs("iris", replica="iris-r1-ffffff")
    assert info.value.field == "replica"
    with pytest.raises(NotFound):
        client.logs("ghost")


def test_follow_logs_yields_the_tail_then_new_lines_until_the_endpoint_goes(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy(SPEC)
    [rid] = podium.ready("iris")
    follow = client.follow_logs("iris", tail=2)  # over Server-Sent Events
    assert [next(follow), next(follow)] == [
        LogLine(replica_id=rid, line=f"log line 4 of {rid}"),
        LogLine(replica_id=rid, line=f"log line 5 of {rid}"),
    ]
    log = podium.settings.logs_dir / "iris" / f"{rid}.log"
    with log.open("a") as f:
        f.write("a new line: [brackets] | pipes\n")
    assert next(follow) == LogLine(replica_id=rid, line="a new line: [brackets] | pipes")
    podium.gone("iris")
    assert list(follow) == []  # the server ends the stream once the endpoint is gone
    with pytest.raises(NotFound):
        next(client.follow_logs("ghost"))


def test_invoke_goes_through_the_gateway(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy(SPEC)
    podium.ready("iris")
    answer = client.invoke("iris", {"inputs": [[1, 2, 3, 4]]})
    assert answer == {"outputs": [[1, 2, 3, 4]], "path": "/"}
    client.invoke("iris", {"inputs": 1}, path="/v2/infer", headers={"x-trace": "1"})
    assert podium.echo.received[-1] == ("/v2/infer", {"inputs": 1})
    with pytest.raises(PodiumError, match="boom") as info:
        client.invoke("iris", {"inputs": "boom"})
    assert type(info.value) is PodiumError
    with pytest.raises(OutOfMemory, match="ran out of memory"):  # the replica's 507
        client.invoke("iris", {"inputs": "oom"})
    with pytest.raises(NotFound, match="ghost"):
        client.invoke("ghost", {"inputs": 1})
    client.pause("iris")
    podium.publish()  # the controller routes the pause
    with pytest.raises(Unavailable, match="is paused; resume it with `podium resume iris`"):
        client.invoke("iris", {"inputs": 1})


def test_wait_for_polls_until_the_status_comes(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy(SPEC)
    asked = threading.Event()

    def controller() -> None:  # makes it ready once the client has seen it pending
        while "GET /api/v1/endpoints/iris" not in podium.requests:
            if asked.wait(0.01):
                return
        podium.ready("iris")

    thread = threading.Thread(target=controller)
    thread.start()
    try:
        ep = client.wait_for("iris", {EndpointStatus.RUNNING}, timeout=60, poll=0.01)
    finally:
        asked.set()
        thread.join()
    assert ep.status is EndpointStatus.RUNNING
    assert podium.requests.count("GET /api/v1/endpoints/iris") >= 2


def test_wait_for_failed_reports_the_reason(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy({**SPEC, "name": "bad"})
    podium.fail("bad", "model failed to load: bad pickle")
    with pytest.raises(LoadError, match="endpoint bad failed: model failed to load: bad pickle"):
        client.wait_for("bad", {EndpointStatus.RUNNING}, timeout=5, poll=0.01)
    failed = client.wait_for("bad", {EndpointStatus.FAILED}, timeout=5, poll=0.01)
    assert failed.status_reason == "model failed to load: bad pickle"


def test_wait_for_times_out_with_the_last_status(client: PodiumClient, pushed: Path) -> None:
    client.deploy(SPEC)
    client.pause("iris")
    with pytest.raises(Unavailable, match=r"endpoint iris is still paused after 0\.2s"):
        client.wait_for("iris", {EndpointStatus.RUNNING}, timeout=0.2, poll=0.05)


def test_update_wait_rolls_out_the_new_revision(
    client: PodiumClient, podium: InProcessPodium, pushed: Path
) -> None:
    client.deploy(SPEC)
    podium.ready("iris")
    changed = client.update("iris", {"max_concurrency": 4})
    assert (changed.revision, changed.status) == (2, EndpointStatus.UPDATING)
    with pytest.raises(Unavailable, match="1 replica\\(s\\) of an older revision still up"):
        client.wait_rolled_out("iris", 2, timeout=0.1, poll=0.05)
    with podium.podium.db.unit_of_work() as uow:  # the old replica drained and stopped
        uow.replicas.delete("iris-r1-000000")
    podium.ready("iris")
    ep = client.wait_rolled_out("iris", 2, timeout=5, poll=0.01)
    assert [(r.replica_id, r.revision) for r in ep.replicas] == [("iris-r2-000000", 2)]
