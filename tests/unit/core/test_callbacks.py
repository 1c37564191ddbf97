"""Task callbacks (`core.callbacks`): which URLs a callback may go to, and the signature."""

from __future__ import annotations

import pytest

from podium.core.callbacks import callback_refusal, sign, verify

HOSTS = ("hooks.example.com", "10.1.0.0/16", "127.0.0.1:9000", "[::1]:8443", "::2")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/podium",
        "http://HOOKS.example.com:8080/x",  # a name without a port: any port
        "http://10.1.2.3/x",  # inside a CIDR block
        "http://127.0.0.1:9000/hook",  # the listed port
        "https://[::1]:8443/x",
        "http://[::2]:1234/x",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert callback_refusal(url, HOSTS) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/api/v1/tokens", "port 8000 is not on"),  # another port
        ("http://127.0.0.1/x", "port 80 is not on"),
        ("http://evil.example.com/x", "'evil.example.com' port 80 is not on"),
        ("http://hooks.example.com.evil.net/x", "is not on"),
        ("http://10.2.0.1/x", "is not on"),
        ("ftp://hooks.example.com/x", "must be http"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
        ("https:///x", "needs a host"),
        ("http://hooks.example.com:99999/x", "not a valid URL"),
        ("http://hooks.example.com/" + "a" * 3000, "at most 2048"),
    ],
)
def test_refused_urls(url: str, why: str) -> None:
    refusal = callback_refusal(url, HOSTS)
    assert refusal is not None and why in refusal


def test_no_allow_list_refuses_every_callback() -> None:
    refusal = callback_refusal("https://hooks.example.com/x", ())
    assert refusal is not None and "callbacks are off" in refusal


def test_a_signature_verifies_once_and_only_for_its_body_key_and_time() -> None:
    key, body = b"k" * 32, b'{"id": "task_1"}'
    header = sign(key, body, 1_000_000)
    assert header.startswith("t=1000000,v1=")
    assert verify(key, body, header, now=1_000_100)
    assert not verify(key, body + b" ", header, now=1_000_100)
    assert not verify(b"x" * 32, body, header, now=1_000_100)
    assert not verify(key, body, header, now=1_000_301)  # older than the 300 s tolerance
    assert not verify(key, body, "t=1000000", now=1_000_000)
    assert not verify(key, body, "garbage", now=1_000_000)
