"""`GET …/logs?follow=true` with `Accept: text/event-stream`: Server-Sent Events.

Over real HTTP (uvicorn on loopback) against the real API: the events carry each line as
JSON with its replica, numbered by `id:`; a reconnect with `Last-Event-ID` numbers on and
does not send the tail again; heartbeats are comments; secrets are masked; any other
Accept keeps the text stream; a bad `Last-Event-ID` is a problem naming the header. The
SDK's follow reconnects after a lost connection and after a clean end of the stream, and
stops when the endpoint is gone (404).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from podium.api import ApiContext
from podium.api.services import logs
from podium.backends.base import LogFollower, ReplicaLogs
from podium.client import PodiumClient, _observe
from tests.unit.api.conftest import add_replica, push, spec, write_log

LOGS = "/api/v1/endpoints/iris-ep/logs"
SSE = {"accept": "text/event-stream"}


@dataclass
class Frame:
    """One SSE frame as a client sees it (comments collected too)."""

    fields: dict[str, str]
    comments: list[str]


def frames(lines: Iterator[str]) -> Iterator[Frame]:
    fields: dict[str, str] = {}
    comments: list[str] = []
    for line in lines:
        if line == "":
            if fields or comments:
                yield Frame(fields, comments)
            fields, comments = {}, []
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def next_event(stream: Iterator[Frame]) -> tuple[int, dict[str, str]]:
    """The next `line` event: its id and data (comments and `retry:` frames skipped)."""
    for frame in stream:
        if frame.fields.get("event") == "line":
            return int(frame.fields["id"]), json.loads(frame.fields["data"])
    raise AssertionError("the stream ended")


class Followed:
    """The real backend logs, counting the followers asked for: a test knows the server
    follows a log before it appends to it (a follower starts at the log's end)."""

    def __init__(self, source: ReplicaLogs) -> None:
        self.source = source
        self.follows = 0

    def logs(self, replica_id: str, tail: int = 200) -> list[str]:
        return self.source.logs(replica_id, tail)

    def kept_logs(self, endpoint: str) -> list[str]:
        return self.source.kept_logs(endpoint)

    def follow_logs(self, replica_id: str, tail: int | None) -> tuple[list[str], LogFollower]:
        got = self.source.follow_logs(replica_id, tail)
        self.follows += 1
        return got


@pytest.fixture
def ctx(ctx: ApiContext) -> ApiContext:
    return dataclasses.replace(ctx, logs=Followed(ctx.logs))


def follows(ctx: ApiContext) -> int:
    assert isinstance(ctx.logs, Followed)
    return ctx.logs.follows


@pytest.fixture
def endpoint(client: TestClient) -> None:
    assert push(client, "iris", b"v1", filename="m.skops").status_code == 201
    assert client.post("/api/v1/endpoints", json=spec()).status_code == 201


def _replica(ctx: ApiContext, replica_id: str, text: str) -> Path:
    path = write_log(ctx, "iris-ep", replica_id, text)
    add_replica(ctx.db, "iris-ep", replica_id, log_path=path)
    return path


def test_follow_as_events_numbers_each_line(
    endpoint: None, ctx: ApiContext, server_url: str, admin_headers: dict[str, str]
) -> None:
    path = _replica(ctx, "iris-ep-r1-aaa", "one\ntwo\nthree\n")
    params = {"follow": "true", "tail": "2"}
    with (
        httpx.Client(base_url=server_url, timeout=30, headers=admin_headers) as http,
        http.stream("GET", LOGS, params=params, headers=SSE) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        stream = frames(r.iter_lines())
        assert next(stream).fields == {"retry": str(logs.RETRY_MS)}
        assert next_event(stream) == (1, {"replica": "iris-ep-r1-aaa", "line": "two"})
        assert next_event(stream) == (2, {"replica": "iris-ep-r1-aaa", "line": "three"})
        with path.open("a") as f:
            f.write('four "quoted" \\ é\n')
        assert next_event(stream) == (
            3,
            {"replica": "iris-ep-r1-aaa", "line": 'four "quoted" \\ é'},
        )
        _replica(ctx, "iris-ep-r2-bbb", "hello\n")  # appears while following
        assert next_event(stream) == (4, {"replica": "iris-ep-r2-bbb", "line": "hello"})


def test_a_reconnect_numbers_on_without_the_tail_again(
    endpoint: None, ctx: ApiContext, server_url: str, admin_headers: dict[str, str]
) -> None:
    path = _replica(ctx, "iris-ep-r1-aaa", "one\ntwo\n")
    params = {"follow": "true", "tail": "5"}
    headers = {**SSE, "last-event-id": "2"}
    with (
        httpx.Client(base_url=server_url, timeout=30, headers=admin_headers) as http,
        http.stream("GET", LOGS, params=params, headers=headers) as r,
    ):
        stream = frames(r.iter_lines())
        wait_for(lambda: follows(ctx) == 1, "the server to follow the log")
        with path.open("a") as f:
            f.write("three\n")
        # "one" and "two" were the first connection's: only what is new comes, as id 3.
        assert next_event(stream) == (3, {"replica": "iris-ep-r1-aaa", "line": "three"})


def test_heartbeats_are_comments_while_nothing_is_written(
    endpoint: None,
    ctx: ApiContext,
    server_url: str,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "HEARTBEAT_S", 0.0)  # every idle poll (the route's default)
    _replica(ctx, "iris-ep-r1-aaa", "")
    with (
        httpx.Client(base_url=server_url, timeout=30, headers=admin_headers) as http,
        http.stream("GET", LOGS, params={"follow": "true"}, headers=SSE) as r,
    ):
        stream = frames(r.iter_lines())
        next(stream)  # retry
        beat = next(stream)
        assert (beat.fields, beat.comments) == ({}, ["heartbeat"])


def test_events_mask_the_projects_secrets(
    client: TestClient,
    endpoint: None,
    ctx: ApiContext,
    server_url: str,
    admin_headers: dict[str, str],
) -> None:
    value = "hunter2-very-secret"
    assert client.put("/api/v1/secrets/db-pass", json={"value": value}).status_code in (200, 201)
    _replica(ctx, "iris-ep-r1-aaa", f"connecting with {value}\n")
    with (
        httpx.Client(base_url=server_url, timeout=30, headers=admin_headers) as http,
        http.stream("GET", LOGS, params={"follow": "true"}, headers=SSE) as r,
    ):
        _, data = next_event(frames(r.iter_lines()))
    assert value not in data["line"]
    assert data["line"].startswith("connecting with ")


def test_other_accept_values_keep_the_text_stream(
    endpoint: None, ctx: ApiContext, server_url: str, admin_headers: dict[str, str]
) -> None:
    _replica(ctx, "iris-ep-r1-aaa", "one\n")
    params = {"follow": "true"}
    for accept in ("text/plain", "*/*", "application/json"):
        with httpx.stream(
            "GET",
            server_url + LOGS,
            params=params,
            timeout=30,
            headers={**admin_headers, "accept": accept},
        ) as r:
            assert r.headers["content-type"].startswith("text/plain")
            assert next(r.iter_lines()) == "[iris-ep-r1-aaa] one"


@pytest.mark.parametrize("bad", ["x1", "-1", "1" * 20])
def test_a_bad_last_event_id_is_a_problem_naming_it(
    client: TestClient, endpoint: None, bad: str
) -> None:
    r = client.get(LOGS, params={"follow": "true"}, headers={**SSE, "last-event-id": bad})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "last-event-id"


class Restartable:
    """The API on a real uvicorn that can be stopped and started again on one port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=1)
        self.server = server = uvicorn.Server(config)
        self.thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: server.started, "the server to start")

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(30)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state change; the deadline only guards against hanging for ever."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_the_sdk_reconnects_and_goes_on_without_repeating_lines(
    endpoint: None, ctx: ApiContext, app: Any, admin_token: str
) -> None:
    path = _replica(ctx, "iris-ep-r1-aaa", "one\ntwo\n")
    api = Restartable(app)
    api.start()
    seen: list[str] = []
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            with PodiumClient(api.url, token=admin_token) as client:
                for item in client.follow_logs("iris-ep", tail=5):
                    seen.append(item.line)
                    if item.line == "three":
                        return
        except BaseException as e:  # shown by the assertion below
            errors.append(e)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    try:
        wait_for(lambda: seen == ["one", "two"], "the tail")
        api.stop()  # the connection is lost mid-stream
        api.start()
        wait_for(lambda: follows(ctx) == 2, "the SDK to reconnect and the server to follow")
        with path.open("a") as f:
            f.write("three\n")
        reader.join(30)
    finally:
        api.stop()
    assert not errors, errors
    assert seen == ["one", "two", "three"]  # the tail was not sent again


class EndsTheFirstFollow:
    """The API, except that the first log follow ends cleanly once `lines` line events
    went out: the last chunk, as a server shutting down gracefully sends it (uvicorn then
    tells the API the client is gone, and the API stops following)."""

    def __init__(self, app: Any, lines: int) -> None:
        self.app, self.lines, self.ended = app, lines, False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.ended or scope["type"] != "http" or not scope["path"].endswith("/logs"):
            await self.app(scope, receive, send)
            return
        self.ended = True
        seen, done = 0, False

        async def cut(message: dict[str, Any]) -> None:
            nonlocal seen, done
            if done:
                return
            if message["type"] == "http.response.body":
                seen += message.get("body", b"").count(b"event: line")
                if seen >= self.lines:
                    done = True
                    message = {**message, "more_body": False}
            await send(message)

        await self.app(scope, receive, cut)


def follow_in_thread(
    url: str, token: str, seen: list[str], errors: list[BaseException], until: str | None
) -> threading.Thread:
    def follow() -> None:
        try:
            with PodiumClient(url, token=token) as client:
                for item in client.follow_logs("iris-ep", tail=5):
                    seen.append(item.line)
                    if item.line == until:
                        return
        except BaseException as e:  # shown by the test's assertion
            errors.append(e)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    return reader


def test_the_sdk_reconnects_after_a_clean_end_of_the_stream(
    endpoint: None,
    ctx: ApiContext,
    app: Any,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server restarting gracefully ends the stream as if the endpoint were gone; the
    SDK asks again (with Last-Event-ID) and goes on: only a 404 ends a follow."""
    monkeypatch.setattr(_observe, "RECONNECT_S", 0.05)
    path = _replica(ctx, "iris-ep-r1-aaa", "one\ntwo\n")
    api = Restartable(EndsTheFirstFollow(app, lines=2))
    api.start()
    seen: list[str] = []
    errors: list[BaseException] = []
    try:
        reader = follow_in_thread(api.url, admin_token, seen, errors, until="three")
        wait_for(lambda: follows(ctx) == 2, "the SDK to follow again after the clean end")
        assert seen == ["one", "two"]
        with path.open("a") as f:
            f.write("three\n")
        reader.join(30)
    finally:
        api.stop()
    assert not errors, errors
    assert seen == ["one", "two", "three"]  # no tail again: it sent Last-Event-ID


def test_the_sdk_stops_following_when_the_endpoint_is_gone(
    endpoint: None,
    ctx: ApiContext,
    server_url: str,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server ends the stream once the endpoint is deleted; the SDK's next try is a
    404, and the follow ends without an error."""
    monkeypatch.setattr(_observe, "RECONNECT_S", 0.05)
    _replica(ctx, "iris-ep-r1-aaa", "one\ntwo\n")
    seen: list[str] = []
    errors: list[BaseException] = []
    reader = follow_in_thread(server_url, admin_token, seen, errors, until=None)
    wait_for(lambda: seen == ["one", "two"], "the tail")
    with ctx.db.unit_of_work() as uow:
        uow.endpoints.delete("iris-ep")
    reader.join(30)
    assert not reader.is_alive(), "the follow did not end"
    assert not errors, errors
    assert seen == ["one", "two"]
