"""One replica's Prometheus metrics, fetched from the replica by the API server.

A replica's `/metrics` is internal (the gateway refuses it); this is how users read it:
`GET /api/v1/endpoints/{name}/replicas/{replica_id}/metrics`. The replica is looked up in
the store (it must belong to the endpoint), asked once with a timeout, and its answer is
passed on as it is, up to `MAX_BYTES`. A replica that does not answer is `Unavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from podium.core.errors import NotFound, Unavailable
from podium.store import UnitOfWork

MAX_BYTES = 8 * 1024 * 1024  # far above what a replica's registry holds
DEFAULT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ReplicaAddress:
    replica_id: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Metrics:
    body: bytes
    content_type: str


def find(uow: UnitOfWork, name: str, replica_id: str) -> ReplicaAddress:
    """The replica of endpoint `name` (NotFound for the endpoint, then field "replica_id")."""
    uow.endpoints.get(name)
    for r in uow.replicas.list(endpoint=name):
        if r.replica_id == replica_id:
            return ReplicaAddress(r.replica_id, r.host, r.port)
    raise NotFound(f"endpoint {name} has no replica {replica_id!r}", field="replica_id")


async def fetch(replica: ReplicaAddress, timeout_s: float) -> Metrics:
    """GET the replica's /metrics, once, within `timeout_s`."""
    url = f"http://{replica.host}:{replica.port}/metrics"
    why: str
    try:
        async with (
            httpx.AsyncClient(timeout=timeout_s, trust_env=False) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                why = f"it answered {response.status_code}"
            else:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise Unavailable(
                            f"replica {replica.replica_id}'s metrics exceed {MAX_BYTES} bytes"
                        )
                ctype = response.headers.get("content-type", DEFAULT_CONTENT_TYPE)
                return Metrics(bytes(body), ctype)
    except httpx.TimeoutException:
        why = f"it did not answer within {timeout_s:g} s"
    except httpx.HTTPError as e:
        why = f"it could not be reached ({type(e).__name__})"
    raise Unavailable(f"no metrics from replica {replica.replica_id}: {why}")
