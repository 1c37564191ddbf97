"""The Host header check (DNS rebinding) as the dispatcher uses it, and `is_loopback`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium.core.settings import Settings
from podium.server.hosts import PASSED_CACHE, HostCheck, allowed_hosts, host_name, is_loopback


def _check(tmp_path: Path, **settings: object) -> HostCheck:
    return HostCheck(allowed_hosts(Settings(home=tmp_path, **settings)))  # type: ignore[arg-type]


def _refused(check: HostCheck, host: str) -> str | None:
    return check.refused([(b"user-agent", b"x"), (b"host", host.encode("latin-1"))])


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("LocalHost:8000", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]:8000", "[::1]"),
        ("[::1]", "[::1]"),
        ("::1", "[::1]"),  # a configured IPv6 literal without brackets
        ("podium.example.com.:443", "podium.example.com"),
    ],
)
def test_host_names_are_compared_without_port_case_or_trailing_dot(raw: str, name: str) -> None:
    assert host_name(raw) == name


def test_loopback_names_pass_on_any_port(tmp_path: Path) -> None:
    check = _check(tmp_path)
    for host in ("localhost", "localhost:1", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert _refused(check, host) is None, host


def test_other_hosts_are_refused_and_named(tmp_path: Path) -> None:
    check = _check(tmp_path)
    for host in ("evil.example:8000", "127.0.0.2", "[::2]", "localhost.evil.example", "10.0.0.1"):
        assert _refused(check, host) == host
    status, headers, body = HostCheck.answer("evil.example:8000")
    doc = json.loads(body)
    assert status == 421 == doc["status"]
    assert (doc["title"], doc["field"]) == ("Misdirected Request", "host")
    assert "evil.example:8000" in doc["detail"] and "PODIUM_SERVER_NAMES" in doc["detail"]
    assert dict(headers)[b"content-type"] == b"application/problem+json"


def test_the_listening_host_and_server_names_are_allowed(tmp_path: Path) -> None:
    check = _check(tmp_path, host="10.1.2.3", server_names=("podium.lan", "fd00::5"))
    for host in ("10.1.2.3:8000", "podium.lan", "PODIUM.LAN:80", "[fd00::5]:8000"):
        assert _refused(check, host) is None, host
    assert _refused(check, "podium.lan.evil") is not None


def test_an_any_address_adds_no_name(tmp_path: Path) -> None:
    for any_host in ("0.0.0.0", "::"):
        assert allowed_hosts(Settings(home=tmp_path, host=any_host)) == {
            "localhost",
            "127.0.0.1",
            "[::1]",
        }


def test_a_request_without_host_passes(tmp_path: Path) -> None:
    assert _check(tmp_path).refused([(b"accept", b"*/*")]) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_remembered_hosts_stay_bounded_and_never_let_others_in(tmp_path: Path) -> None:
    check = _check(tmp_path)
    for port in range(PASSED_CACHE * 3):
        assert _refused(check, f"localhost:{port}") is None
        assert _refused(check, f"evil.example:{port}") == f"evil.example:{port}"
    assert _refused(check, "localhost:1") is None  # remembered
    assert _refused(check, "localhost:65000") is None  # past the bound: parsed again
