"""The local backend keeps the newest `log_retention` log files of each endpoint, the logs
of exited replicas included, and never deletes a running replica's."""

from __future__ import annotations

from pathlib import Path

from podium.backends import logfiles
from podium.core.settings import Settings
from tests.unit.backends.conftest import SyncLocal, launch, wait_exit, wait_for


def test_exited_replicas_logs_are_kept_up_to_the_retention(
    tmp_path: Path, fake_python: str
) -> None:
    settings = Settings(home=tmp_path / "home", log_retention=3)
    b = SyncLocal(settings, python=fake_python)
    try:
        running = b.start(launch("demo-r1-serve", Path("/m")))
        for i in range(4):
            b.start(launch(f"demo-r1-crash{i}", Path("/m"), env={"FAKE_MODE": "crash"}))
            wait_exit(b, f"demo-r1-crash{i}")
            # Gone from the backend's table, its log is still readable.
            assert "crash line 29" in b.logs(f"demo-r1-crash{i}")
        b.start(launch("demo-r1-last", Path("/m")))
        kept = [f.replica_id for f in logfiles.list_files(settings.logs_dir, "demo")]
        assert len(kept) == 3
        assert {"demo-r1-serve", "demo-r1-last"} <= set(kept)  # running: never deleted
        assert "demo-r1-crash3" in kept  # the newest exited one
        assert b.kept_logs("demo") == kept  # what the logs API lists, oldest first
        assert running.log_location is not None
        log = Path(running.log_location)
        wait_for(log.exists, "the running replica's log")

        b.forget_endpoint("demo")
        assert logfiles.list_files(settings.logs_dir, "demo") == []
    finally:
        b.close()
