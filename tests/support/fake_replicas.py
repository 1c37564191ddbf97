"""Replicas answered in memory, in the spirit of httpx's `MockTransport`: the controller's
probes, scrapes and load questions reach a `FakeReplicas` instead of the network.

Replicas are told apart by host (`fake_backend.FakeBackend` gives `r1.test`, `r2.test`, …
in start order), and each is controlled by putting its host in a set:

- `refused`: nothing listens (a starting replica, or one that crashed); `refuse_all` for all;
- `silent`: connected but no answer (its event loop is blocked): every request times out;
- `not_ready`: readiness answers 503;
- `hung`: liveness answers 503 with the replica's "hung" problem;
- `in_flight[host]`: the requests it reports on `/podium/info` (default 0);
- `metrics[host]`: its `/metrics` text (default empty).

`GET /health/live` is liveness (its `hung_after_s` is recorded in `asked`); any other path
not listed above is a readiness route (external servers have their own health routes).
"""

from __future__ import annotations

import httpx

HUNG = {
    "type": "about:blank",
    "title": "Hung",
    "status": 503,
    "detail": "hung: the oldest call into the python runtime has run for 13.0 s without "
    "finishing (limit 12 s)",
    "hung": True,
    "limit_s": 12,
    "running_calls": 1,
    "oldest_call_s": 13.0,
}


class FakeReplicas:
    def __init__(self, *, refuse_all: bool = False) -> None:
        self.refuse_all = refuse_all
        self.refused: set[str] = set()
        self.silent: set[str] = set()
        self.not_ready: set[str] = set()
        self.hung: set[str] = set()
        self.in_flight: dict[str, int] = {}
        self.metrics: dict[str, str] = {}
        self.asked: list[str] = []  # hung_after_s of each liveness probe
        self.requests: list[tuple[str, str]] = []  # (host, path) of every request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        self.requests.append((host, path))
        if self.refuse_all or host in self.refused:
            raise httpx.ConnectError("connection refused", request=request)
        if host in self.silent:
            raise httpx.ReadTimeout("no answer", request=request)
        if path == "/health/live":
            self.asked.append(request.url.params.get("hung_after_s", ""))
            if host in self.hung:
                return httpx.Response(503, json=HUNG)
            return httpx.Response(200, json={"status": "live"})
        if path == "/podium/info":
            load = {"in_flight": self.in_flight.get(host, 0), "queued": 0}
            return httpx.Response(200, json={"replica_id": host, "load": load})
        if path == "/metrics":
            return httpx.Response(200, text=self.metrics.get(host, ""))
        if host in self.not_ready:
            return httpx.Response(503, json={"title": "Not Ready"})
        return httpx.Response(200, json={"status": "ready"})

    def asked_for(self, path: str) -> list[str]:
        """The hosts asked for `path`, in order."""
        return [host for host, p in self.requests if p == path]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())
