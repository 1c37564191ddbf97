"""Replica log files: listing an endpoint's kept logs, retention, removal with the endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.backends import logfiles
from podium.backends.local_logs import LocalLogs
from podium.backends.logfiles import tail_lines
from podium.core.errors import Invalid


def _write(logs_dir: Path, endpoint: str, replica_id: str, mtime: float) -> Path:
    path = logfiles.path_for(logs_dir, endpoint, replica_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{replica_id}\n")
    os.utime(path, (mtime, mtime))
    return path


def test_list_files_oldest_first_and_only_logs(tmp_path: Path) -> None:
    _write(tmp_path, "ep", "ep-r1-b", 200)
    _write(tmp_path, "ep", "ep-r1-a", 100)
    (tmp_path / "ep" / "notes.txt").write_text("x")
    assert [f.replica_id for f in logfiles.list_files(tmp_path, "ep")] == ["ep-r1-a", "ep-r1-b"]
    assert logfiles.list_files(tmp_path, "other") == []
    assert logfiles.list_files(tmp_path, "../ep") == []  # never outside logs_dir


def test_prune_keeps_the_newest_and_never_a_running_replicas(tmp_path: Path) -> None:
    for i in range(6):
        _write(tmp_path, "ep", f"ep-r1-{i}", 100 + i)
    # ep-r1-0 (the oldest) still runs: it is kept and counts toward the 3 kept.
    deleted = logfiles.prune(tmp_path, "ep", 3, protect={"ep-r1-0"})
    assert deleted == 3
    left = [f.replica_id for f in logfiles.list_files(tmp_path, "ep")]
    assert left == ["ep-r1-0", "ep-r1-4", "ep-r1-5"]
    assert logfiles.prune(tmp_path, "ep", 3, protect={"ep-r1-0"}) == 0


def test_remove_endpoint(tmp_path: Path) -> None:
    _write(tmp_path, "ep", "ep-r1-a", 100)
    _write(tmp_path, "ep2", "ep2-r1-a", 100)
    logfiles.remove_endpoint(tmp_path, "ep")
    assert not (tmp_path / "ep").exists() and (tmp_path / "ep2").exists()


@pytest.mark.parametrize("ending", ["\n", ""])
def test_tail_lines_reads_from_the_end(tmp_path: Path, ending: str) -> None:
    path = tmp_path / "x.log"
    lines = [f"{i} " + "é" * (i % 50) for i in range(2000)]
    path.write_text("\n".join(lines) + ending, encoding="utf-8")
    for n in (0, 1, 7, 200, 1999, 2000, 5000):
        assert tail_lines(path, n, block=64) == (lines[-n:] if n else [])
    assert tail_lines(tmp_path / "missing.log", 5) == []


def test_a_tail_cuts_long_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("short\n" + "y" * 10_000 + "\n" + "z" * 600)  # the last without "\n"
    got = tail_lines(path, 3)
    assert got[0] == "short" and all(len(line) <= logfiles.MAX_LINE_CHARS for line in got)
    assert got[1] == "y" * (logfiles.MAX_LINE_CHARS - 1) + "…" and got[2].startswith("zzz")
    lines, offset = logfiles.tail(path, 3, complete=True)  # a follower's start
    assert len(lines) == 2 and offset == len("short\n") + 10_001


def test_a_tail_reads_a_bounded_number_of_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.log"
    with path.open("wb") as f:  # 64 MiB without a newline, then two lines
        f.truncate(64 * 2**20)
        f.seek(0, os.SEEK_END)
        f.write(b"\none\ntwo\n")
    read = 0
    real_open = Path.open

    def counted(self: Path, *args: object, **kw: object) -> object:
        fh = real_open(self, *args, **kw)  # type: ignore[call-overload]
        real_read = fh.read

        def reading(size: int = -1) -> bytes:
            nonlocal read
            data = real_read(size)
            read += len(data)
            return data

        fh.read = reading
        return fh

    monkeypatch.setattr(Path, "open", counted)
    assert tail_lines(path, 200)[-2:] == ["one", "two"]
    assert tail_lines(path, 1) == ["two"]
    assert read <= 2 * logfiles.TAIL_MAX_BYTES


def test_path_for_and_find_are_the_one_way_to_a_log_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "ep", "ep-r1-a", 100)
    assert path == tmp_path / "ep" / "ep-r1-a.log"
    assert logfiles.find(tmp_path, "ep-r1-a") == path
    assert logfiles.find(tmp_path, "../ep/ep-r1-a") is None
    assert logfiles.find(tmp_path, "*") is None
    with pytest.raises(Invalid):
        logfiles.path_for(tmp_path, "../up", "r1")


def test_a_follower_reads_complete_lines_as_they_are_appended(tmp_path: Path) -> None:
    path = _write(tmp_path, "ep", "ep-r1-a", 100)  # "ep-r1-a\n"
    with path.open("a") as f:
        f.write("two\npart")
    lines, follower = logfiles.follow(path, 1)
    assert lines == ["two"]  # the partial line waits until it is complete
    assert follower.read_new() == []
    with path.open("a") as f:
        f.write("ial\nthree\n")
    assert follower.read_new() == ["partial", "three"]
    path.write_text("new\n")  # truncated and rewritten: read again from its start
    assert follower.read_new() == ["new"]


def test_a_follower_without_a_tail_starts_at_the_first_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ep", "ep-r1-a", 100)
    lines, follower = logfiles.follow(path, None)
    assert lines == [] and follower.read_new() == ["ep-r1-a"]


def test_local_logs_follow_a_log_that_appears_later(tmp_path: Path) -> None:
    logs = LocalLogs(tmp_path, retention=5)
    lines, follower = logs.follow_logs("ep-r1-late", 10)
    assert lines == [] and follower.read_new() == []
    _write(tmp_path, "ep", "ep-r1-late", 100)  # e.g. a previous server's replica, found on disk
    assert follower.read_new() == ["ep-r1-late"]
    assert logs.kept_logs("ep") == ["ep-r1-late"] and logs.logs("ep-r1-late") == ["ep-r1-late"]
    logs.forget_endpoint("ep")
    assert logs.kept_logs("ep") == [] and logs.logs("ep-r1-late") == []
