"""`HubDownload`'s bounds without a Hub: stall detection per download, how often the cache
is walked, secrets kept out of errors, and a child that dies with the process that started it.

Most tests replace the child with a shell script (`python=`) and time with a fake clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from podium.artifacts.download import MEASURE_EVERY_S, HubDownload
from podium.artifacts.sources import NodeCache
from podium.core.errors import Invalid, Unavailable
from podium.core.spec import HfRef
from tests.support.silent_hub import silent_listener

SECRET_URL = "https://user:s3cret@cdn.example/blob?X-Amz-Signature=s3cret"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_child(tmp_path: Path, body: str) -> str:
    """A stand-in for `python -m podium.artifacts.download …`: a shell script."""
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def job(tmp_path: Path, repo: str, python: str, clock: Clock, stall_s: float = 5.0) -> HubDownload:
    cache = NodeCache(tmp_path / "cache", env={"HF_HOME": str(tmp_path / "hf")})
    d = HubDownload(
        cache,
        HfRef(repo),
        stall_s=stall_s,
        connect_timeout_s=1.0,
        read_timeout_s=1.0,
        python=python,
        monotonic=clock,
    )
    d.start()
    return d


def test_a_stalled_download_fails_while_another_one_progresses(tmp_path: Path) -> None:
    clock, sleeper = Clock(), fake_child(tmp_path, "exec sleep 60")
    stuck = job(tmp_path, "acme/stuck", sleeper, clock)
    busy = job(tmp_path, "acme/busy", sleeper, clock)
    try:
        assert busy.xet_cache is not None and busy.xet_cache != stuck.xet_cache
        with pytest.raises(Unavailable, match="download of hf://acme/stuck stalled"):
            for step in range(20):
                clock.now += 1.0
                (busy.xet_cache / f"chunk-{step}").write_bytes(b"x" * 100)  # busy's data
                assert busy.check() is None
                stuck.check()
        assert step < 10  # failed after its 5 s without data, not later
        assert busy.check() is None  # the other one still runs
    finally:
        stuck.cancel()
        busy.cancel()
    assert busy.xet_cache is None and not list((tmp_path / "cache" / "downloads").iterdir())


def test_the_cache_is_walked_at_most_every_measure_interval(tmp_path: Path) -> None:
    clock = Clock()
    d = job(tmp_path, "acme/slow", fake_child(tmp_path, "exec sleep 60"), clock, stall_s=60.0)
    walks = 0
    measure = d._measure

    def counted() -> tuple[int, int]:
        nonlocal walks
        walks += 1
        return measure()

    d._measure = counted  # type: ignore[method-assign]
    try:
        for _ in range(50):  # a controller woken 50 times within the same instant
            assert d.check() is None
        assert walks == 0
        clock.now += MEASURE_EVERY_S
        assert d.check() is None and walks == 1
    finally:
        d.cancel()


def test_urls_in_a_childs_error_lose_their_secrets(tmp_path: Path) -> None:
    message = f"could not fetch hf://acme/x from {SECRET_URL}: boom"
    result = json.dumps({"error": "Unavailable", "message": message, "field": "model"})
    body = f"echo '{result}'"
    d = job(tmp_path, "acme/x", fake_child(tmp_path, body), Clock())
    with pytest.raises(Unavailable) as got:
        while d.check() is None:
            time.sleep(0.05)
    assert "s3cret" not in str(got.value)
    assert "https://cdn.example/blob: boom" in str(got.value)


def test_urls_in_a_dead_childs_stderr_lose_their_secrets(tmp_path: Path) -> None:
    child = fake_child(tmp_path, f"echo 'GET {SECRET_URL}' >&2; exit 3")
    d = job(tmp_path, "acme/x", child, Clock())
    with pytest.raises(Unavailable, match="exited with code 3") as got:
        while d.check() is None:
            time.sleep(0.05)
    assert "s3cret" not in str(got.value) and "https://cdn.example/blob" in str(got.value)


def test_an_endpoint_with_credentials_is_refused_without_showing_them(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path, env={"HF_ENDPOINT": "https://me:hf_tok@hub.example/?key=k3y"})
    with pytest.raises(Invalid) as got:
        _ = cache.hf_endpoint
    assert "hf_tok" not in str(got.value) and "k3y" not in str(got.value)
    assert "https://hub.example/" in str(got.value)


PARENT = """
import sys, time
from pathlib import Path
from podium.artifacts.download import HubDownload
from podium.artifacts.sources import NodeCache
from podium.core.spec import HfRef
cache = NodeCache(Path(sys.argv[1]), env={"HF_ENDPOINT": sys.argv[2], "HF_HOME": sys.argv[1]})
d = HubDownload(cache, HfRef("acme/never"), stall_s=600, connect_timeout_s=5, read_timeout_s=600)
d.start()
print(d._proc.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_download_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    with silent_listener() as hub:
        parent = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(PARENT), str(tmp_path), hub],
            stdout=subprocess.PIPE,
        )
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        try:
            time.sleep(1.0)  # let the child get past its start (either order must work)
            parent.send_signal(signal.SIGKILL)
            parent.wait()
            deadline = time.monotonic() + 30  # generous: the machine is shared
            while time.monotonic() < deadline and _alive(child):
                time.sleep(0.1)
            assert not _alive(child)
        finally:
            if _alive(child):
                os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_child_keeps_hubs_own_timeouts_without_its_private_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huggingface_hub.utils import _http

    from podium.artifacts import download

    installed: list[object] = []
    monkeypatch.delattr(_http, "hf_request_event_hook")
    monkeypatch.setattr("huggingface_hub.set_client_factory", installed.append)
    download._install_timeouts(1.0, 2.0)  # no AttributeError: the env timeouts stay
    assert installed == []


def test_a_line_from_the_child_counts_as_progress(tmp_path: Path) -> None:
    """A child that hashes a large cached copy writes no bytes but prints a heartbeat: it
    is alive; one that prints nothing more stalls."""
    clock = Clock()
    fifo = tmp_path / "beats"
    os.mkfifo(fifo)
    beating = fake_child(tmp_path, f"exec cat {fifo}")  # prints what the test writes
    d = job(tmp_path, "acme/hashing", beating, clock)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        for _ in range(12):  # 12 s without bytes, a line each second: never a stall
            clock.now += 1.0
            os.write(writer, b'{"hashing": true}\n')
            wait_until_read(d)
            assert d.check() is None
        with pytest.raises(Unavailable, match="stalled"):
            for _ in range(10):  # no more lines: stalled after stall_s (5 s)
                clock.now += 1.0
                d.check()
    finally:
        os.close(writer)
        d.cancel()


def wait_until_read(d: HubDownload) -> None:
    """The child's line has reached the parent's buffer (a pipe: a moment, not a clock)."""
    seen = len(d._out)
    deadline = time.monotonic() + 30
    while len(d._out) == seen and time.monotonic() < deadline:
        d._read_out()
        time.sleep(0.01)
