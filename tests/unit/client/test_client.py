"""The SDK against a faithful fake of the REST API served over real HTTP."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from podium.client import (
    Conflict,
    EndpointSpec,
    EndpointStatus,
    Invalid,
    LoadError,
    NotFound,
    PodiumClient,
    PodiumError,
    Retryable,
    Unavailable,
)
from tests.unit.client.fake_api import FakePodium
from tests.unit.client.test_packing import make_model

SPEC = {"name": "iris", "model": "iris", "framework": "sklearn"}


@pytest.fixture
def pushed(client: PodiumClient, tmp_path: Path) -> Path:
    folder = make_model(tmp_path)
    client.push_model(folder, "iris", framework="sklearn")
    return folder


def test_health_and_instance_types(client: PodiumClient) -> None:
    assert client.health() == {"status": "ok"}
    assert "cpu-small" in {t.name for t in client.instance_types()}


def test_push_folder_streams_a_valid_tar_gz(
    client: PodiumClient, api: FakePodium, tmp_path: Path
) -> None:
    folder = make_model(tmp_path)
    version = client.push_model(folder, "iris", framework="sklearn")
    assert (version.ref, version.version, version.framework) == ("iris:1", 1, "sklearn")
    upload = api.uploads[-1]
    assert upload.filename == "iris.tar.gz"
    assert upload.framework == "sklearn"
    assert upload.content_type == "application/octet-stream"
    assert sorted(upload.members) == [
        "model.skops",
        "sub",
        "sub/config.json",
        "sub/deeper",
        "sub/deeper/vocab.txt",
    ]
    with tarfile.open(fileobj=io.BytesIO(upload.body), mode="r:gz") as tar:
        config = tar.extractfile("sub/config.json")
        assert config is not None and config.read() == b'{"a": 1}'


def test_push_same_folder_twice_is_a_duplicate(
    client: PodiumClient, api: FakePodium, pushed: Path
) -> None:
    again = client.push_model(pushed, "iris", framework="sklearn")
    assert again.version == 1
    assert len(api.uploads) == 2


def test_push_single_file_as_is(client: PodiumClient, api: FakePodium, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx-bytes" * 1000)
    version = client.push_model(str(model), "digits")
    upload = api.uploads[-1]
    assert (upload.filename, upload.body, upload.framework) == (
        "model.onnx",
        model.read_bytes(),
        None,
    )
    assert version.size_bytes == 10_000


def test_push_missing_path_sends_nothing(
    client: PodiumClient, api: FakePodium, tmp_path: Path
) -> None:
    with pytest.raises(Invalid) as info:
        client.push_model(tmp_path / "nope", "iris")
    assert info.value.field == "path"
    assert api.requests == []


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


def test_deploy_validates_locally_and_sends_nothing(client: PodiumClient, api: FakePodium) -> None:
    bad = {**SPEC, "scaling": {"min_replicas": 3, "max_replicas": 1}}
    with pytest.raises(Invalid) as info:
        client.deploy(bad)
    assert info.value.field == "scaling"
    assert info.value.message == "min_replicas (3) must not exceed max_replicas (1)"
    with pytest.raises(Invalid) as info:
        client.deploy({**SPEC, "colour": "red"})
    assert (info.value.field, info.value.message) == ("colour", "unknown field")
    assert api.requests == []


def test_deploy_and_manage_an_endpoint(client: PodiumClient, api: FakePodium, pushed: Path) -> None:
    ep = client.deploy(EndpointSpec(**SPEC, labels={"team": "ml"}))
    assert (ep.name, ep.status, ep.model_ref) == ("iris", EndpointStatus.PENDING, "iris:1")
    assert ep.url.endswith("/endpoints/iris/")
    with pytest.raises(Conflict) as conflict:
        client.deploy(SPEC)
    assert conflict.value.field == "name"

    assert (
        client.wait_for("iris", {EndpointStatus.RUNNING}, timeout=5, poll=0.01).ready_replicas == 1
    )
    assert [e.name for e in client.endpoints(status="running")] == ["iris"]
    assert client.endpoints(status=EndpointStatus.PAUSED) == []
    assert [e.name for e in client.endpoints(label="team=ml")] == ["iris"]
    assert client.endpoints(label={"team": "other"}) == []
    assert [e.name for e in client.endpoints(name="ri")] == ["iris"]

    updated = client.update("iris", {"env": {"A": "1"}})
    assert (updated.revision, updated.spec.env) == (2, {"A": "1"})
    assert updated.spec.labels == {"team": "ml"}  # only the fields given were sent
    assert [r.number for r in client.revisions("iris")] == [1, 2]

    assert client.pause("iris").status is EndpointStatus.PAUSED
    assert client.resume("iris").status is EndpointStatus.PENDING
    assert client.scale("iris", 0, 2).status is EndpointStatus.SCALED_TO_ZERO
    assert client.wake("iris").status is EndpointStatus.INITIALIZING
    assert client.delete("iris").status is EndpointStatus.DELETING
    with pytest.raises(NotFound):
        client.endpoint("iris")


def test_server_side_errors_keep_the_field(client: PodiumClient, pushed: Path) -> None:
    with pytest.raises(Invalid) as info:
        client.deploy({**SPEC, "instance_type": "tpu-huge"})
    assert info.value.field == "instance_type"
    with pytest.raises(Invalid) as info:
        client.deploy({**SPEC, "name": "other", "model": "missing"})
    assert info.value.field == "model"
    client.deploy(SPEC)
    with pytest.raises(Invalid) as info:
        client.scale("iris", 3, 1)
    assert info.value.field == "scaling"
    assert str(info.value) == "min_replicas (3) must not exceed max_replicas (1)"


def test_events_and_logs(client: PodiumClient, pushed: Path) -> None:
    client.deploy(SPEC)
    client.wait_for("iris", {"running"}, timeout=5, poll=0.01)
    events = client.events("iris")
    assert [e.message for e in events][:2] == ["created", "status initializing"]
    assert client.events("iris", after=events[0].id, limit=1) == events[1:2]
    lines = client.logs("iris", tail=2)
    assert [line.line for line in lines] == ["[4] log line 4 of iris", "[5] log line 5 of iris"]
    assert client.logs("iris", replica="r-x")[0].replica_id == "r-x"
    followed = list(client.follow_logs("iris", tail=3))
    assert followed == [f"iris-r1-000000 | [{i}] log line {i} of iris" for i in (3, 4, 5)]
    with pytest.raises(NotFound):
        next(client.follow_logs("ghost"))


def test_invoke(client: PodiumClient, api: FakePodium, pushed: Path) -> None:
    client.deploy(SPEC)
    answer = client.invoke("iris", {"inputs": [[1, 2, 3, 4]]})
    assert answer == {"outputs": [[1, 2, 3, 4]], "path": "/", "endpoint": "iris"}
    client.invoke("iris", {"inputs": 1}, path="/v2/infer", headers={"x-trace": "1"})
    assert api.invocations[-1] == ("iris", "/v2/infer", {"inputs": 1})
    with pytest.raises(PodiumError, match="boom") as info:
        client.invoke("iris", {"inputs": "boom"})
    assert type(info.value) is PodiumError
    with pytest.raises(NotFound):
        client.invoke("ghost", {"inputs": 1})
    client.pause("iris")
    with pytest.raises(Retryable) as retry:
        client.invoke("iris", {"inputs": 1})
    assert retry.value.retry_after == 2


def test_wait_for_failed_reports_the_reason(
    client: PodiumClient, tmp_path: Path, pushed: Path
) -> None:
    client.push_model(pushed, "broken-model")
    client.deploy({**SPEC, "name": "bad", "model": "broken-model"})
    with pytest.raises(LoadError, match="endpoint bad failed: model failed to load: bad pickle"):
        client.wait_for("bad", {EndpointStatus.RUNNING}, timeout=5, poll=0.01)
    failed = client.wait_for("bad", {EndpointStatus.FAILED}, timeout=5, poll=0.01)
    assert failed.status_reason == "model failed to load: bad pickle"


def test_wait_for_times_out_with_the_last_status(client: PodiumClient, pushed: Path) -> None:
    client.deploy(SPEC)
    client.pause("iris")
    with pytest.raises(Unavailable, match=r"endpoint iris is still paused after 0\.2s"):
        client.wait_for("iris", {EndpointStatus.RUNNING}, timeout=0.2, poll=0.05)
