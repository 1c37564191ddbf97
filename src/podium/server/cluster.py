"""How one `podium server` of several reaches the others (issue 16), through PostgreSQL.

`podium up` is alone: its routing table travels in memory, its gateway wakes its own
controller and is the controller's view of the load. A `podium server` on PostgreSQL
(`one_of_several`) shares those with the other processes instead (`podium.coordination`):

- the routing table: the leader publishes it into the store under its fence, every process
  follows it through LISTEN/NOTIFY with a periodic full read (`PgRoutingSource`); a gateway
  process installs each route with its share of the replica's `max_concurrency`;
- wakes: any process's gateway (a held request, a failed replica) or API (a deploy) wakes
  the leader wherever it runs (`NotifyWaker` → `WakeListener` in each controller process);
- load: each gateway reports what it holds, sends and has served every 0.5 s
  (`GatewayReporter`); the controller sums the reports (`ClusterGatewayView`), so the
  autoscaler, the draining and the metrics history see every gateway.

`Cluster` makes the parts this process's roles need and starts and stops them; the
server asks it for the routing source, the waker and the controller's view.
"""

from __future__ import annotations

from podium.coordination.fencing import Fence
from podium.coordination.loads import ClusterGatewayView, GatewayReporter, new_gateway_id
from podium.coordination.routing_pg import PgRoutingSource
from podium.coordination.wake import NotifyWaker, WakeListener
from podium.core.routing import Waker
from podium.core.settings import Role, Settings
from podium.gateway.app import Gateway
from podium.store.db import Database

ROUTING_WAIT_S = 10.0  # how long start-up waits for the stored routing table


class Cluster:
    """The coordination parts of one process of several (module doc)."""

    def __init__(self, settings: Settings, db: Database, *, fence: Fence | None) -> None:
        roles = settings.roles
        self.db = db
        self.gateway_id = new_gateway_id() if Role.GATEWAY in roles else None
        self.waker = NotifyWaker(db)
        self.routing = PgRoutingSource(
            db,
            fence=fence,  # the controller candidate's: it publishes only while it leads
            wake=self.waker,  # the API's add / remove reach the leader
            gateway_id=self.gateway_id,  # this gateway's share of each max_concurrency
            refresh_s=settings.routing_refresh_s,
        )
        self.view = ClusterGatewayView(db) if Role.CONTROLLER in roles else None
        self._reporter: GatewayReporter | None = None
        self._wakes: WakeListener | None = None

    def report(self, gateway: Gateway) -> None:
        """This process's gateway reports its load for the leader to sum."""
        assert self.gateway_id is not None  # made with the gateway role
        self._reporter = GatewayReporter(self.db, self.gateway_id, gateway)

    def listen(self, wake: Waker) -> None:
        """Wakes sent by any process reach this process's controller candidate."""
        self._wakes = WakeListener(self.db, wake)

    def start(self) -> bool:
        """Start every part; True once the stored routing table was read (a gateway
        started before it would answer 404 for every endpoint)."""
        self.waker.start()
        loaded = self.routing.start(ROUTING_WAIT_S)
        for part in (self.view, self._reporter, self._wakes):
            if part is not None:
                part.start()
        return loaded

    def close(self) -> None:
        """Stop every part: the load report first (its row is deleted, so the leader stops
        counting this gateway at once), the routing table's follower last."""
        for part in (self._reporter, self._wakes, self.view):
            if part is not None:
                part.close()
        self.routing.close()
        self.waker.close()
