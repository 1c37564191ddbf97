"""`PODIUM_LOG_FORMAT=json podium up`: the server's log is JSON lines (uvicorn's included),
its replicas inherit the format, a replica's line names the request that caused it (the
gateway's `X-Request-ID`), and `follow_logs` brings it over Server-Sent Events."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.server import running_server, wait_until

MODEL = """\
import logging

log = logging.getLogger("model")


class Model:
    def load(self, path):
        log.info("loaded")

    def predict(self, inputs, parameters):
        log.info("predicting %s", inputs)
        return {"echo": inputs}
"""


def test_json_logs_name_the_request_on_both_sides(tmp_path: Path) -> None:
    bundle = tmp_path / "chatty"
    bundle.mkdir()
    (bundle / "model.py").write_text(MODEL, encoding="utf-8")
    with (
        running_server(tmp_path / "podium", PODIUM_LOG_FORMAT="json") as server,
        server.client() as c,
    ):
        c.push_model(bundle, "chatty", framework="python")
        c.deploy({"name": "chatty", "model": "chatty", "framework": "python"})
        c.wait_for("chatty", {"running"}, timeout=120)
        r = httpx.post(
            f"{server.url}/endpoints/chatty/",
            json={"inputs": "hello"},
            headers={**server.headers, "x-request-id": "it-req-1"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "it-req-1"

        def predicted() -> list[dict[str, object]]:
            docs = [json.loads(i.line) for i in c.logs("chatty") if i.line.startswith("{")]
            return [d for d in docs if d["message"] == "predicting hello"]

        wait_until(lambda: bool(predicted()), what="the replica's line for the request")
        (doc,) = predicted()
        assert doc["request_id"] == "it-req-1" and doc["logger"] == "model"

        follow = c.follow_logs("chatty", tail=50)  # over Server-Sent Events
        seen = []
        for item in follow:
            seen.append(item)
            if "predicting hello" in item.line:
                break
        follow.close()
        assert json.loads(seen[-1].line)["request_id"] == "it-req-1"
        assert seen[-1].replica_id.startswith("chatty-r1-")

    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # every line of the server's log
    assert any(d["logger"].startswith("uvicorn") for d in docs), lines[:5]
    assert any(d["logger"] == "podium.server" for d in docs)
