"""Every gateway's load, summed for the leading controller (issue 16).

Each gateway process runs a `GatewayReporter`: every `report_s` it upserts its row in
`gateway_reports` (its `service_snapshot()`, `load_snapshot()` and outstanding requests per
replica, as JSON, stamped with the database's clock); its thread deletes the row as its
last act when it is closed (never another thread: a report still in progress would put the
row back).

The controller reads them through `ClusterGatewayView`, a `core.routing.GatewayView`, so
the autoscaler, the metrics history, draining and crash accounting decide on the sum of
all gateways without knowing there are several:

* `in_flight`, `held` and `outstanding(replica)` are sums over the *live* gateways: rows
  fresher than `live_s` (a few report periods). A gateway that stopped reporting holds no
  request we could wait for.
* Cumulative counts (requests, errors, successes, latency buckets, bytes) must only grow,
  because the controller keeps differences between snapshots. So a gateway that leaves
  (row deleted, or a new incarnation under the same id: a restart counting from zero) has
  its last counts folded into a base that stays in every later sum. A row that went stale
  without being deleted (a crashed or partitioned gateway) still counts with its last
  figures (it may come back with the same incarnation); such rows are deleted after
  `PRUNE_S`, and folded then. A row that does not decode keeps its last readable report
  (it is not taken for a gateway that left: a later read would count it twice). The base
  forgets a replica or an endpoint that no report has named for `FORGET_AFTER_S`, as a
  gateway's own meters do (`gateway.metering`).
* The view reads the table on a thread of its own every `refresh_s` (`start()`), and its
  methods return the last sum: they are called on the controller's event loop, which must
  never wait for the database. If the database cannot be read, the last sum is kept.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.coordination import load_codec
from podium.coordination.load_codec import Report, add_counts, add_load
from podium.coordination.loop_thread import LoopThread
from podium.core.routing import EndpointLoad, GatewayView
from podium.core.service_counts import ReplicaCounts, ServiceCounts, ServiceSnapshot
from podium.store import Database
from podium.store.coordination import GatewayReportRecord

log = logging.getLogger(__name__)

REPORT_S = 0.5  # how often a gateway reports
LIVE_S = 2.0  # a report older than this is not live (4 report periods)
REFRESH_S = 0.25  # how often the view reads the table
PRUNE_S = 600.0  # rows of gateways silent this long are deleted (and their counts folded)
PRUNE_EVERY_S = 60.0
FORGET_AFTER_S = 300.0  # a replica or endpoint no report names is forgotten from the base


def new_gateway_id() -> str:
    """An id for this process's gateway: host, pid and a random part (never reused)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class LoadSource(GatewayView, Protocol):
    """What a reporter reads of its gateway (`gateway.app.Gateway` implements it)."""

    def outstanding_all(self) -> Mapping[str, int]:
        """Requests in flight per replica through this gateway."""
        ...


