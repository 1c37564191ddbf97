"""Logs of replicas that failed stay readable (issue 8, item 9).

A replica whose model fails to load, and one that segfaults while its model.py is imported:
the endpoint fails, `podium logs NAME` and the logs API show the replica's log (also with
`?replica=ID`, and after a server restart), and the failure event carries its last lines.
"""

from __future__ import annotations

from pathlib import Path

from podium.client import PodiumClient
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server

LOAD_ERROR = "the weights are not where they should be"


def _failed_replicas(c: PodiumClient, name: str) -> list[str]:
    return [
        str(e.data["replica_id"])
        for e in c.events(name)
        if str(e.kind) == "replica_crashed" and "replica_id" in e.data
    ]


def _api_logs(server: ServerProcess, name: str, **params: str) -> dict[str, object]:
    import httpx

    r = httpx.get(
        f"{server.url}/api/v1/endpoints/{name}/logs",
        headers=server.headers,
        params=params,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _lines(body: dict[str, object]) -> list[str]:
    items = body["items"]
    assert isinstance(items, list)
    return [str(i["line"]) for i in items]


def test_the_log_of_a_replica_that_failed_to_load_stays_readable(tmp_path: Path) -> None:
    bundle = write_python_bundle(tmp_path / "broken", fail_load=LOAD_ERROR)
    with running_server(tmp_path / "podium") as server:
        with server.client() as c:
            c.push_model(bundle, "broken", framework="python")
            c.deploy({"name": "broken", "model": "broken", "framework": "python"})
            c.wait_for("broken", {"failed"}, timeout=120)
            (replica,) = _failed_replicas(c, "broken")
            event = next(e for e in c.events("broken") if str(e.kind) == "replica_crashed")
            assert LOAD_ERROR in event.message
            assert any(LOAD_ERROR in line for line in event.data["log_tail"])

        body = _api_logs(server, "broken")
        assert any(LOAD_ERROR in line for line in _lines(body)), body
        assert body["replicas"] == [{"replica_id": replica, "state": "exited"}]
        assert any(
            LOAD_ERROR in line for line in _lines(_api_logs(server, "broken", replica=replica))
        )
        cli = server.cli("logs", "broken").stdout
        assert f"{replica} | " in cli and LOAD_ERROR in cli, cli

        # The log outlives the server too.
        server.stop()
        server.start()
        assert any(
            LOAD_ERROR in line for line in _lines(_api_logs(server, "broken", replica=replica))
        )


def test_a_replica_that_segfaults_at_import_leaves_its_fatal_error_in_the_log(
    tmp_path: Path,
) -> None:
    bundle = write_python_bundle(tmp_path / "segv")
    model = bundle / "model.py"
    model.write_text("import ctypes\nctypes.string_at(0)\n" + model.read_text())
    env = {"PODIUM_CRASH_LOOP_THRESHOLD": "2", "PODIUM_RESTART_BACKOFF_S": "0.2"}
    with running_server(tmp_path / "podium", **env) as server, server.client() as c:
        c.push_model(bundle, "segv", framework="python")
        c.deploy({"name": "segv", "model": "segv", "framework": "python"})
        ep = c.wait_for("segv", {"failed"}, timeout=180)
        assert ep.status_reason and "SIGSEGV" in ep.status_reason, ep.status_reason
        replicas = _failed_replicas(c, "segv")
        assert len(replicas) >= 2
        for replica in replicas:
            lines = _lines(_api_logs(server, "segv", replica=replica))
            assert any("Fatal Python error: Segmentation fault" in line for line in lines), lines
            assert any("model.py" in line for line in lines), lines  # the traceback
        crash = next(e for e in c.events("segv") if str(e.kind) == "replica_crashed")
        assert "Fatal Python error: Segmentation fault" in crash.message
        cli = server.cli("logs", "segv").stdout
        assert "Fatal Python error: Segmentation fault" in cli, cli
