"""One error rule: an error class answers with the same status and title on every surface.

Each class of `core/errors.py` is raised for real on the three surfaces a client meets:
a control API route (the real server app's FastAPI, with a route added that raises it),
a replica process (a python bundle whose `predict` raises it) and the gateway (the same
replica reached through `/endpoints/{name}/`). All three must answer the class's own
`status` and `title` as `application/problem+json`, with the same `detail`, `field` and,
for `Retryable`, the same `Retry-After`. The errors the gateway makes itself for a class
(an unknown endpoint is a `NotFound`, a body over the limit a `TooLarge`) answer like the
API's for the same class.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from podium.core import errors
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointRoute, ReplicaRoute
from tests.support.inproc import InProcessPodium, serving
from tests.unit.replica.conftest import Replica, launch

RAISER = """\
from podium.core import errors


class Model:
    def load(self, path):
        pass

    def predict(self, inputs, parameters):
        cls = getattr(errors, inputs)
        if cls is errors.Retryable:
            raise cls("why", retry_after=2.5, field="inputs")
        raise cls("why", field="inputs")
"""

CLASSES = [
    errors.NotFound,
    errors.Conflict,
    errors.Invalid,
    errors.UnsafeArchive,
    errors.TooLarge,
    errors.Unavailable,
    errors.Retryable,
    errors.LoadError,
    errors.OutOfMemory,
    errors.PodiumError,
]

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    tmp = tmp_path_factory.mktemp("raiser")
    bundle = tmp / "bundle"
    bundle.mkdir()
    (bundle / "model.py").write_text(RAISER, encoding="utf-8")
    started = launch(tmp, runtime="python", model_path=bundle, endpoint="raiser")
    assert started.proc.poll() is None, started.log()
    yield started
    assert started.stop() == 0, started.log()


@pytest.fixture(scope="module")
def podium(tmp_path_factory: pytest.TempPathFactory, replica: Replica) -> Iterator[InProcessPodium]:
    """The real server app (API and gateway), routing `raiser` to the replica above, with
    one more API route, `GET /api/v1/raise/{name}`, that raises the class named."""
    with serving() as served:
        current = served.fresh(tmp_path_factory.mktemp("home"))

        async def raise_it(name: str) -> None:
            raise getattr(errors, name)("why", **_kwargs(name))

        current.podium.api.add_api_route("/api/v1/raise/{name}", raise_it, methods=["GET"])
        assert replica.port is not None
        route = EndpointRoute(
            name="raiser",
            status=EndpointStatus.RUNNING,
            replicas=(ReplicaRoute(replica.replica_id, "127.0.0.1", replica.port, 1),),
        )
        current.podium.holder.publish({"raiser": route})
        yield current


def _kwargs(name: str) -> dict[str, Any]:
    if name == "Retryable":
        return {"retry_after": 2.5, "field": "inputs"}
    return {"field": "inputs"}


def _seen(r: httpx.Response) -> tuple[int, str, str, str, str, str | None]:
    """What a client reads of a problem: status, type, title, detail, field, Retry-After."""
    assert r.headers["content-type"] == PROBLEM, r.text
    body = r.json()
    assert body["status"] == r.status_code, body
    return (
        r.status_code,
        body["type"],
        body["title"],
        body["detail"],
        body.get("field"),
        r.headers.get("retry-after"),
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_error_class_answers_alike_on_the_api_the_gateway_and_the_replica(
    podium: InProcessPodium, replica: Replica, cls: type[errors.PodiumError]
) -> None:
    name = cls.__name__
    api = httpx.get(f"{podium.url}/api/v1/raise/{name}", headers=podium.headers, timeout=30)
    direct = httpx.post(replica.url + "/", json={"inputs": name}, timeout=30)
    gateway = httpx.post(
        f"{podium.url}/endpoints/raiser/",
        headers=podium.headers,
        json={"inputs": name},
        timeout=30,
    )

    wait = "3" if cls is errors.Retryable else None  # 2.5 s, rounded up
    expected = (cls.status, "about:blank", cls.title, "why", "inputs", wait)
    assert _seen(api) == expected
    assert _seen(direct) == expected
    assert _seen(gateway) == expected
    assert direct.headers["x-podium-replica"] == replica.replica_id
    assert gateway.headers["x-podium-replica"] == replica.replica_id  # the replica's answer


def test_the_rule_itself() -> None:
    """Input that is wrong is 422 everywhere; a failure no class names is 500."""
    statuses = {cls.__name__: cls.status for cls in CLASSES}
    assert statuses == {
        "NotFound": 404,
        "Conflict": 409,
        "Invalid": 422,
        "UnsafeArchive": 422,
        "TooLarge": 413,
        "Unavailable": 503,
        "Retryable": 503,
        "LoadError": 422,
        "OutOfMemory": 507,
        "PodiumError": 500,
    }


def test_an_unknown_name_is_a_not_found_on_the_api_and_the_gateway(podium: InProcessPodium) -> None:
    api = httpx.get(f"{podium.url}/api/v1/endpoints/ghost", headers=podium.headers, timeout=30)
    gateway = httpx.post(
        f"{podium.url}/endpoints/ghost/", headers=podium.headers, json={}, timeout=30
    )
    for r in (api, gateway):
        assert r.headers["content-type"] == PROBLEM
        assert (r.status_code, r.json()["title"]) == (errors.NotFound.status, errors.NotFound.title)


def test_a_body_over_the_limit_is_a_too_large_on_the_api_and_the_gateway(
    podium: InProcessPodium,
) -> None:
    huge = 10**12  # declared, never sent: both refuse it from the header alone
    token = podium.token  # checked first: a caller without one gets 401, not 413
    api = _declared(podium.url, "POST /api/v1/endpoints", huge, token)
    gateway = _declared(podium.url, "POST /endpoints/raiser/", huge, token)
    for status, headers, body in (api, gateway):
        assert headers["content-type"] == PROBLEM
        assert (status, body["title"]) == (errors.TooLarge.status, errors.TooLarge.title)
        assert body["status"] == status


def _declared(url: str, request: str, length: int, token: str) -> tuple[int, dict[str, str], Any]:
    """Send only a request head declaring `length` body bytes; the whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            f"{request} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {token}\r\ncontent-length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        raw_head, _, rest = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        size = int(headers["content-length"])
        while len(rest) < size:
            chunk = sock.recv(65536)
            assert chunk, rest
            rest += chunk
    return int(lines[0].split()[1]), headers, json.loads(rest[:size])
