"""Deeply nested JSON sent to a real replica is a 422 naming the limit, never a 500
(RecursionError in `json.loads` or in the runtime after it)."""

from __future__ import annotations

import httpx
import pytest

from podium.core.jsondepth import MAX_JSON_DEPTH
from tests.unit.replica.conftest import Replica


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


# 900 levels parse (just under the recursion limit) and then break the runtime;
# 100,000 levels break json.loads itself.
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 900, 100_000])
@pytest.mark.parametrize(
    "path, wrap",
    [
        ("/", lambda inner: b'{"inputs": ' + inner + b"}"),
        (
            "/v2/models/iris/infer",
            lambda inner: (
                b'{"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1],'
                b' "data": ' + inner + b"}]}"
            ),
        ),
    ],
)
def test_deep_json_is_a_422(iris: Replica, depth: int, path: str, wrap: object) -> None:
    body = wrap(nested(depth))  # type: ignore[operator]
    with iris.client() as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert f"deeper than {MAX_JSON_DEPTH} levels" in r.text
        assert c.get("/health/ready").status_code == 200  # same connection, still served


def test_json_at_the_limit_is_parsed(iris: Replica) -> None:
    """Depth itself is fine up to the limit: this body fails on its rows, not its depth."""
    with iris.client() as c:
        r = c.post("/", content=b'{"inputs": ' + nested(MAX_JSON_DEPTH - 1) + b"}")
    assert r.status_code == 422
    assert "deeper than" not in r.text


def test_replica_survives(iris: Replica) -> None:
    assert iris.proc.poll() is None, iris.log()
    with httpx.Client(base_url=iris.url, timeout=30) as c:
        assert c.get("/health/live").status_code == 200
