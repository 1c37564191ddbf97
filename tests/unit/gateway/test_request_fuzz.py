"""Hypothesis over the gateway's request parsing, through a real socket: methods, paths,
headers, bodies (binary, JSON, deeply nested JSON) and framing (content-length, chunked
with random chunk sizes and extensions). Whatever arrives, the gateway answers with a
well-formed response that is not a 5xx, and keeps serving.

CI runs a short pass (profile `podium-ci`); `make fuzz` sets PODIUM_FUZZ_PROFILE=podium-fuzz
for thousands of examples.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, InProcessRoutingSource, ReplicaRoute
from podium.core.settings import GatewaySettings
from podium.gateway import Gateway
from tests.unit.gateway.servers import ServerThread, stop_all

settings.register_profile(
    "podium-ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "podium-fuzz", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = settings.get_profile(os.environ.get("PODIUM_FUZZ_PROFILE", "podium-ci"))
MAX_BODY = 64 * 1024


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A replica that reads the whole body and answers with its size, as JSON."""
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    payload = json.dumps({"path": scope["path"], "size": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    replica = ServerThread(echo).start()
    holder = InProcessRoutingSource()
    gateway = Gateway(holder, GatewaySettings(max_body_bytes=MAX_BODY), wake=lambda _e=None: None)
    server = ServerThread(gateway, lifespan="on").start()
    route = ReplicaRoute("r1", "127.0.0.1", replica.port, revision=1)
    holder.publish({"echo": EndpointRoute("echo", EndpointStatus.RUNNING, (route,))})
    yield server.port
    stop_all([server, replica])


# ---------------------------------------------------------------- strategies

_PREFIXES = [
    "/endpoints/echo",
    "/endpoints/echo/",
    "/endpoints/echo/predict",
    "/endpoints/echo/v2/models/echo/infer",
    "/endpoints/",
    "/endpoints",
    "/endpoints/nope/x",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models",
    "/v1/models/echo",
    "/v1/",
]
_PATH_CHARS = st.sampled_from(
    [*"abcXYZ019-._~!$&'()*+,;=:@/?#[] ", "%2F", "%00", "%", "%zz", "%C3%A9", "é", "..", "//"]
)
path = st.builds(
    lambda prefix, tail: (prefix + "".join(tail)).replace(" ", "%20"),
    st.sampled_from(_PREFIXES),
    st.lists(_PATH_CHARS, max_size=30),
)
method = st.sampled_from(
    ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
) | st.from_regex(r"\A[A-Z]{1,12}\Z")
_TOKEN = st.from_regex(r"\A[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}\Z")
header_name = st.sampled_from(
    [
        "content-type",
        "accept",
        "accept-encoding",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "authorization",
        "cookie",
        "te",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "trailer",
        "inference-header-content-length",
        "x-podium-timeout",
    ]
) | _TOKEN.filter(
    lambda n: (
        n.lower() not in {"connection", "content-length", "transfer-encoding", "host", "expect"}
    )
)
header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=200
).map(str.strip)
headers = st.lists(st.tuples(header_name, header_value), max_size=12)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
openai_like = st.fixed_dictionaries(
    {"model": st.none() | st.sampled_from(["echo", "nope", ""]) | st.integers() | json_values},
    optional={"messages": json_values, "input": json_values, "stream": json_values},
)
deep = st.integers(min_value=0, max_value=20_000).map(
    lambda n: b'{"model": "echo", "x": ' + b"[" * n + b"]" * n + b"}"
)
body = st.one_of(
    st.just(b""),
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    openai_like.map(lambda v: json.dumps(v).encode()),
    deep,
    st.integers(min_value=MAX_BODY - 16, max_value=MAX_BODY + 16).map(lambda n: b"x" * n),
)
framing = st.sampled_from(["length", "chunked", "none"])


def _chunked(data: bytes, cuts: list[int], extension: bool) -> bytes:
    out = bytearray()
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        piece = data[start:cut]
        if piece:
            ext = b";x=1" if extension else b""
            out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
        start = cut
    return bytes(out + b"0\r\n\r\n")


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(raw)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


# What the fuzzer found first: the OpenAI router's json.loads raised RecursionError (a 500).
_DEEP = b'{"model": "echo", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"


@PROFILE
@example("POST", "/v1/chat/completions", [], _DEEP, "length", [], False)
@example("POST", "/v1/embeddings", [], _DEEP, "chunked", [7, 9000], True)
@given(
    method=method,
    target=path,
    extra=headers,
    data=body,
    frame=framing,
    cuts=st.lists(st.integers(min_value=0, max_value=MAX_BODY), max_size=6),
    extension=st.booleans(),
)
def test_no_request_gets_a_server_error(
    port: int,
    method: str,
    target: str,
    extra: list[tuple[str, str]],
    data: bytes,
    frame: str,
    cuts: list[int],
    extension: bool,
) -> None:
    head = [f"{method} {target} HTTP/1.1".encode(), b"host: 127.0.0.1"]
    head += [f"{name}: {value}".encode("latin-1") for name, value in extra]
    if frame == "length":
        head.append(b"content-length: %d" % len(data))
        payload = data
    elif frame == "chunked":
        head.append(b"transfer-encoding: chunked")
        payload = _chunked(data, cuts, extension)
    else:
        payload = b""
    head.append(b"connection: close")
    answer = _exchange(port, b"\r\n".join(head) + b"\r\n\r\n" + payload)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), answer[:200]
    status = int(status_line.split()[1])
    assert status < 500, answer[:2000]
