"""A Hugging Face Hub that accepts connections and never answers cannot hang Podium.

Issue 8, item 5: the endpoint fails with the reason once no data came for
`PODIUM_DOWNLOAD_STALL_S`, another endpoint deploys meanwhile, `rm` of an endpoint whose
download hangs completes, and `podium up` exits promptly on SIGINT during a hung download.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psutil

from podium.client import PodiumClient
from podium.core.errors import NotFound
from tests.support.models import train_iris_skops, write_python_bundle
from tests.support.server import running_server, wait_running, wait_until
from tests.support.silent_hub import fake_hub, silent_listener


def _kinds(c: PodiumClient, name: str) -> list[str]:
    return [str(e.kind) for e in c.events(name)]


def _downloads(home: Path) -> list[psutil.Process]:
    """Download processes of this test's server (their --cache-dir is under its home)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "podium.artifacts.download" in cmd and any(str(home) in a for a in cmd):
            found.append(p)
    return found


def _gone(c: PodiumClient, name: str) -> bool:
    try:
        c.endpoint(name)
    except NotFound:
        return True
    return False


def test_a_silent_hub_fails_the_endpoint_and_blocks_nothing(tmp_path: Path) -> None:
    home = tmp_path / "podium"
    with (
        silent_listener() as hub,
        running_server(
            home,
            HF_HUB_OFFLINE="0",
            HF_ENDPOINT=hub,
            HF_HOME=str(tmp_path / "hf"),
            PODIUM_DOWNLOAD_STALL_S="3",
        ) as server,
        server.client() as c,
    ):
        c.push_model(train_iris_skops(tmp_path / "iris"), "iris", framework="sklearn")
        c.deploy({"name": "stuck", "model": "hf://acme/never", "framework": "python"})
        c.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
        wait_running(c, "iris")  # not held up by the hung download

        ep = c.wait_for("stuck", {"failed"}, timeout=90)
        assert ep.status_reason is not None
        assert "hf://acme/never stalled: no data for 3 s" in ep.status_reason, ep.status_reason
        assert hub in ep.status_reason
        kinds = _kinds(c, "stuck")
        assert "download_started" in kinds and "download_failed" in kinds

        # Deleting an endpoint whose download hangs completes, and kills the download.
        c.deploy({"name": "doomed", "model": "hf://acme/never-either", "framework": "python"})
        wait_until(lambda: "download_started" in _kinds(c, "doomed"), 60, "a download")
        c.delete("doomed")
        wait_until(lambda: _gone(c, "doomed"), 60, "the endpoint to be deleted")
        wait_until(lambda: not _downloads(home), 30, "the download to be cancelled")

        # Ctrl-C during a hung download: the server exits, and its download with it.
        c.deploy({"name": "last", "model": "hf://acme/last", "framework": "python"})
        wait_until(lambda: "download_started" in _kinds(c, "last"), 60, "a download")
        assert _downloads(home)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("podium up did not exit on SIGINT during a download") from None
        wait_until(lambda: not _downloads(home), 30, "the download to end with the server")


def test_a_model_downloaded_from_a_hub_that_answers_deploys(tmp_path: Path) -> None:
    bundle = write_python_bundle(tmp_path / "echo", version=5)
    files = {p.name: p.read_bytes() for p in bundle.iterdir()}
    with (
        fake_hub("acme/echo", files) as hub,
        running_server(
            tmp_path / "podium", HF_HUB_OFFLINE="0", HF_ENDPOINT=hub, HF_HOME=str(tmp_path / "hf")
        ) as server,
        server.client() as c,
    ):
        c.deploy({"name": "echo", "model": "hf://acme/echo", "framework": "python"})
        wait_running(c, "echo")
        assert c.invoke("echo", {"inputs": "hi"}) == {"version": 5, "echo": "hi"}
        kinds = _kinds(c, "echo")
        assert kinds.index("download_started") < kinds.index("download_done")
