"""`HubDownload` against loopback listeners that play a Hub that hangs.

Real child processes, real sockets: a Hub that accepts and never answers, and one that
sends headers and then stalls the body.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from podium.artifacts.download import INHERITED_VARS, HubDownload
from podium.artifacts.sources import NodeCache, ResolvedSource
from podium.core.errors import PodiumError, Unavailable
from podium.core.spec import HfRef
from tests.support.silent_hub import fake_hub, silent_listener

WAIT_S = 90  # generous: the machine is shared and slow


def download(tmp_path: Path, endpoint: str, **bounds: float) -> HubDownload:
    cache = NodeCache(tmp_path / "cache", env={"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path)})
    options = {"stall_s": 600.0, "connect_timeout_s": 5.0, "read_timeout_s": 600.0, **bounds}
    job = HubDownload(cache, HfRef("acme/never"), **options)
    job.start()
    return job


def outcome(job: HubDownload) -> ResolvedSource | PodiumError:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            done = job.check()
        except PodiumError as e:
            return e
        if done is not None:
            return done
        time.sleep(0.1)
    job.cancel()
    raise AssertionError(f"the download of {job.label} neither ended nor stalled")


def test_a_download_that_gets_no_data_fails_as_stalled(tmp_path: Path) -> None:
    with silent_listener() as hub:
        job = download(tmp_path, hub, stall_s=1.5)
        pid = job._proc.pid if job._proc else 0
        error = outcome(job)
    assert isinstance(error, Unavailable)
    assert f"download of hf://acme/never stalled: no data for 1.5 s from {hub}" in str(error)
    assert error.field == "model"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize(
    "headers",
    [
        None,  # accepts, never answers: huggingface_hub passes no timeout for repo_info
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{",
    ],
    ids=["silent", "headers-then-stall"],
)
def test_every_request_to_the_hub_has_a_read_timeout(tmp_path: Path, headers: bytes | None) -> None:
    with silent_listener(headers=headers) as hub:
        error = outcome(download(tmp_path, hub, read_timeout_s=1.0))
    assert isinstance(error, Unavailable)
    assert "acme/never" in str(error) and hub in str(error)
    assert "ReadTimeout" in str(error)


def test_cancel_kills_the_download_at_once(tmp_path: Path) -> None:
    with silent_listener() as hub:
        job = download(tmp_path, hub)
        assert job._proc is not None
        proc = job._proc
        time.sleep(0.5)
        job.cancel()
        assert proc.poll() is not None


FILES = {"model.py": b"x = 1\n", "weights.bin": b"\x01" * 300_000}


def test_a_hub_that_answers_gives_a_pinned_snapshot(tmp_path: Path) -> None:
    with fake_hub("acme/never", FILES) as hub:
        job = download(tmp_path, hub, stall_s=30.0, read_timeout_s=30.0)
        done = outcome(job)
    assert isinstance(done, ResolvedSource), done
    assert done.ref == f"hf://acme/never@{done.revision}"
    assert (done.path / "weights.bin").read_bytes() == FILES["weights.bin"]
    assert job.bytes_total == sum(len(data) for data in FILES.values())  # the Hub's metadata
    assert job.bytes_done >= job.bytes_total


def test_the_total_is_known_while_the_download_runs(tmp_path: Path) -> None:
    with fake_hub("acme/never", FILES, stall_after=100_000) as hub:
        job = download(tmp_path, hub)
        try:
            deadline = time.monotonic() + WAIT_S
            while job.bytes_total is None:
                assert job.check() is None  # still running: the body stalls
                assert time.monotonic() < deadline, "the total never came"
                time.sleep(0.1)
        finally:
            job.cancel()
    assert job.bytes_total == 300_006


def test_no_total_when_the_hub_does_not_give_sizes(tmp_path: Path) -> None:
    with fake_hub("acme/never", FILES, file_sizes=False) as hub:
        job = download(tmp_path, hub, stall_s=30.0, read_timeout_s=30.0)
        done = outcome(job)
    assert isinstance(done, ResolvedSource), done
    assert job.bytes_total is None and job.bytes_done >= 300_006


def test_a_file_body_that_stops_coming_fails_as_stalled(tmp_path: Path) -> None:
    with fake_hub("acme/never", FILES, stall_after=100_000) as hub:
        error = outcome(download(tmp_path, hub, stall_s=2.0))
    assert isinstance(error, Unavailable)
    assert "download of hf://acme/never stalled: no data for 2 s" in str(error)


def test_the_download_child_inherits_only_the_allow_list_of_the_server_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Hub download child used to get the server's whole environment less its Hub
    settings: the database URL with its password, cloud keys, Podium's own variables."""
    secrets = {
        "PODIUM_DATABASE_URL": "postgresql://podium:db-pa55@db.internal/podium",
        "AWS_SECRET_ACCESS_KEY": "server-aws-secret",
        "PODIUM_TOKEN": "pdm_server_token",
        "OPENAI_API_KEY": "sk-server",
    }
    for name, value in {**secrets, "HTTPS_PROXY": "http://proxy.internal:3128"}.items():
        monkeypatch.setenv(name, value)
    cache = NodeCache(tmp_path / "cache", env={"HF_HOME": str(tmp_path), "HF_TOKEN": "hf_x"})
    job = HubDownload(
        cache, HfRef("acme/model"), stall_s=60, connect_timeout_s=5, read_timeout_s=30
    )
    argv, env = job._command()
    assert not set(secrets) & set(env), set(secrets) & set(env)
    assert not any(v in str(env) or v in str(argv) for v in secrets.values())
    assert set(env) <= INHERITED_VARS | set(cache.env) | {
        "HF_XET_CACHE",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "HF_HUB_ETAG_TIMEOUT",
        "HF_HUB_DOWNLOAD_TIMEOUT",
        "HF_ENDPOINT",
        "HF_TOKEN",
    }
    assert env["PATH"] == os.environ["PATH"] and env["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert env["HF_TOKEN"] == "hf_x"  # the cache's (the endpoint's or the server's Hub token)
