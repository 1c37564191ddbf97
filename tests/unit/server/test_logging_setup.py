"""The server's log: text or JSON lines, the request id on the lines a request causes,
uvicorn's lines through the same handler, and a line logged while the gateway serves a
request (over real HTTP on loopback) naming that request."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
import uvicorn

from podium.core.log_context import bind_request
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute
from podium.core.settings import ObservabilitySettings
from podium.gateway.activator import Refusal
from podium.gateway.pipeline import Invocation
from podium.server.logging_setup import UVICORN_LOG_CONFIG, configure_logging
from tests.unit.gateway.conftest import Servers

log = logging.getLogger("podium.test")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The root logger and uvicorn's as they were (pytest's capture handlers included)."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def json_server_log(restore_logging: None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(ObservabilitySettings(log_json=True), stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


async def _serve_one(request_id: str) -> None:
    """What the gateway's pipeline does for each request: bind its id in the request's
    task, then log while serving it."""
    bind_request(request_id)
    log.info("serving %s", "it")
    await asyncio.sleep(0)
    try:
        raise ValueError("the model said no")
    except ValueError:
        log.exception("failed")


def test_json_lines_parse_and_name_the_request(restore_logging: None) -> None:
    stream = json_server_log(restore_logging)
    log.info("before any request")

    async def main() -> None:
        await asyncio.gather(_serve_one("req-a"), _serve_one("req-b"))

    asyncio.run(main())
    log.warning("after: no request")
    docs = [json.loads(line) for line in lines(stream) if line.startswith("{")]
    assert [(d["message"], d["request_id"]) for d in docs] == [
        ("before any request", None),
        ("serving it", "req-a"),
        ("serving it", "req-b"),
        ("failed", "req-a"),
        ("failed", "req-b"),
        ("after: no request", None),
    ]
    first = docs[1]
    assert first["level"] == "INFO" and first["logger"] == "podium.test"
    assert first["ts"].endswith("Z")
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None
    failed = docs[3]
    assert failed["level"] == "ERROR"
    assert (
        "Traceback" in failed["exception"]
        and "ValueError: the model said no" in (failed["exception"])
    )
    assert len(lines(stream)) == len(docs)  # a traceback stays inside its one line


def test_text_lines_tag_the_request_only_within_one(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(ObservabilitySettings(log_json=False), stream=stream)
    log.info("outside")

    async def main() -> None:
        bind_request("4f1c2a9b")
        log.info("inside")

    asyncio.run(main())
    outside, inside = lines(stream)
    assert outside.endswith(" INFO podium.test: outside")
    assert inside.endswith(" INFO podium.test [req=4f1c2a9b]: inside")


def test_uvicorns_lines_come_through_the_same_handler(restore_logging: None) -> None:
    stream = json_server_log(restore_logging)
    uvicorn.Config(lambda *a: None, log_config=UVICORN_LOG_CONFIG, log_level="info")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("httpx").info("one line per SDK call")  # quietened
    (line,) = lines(stream)
    doc = json.loads(line)
    assert (doc["logger"], doc["message"]) == ("uvicorn.error", "Started server process [42]")


class Chatty:
    """A gateway stage that logs while each request is served."""

    async def check(self, call: Invocation) -> Refusal | None:
        log.info("checking a call to %s", call.route.name)
        return None

    def finish(self, call: Invocation, status: int, seconds: float) -> None:
        log.info("finished with %d", status)


def test_a_line_the_gateway_logs_while_serving_names_the_request(restore_logging: None) -> None:
    stream = json_server_log(restore_logging)
    servers = Servers("http1")
    try:
        (replica,) = servers.replicas(1)
        gateway = servers.gateway(stages=[Chatty()])
        gateway.publish(EndpointRoute("e", EndpointStatus.RUNNING, (replica.route,)))
        r = httpx.post(
            gateway.url + "/endpoints/e/echo",
            content=b"hi",
            headers={"x-request-id": "client-req-7"},
            timeout=30,
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "client-req-7"
    finally:
        servers.close()
    docs = [json.loads(line) for line in lines(stream)]
    mine = [d for d in docs if d["logger"] == "podium.test"]
    assert [(d["message"], d["request_id"]) for d in mine] == [
        ("checking a call to e", "client-req-7"),
        ("finished with 200", "client-req-7"),
    ]
