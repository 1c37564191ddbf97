"""Podium's state is private to its user: the home is 0700, nothing in it is readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, free_port, wait_running


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_deployed_server_keeps_its_home_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)  # as an older Podium (or a user's umask 022) left it
    server = ServerProcess(home, free_port())
    server.start()
    try:
        with server.client() as c:
            c.push_model(train_iris_skops(tmp_path / "iris"), "iris", framework="sklearn")
            c.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
            wait_running(c, "iris")
            c.invoke("iris", {"inputs": [[5.1, 3.5, 1.4, 0.2]]})
    finally:
        server.stop()

    assert _mode(home) == 0o700
    seen = {p.relative_to(home).parts[0] for p in home.rglob("*")}
    assert {"podium.db", "artifacts", "logs"} <= seen, seen
    harness = {server.log_path}  # opened by this test before the server started
    too_open = {
        str(p.relative_to(home)): oct(_mode(p))
        for p in home.rglob("*")
        if p not in harness and not p.is_symlink() and _mode(p) & 0o077
    }
    assert too_open == {}
    assert server.log_path.read_text().count("was readable by other users") == 1
