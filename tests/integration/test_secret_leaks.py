"""A secret's value, after a full scenario on a real `podium up`, is in no API answer, no
event, no status reason, no audit entry, no metric and no line of the server's own log.

The scenario: a secret given to two endpoints through `env_from_secrets`; one replica uses
it (and prints it to its stdout, as careless model code does), the other fails to load
with the value in its exception. The replica's own log file keeps what it wrote (it is the
model's output); what the API serves of it is masked.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.core.phases import EndpointStatus
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

_BUNDLE = """\
import hashlib
import os

EXPECTED = {expected!r}
LEAK = {leak!r}


class Model:
    def load(self, path):
        key = os.environ.get("API_KEY", "")
        if LEAK:
            raise RuntimeError("cannot start with key " + key)
        print("loaded with key " + key, flush=True)
        self.ok = hashlib.sha256(key.encode()).hexdigest() == EXPECTED

    def predict(self, inputs, parameters):
        return {{"key_ok": self.ok}}
"""


def _bundle(dest: Path, expected: str, *, leak: bool) -> Path:
    dest.mkdir(parents=True)
    (dest / "model.py").write_text(_BUNDLE.format(expected=expected, leak=leak))
    return dest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("leaks") / "home"
    with running_server(home, PODIUM_RESTART_BACKOFF_S="0.2", PODIUM_CRASH_LOOP_THRESHOLD="2") as s:
        yield s


def test_a_secret_is_in_no_answer_event_audit_metric_or_server_log(
    server: ServerProcess, tmp_path: Path
) -> None:
    value = "s3cret-" + secrets.token_hex(16)
    digest = hashlib.sha256(value.encode()).hexdigest()
    refs = {"env_from_secrets": {"API_KEY": "api-key"}}
    with server.client() as c:
        c.set_secret("api-key", value)
        c.push_model(_bundle(tmp_path / "uses", digest, leak=False), "uses-key", framework="python")
        c.push_model(
            _bundle(tmp_path / "leaks", digest, leak=True), "leaks-key", framework="python"
        )
        c.deploy({"name": "uses", "model": "uses-key", "framework": "python", **refs})
        c.deploy({"name": "leaky", "model": "leaks-key", "framework": "python", **refs})
        wait_running(c, "uses")
        wait_until(
            lambda: c.endpoint("leaky").status is EndpointStatus.FAILED,
            timeout=120,
            what="the leaky endpoint to fail",
        )

    seen: list[tuple[str, str]] = []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        answer = http.post("/endpoints/uses/", json={"inputs": "x"})
        assert answer.json() == {"key_ok": True}  # the replica did get the secret
        seen.append(("invoke", answer.text))
        for path in (
            "/api/v1/endpoints",
            "/api/v1/endpoints/uses",
            "/api/v1/endpoints/leaky",
            "/api/v1/endpoints/uses/events",
            "/api/v1/endpoints/leaky/events",
            "/api/v1/endpoints/uses/revisions",
            "/api/v1/endpoints/uses/logs",
            "/api/v1/endpoints/leaky/logs",
            "/api/v1/secrets",
            "/api/v1/audit",
            "/metrics",
        ):
            r = http.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            seen.append((path, r.text))
        logs = http.get("/api/v1/endpoints/uses/logs").json()["items"]
        leaked_logs = http.get("/api/v1/endpoints/leaky/logs").json()["items"]
        events = http.get("/api/v1/endpoints/leaky/events").json()["items"]
    seen.append(("server log", server.log_path.read_text(errors="replace")))

    assert [where for where, text in seen if value in text] == []
    # Masked, not merely absent: the lines that held the value are there, with *** for it.
    assert any("loaded with key ***" in item["line"] for item in logs), logs[-5:]
    assert any("cannot start with key ***" in item["line"] for item in leaked_logs)
    assert any("***" in str(event) for event in events), events[-3:]
