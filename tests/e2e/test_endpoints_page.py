"""The Endpoints page in Chromium: tabs with counts, search, filters, sorting in the
address, the CSV of the current view, and a new endpoint showing up without a reload.

One real sklearn endpoint runs (`listp-run`); two more cost nothing: `listp-zero` is
created with `min_replicas: 0` (scaled to zero, no replica) and `listp-paused` is created
the same way, then paused. Every test searches for `listp-` so that endpoints of other
tests on the shared server do not count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import ServerProcess, wait_running, wait_until

ZERO = {"scaling": {"min_replicas": 0, "max_replicas": 1}}


@pytest.fixture(scope="module")
def endpoints(server: ServerProcess, iris_model: str) -> Iterator[list[str]]:
    names = ["listp-run", "listp-zero", "listp-paused"]
    with server.client() as client:
        client.deploy({"name": names[0], "model": iris_model, "labels": {"team": "a"}})
        client.deploy({"name": names[1], "model": iris_model, "labels": {"team": "b"}, **ZERO})
        client.deploy({"name": names[2], "model": iris_model, **ZERO})
        client.pause(names[2])
        wait_running(client, names[0])
        wait_until(
            lambda: client.endpoint(names[1]).status == "scaled_to_zero",
            what="listp-zero scaled to zero",
        )
        yield names
        for name in names:
            client.delete(name)


def rows(page: Any) -> Any:
    return page.get_by_test_id("endpoints-table").locator("tbody tr")


def names(page: Any) -> Any:
    return page.get_by_test_id("endpoints-table").locator("tbody td:first-child a")


def test_tabs_show_the_right_endpoints_and_counts(
    page: Any, endpoints: list[str], iris_model: str
) -> None:
    page.goto("/#/endpoints?q=listp-")
    expect(page.locator('[data-tab="all"] .count')).to_have_text("3")
    expect(page.locator('[data-tab="active"] .count')).to_have_text("1")
    expect(page.locator('[data-tab="loading"] .count')).to_have_text("0")
    expect(page.locator('[data-tab="zero"] .count')).to_have_text("1")
    expect(page.locator('[data-tab="paused"] .count')).to_have_text("1")
    expect(page.locator('[data-tab="failed"] .count')).to_have_text("0")

    page.get_by_role("tab", name="Active").click()
    expect(names(page)).to_have_text(["listp-run"])
    row = rows(page).first
    expect(row).to_contain_text(f"{iris_model}:")  # the resolved ref, NAME:VERSION
    expect(row).to_contain_text("1/1")  # ready/desired
    expect(row.locator(".badge")).to_have_text("running")
    expect(row).to_contain_text("/endpoints/listp-run")
    page.get_by_role("tab", name="Scaled to zero").click()
    expect(names(page)).to_have_text(["listp-zero"])
    expect(rows(page).first).to_contain_text("0/0")
    page.get_by_role("tab", name="Paused").click()
    expect(names(page)).to_have_text(["listp-paused"])
    assert "tab=paused" in page.url

    # the view is in the address: a reload keeps it
    page.reload()
    expect(page.get_by_role("tab", name="Paused")).to_have_attribute("aria-selected", "true")
    expect(names(page)).to_have_text(["listp-paused"])

    # the link opens the endpoint's page
    names(page).first.click()
    assert "#/endpoints/listp-paused" in page.url


def test_search_filters_and_sort(page: Any, endpoints: list[str]) -> None:
    page.goto("/#/endpoints")
    search = page.get_by_label("Search by name")
    search.fill("listp-")
    expect(names(page)).to_have_count(3)
    search.fill("listp-ze")
    expect(names(page)).to_have_text(["listp-zero"])

    search.fill("listp-")
    page.get_by_label("Filter by status").select_option("paused")
    expect(names(page)).to_have_text(["listp-paused"])
    page.get_by_label("Filter by status").select_option("")
    label_box = page.get_by_label("Filter by label")
    label_box.fill("team=b")
    with page.expect_response(lambda r: "/api/v1/endpoints" in r.url):
        pass  # the next 3 s refresh comes while the user is still typing
    expect(names(page)).to_have_count(3)  # the filter applies on Enter, not per key
    expect(label_box).to_have_value("team=b")  # and the refresh kept what was typed
    label_box.press("Enter")
    expect(names(page)).to_have_text(["listp-zero"])
    page.get_by_role("button", name="Clear filters").click()
    expect(search).to_have_value("")

    search.fill("listp-")
    page.get_by_label("Filter by framework").select_option("sklearn")
    expect(names(page)).to_have_count(3)
    # a framework none of them has (a shared link naming it): the filter leaves no row
    page.goto("/#/endpoints?q=listp-&framework=onnx-none")
    expect(page.get_by_label("Filter by framework")).to_have_value("onnx-none")
    expect(names(page)).to_have_count(0)
    page.get_by_label("Filter by framework").select_option("sklearn")
    expect(names(page)).to_have_count(3)

    header = page.get_by_test_id("endpoints-table").locator('th[data-col="name"]')
    header.click()
    expect(names(page)).to_have_text(["listp-paused", "listp-run", "listp-zero"])
    header.click()
    expect(names(page)).to_have_text(["listp-zero", "listp-run", "listp-paused"])
    expect(header).to_have_attribute("aria-sort", "descending")
    assert "sort=name" in page.url and "dir=desc" in page.url
    # another column: replicas ready, ascending (0, 0, 1): the running one is last
    page.get_by_test_id("endpoints-table").locator('th[data-col="replicas"]').click()
    expect(names(page).last).to_have_text("listp-run")


def test_csv_download_is_the_current_view(page: Any, endpoints: list[str]) -> None:
    page.goto("/#/endpoints?q=listp-&sort=name&dir=desc")
    expect(names(page)).to_have_text(["listp-zero", "listp-run", "listp-paused"])
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("podium-endpoints-all-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as f:
        table = list(csv.DictReader(io.StringIO(f.read())))
    assert [r["endpoint"] for r in table] == names(page).all_inner_texts()
    by_name = {r["endpoint"]: r for r in table}
    assert by_name["listp-run"]["status"] == "running"
    assert by_name["listp-run"]["ready_replicas"] == "1"
    assert by_name["listp-zero"]["status"] == "scaled_to_zero"
    assert by_name["listp-paused"]["status"] == "paused"
    assert by_name["listp-run"]["url"].endswith("/endpoints/listp-run")
    assert by_name["listp-run"]["framework"] == "sklearn"


def test_a_created_endpoint_appears_without_reload(
    page: Any, server: ServerProcess, endpoints: list[str], iris_model: str
) -> None:
    page.goto("/#/endpoints?q=listp-")
    expect(names(page)).to_have_count(3)
    expect(page.get_by_role("button", name="Create endpoint")).to_be_visible()
    with server.client() as client:
        client.deploy({"name": "listp-live", "model": iris_model, **ZERO})
        try:
            expect(names(page)).to_have_count(4)
            expect(page.locator('[data-tab="all"] .count')).to_have_text("4")
            expect(page.get_by_role("link", name="listp-live")).to_be_visible()
        finally:
            client.delete("listp-live")
