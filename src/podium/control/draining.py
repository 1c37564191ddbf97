"""Draining: a replica out of routing is stopped once it has no request left.

A drained replica first stays out of the published table for `UNROUTED_GRACE_S` (a request
may have read the table just before it was published), counted from the moment a table
without it was stored (`TrackedReplica.unrouted_at`, set by `publishing`): while a publish
fails (the database is away) every gateway still routes to it, and it is never stopped.
Then each pass asks it how many requests it holds: a Podium replica reports its own count
(in flight plus queued) on `GET /podium/info` (`load`). That count covers the requests of
every gateway, so draining works when several gateways forward to one replica. All
draining replicas are asked at once, each with a short timeout, so a silent one does not
hold up the pass.

The local gateway's counter (`GatewayView.outstanding`) is still read: a request it has
taken a slot for may not have reached the replica yet, so the larger of the two counts. It
is the only count for external servers (a framework `command` or preset: they have no such
route) and for a Podium replica that does not answer in time. Whatever the counts say, a
replica is stopped once it has drained for `drain_timeout_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from podium.control.journal import Journal
from podium.control.state import ControllerState
from podium.control.tracked import TrackedReplica
from podium.core.clock import Clock
from podium.core.phases import ReplicaState
from podium.core.routing import GatewayView
from podium.core.settings import ControlSettings
from podium.runtimes.presets import health_route

log = logging.getLogger("podium.control")

# A drained replica is out of the published table at least this long before it is stopped:
# the gateway reads the table and takes a replica slot without awaiting anything between,
# so this only has to outlast a thread switch, with a wide margin.
UNROUTED_GRACE_S = 0.1
LOAD_PATH = "/podium/info"  # a Podium replica's own report, with {"load": {...}}
LOAD_TIMEOUT_S = 0.5  # the replica answers from memory: a slow answer is no answer


class Draining:
    def __init__(
        self,
        cfg: ControlSettings,
        clock: Clock,
        state: ControllerState,
        journal: Journal,
        gateway: GatewayView | None,
        stop: Callable[[TrackedReplica, str], Awaitable[None]],
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.state = state
        self.journal = journal
        self.gateway = gateway
        self._stop = stop

    async def advance(self, http: httpx.AsyncClient) -> None:
        """Stop every draining replica that holds no request (or has drained too long)."""
        now = self.clock.monotonic()
        due = [
            r
            for r in self.state.replicas.values()
            if r.state is ReplicaState.DRAINING
            and r.drain_since is not None
            and r.unrouted_at is not None
            and now - r.unrouted_at >= UNROUTED_GRACE_S
        ]
        if not due:
            return
        counts = await asyncio.gather(*(self._replica_load(http, r) for r in due))
        for r, own in zip(due, counts, strict=True):
            if r.state is not ReplicaState.DRAINING:
                continue
            local = self.gateway.outstanding(r.replica_id) if self.gateway else 0
            busy = max(local, own or 0)
            assert r.drain_since is not None
            if busy == 0 or now - r.drain_since >= self.cfg.drain_timeout_s:
                await self._stop(r, "drained")

    async def _replica_load(self, http: httpx.AsyncClient, r: TrackedReplica) -> int | None:
        """The requests the replica holds by its own count; None for an external server
        or a replica that gives no count in time."""
        spec = self.journal.revision_spec(r.endpoint, r.revision)
        if spec is None or health_route(spec.framework, spec.command, spec.container) is not None:
            return None  # an external server: no count of its own
        try:
            resp = await http.get(r.base_url + LOAD_PATH, timeout=LOAD_TIMEOUT_S)
            doc = resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            doc = None
        load = doc.get("load") if isinstance(doc, dict) else None
        if isinstance(load, dict):
            in_flight, queued = load.get("in_flight"), load.get("queued", 0)
            if isinstance(in_flight, int) and isinstance(queued, int):
                return max(0, int(in_flight) + int(queued))
        log.debug("%s: no load report from draining %s", r.endpoint, r.replica_id)
        return None
