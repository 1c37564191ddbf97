"""`update --wait` follows the rollout of the revision it made (issue 8, item 6), and a
spec without a framework takes the model version's (the CLI, against a real server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podium.client import LoadError
from podium.core.phases import EndpointStatus, ReplicaState
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server

NAME = "rollout"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("podium")
    models = tmp_path_factory.mktemp("models")
    with running_server(home) as s:
        with s.client() as c:
            for version in (1, 2, 3):
                c.push_model(
                    write_python_bundle(models / f"v{version}", version=version),
                    "bundle",
                    framework="python",
                )
            c.push_model(
                write_python_bundle(models / "bad", fail_load="weights are corrupt"),
                "broken",
                framework="python",
            )
        yield s


def _assert_rolled_out(server: ServerProcess, revision: int, version: int) -> None:
    """What the API says right after the wait returned: only the new revision serves."""
    with server.client() as c:
        ep = c.endpoint(NAME)
        assert ep.revision == revision
        assert ep.status is EndpointStatus.RUNNING
        assert ep.desired_replicas == 2
        assert [(r.revision, r.state) for r in ep.replicas] == [(revision, ReplicaState.READY)] * 2
        assert c.invoke(NAME, {"inputs": [1]})["version"] == version


def test_deploy_without_framework_then_update_wait(server: ServerProcess) -> None:
    res = server.cli(
        "deploy",
        NAME,
        "--model",
        "bundle:1",
        "--min-replicas",
        "2",
        "--max-replicas",
        "2",
        "--wait",
    )
    assert "status pending" in res.stdout
    # `deploy --wait` returns once every desired replica is ready, not at the first one.
    assert f"endpoint {NAME} is running: 2/2 replicas ready" in res.stdout
    _assert_rolled_out(server, revision=1, version=1)
    with server.client() as c:
        assert c.endpoint(NAME).spec.framework == "python"  # the model version's

    # A new revision whose model does not load: non-zero, with the reason; the old
    # revision keeps serving.
    res = server.cli("update", NAME, "--model", "broken", "--wait", "--timeout", "120", check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "status updating" in res.stdout  # the PATCH answer
    assert res.stderr.startswith(f"error: endpoint {NAME} failed at revision 2")
    assert "weights are corrupt" in res.stderr
    assert len(res.stderr.splitlines()) == 1
    with server.client() as c:
        assert c.invoke(NAME, {"inputs": [1]})["version"] == 1

    # A good revision: returns only once its replicas are all ready and the old ones gone.
    res = server.cli("update", NAME, "--model", "bundle:2", "--wait", "--timeout", "120")
    assert f"endpoint {NAME} is running: revision 3, 2/2 replicas ready" in res.stdout
    _assert_rolled_out(server, revision=3, version=2)


def test_sdk_update_wait(server: ServerProcess) -> None:
    with server.client() as c:
        if c.endpoints(name=NAME) == []:
            c.deploy(
                {
                    "name": NAME,
                    "model": "bundle:2",
                    "scaling": {"min_replicas": 2, "max_replicas": 2},
                }
            )
        start = c.endpoint(NAME)
        c.wait_rolled_out(NAME, start.revision, timeout=120)
        ep = c.update(NAME, {"model": "bundle:3"})
        assert ep.status is EndpointStatus.UPDATING  # never the old `running`
        assert ep.revision == start.revision + 1
        done = c.wait_rolled_out(NAME, ep.revision, timeout=120)
        assert done.revision == ep.revision
    _assert_rolled_out(server, revision=ep.revision, version=3)
    with server.client() as c:
        with pytest.raises(LoadError, match="weights are corrupt"):
            c.update(NAME, {"model": "broken"}, wait=True, timeout=120)
        assert c.invoke(NAME, {"inputs": [1]})["version"] == 3
