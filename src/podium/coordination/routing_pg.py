"""The routing table shared by several server processes through PostgreSQL (issue 16).

`PgRoutingSource` implements `core.routing.RoutingSource`, so the gateway, the API and the
controller use it exactly as they use `InProcessRoutingSource` (which it wraps for
everything local: the overlay of the API's changes, listeners, `wait_newer`).

* The leading controller's `publish(endpoints)` writes the table as JSON into the one
  `routing_state` row, raising the row's version by one, inside a transaction that first
  checks the controller's `Fence`: a leader that lost the lead gets `core.errors.Fenced`
  and the row is untouched. The same transaction sends `NOTIFY podium_routing, '<version>'`
  (PostgreSQL delivers it at commit, so a follower never hears of a version it cannot
  read yet). The table is then installed locally at once.
* Every process (the leader's too) follows the row: one thread with its own connection
  LISTENs on `podium_routing` and re-reads the row on each notification, after each
  (re)connect and every `refresh_s` regardless (the safety net: a notification is lost
  when the listener's connection drops, and must never be the only way a table arrives).
  While the database is away the last table keeps serving and the thread reconnects with
  backoff (`pg_listen.Listening`).
* Versions: the store's version only grows (an UPDATE of one row, +1), and each row also
  carries the epoch of the leader that stored it. A row is newer than the installed one
  when its (epoch, version) is greater: a new leader's epoch is higher, so a row whose
  version went *down* with a higher epoch (a database restored from a backup, a schema
  made again) is installed at the next refresh; any other older row is ignored. What the
  gateway sees is the local table's version (`InProcessRoutingSource` counts every
  install), which only grows whatever the store does.
* A publish the database refused raises and installs nothing; the controller publishes
  again at its next pass (`control.publishing`), so nothing here keeps or retries it.
* Reads and writes go through the store (`store.coordination`, under its statement
  timeout); the listener's own connection only LISTENs. A row that does not decode is
  logged once per version, and the last table keeps serving.
* `table` is the local table: an attribute read, no lock, no I/O.

**Concurrency shares.** A replica's `max_concurrency` is the number of requests one gateway
sends it at a time. With several gateways, a process that runs one (`gateway_id` given)
installs every route with `max_concurrency` divided by the number of live gateways (fresh
rows in `gateway_reports` other than its own, plus itself), rounded down and never below
1: with n gateways at most n * (c // n) <= c requests reach a replica at once while
n <= c. The hard cap is the replica's own limiter (`replica.concurrency`: `max_concurrency` running,
then up to `max_queue` queued, then 503), which holds whatever the gateways do: between a
gateway's start or end and the next refresh (`refresh_s`) the shares are off by one
gateway, and with more gateways than `max_concurrency` each still sends 1. The share is
re-computed at every refresh; a change reinstalls the table (a new local version).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace

from podium.coordination import routing_codec
from podium.coordination.fencing import Fence
from podium.coordination.pg_listen import Conn, Listening, dsn_of
from podium.core.errors import Fenced
from podium.core.routing import (
    EndpointRoute,
    InProcessRoutingSource,
    RoutingSource,
    RoutingTable,
    TableListener,
    Waker,
)
from podium.store import Database

log = logging.getLogger(__name__)

CHANNEL = "podium_routing"
LIVE_S = 2.0  # a gateway whose report is older than this is not counted (4 report periods)


def share(max_concurrency: int, gateways: int) -> int:
    """One gateway's part of a replica's `max_concurrency` among `gateways` (at least 1)."""
    return max(1, max_concurrency // max(1, gateways))


class PgRoutingSource:
    """A `RoutingSource` whose table is the leader's `routing_state` row (module doc).

    `fence`: the controller's, in the process that may lead (without one, `publish`
    raises `Fenced`). `wake`: how `add` / `remove` reach the leader (`wake.NotifyWaker`).
    `gateway_id`: this process's gateway (the id its `loads.GatewayReporter` reports
    under), so its routes carry its share of each `max_concurrency`; None in a process
    without a gateway. Call `start()` before serving and `close()` at the end.

    `add` / `remove` (the API created or is deleting an endpoint) change this process's
    table at once, with the overlay semantics of `InProcessRoutingSource` (kept until a
    table from the leader agrees), and wake the leader. A gateway in another process
    meanwhile routes by the leader's last table: it answers 404 for the new endpoint, or
    keeps routing the deleted one, until the leader's next table arrives (the wake makes
    that its next pass, well under a second; at worst `refresh_s` after that pass).
    """

    def __init__(
        self,
        db: Database,
        *,
        fence: Fence | None = None,
        wake: Waker | None = None,
        gateway_id: str | None = None,
        refresh_s: float = 5.0,
        live_s: float = LIVE_S,
        name: str = "podium-routing",
    ) -> None:
        self._db = db
        self._fence = fence
        self._wake = wake
        self._gateway_id = gateway_id
        self._live_s = live_s
        self._local = InProcessRoutingSource()
        self._lock = threading.Lock()  # orders installs from the listener and publish
        self._seen = (0, 0)  # the (epoch, version) of the store row installed
        self._shares = 1  # gateways the installed table's concurrency is divided among
        self._endpoints: Mapping[str, EndpointRoute] = {}  # the leader's table, undivided
        self._unreadable = (0, 0)  # the row logged last as unreadable (logged once)
        self.loaded = threading.Event()  # set once the row was read (or found absent)
        self.refreshes = 0  # reads of the row so far (for people and tests)
        self._listening = Listening(
            dsn_of(db),
            CHANNEL,
            name=name if gateway_id is None else f"{name}-{gateway_id}",
            on_notify=self._on_notify,
            on_connect=self._refresh,
            on_tick=self._refresh,
            tick_s=refresh_s,
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, wait_s: float = 5.0) -> bool:
        """Start following the row; True once the stored table was read (within `wait_s`;
        otherwise the table stays empty until the database answers)."""
        self._listening.start()
        return self.loaded.wait(wait_s)

    def close(self) -> None:
        self._listening.close()

    @property
    def listening(self) -> Listening:
        """The listener thread (its `connects` and `connected`, for people and tests)."""
        return self._listening

    @property
    def store_version(self) -> int:
        """The version of the `routing_state` row installed last (0: none yet)."""
        return self._seen[1]

    @property
    def shares(self) -> int:
        """The number of gateways each replica's `max_concurrency` is divided among now."""
        return self._shares

    # -- RoutingSource --------------------------------------------------------------------

    @property
    def table(self) -> RoutingTable:
        return self._local.table

    def publish(self, endpoints: Mapping[str, EndpointRoute]) -> RoutingTable:
        """The leader's table: stored under its fence, notified, installed here.

        Raises `Fenced` (nothing stored, nothing installed) if this process no longer
        leads. If the database cannot be written (`Unavailable`, `Retryable`, or any other
        error), the error is raised and nothing is installed: this process's gateway must
        not route by a table no follower can see while the database cannot tell whether
        this process still leads. The caller publishes again (`control.publishing`).
        No lock is held while the database is asked.
        """
        fence = self._fence
        if fence is None:
            raise Fenced("this process runs no controller: it never publishes routing")
        body = routing_codec.encode(endpoints)
        with self._db.unit_of_work() as uow:
            fence.check(uow.session)
            version = uow.routing_state.store(fence.epoch, body, notify=CHANNEL)
        return self._install((fence.epoch, version), dict(endpoints))

    def add(self, route: EndpointRoute) -> None:
        self._local.add(self._divided(route, self._shares))
        if self._wake is not None:
            self._wake(route.name)

    def remove(self, name: str) -> None:
        self._local.remove(name)
        if self._wake is not None:
            self._wake(name)

    def subscribe(self, listener: TableListener) -> Callable[[], None]:
        return self._local.subscribe(listener)

    def wait_newer(self, version: int, timeout: float) -> RoutingTable:
        return self._local.wait_newer(version, timeout)

    # -- following the row ----------------------------------------------------------------

    def _on_notify(self, conn: Conn, payload: str) -> None:
        try:
            if int(payload) <= self._seen[1]:
                return  # already installed (this process published it, or a read did)
        except ValueError:
            log.warning("ignoring a %s notification with payload %r", CHANNEL, payload[:40])
            return
        self._refresh(conn)

    def _refresh(self, _conn: Conn) -> None:
        """Read the row (and the live gateways) and install what changed."""
        with self._db.unit_of_work(read_only=True) as uow:
            row = uow.routing_state.read()
            shares = (
                1
                if self._gateway_id is None
                else 1 + uow.gateway_reports.count_live_others(self._gateway_id, self._live_s)
            )
        if row is None:
            self._install((0, 0), None, shares)
        else:
            seen = (row.epoch, row.version)
            self._install(seen, self._decoded(seen, row.body), shares)
        self.refreshes += 1
        self.loaded.set()

    def _decoded(self, seen: tuple[int, int], body: str) -> dict[str, EndpointRoute] | None:
        """The row's table if it is newer than the installed one and readable, else None."""
        if seen <= self._seen:
            return None
        try:
            return routing_codec.decode(body)
        except (ValueError, KeyError, TypeError) as e:
            if seen != self._unreadable:  # once per row, not at every refresh
                log.error(
                    "routing_state version %d (epoch %d) is unreadable (%s: %s); "
                    "keeping the last table",
                    seen[1],
                    seen[0],
                    type(e).__name__,
                    e,
                )
                self._unreadable = seen
            return None

    def _install(
        self,
        seen: tuple[int, int],
        endpoints: Mapping[str, EndpointRoute] | None,
        shares: int | None = None,
    ) -> RoutingTable:
        """Make this store row (with these shares) the local table, unless it is not newer
        than the installed one. `endpoints` None: nothing new was read, so at most the
        shares changed (the installed table is divided again). `shares` None: the current
        ones, read under the lock (a listener may change them meanwhile)."""
        with self._lock:
            if shares is None:
                shares = self._shares
            if endpoints is None or seen <= self._seen:
                seen, endpoints = self._seen, self._endpoints
                if shares == self._shares:
                    return self._local.table
            self._seen, self._shares, self._endpoints = seen, shares, endpoints
            divided = {n: self._divided(r, shares) for n, r in endpoints.items()}
            return self._local.publish(divided)

    @staticmethod
    def _divided(route: EndpointRoute, shares: int) -> EndpointRoute:
        if shares <= 1:
            return route
        return replace(route, max_concurrency=share(route.max_concurrency, shares))


def _as_source(source: PgRoutingSource) -> RoutingSource:  # mypy: it implements it
    return source
