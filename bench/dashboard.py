"""The dashboard's Endpoints page with 200 endpoints: how fast it shows them and sorts.

    python bench/dashboard.py                # 200 endpoints, 5 loads
    python bench/dashboard.py --endpoints 500 --loads 10

A real `podium up` (tests.support.server.running_server, auth on) gets one model (`iris`,
sklearn, skops) and N endpoints on it created with `scaling: {min_replicas: 0}`: they go
to `scaled_to_zero` and no replica starts, so the machine only serves the API and the
page. So that the list's figures (requests per day and per minute, latency, error rate:
one query over `metric_points`, api/services/stats.py) are read from a used server, not
from empty tables, the bench writes `--history-hours` (24) of sampled points (10 s each)
for every endpoint straight into the server's SQLite store, as the controller's sampler
would have. (The request records, GET /endpoints/{n}/requests, are not read by the list,
so none are made.) Then Debian's Chromium (playwright, headless, /usr/bin/chromium) loads
`/#/endpoints` N times, each in a fresh browser context (logged in, empty HTTP cache), and
measures, from the navigation start (performance.timeOrigin):

* rows_ms: until the endpoints table holds all N rows (a MutationObserver installed
  before the page's scripts run notes the moment);
* sorted_ms: until a click on the "Endpoint" header has re-sorted them, i.e. the page is
  interactive. The page is opened sorted by name ascending (`?sort=name`), so the click
  sorts descending: done when the header says descending and the first row is the
  largest name (a click that only flipped the attribute would not count);
* click_ms: that click alone, from the click to the re-sorted rows;
* list_request_start_ms / list_request_ms: when the page's GET /api/v1/endpoints was
  sent and how long the server took to answer it (resource timing), and render_ms: from
  that answer to the N rows in the document (the page's own work).

The median and the max over the loads are printed and written to
bench/results/dashboard.json with the machine. Nothing is asserted: the target (issue 15:
"renders and becomes interactive in under a second") is reported against the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from common import machine, write_results  # noqa: E402
from tests.support.models import train_iris_skops  # noqa: E402
from tests.support.server import ServerProcess, running_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"

# Installed before the page's own scripts: notes when the table first holds N rows.
WATCH_ROWS = """
(() => {
  const want = %d;
  const sel = '[data-testid="endpoints-table"] tbody tr a.ep-name';
  const rows = () => document.querySelectorAll(sel).length;
  const obs = new MutationObserver(() => {
    if (window.__rowsAt === undefined && rows() >= want) {
      window.__rowsAt = performance.now();
      obs.disconnect();
    }
  });
  document.addEventListener("DOMContentLoaded", () =>
    obs.observe(document.body, { childList: true, subtree: true }));
})();
"""

# Clicks the "Endpoint" header of rows sorted ascending and resolves when they are sorted
# by name, descending: `first` (the largest name) leads, which it did not before.
CLICK_SORT = """
async (first) => {
  const table = document.querySelector('[data-testid="endpoints-table"]');
  const head = table.querySelector('th[data-col="name"]');
  const lead = () => table.querySelector("tbody tr a.ep-name").textContent;
  if (head.getAttribute("aria-sort") !== "ascending" || lead() === first)
    throw new Error("the rows are not sorted ascending before the click");
  const done = () => head.getAttribute("aria-sort") === "descending" && lead() === first;
  const t0 = performance.now();
  const at = await new Promise((resolve) => {
    const obs = new MutationObserver(() => {
      if (done()) { obs.disconnect(); resolve(performance.now()); }
    });
    obs.observe(table, { childList: true, subtree: true, attributes: true, characterData: true });
    head.click();
  });
  return { clicked: t0, sorted: at };
}
"""

# The first GET /api/v1/endpoints of the page: when it was sent and answered.
API_TIMING = """
() => {
  const e = performance.getEntriesByType("resource")
    .find((r) => /\\/api\\/v1\\/endpoints($|\\?)/.test(r.name));
  return { start: e.startTime, end: e.responseEnd };
}
"""


def create_endpoints(server: ServerProcess, count: int) -> list[str]:
    names = [f"bench-{i:04d}" for i in range(count)]
    with server.client() as client:
        client.push_model(train_iris_skops(server.home / "iris"), "iris")
        for name in names:
            client.deploy(
                {"name": name, "model": "iris", "scaling": {"min_replicas": 0, "max_replicas": 1}}
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = {e.status for e in client.endpoints()}
            if statuses == {"scaled_to_zero"}:
                break
            time.sleep(0.5)
    return names


def seed_history(server: ServerProcess, names: list[str], hours: float) -> int:
    """`hours` of 10 s points for each endpoint (its own series, replica ""), ending now,
    and their minute and hour rollups (what the sampler writes as each minute and hour
    closes), written into the server's SQLite store; returns how many rows."""
    import sqlite3

    from podium.core.access import endpoint_key
    from podium.store.tables import MetricPointRow

    res = 10  # PODIUM_METRICS_INTERVAL_S's default: the resolution the list reads
    end = int(time.time()) // res * res - res
    slots = range(end - int(hours * 3600) + res, end + 1, res)
    columns = [c.name for c in MetricPointRow.__table__.columns]
    zero = dict.fromkeys(columns, 0) | dict.fromkeys(
        (
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "cpu_percent",
            "rss_bytes",
            "gpu_util_percent",
            "gpu_memory_bytes",
        )
    )
    written = 0
    db = sqlite3.connect(server.home / "podium.db", timeout=60)
    with db:  # one transaction; OR REPLACE: the sampler has written the newest slots already
        for i, name in enumerate(names):
            key = endpoint_key("default", name)
            rows = []
            minutes: dict[int, dict[str, Any]] = {}  # the sampler's minute rollups too
            hours_: dict[int, dict[str, Any]] = {}  # and its hour rollups
            for ts in slots:
                n = 5 + (i + ts // res) % 7
                point = zero | {
                    "endpoint": key,
                    "replica": "",
                    "resolution": res,
                    "ts": ts,
                    "requests": n,
                    "ok": n,
                    "errors_5xx": int(ts % 600 == 0),
                    "latency_sum_ms": 12.5 * n,
                    "latency_buckets": "[]",
                }
                rows.append(tuple(point[c] for c in columns))
                for size, rollups in ((60, minutes), (3600, hours_)):
                    start = ts // size * size
                    if start + size > end:  # not closed: not rolled up yet
                        continue
                    rolled = rollups.get(start)
                    if rolled is None:
                        rollups[start] = point | {"resolution": size, "ts": start}
                    else:
                        for field in ("requests", "ok", "errors_5xx", "latency_sum_ms"):
                            rolled[field] += point[field]
            rows.extend(tuple(m[c] for c in columns) for m in minutes.values())
            rows.extend(tuple(h[c] for c in columns) for h in hours_.values())
            db.executemany(
                f"INSERT OR REPLACE INTO metric_points ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                rows,
            )
            written += len(rows)
    db.close()
    return written


def check_day_total(server: ServerProcess, name: str) -> dict[str, object]:
    """The list's day total of one endpoint against the sum of its seeded 10 s points in
    the same window (`store.stats`: the day ends with the newest closed slot), so a list
    that reads fewer rows than it should shows here, not as a faster figure."""
    import sqlite3

    from podium.core.access import endpoint_key

    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
        end = int(time.time()) // 10 * 10 - 10
        listed = http.get(f"/api/v1/endpoints/{name}").json()["requests"]
    db = sqlite3.connect(server.home / "podium.db", timeout=60)
    (seeded,) = db.execute(
        "SELECT coalesce(sum(requests), 0) FROM metric_points WHERE endpoint = ? "
        "AND replica = '' AND resolution = 10 AND ts > ? AND ts <= ?",
        (endpoint_key("default", name), end - 86_400, end),
    ).fetchone()
    db.close()
    return {"listed": listed, "seeded": seeded}


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) the process has used, in ms (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def time_list(server: ServerProcess, times: int) -> dict[str, float]:
    """GET /api/v1/endpoints from Python (no browser): the server's share of the wait, as
    wall time and as the server process's CPU time (which a busy machine does not inflate;
    it includes whatever else the server did meanwhile)."""
    assert server.proc is not None
    took = []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
        cpu0 = cpu_ms(server.proc.pid)
        for _ in range(times):
            t0 = time.perf_counter()
            http.get("/api/v1/endpoints").raise_for_status()
            took.append((time.perf_counter() - t0) * 1000)
        cpu = (cpu_ms(server.proc.pid) - cpu0) / times
    print(
        f"GET /api/v1/endpoints: {', '.join(f'{t:.0f}' for t in took)} ms wall, "
        f"{cpu:.0f} ms server CPU each",
        flush=True,
    )
    return {
        "median": round(statistics.median(took), 1),
        "max": round(max(took), 1),
        "server_cpu_ms_each": round(cpu, 1),
    }


def measure(server: ServerProcess, count: int, loads: int, first: str) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, float]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for _ in range(loads):
            context = browser.new_context(
                base_url=server.url, viewport={"width": 1400, "height": 900}
            )
            res = context.request.post("/api/v1/session", data={"token": server.token})
            assert res.ok, res.text()
            page = context.new_page()
            page.add_init_script(WATCH_ROWS % count)
            page.goto("/#/endpoints?sort=name")  # ascending: the timed click re-sorts
            page.wait_for_function("() => window.__rowsAt !== undefined", timeout=60_000)
            rows_at = float(page.evaluate("() => window.__rowsAt"))
            click: Any = page.evaluate(CLICK_SORT, first)
            api: Any = page.evaluate(API_TIMING)
            runs.append(
                {
                    "rows_ms": round(rows_at, 1),
                    "sorted_ms": round(float(click["sorted"]), 1),
                    "click_ms": round(float(click["sorted"]) - float(click["clicked"]), 1),
                    "list_request_start_ms": round(float(api["start"]), 1),
                    "list_request_ms": round(float(api["end"]) - float(api["start"]), 1),
                    "render_ms": round(rows_at - float(api["end"]), 1),
                }
            )
            print(f"  load {len(runs)}: {runs[-1]}", flush=True)
            context.close()
        browser.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--history-hours", type=float, default=24.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="podium-bench-dashboard-") as tmp,
        running_server(Path(tmp) / "home") as server,
    ):
        started = time.monotonic()
        names = create_endpoints(server, args.endpoints)
        print(f"{len(names)} endpoints created in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        points = seed_history(server, names, args.history_hours)
        print(f"{points} metric points written in {time.monotonic() - started:.1f} s")
        api_ms = time_list(server, args.loads)
        day_check = check_day_total(server, names[0])
        print(f"day total of {names[0]}: {day_check}")
        runs = measure(server, args.endpoints, args.loads, max(names))
    summary = {
        key: {
            "median": round(statistics.median(r[key] for r in runs), 1),
            "max": round(max(r[key] for r in runs), 1),
        }
        for key in runs[0]
    }
    doc: dict[str, object] = {
        "benchmark": "dashboard endpoints page",
        "endpoints": args.endpoints,
        "loads": args.loads,
        "metric_points": points,
        "history_hours": args.history_hours,
        "browser": CHROMIUM,
        "summary": summary,
        "list_api_direct_ms": api_ms,
        "day_total_check": day_check,
        "runs": runs,
        "target": "rows and a sort click done in under 1000 ms from navigation start",
        "machine": machine(),
    }
    path = write_results("dashboard", doc)
    for key, s in summary.items():
        print(f"{key:>10}: median {s['median']:7.1f} ms   max {s['max']:7.1f} ms")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
