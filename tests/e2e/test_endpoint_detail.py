"""One endpoint's page in Chromium: the frame's actions and the watching tabs (overview,
instances, monitoring, logs, events, request logs, usage), against one shared iris
endpoint (plus one more to delete)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.server import ServerProcess, wait_running, wait_until

MAIN = "detail-main"
DOOMED = "detail-doomed"
BODY = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture(scope="module")
def endpoint(server: ServerProcess, iris_model: str) -> Iterator[str]:
    with server.client() as client:
        for name in (MAIN, DOOMED):
            client.deploy({"name": name, "model": iris_model})
        for name in (MAIN, DOOMED):
            wait_running(client, name)
    yield MAIN


def _open(page: Any, tab: str, query: str = "") -> None:
    page.goto(f"/#/endpoints/{MAIN}/{tab}{query}")
    expect(page.get_by_test_id("endpoint-name")).to_have_text(MAIN)


def _call(server: ServerProcess, times: int) -> None:
    for _ in range(times):
        res = httpx.post(f"{server.url}/endpoints/{MAIN}/", json=BODY, headers=server.headers)
        assert res.status_code == 200, res.text


def _records(server: ServerProcess) -> list[dict[str, Any]]:
    res = httpx.get(
        f"{server.url}/api/v1/endpoints/{MAIN}/requests",
        params={"limit": 1000},
        headers=server.headers,
    )
    res.raise_for_status()
    items: list[dict[str, Any]] = res.json()["items"]
    return items


def test_overview_shows_the_url_and_a_curl_snippet_that_works(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    _open(page, "overview")
    url = f"{server.url}/endpoints/{endpoint}"
    expect(page.get_by_test_id("endpoint-url")).to_have_text(url)
    expect(page.get_by_test_id("model-link")).to_have_attribute("href", "#/models/iris")
    expect(page.get_by_test_id("stat-replicas")).to_contain_text("1/1")
    snippet = page.get_by_test_id("snippet")
    expect(snippet).to_contain_text("curl")
    expect(snippet).to_contain_text("Authorization: Bearer $PODIUM_TOKEN")
    text = snippet.locator("pre").inner_text()
    called = re.search(r"curl -s (\S+)", text)
    body = re.search(r"-d '(.*)'", text)
    assert called and body, text
    assert called.group(1) == url + "/"
    # run what it shows: same URL, body and header, with $PODIUM_TOKEN the admin token
    res = httpx.post(
        called.group(1),
        content=body.group(1),
        headers={"authorization": f"Bearer {server.token}", "content-type": "application/json"},
    )
    assert res.status_code == 200, res.text
    assert res.json() == [0]  # setosa
    page.get_by_role("tab", name="Python (Podium SDK)").click()
    expect(snippet).to_contain_text(f'client.invoke("{endpoint}"')
    program = snippet.locator("pre").inner_text()
    env = {**os.environ, "PODIUM_TOKEN": server.token}
    ran = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[0]"


def test_overview_asks_the_input_width_again_after_a_failure(page: Any, endpoint: str) -> None:
    # the replica's metadata call fails once (a network error), then answers 3 columns
    answers: list[str] = []

    def metadata(route: Any) -> None:
        answers.append(route.request.url)
        if len(answers) == 1:
            route.abort()
        else:
            body = '{"name": "m", "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 3]}]}'
            route.fulfill(status=200, content_type="application/json", body=body)

    page.errors.allow("Failed to load resource")
    page.route(f"**/endpoints/{endpoint}/v2/models/{endpoint}", metadata)
    _open(page, "overview")
    snippet = page.get_by_test_id("snippet")
    expect(snippet).to_contain_text('{"inputs":[[5.1,3.5,1.4]]}', timeout=15_000)
    assert len(answers) == 2, answers  # asked again once, then kept


def test_instances_show_the_replica_and_its_cold_start(page: Any, endpoint: str) -> None:
    _open(page, "instances")
    table = page.get_by_test_id("replicas")
    expect(table).to_contain_text(f"{endpoint}-r1-")
    expect(table).to_contain_text("ready")
    expect(table.get_by_test_id("start-phases")).to_contain_text("load")


def test_request_logs_show_the_calls_open_one_and_download_csv(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    before = len(_records(server))
    _call(server, 3)
    wait_until(lambda: len(_records(server)) >= before + 3, what="3 request records")
    records = _records(server)
    _open(page, "requests")
    table = page.get_by_test_id("requests")
    expect(page.get_by_test_id("request-count")).to_have_text(
        re.compile(rf"^{len(records)} records shown")
    )
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(records))
    expect(rows.first).to_contain_text("200")
    expect(rows.first).to_contain_text(records[0]["request_id"])

    rows.first.click()
    record = page.get_by_test_id("request-record")
    expect(record).to_contain_text(records[0]["request_id"])
    expect(record.locator('[data-field="status"]')).to_have_text("200")
    expect(record.locator('[data-field="replica_id"]')).to_contain_text(f"{endpoint}-r1-")

    page.get_by_label("Status class").select_option("5xx")
    expect(table).to_contain_text("No record matches these filters.")
    assert "status=5xx" in page.url  # the filter is in the address
    page.get_by_label("Status class").select_option("2xx")
    expect(rows).to_have_count(len(records))

    with page.expect_download() as got:
        page.get_by_role("button", name="Download CSV").click()
    path = got.value.path()
    with open(path, newline="") as f:
        rows_csv = list(csv.DictReader(f))
    assert [r["request_id"] for r in rows_csv] == [r["request_id"] for r in records]
    assert {r["status"] for r in rows_csv} == {"200"}


def test_request_logs_load_older_then_new_calls_leave_no_hole(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    # more than one page (100): the first page says older ones exist
    missing = 105 - len(_records(server))
    _call(server, max(missing, 0))
    wait_until(lambda: len(_records(server)) >= 105, what="105 request records")
    total = len(_records(server))
    _open(page, "requests")
    count = page.get_by_test_id("request-count")
    expect(count).to_have_text(re.compile(r"^100 records shown \(more are older\)"))
    page.get_by_role("button", name="Load older").click()
    expect(count).to_have_text(re.compile(rf"^{total} records shown"))
    # new calls arrive on top, and nothing between them and the older pages goes missing
    _call(server, 3)
    wait_until(lambda: len(_records(server)) >= total + 3, what="3 more request records")
    records = _records(server)
    expect(count).to_have_text(re.compile(rf"^{len(records)} records shown"))
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(len(records))
    expect(rows.first).to_contain_text(records[0]["request_id"])
    expect(rows.last).to_contain_text(records[-1]["request_id"])


def test_monitoring_shows_a_point_on_the_requests_graph(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    _call(server, 2)

    def sampled() -> bool:
        res = httpx.get(
            f"{server.url}/api/v1/endpoints/{endpoint}/metrics",
            params={"series": "requests", "from": int(time.time()) - 900},
            headers=server.headers,
        )
        res.raise_for_status()
        return any(v for v in res.json()["series"]["requests"] if v)

    wait_until(sampled, timeout=90, what="a metrics point with requests")  # 10 s samples
    _open(page, "monitoring", "?span=15m")
    chart = page.get_by_test_id("chart-requests")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9][0-9]*$"))
    # a value is drawn, not only timestamps: the plot's non-null values and its largest
    plot = page.get_by_test_id("plot-requests")
    expect(plot).to_have_attribute("data-values", re.compile(r"^[1-9][0-9]*$"))
    expect(plot).to_have_attribute("data-max", re.compile(r"^[1-9][0-9.]*$"))
    expect(page.get_by_test_id("chart-replicas")).to_be_visible()
    # no 5xx: the error rate's axis spans 0 to 100%, not uPlot's default 0 to 10,000%
    rate_plot = page.get_by_test_id("chart-error_rate").locator("div").first
    expect(rate_plot).to_have_attribute("data-y-max", "1")
    # a plot can be hidden, and stays hidden after a reload
    page.get_by_role("checkbox", name="Network (per step)").uncheck()
    expect(page.get_by_test_id("chart-network")).to_have_count(0)
    page.reload()
    expect(chart).to_be_visible()
    expect(page.get_by_test_id("chart-network")).to_have_count(0)
    expect(page.get_by_role("checkbox", name="Network (per step)")).not_to_be_checked()


def test_logs_show_the_replica_lines_and_events_the_creation(page: Any, endpoint: str) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if f"/{endpoint}/logs" in r.url else None)
    _open(page, "logs")
    logs = page.get_by_test_id("logs")
    expect(logs).to_contain_text("ready on http://")
    expect(page.get_by_test_id("log-count")).to_contain_text("following")
    # one stream that the server keeps writing to, not a poll that reads the tail again
    assert asked and all("follow=true" in u for u in asked), asked
    page.get_by_label("Search logs").fill("no such line anywhere")
    expect(logs).to_contain_text("No line matches the search.")
    page.get_by_role("tab", name="Events").click()
    events = page.get_by_test_id("events")
    expect(events).to_contain_text(f"created endpoint {endpoint}")
    expect(events.locator("tbody tr").first).not_to_contain_text("created endpoint")  # newest first


def test_events_are_read_from_the_start_once_per_page(page: Any, endpoint: str) -> None:
    from_start = re.compile(r"[?&]after=0(&|$)")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if f"/{endpoint}/events" in r.url else None)
    _open(page, "events")
    expect(page.get_by_test_id("events")).to_contain_text(f"created endpoint {endpoint}")
    page.get_by_role("tab", name="Logs", exact=True).click()
    expect(page.get_by_test_id("logs")).to_be_visible()

    def newer_only(r: Any) -> bool:
        return f"/{endpoint}/events" in r.url and not from_start.search(r.url)

    with page.expect_request(newer_only, timeout=15_000):
        page.get_by_role("tab", name="Events").click()
    expect(page.get_by_test_id("events")).to_contain_text(f"created endpoint {endpoint}")
    # back on the tab, only events newer than those held are asked for
    assert len([u for u in asked if from_start.search(u)]) == 1, asked


def test_usage_shows_replica_hours_and_cost(page: Any, endpoint: str) -> None:
    _open(page, "usage")
    expect(page.get_by_test_id("usage-types")).to_contain_text("cpu-small")
    expect(page.get_by_test_id("usage-cost")).to_contain_text("$")


def test_pause_resume_scale_to_zero_and_wake(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    _open(page, "overview")
    status = page.get_by_test_id("endpoint-status")
    expect(status).to_have_text("running")
    page.get_by_role("button", name="Pause").click()
    page.get_by_test_id("confirm").click()
    expect(status).to_have_text("paused")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    page.get_by_test_id("confirm").click()
    expect(status).to_have_text("running", timeout=90_000)
    page.get_by_role("button", name="Scale to zero").click()
    page.get_by_test_id("confirm").click()
    expect(status).to_have_text("scaled to zero")
    page.get_by_role("button", name="Wake").click()
    page.get_by_test_id("confirm").click()
    expect(status).to_have_text("running", timeout=90_000)
    with server.client() as client:
        wait_running(client, endpoint)


def test_delete_an_endpoint(page: Any, server: ServerProcess, endpoint: str) -> None:
    page.goto(f"/#/endpoints/{DOOMED}/overview")
    expect(page.get_by_test_id("endpoint-name")).to_have_text(DOOMED)
    page.get_by_role("button", name="Delete").click()
    page.get_by_test_id("confirm").click()
    expect(page).to_have_url(re.compile(r"#/endpoints$"))

    def gone() -> bool:
        res = httpx.get(f"{server.url}/api/v1/endpoints", headers=server.headers)
        return DOOMED not in [e["name"] for e in res.json()["items"]]

    wait_until(gone, timeout=60, what=f"{DOOMED} gone from the list")


def test_a_reader_sees_no_action_buttons(
    page_as: Any, server: ServerProcess, endpoint: str
) -> None:
    res = httpx.post(
        f"{server.url}/api/v1/tokens",
        json={"name": "detail-reader", "scopes": ["read"]},
        headers=server.headers,
    )
    assert res.status_code == 201, res.text
    page = page_as(res.json()["token"])
    _open(page, "overview")
    expect(page.get_by_test_id("endpoint-status")).to_have_text("running")
    for name in ("Pause", "Resume", "Scale to zero", "Wake", "Delete"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
