"""The callback sender (`server/callbacks.py`) against a real HTTP receiver on loopback:
signed deliveries, retries with backoff on the store's fake clock, giving up, and URLs off
the allow-list never contacted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from podium.core.callbacks import verify
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus
from podium.core.settings import TaskSettings
from podium.core.spec import EndpointSpec
from podium.core.tasks import AttemptOutcome
from podium.server.callbacks import CallbackSender
from podium.store import Database
from podium.store.secret_box import SecretBox
from podium.store.task_records import NewTask, Outcome
from tests.support.db import database, postgres_shared_url, sqlite_url

__all__ = ["database", "postgres_shared_url", "sqlite_url"]  # fixtures


@dataclass
class Receiver:
    """A loopback HTTP server answering each POST with the next status of `answers`
    (the last one repeated); it keeps what it got."""

    answers: list[int]
    delay_s: float = 0.0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(answers=[200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if state.delay_s:
                time.sleep(state.delay_s)
            status = state.answers[min(len(state.got), len(state.answers)) - 1]
            self.send_response(status)
            if status == 302:
                self.send_header("location", f"http://127.0.0.1:{state.port}/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def clocked(database: Database) -> Iterator[tuple[Database, FakeClock]]:
    clock = FakeClock()
    db = Database(database.url, clock=clock)
    yield db, clock
    db.dispose()


def _ended_task(db: Database, url: str, outcome: Outcome | None = None) -> str:
    """A task with a callback to `url` of endpoint `echo`, run once by a dispatcher `d1`."""
    with db.unit_of_work() as uow:
        if not uow.endpoints.exists("echo"):
            uow.endpoints.create(
                EndpointSpec(name="echo", model="echo:1", framework="python"),
                model_ref="echo:1",
                status=EndpointStatus.RUNNING,
                desired_replicas=1,
            )
        task, _ = uow.tasks.enqueue(
            NewTask(
                endpoint="echo",
                project="default",
                method="POST",
                path="/predict",
                body=b"{}",
                max_attempts=1,
                callback_url=url,
            )
        )
        (c,) = uow.tasks.claim("d1", {"echo": 1})
        uow.tasks.finish(
            c.id,
            c.attempt,
            "d1",
            outcome
            or Outcome(
                AttemptOutcome.SUCCEEDED, 200, result=b'{"y": 1}', result_type="application/json"
            ),
        )
    return task.id


def _sender(db: Database, tmp_path: Path, **settings: object) -> CallbackSender:
    base: dict[str, object] = {
        "callback_hosts": ("127.0.0.1",),
        "callback_attempts": 4,
        "callback_backoff_s": 2.0,
        "callback_timeout_s": 5.0,
    }
    base.update(settings)
    return CallbackSender(
        db,
        TaskSettings(**base),
        SecretBox(tmp_path / "secret.key"),  # type: ignore[arg-type]
    )


def test_retries_with_backoff_until_a_2xx_signed_each_time(
    clocked: tuple[Database, FakeClock], receiver: Receiver, tmp_path: Path
) -> None:
    db, clock = clocked
    receiver.answers = [500, 500, 200]
    task_id = _ended_task(db, receiver.url())
    sender = _sender(db, tmp_path)
    try:
        assert sender.run_once() == 1  # delivery 1: 500
        assert sender.run_once() == 0  # retry due in 2 s
        clock.advance(1.9)
        assert sender.run_once() == 0
        clock.advance(0.1)
        assert sender.run_once() == 1  # delivery 2: 500, retry in 4 s
        clock.advance(3.9)
        assert sender.run_once() == 0
        clock.advance(0.1)
        assert sender.run_once() == 1  # delivery 3: 200
        clock.advance(3600)
        assert sender.run_once() == 0
    finally:
        sender.stop()
    with db.unit_of_work(read_only=True) as uow:
        key = uow.callback_keys.get("echo", SecretBox(tmp_path / "secret.key"))
        view = uow.tasks.get(task_id)
    assert key is not None
    assert (view.callback_state, view.callback_attempts, view.callback_error) == (
        "delivered",
        3,
        None,
    )
    assert len(receiver.got) == 3
    for headers, body in receiver.got:
        assert headers["content-type"] == "application/json"
        assert headers["x-podium-task-id"] == task_id
        assert verify(key, body, headers["x-podium-signature"])
        assert not verify(b"x" * 32, body, headers["x-podium-signature"])
        doc = json.loads(body)
        assert (doc["id"], doc["status"], doc["result"]) == (task_id, "succeeded", {"y": 1})
        assert [a["outcome"] for a in doc["attempt_log"]] == ["succeeded"]
        assert key.hex() not in body.decode()


def test_gives_up_after_its_attempts(
    clocked: tuple[Database, FakeClock], receiver: Receiver, tmp_path: Path
) -> None:
    db, clock = clocked
    receiver.answers = [302]  # a redirect is not followed: a failed delivery
    task_id = _ended_task(
        db, receiver.url(), Outcome(AttemptOutcome.FAILED, 422, reason="HTTP 422: bad input")
    )
    sender = _sender(db, tmp_path, callback_attempts=2, callback_backoff_s=1.0)
    try:
        assert sender.run_once() == 1
        clock.advance(1.0)
        assert sender.run_once() == 1
        clock.advance(3600)
        assert sender.run_once() == 0
    finally:
        sender.stop()
    with db.unit_of_work(read_only=True) as uow:
        view = uow.tasks.get(task_id)
    assert (view.callback_state, view.callback_attempts, view.callback_error) == (
        "failed",
        2,
        "HTTP 302",
    )
    assert [h["x-podium-task-id"] for h, _ in receiver.got] == [task_id, task_id]
    doc = json.loads(receiver.got[0][1])
    assert (doc["status"], doc["error"]) == ("failed", "HTTP 422: bad input")


def test_a_timeout_is_a_failed_delivery_named_by_its_class(
    clocked: tuple[Database, FakeClock], receiver: Receiver, tmp_path: Path
) -> None:
    db, _ = clocked
    receiver.delay_s = 1.0
    task_id = _ended_task(db, receiver.url())
    sender = _sender(db, tmp_path, callback_timeout_s=0.2)
    try:
        assert sender.run_once() == 1
    finally:
        sender.stop()
    with db.unit_of_work(read_only=True) as uow:
        view = uow.tasks.get(task_id)
    assert (view.callback_state, view.callback_attempts, view.callback_error) == (
        "pending",
        1,
        "ReadTimeout",
    )


@pytest.mark.parametrize(
    ("hosts", "host", "why"),
    [
        (("127.0.0.1",), "localhost", "host 'localhost' port"),
        ((), "127.0.0.1", "callbacks are off on this server"),  # the list was emptied since
        (("10.0.0.0/8",), "127.0.0.1", "host '127.0.0.1' port"),
    ],
)
def test_a_url_off_the_allow_list_is_never_contacted(
    clocked: tuple[Database, FakeClock],
    receiver: Receiver,
    tmp_path: Path,
    hosts: tuple[str, ...],
    host: str,
    why: str,
) -> None:
    db, clock = clocked
    task_id = _ended_task(db, receiver.url(host))
    sender = _sender(db, tmp_path, callback_hosts=hosts)
    try:
        assert sender.run_once() == 1
        clock.advance(3600)
        assert sender.run_once() == 0
    finally:
        sender.stop()
    assert receiver.got == []
    with db.unit_of_work(read_only=True) as uow:
        view = uow.tasks.get(task_id)
    assert view.callback_state == "failed"
    assert view.callback_attempts == 0
    assert view.callback_error is not None
    assert view.callback_error.startswith(f"not sent: {why}")


def test_the_thread_delivers_and_stops(
    clocked: tuple[Database, FakeClock], receiver: Receiver, tmp_path: Path
) -> None:
    db, _ = clocked
    task_id = _ended_task(db, receiver.url())
    sender = CallbackSender(
        db,
        TaskSettings(callback_hosts=("127.0.0.1",)),
        SecretBox(tmp_path / "secret.key"),
        poll_s=0.02,
    )
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while sender.delivered == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
    assert sender.delivered == 1
    assert [h["x-podium-task-id"] for h, _ in receiver.got] == [task_id]


def test_no_key_is_made_for_a_deleted_endpoint(
    clocked: tuple[Database, FakeClock], receiver: Receiver, tmp_path: Path
) -> None:
    """A callback due after its endpoint (and the endpoint's key) is gone is given up: a
    new key made then would be inherited by a re-created endpoint of the same name."""
    db, _ = clocked
    task_id = _ended_task(db, receiver.url())
    with db.unit_of_work() as uow:
        uow.endpoints.delete("echo")
    sender = _sender(db, tmp_path)
    try:
        assert sender.run_once() == 1
    finally:
        sender.stop()
    with db.unit_of_work(read_only=True) as uow:
        view = uow.tasks.get(task_id)
        key = uow.callback_keys.get("echo", SecretBox(tmp_path / "secret.key"))
    assert (view.callback_state, view.callback_error) == (
        "failed",
        "not sent: its endpoint was deleted",
    )
    assert key is None and receiver.got == []
