"""Replica log files: listing an endpoint's kept logs, retention, removal with the endpoint."""

from __future__ import annotations

import os
from pathlib import Path

from podium.backends import logfiles


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
