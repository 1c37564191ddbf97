"""The routing table: built from the tracked replicas at the end of each pass and published
to the gateway (`core.routing.RoutingSource`) when it differs from the last one.

Only ready replicas are routed; an endpoint being deleted has no route. Published before
anything drained is stopped, so a replica leaves the table before its process is told to
stop (`draining`).
"""

from __future__ import annotations

from collections.abc import Iterable

from podium.control.state import ControllerState
from podium.core.phases import EndpointStatus, ReplicaState
from podium.core.routing import EndpointRoute, ReplicaRoute, RoutingSource, endpoint_route
from podium.runtimes.registry import serves_openai
from podium.store.records import EndpointRecord


class Publisher:
    def __init__(self, holder: RoutingSource, state: ControllerState) -> None:
        self.holder = holder
        self.state = state
        self._routes: dict[str, EndpointRoute] = {}  # as last published

    def build(self, endpoints: Iterable[EndpointRecord]) -> dict[str, EndpointRoute]:
        """The route of every endpoint that is not being deleted."""
        replicas = sorted(self.state.replicas.values(), key=lambda r: r.replica_id)
        routes: dict[str, EndpointRoute] = {}
        for ep in endpoints:
            if ep.status is EndpointStatus.DELETING:
                continue
            ready = tuple(
                ReplicaRoute(r.replica_id, r.host, r.port, r.revision)
                for r in replicas
                if r.endpoint == ep.name and r.state is ReplicaState.READY
            )
            routes[ep.name] = endpoint_route(
                ep.spec,
                self.state.current_status(ep),
                created=int(ep.created_at.timestamp()),
                openai=serves_openai(ep.spec.framework, ep.spec.task),
                replicas=ready,
            )
        return routes

    def publish(self, endpoints: Iterable[EndpointRecord]) -> None:
        routes = self.build(endpoints)
        if routes != self._routes:
            # The holder keeps what the API added or removed since this pass read the store.
            self._routes = routes
            self.holder.publish(routes)
