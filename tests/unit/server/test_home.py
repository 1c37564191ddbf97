"""The server's claim on its home: the lock, the modes, the listening socket."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from podium.core.errors import Conflict, Invalid, Unavailable
from podium.core.settings import Settings
from podium.server.home import bind, claim_home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_is_private_and_locked_once(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", port=8123)
    lock = claim_home(settings)
    try:
        assert _mode(settings.home) == 0o700
        assert _mode(lock.path) == 0o600
        with pytest.raises(Conflict) as raised:
            claim_home(settings)
        assert f"pid {os.getpid()} at http://127.0.0.1:8123" in str(raised.value)
    finally:
        lock.release()
    claim_home(settings).release()  # released: the next server may start


def test_an_open_home_and_its_database_are_made_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("podium.db", "podium.db-wal"):
        (home / name).write_bytes(b"")
    os.chmod(home, 0o755)
    os.chmod(home / "podium.db", 0o644)
    os.chmod(home / "podium.db-wal", 0o644)
    claim_home(Settings(home=home)).release()
    assert [_mode(p) for p in (home, home / "podium.db", home / "podium.db-wal")] == [
        0o700,
        0o600,
        0o600,
    ]


def test_binding_a_taken_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(Unavailable) as raised:
            bind("127.0.0.1", port)
    assert raised.value.field == "port"
    assert "address already in use" in str(raised.value).lower()
    assert "\n" not in str(raised.value)


def test_a_host_name_listens_on_ipv4_even_when_it_resolves_to_ipv6_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def v6_first(host: str, port: int, family: int = 0, *args: object, **kw: object) -> list:
        v6 = real("::1", port, socket.AF_INET6, socket.SOCK_STREAM)
        v4 = real("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM)
        return {0: v6 + v4, socket.AF_INET: v4, socket.AF_INET6: v6}[family]

    monkeypatch.setattr(socket, "getaddrinfo", v6_first)
    sock = bind("localhost", 0)
    try:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_an_ipv6_literal_listens_on_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        sock = bind("::1", 0)
    except Unavailable:
        pytest.skip("::1 is not configured here")
    try:
        assert sock.family == socket.AF_INET6
    finally:
        sock.close()


def test_several_servers_share_a_home_each_under_its_own_id(tmp_path: Path) -> None:
    """`podium server` processes on PostgreSQL: one home, one lock per server id; a
    `podium up` (alone on its home) and they exclude each other."""
    settings = Settings(home=tmp_path / "home", port=8124)
    first = claim_home(settings, server_id="8124")
    second = claim_home(settings, server_id="8125")
    try:
        assert first.path.name == "server-8124.lock"
        with pytest.raises(Conflict, match="already running"):
            claim_home(settings, server_id="8124")  # the same server twice
        with pytest.raises(Conflict):
            claim_home(settings)  # podium up next to podium servers
    finally:
        first.release()
        second.release()
    alone = claim_home(settings)
    try:
        with pytest.raises(Conflict, match="podium up"):
            claim_home(settings, server_id="8126")
    finally:
        alone.release()
    with pytest.raises(Invalid, match="server id") as raised:
        claim_home(settings, server_id="../x")
    assert raised.value.field == "server_id"
