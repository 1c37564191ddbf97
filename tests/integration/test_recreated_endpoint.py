"""An endpoint deleted and created again under the same name serves the new spec: its
revisions are numbered from 1 again, and nothing the controller remembered of the old
endpoint's revision 1 (model, trust_pickle, env) may stand in for the new one's."""

from __future__ import annotations

from pathlib import Path

from podium.client import PodiumClient
from podium.core.errors import NotFound
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, wait_running, wait_until


def delete_and_wait(c: PodiumClient, name: str) -> None:
    c.delete(name)

    def gone() -> bool:
        try:
            c.endpoint(name)
        except NotFound:
            return True
        return False

    wait_until(gone, timeout=60, what=f"{name} to be deleted")


def test_a_recreated_endpoint_serves_its_own_model(server: ServerProcess, tmp_path: Path) -> None:
    with server.client() as c:
        c.push_model(write_python_bundle(tmp_path / "one", version=1), "recreated-one")
        c.push_model(write_python_bundle(tmp_path / "two", version=2), "recreated-two")
        c.deploy({"name": "recreated", "model": "recreated-one", "framework": "python"})
        wait_running(c, "recreated")
        assert c.invoke("recreated", {"inputs": "x"})["version"] == 1
        delete_and_wait(c, "recreated")
        c.deploy({"name": "recreated", "model": "recreated-two", "framework": "python"})
        wait_running(c, "recreated")
        assert c.invoke("recreated", {"inputs": "x"})["version"] == 2
        delete_and_wait(c, "recreated")
