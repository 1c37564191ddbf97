"""The dashboard's shell in Chromium: served at /, login with a token, logout."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.support.server import ServerProcess


def test_login_with_a_token_then_logout(page_as: Any, server: ServerProcess) -> None:
    page = page_as(None)  # no session yet: the login form
    page.errors.allow("401")  # the page's first whoami is refused, as it should be
    expect(page.get_by_label("API token")).to_be_visible()

    page.get_by_label("API token").fill("pdm_not-a-real-token")
    page.get_by_role("button", name="Log in").click()
    error = page.locator('[data-field="token"] .field-error')
    expect(error).to_be_visible()  # next to the field it names

    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".topbar")).to_contain_text("Endpoints")
    assert page.url.endswith("#/endpoints")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert not any(c["name"] == "podium_session" for c in page.context.cookies())


def test_the_page_loads_nothing_from_elsewhere(page: Any, server: ServerProcess) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.reload()
    expect(page.locator(".topbar")).to_be_visible()
    assert requests and all(u.startswith(server.url) for u in requests), requests
