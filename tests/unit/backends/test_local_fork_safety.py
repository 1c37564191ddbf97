"""The local backend's lock and forking (local.py's docstring says why they do not mix).

A `threading.Lock` held by one thread while another forks stays locked in the child. The
backend holds `_lock` across a zygote's fork and across `subprocess.Popen`; these tests show
that no copy of the server ever runs Python with it (every child of the server is exec'd),
and that the readers other threads use (logs) never wait for that lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from podium.backends import logfiles
from podium.backends.zygote_pool import Zygote
from podium.core.settings import Settings
from tests.support.models import write_python_bundle
from tests.unit.backends.conftest import SyncLocal, launch, wait_for

_MARKS: list[Path] = []  # the folder where a forked copy of this process leaves its pid


def _after_fork_in_child() -> None:
    """Runs in the child of every `os.fork()` of this process (never after fork+exec)."""
    if _MARKS:
        (_MARKS[-1] / str(os.getpid())).touch()


os.register_at_fork(after_in_child=_after_fork_in_child)


@pytest.fixture
def forks_seen(tmp_path: Path) -> Iterator[Path]:
    marks = tmp_path / "forked-copies"
    marks.mkdir()
    _MARKS.append(marks)
    yield marks
    _MARKS.remove(marks)


def test_the_detector_sees_a_python_fork(forks_seen: Path) -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.listdir(forks_seen) == [str(pid)]


def test_starting_replicas_never_runs_python_in_a_copy_of_the_server(
    settings: Settings, tmp_path: Path, fake_python: str, forks_seen: Path
) -> None:
    """Spawned (Popen) and forked (zygote) replicas, with the backend's lock held by another
    thread's `poll` in between: no child of this process ever ran Python code before its
    exec, so none can hold a copy of a lock taken here."""
    spawning = SyncLocal(settings, python=fake_python, start_mode="spawn")
    forking = SyncLocal(settings, start_mode="fork")
    stop = threading.Event()

    def polls() -> None:  # another thread takes the locks while the starts fork
        while not stop.is_set():
            spawning.poll()
            forking.poll()

    poller = threading.Thread(target=polls, daemon=True)
    poller.start()
    try:
        spawned = spawning.start(launch("demo-r1-spawned", Path("/m")))
        bundle = write_python_bundle(tmp_path / "bundle")
        assert forking.zygotes.wait_ready("python", 60), "the zygote did not become ready"
        forked = forking.start(launch("demo-r1-forked", bundle))
        assert (spawned.start_mode, forked.start_mode) == ("spawn", "fork")
        wait_for(lambda: forking.logs("demo-r1-forked"), "the forked replica's first line")
    finally:
        stop.set()
        poller.join(10)
        spawning.close()
        forking.close()
    assert os.listdir(forks_seen) == []


def test_reading_logs_never_waits_for_a_start_in_progress(
    settings: Settings, fake_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start holds the backend's lock while a zygote forks (up to its request timeout):
    the API's threads read logs meanwhile, at once."""
    old = logfiles.path_for(settings.logs_dir, "demo", "demo-r1-old")
    old.parent.mkdir(parents=True)
    old.write_text("one\ntwo\n")
    backend = SyncLocal(settings, python=fake_python, start_mode="fork")
    forking = threading.Event()
    release = threading.Event()

    def slow_fork(
        runtime: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        user_env: Mapping[str, str],
        fds: Sequence[int],
    ) -> tuple[int, Zygote] | None:
        forking.set()
        release.wait(30)
        return None  # the zygote could not fork: the backend spawns instead

    monkeypatch.setattr(backend.zygotes, "fork", slow_fork)
    starter = threading.Thread(target=backend.start, args=(launch("demo-r1-new", Path("/m")),))
    starter.start()
    try:
        assert forking.wait(30)
        began = time.monotonic()
        assert backend.logs("demo-r1-old") == ["one", "two"]
        assert set(backend.kept_logs("demo")) == {"demo-r1-old", "demo-r1-new"}
        lines, follower = backend.follow_logs("demo-r1-old", 1)
        assert lines == ["two"] and follower.read_new() == []
        assert time.monotonic() - began < 2.0
        assert starter.is_alive()  # the start was still waiting for its fork all along
    finally:
        release.set()
        starter.join(30)
        backend.close()
