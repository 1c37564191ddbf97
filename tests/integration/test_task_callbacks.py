"""Async tasks end to end on a real `podium up` (issue 13): the SDK's `predict_async` and
`TaskFuture`, idempotent replays, the CLI's `invoke --async --wait`, `tasks` and `task`,
and a signed callback retried through a receiver that fails twice.

Needs the gateway's async route and the dispatcher (helper "dispatch") merged with the
task API and the callback sender (helper "api").
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from podium.client import Invalid, TaskFailed, verify_signature
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_running, wait_until


class Receiver:
    """A loopback callback receiver: answers 500 to the first `fail` deliveries, then 200;
    keeps (headers, body) of each."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = 500 if len(receiver.got) <= receiver.fail else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    env = {"PODIUM_CALLBACK_HOSTS": "127.0.0.1", "PODIUM_TASK_POLL_S": "0.05"}
    with running_server(tmp_path_factory.mktemp("podium"), **env) as s, s.client() as c:
        c.push_model(write_python_bundle(tmp / "echo"), "echo")
        c.deploy({"name": "echo", "model": "echo", "framework": "python"})
        wait_running(c, "echo")
        yield s


def test_predict_async_result_and_replay(server: ServerProcess) -> None:
    with server.client() as c:
        future = c.predict_async("echo", {"inputs": "hi"}, idempotency_key="order-1")
        assert future.id.startswith("task_") and not future.replayed
        assert future.result(timeout=60) == {"version": 1, "echo": "hi"}
        again = c.predict_async("echo", {"inputs": "hi"}, idempotency_key="order-1")
        assert (again.id, again.replayed) == (future.id, True)
        task = future.refresh()
        assert (task.status.value, task.attempts, task.result_status) == ("succeeded", 1, 200)
        assert task.idempotency_key == "order-1"
        assert [a.outcome for a in task.attempt_log or []] == ["succeeded"]
        assert future.id in [t.id for t in c.tasks("echo").items]
        handle = c.use("echo")
        assert handle.predict_async({"inputs": "via handle"}).result(timeout=60) == {
            "version": 1,
            "echo": "via handle",
        }


def test_a_refused_call_fails_the_task_with_its_reason(server: ServerProcess) -> None:
    with server.client() as c:
        future = c.predict_async("echo", {"no inputs": True})
        with pytest.raises(TaskFailed) as e:
            future.result(timeout=60)
    task = e.value.task
    assert task.status.value == "failed"
    assert task.result_status is not None and 400 <= task.result_status < 500
    assert task.attempts == 1  # the caller's mistake: not retried
    assert task.error


def test_the_cli_waits_for_a_task_and_lists_it(server: ServerProcess) -> None:
    r = server.cli("invoke", "echo", "-d", '{"inputs": "cli"}', "--async", "--wait")
    assert json.loads(r.stdout) == {"version": 1, "echo": "cli"}
    r = server.cli("invoke", "echo", "-d", '{"inputs": "later"}', "--async")
    task_id = r.stdout.strip()
    assert task_id.startswith("task_")
    with server.client() as c:
        c.task(task_id).result(timeout=60)
    detail = server.cli("task", task_id, "--json")
    assert json.loads(detail.stdout)["status"] == "succeeded"
    table = server.cli("tasks", "echo", "--status", "succeeded")
    assert task_id in table.stdout


def test_a_callback_is_signed_and_retried_until_delivered(server: ServerProcess) -> None:
    receiver = Receiver(fail=2)
    try:
        with server.client() as c:
            key = c.callback_key("echo")
            future = c.predict_async("echo", {"inputs": "cb"}, callback_url=receiver.url)
            assert future.result(timeout=60) == {"version": 1, "echo": "cb"}

            def delivered() -> bool:
                callback = future.refresh().callback
                return callback is not None and callback.state == "delivered"

            # The default backoff: 1 s, then 2 s.
            wait_until(delivered, timeout=60, what="the callback delivered")
            callback = future.refresh().callback
        assert callback is not None
        assert (callback.url, callback.attempts, callback.error) == (receiver.url, 3, None)
        assert len(receiver.got) == 3
        for headers, body in receiver.got:
            assert headers["x-podium-task-id"] == future.id
            assert verify_signature(key, body, headers["x-podium-signature"])
            doc: dict[str, Any] = json.loads(body)
            assert (doc["id"], doc["status"]) == (future.id, "succeeded")
            assert doc["result"] == {"version": 1, "echo": "cb"}
    finally:
        receiver.close()


def test_a_callback_off_the_allow_list_is_refused_at_once(server: ServerProcess) -> None:
    with server.client() as c, pytest.raises(Invalid) as e:
        c.predict_async("echo", {"inputs": "x"}, callback_url="http://10.1.2.3/hook")
    # The gateway's 400 names the header in its detail (its problem's `header` key).
    assert str(e.value).startswith("X-Podium-Callback-Url is refused: host '10.1.2.3'")
    assert "not on this server's callback allow-list" in str(e.value)