class GatewayReporter:
    """A thread in a gateway process that reports its load every `report_s` (module doc).
    `report()` is one report (what the thread does each period)."""

    def __init__(
        self,
        db: Database,
        gateway_id: str,
        gateway: LoadSource,
        *,
        report_s: float = REPORT_S,
        name: str = "podium-load-report",
    ) -> None:
        self._db = db
        self.gateway_id = gateway_id
        self._gateway = gateway
        self._incarnation = secrets.token_hex(8)
        self._loop = LoopThread(
            name,
            report_s,
            self.report,
            what=f"gateway {gateway_id}'s load report",
            on_exit=self._delete,  # after the last report: nothing can put the row back
        )

    def start(self) -> None:
        self._loop.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop reporting and delete this gateway's row (its counts are then folded).

        The thread deletes it as its last act, after any report in progress; if it does
        not end within `timeout` (a database that does not answer), the row is deleted
        when the thread gets there, or goes stale and is pruned."""
        if not self._loop.started:
            self._loop.close()
            self._delete()
        elif not self._loop.close(timeout):
            log.warning("gateway %s: its last report has not ended; not waiting", self.gateway_id)

    def report(self) -> None:
        g = self._gateway
        body = load_codec.encode(
            Report(self._incarnation, g.service_snapshot(), g.load_snapshot(), g.outstanding_all())
        )
        with self._db.unit_of_work() as uow:
            uow.gateway_reports.put(self.gateway_id, body)

    def _delete(self) -> None:
        try:
            with self._db.unit_of_work() as uow:
                uow.gateway_reports.delete(self.gateway_id)
        except Exception as e:  # the row goes stale and is pruned later
            log.warning("could not delete gateway report %s: %s", self.gateway_id, e)


@dataclass
class _Sum:
    service: ServiceSnapshot = field(default_factory=ServiceSnapshot)
    load: dict[str, EndpointLoad] = field(default_factory=dict)
    outstanding: dict[str, int] = field(default_factory=dict)
    live: int = 0


class ClusterGatewayView:
    """The controller's `GatewayView` over every gateway's report (module doc).

    `start()` starts the thread that calls `refresh()` every `refresh_s`; `close()` stops
    it. Reading the view never does I/O: it returns the sum of the last refresh. If the
    database cannot be read, the last sum is kept (and the failure logged once).
    """

    def __init__(
        self,
        db: Database,
        *,
        live_s: float = LIVE_S,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
        name: str = "podium-load-view",
    ) -> None:
        self._db = db
        self._live_s = live_s
        self._clock = clock
        self._folding = threading.Lock()  # one fold at a time (never held during I/O)
        self._live: dict[str, Report] = {}  # fresh reports, by gateway id
        self._stale: dict[str, Report] = {}  # rows no longer fresh but not deleted
        self._unreadable: set[str] = set()  # gateways whose row did not decode (logged)
        self._base_endpoints: dict[str, ServiceCounts] = {}  # folded: gateways that left
        self._base_replicas: dict[str, ReplicaCounts] = {}
        self._base_load: dict[str, EndpointLoad] = {}
        self._replica_named: dict[str, float] = {}  # replica -> when a report last named it
        self._endpoint_named: dict[str, float] = {}  # endpoint -> when a report last named it
        self._sum = _Sum()
        self._pruned_at: float | None = None
        self._loop = LoopThread(name, refresh_s, self.refresh, what="reading gateway reports")
        self.queries = 0  # reads of the table so far (for tests)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def close(self, timeout: float = 10.0) -> None:
        self._loop.close(timeout)

    # -- GatewayView (no I/O: the last refresh's sum) ---------------------------------------

    def outstanding(self, replica_id: str) -> int:
        return self._sum.outstanding.get(replica_id, 0)

    def service_snapshot(self) -> ServiceSnapshot:
        return self._sum.service

    def load_snapshot(self) -> Mapping[str, EndpointLoad]:
        return self._sum.load

    def live_gateways(self) -> int:
        """Gateways whose report was fresh at the last refresh."""
        return self._sum.live

    # -- reading --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read every report (pruning the long-silent ones once per `PRUNE_EVERY_S`) and
        sum them; raises what the store raises, with the last sum kept."""
        now = self._clock()
        prune = self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S
        with self._db.unit_of_work() as uow:  # no lock held: this may wait for the database
            if prune:
                uow.gateway_reports.prune(PRUNE_S)
            rows = uow.gateway_reports.all(self._live_s)
        self.queries += 1
        with self._folding:
            if prune:
                self._pruned_at = now
            self._take(rows, now)

    def _take(self, rows: list[GatewayReportRecord], now: float) -> None:
        present: dict[str, tuple[Report, bool]] = {}
        for row in rows:
            try:
                present[row.gateway_id] = (load_codec.decode(row.body), row.fresh)
                self._unreadable.discard(row.gateway_id)
            except (ValueError, KeyError, TypeError) as e:
                if row.gateway_id not in self._unreadable:
                    log.warning(
                        "an unreadable report of gateway %s (%s); keeping its last",
                        row.gateway_id,
                        e,
                    )
                    self._unreadable.add(row.gateway_id)
                last = self._live.get(row.gateway_id) or self._stale.get(row.gateway_id)
                if last is not None:  # still there: neither gone nor counted afresh
                    present[row.gateway_id] = (last, row.fresh)
        for gateway_id, old in {**self._stale, **self._live}.items():
            current = present.get(gateway_id)
            if current is None or current[0].incarnation != old.incarnation:
                self._fold(old, now)  # left, or restarted and counts from zero again
        self._unreadable &= {row.gateway_id for row in rows}
        self._live = {g: r for g, (r, fresh) in present.items() if fresh}
        self._stale = {g: r for g, (r, fresh) in present.items() if not fresh}
        self._sum = self._summed(now)

    def _fold(self, report: Report, now: float) -> None:
        for name, counts in report.service.endpoints.items():
            self._base_endpoints[name] = add_counts(self._base_endpoints.get(name), counts)
            self._endpoint_named[name] = now
        for rid, rc in report.service.replicas.items():
            base = self._base_replicas.get(rid)
            self._base_replicas[rid] = ReplicaCounts(
                rc.endpoint, add_counts(base.counts if base else None, rc.counts)
            )
            self._replica_named[rid] = now
        for name, load in report.load.items():
            self._base_load[name] = add_load(self._base_load.get(name), load, live=False)
            self._endpoint_named[name] = now

    def _summed(self, now: float) -> _Sum:
        reports = [*self._live.values(), *self._stale.values()]
        replicas_named = {rid for r in reports for rid in r.service.replicas}
        _forget(now, replicas_named, self._replica_named, self._base_replicas)
        endpoints_named = {n for r in reports for n in (*r.service.endpoints, *r.load)}
        _forget(now, endpoints_named, self._endpoint_named, self._base_endpoints, self._base_load)
        endpoints = dict(self._base_endpoints)
        replicas = dict(self._base_replicas)
        load = dict(self._base_load)
        for r in reports:
            for name, counts in r.service.endpoints.items():
                endpoints[name] = add_counts(endpoints.get(name), counts)
            for rid, rc in r.service.replicas.items():
                base = replicas.get(rid)
                replicas[rid] = ReplicaCounts(
                    rc.endpoint, add_counts(base.counts if base else None, rc.counts)
                )
        for live, group in ((True, self._live.values()), (False, self._stale.values())):
            for r in group:
                for name, x in r.load.items():
                    load[name] = add_load(load.get(name), x, live=live)
        outstanding: dict[str, int] = {}
        for r in self._live.values():
            for rid, n in r.outstanding.items():
                outstanding[rid] = outstanding.get(rid, 0) + n
        service = ServiceSnapshot(taken_at=time.time(), endpoints=endpoints, replicas=replicas)
        return _Sum(service, load, outstanding, len(self._live))


def _forget(now: float, named: set[str], when: dict[str, float], *bases: dict[str, Any]) -> None:
    """Forget from `bases` the keys no report has named for `FORGET_AFTER_S` (`when`: the
    last time a report named each)."""
    for key in {k for base in bases for k in base}:
        if key in named:
            when[key] = now
        elif now - when.get(key, now) > FORGET_AFTER_S:
            for base in bases:
                base.pop(key, None)
            when.pop(key, None)


def _as_view(view: ClusterGatewayView) -> GatewayView:  # mypy: it implements the protocol
    return view
