"""A token with only `read`: every page draws no write button or form, and a write
forged from the page (the session cookie and the CSRF header, as the page would send
them) is refused by the API with 403 problem+json.

The pages and the buttons checked are lists (`PAGES`, `WRITE_BUTTONS`): a page that
gains a write action adds its button's name here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import ServerProcess

ENDPOINT = "admin-ro-iris"
SECRET = "admin-ro-key"

# Names of buttons that change something; none may be drawn for a read-only token.
WRITE_BUTTONS = [
    "Create",
    "New",
    "Deploy",
    "Apply",
    "Save",
    "Upload",
    "Push",
    "Pause",
    "Resume",
    "Scale to zero",
    "Wake",
    "Delete",
    "Remove",
    "Replace",
    "Revoke",
    "Cancel",
    "Edit",
    "Send",
    "Invoke",
    "Run",
]
# Buttons that start like one of those but change nothing (they only change the view).
VIEW_BUTTONS = ["Pause following"]
WRITE = re.compile(
    r"^(?!\s*(?:" + "|".join(re.escape(b) for b in VIEW_BUTTONS) + r")\b)"
    r"\s*(" + "|".join(re.escape(b) for b in WRITE_BUTTONS) + r")\b",
    re.I,
)

# The endpoint page's tabs (js/pages/endpoint.js TABS).
TABS = [
    "overview",
    "instances",
    "monitoring",
    "logs",
    "events",
    "requests",
    "async",
    "playground",
    "scaling",
    "settings",
    "usage",
]

# What a page draws once its data is in (a table row, a known text): the check for write
# buttons runs after it, so a button drawn with the data would be seen. A page the token
# may not use draws its notice at once and asks for nothing.
NOT_LOADING = ':not(:has-text("Loading…"))'
TAB_DATA = {
    "overview": '[data-testid="endpoint-url"]',
    "instances": '[data-testid="replicas"]',
    "monitoring": '[data-tab-body="monitoring"] >> text=refreshed every 10 s',
    "logs": f'[data-testid="logs"]{NOT_LOADING}',
    "events": '[data-testid="events"] tbody tr',
    "requests": f'[data-testid="requests"]{NOT_LOADING}',
    "async": '[data-testid="async-denied"]',
    "playground": '[data-testid="playground-denied"]',
    "scaling": '[data-tab-body="scaling"] >> text=Changing the scaling needs',
    "settings": '[data-testid="spec"]',
    "usage": '[data-testid="usage-hours"]',
}
assert set(TAB_DATA) == set(TABS)

# (address after '#', a locator that shows the page has drawn its data)
PAGES: list[tuple[str, str]] = [
    ("/endpoints", f'[data-testid="endpoints-table"] tr:has-text("{ENDPOINT}")'),
    *((f"/endpoints/{ENDPOINT}/{tab}", TAB_DATA[tab]) for tab in TABS),
    ("/models", '[data-testid="models-table"] tr:has-text("iris")'),
    # jobs carry the model's answers: a token without invoke is refused (its error drawn)
    ("/jobs", f'[data-testid="jobs"]{NOT_LOADING}, .page .error-box'),
    ("/secrets", f'[data-testid="secrets"] tr:has-text("{SECRET}")'),
    ("/tokens", '.page .notice:has-text("admin")'),
    ("/audit", '.page .notice:has-text("admin")'),
]


@pytest.fixture(scope="module")
def reader(server: ServerProcess, iris_model: str) -> Iterator[str]:
    """A read-only token of project default, with an endpoint and a secret to look at (the
    endpoint need not be running: its page and tabs are drawn from the first answer)."""
    with server.client() as client:
        client.deploy({"name": ENDPOINT, "model": iris_model})
        client.set_secret(SECRET, "not-for-readers")
        made = client.create_token("admin-read-only", ["read"], projects=["default"])
    yield made.token
    with server.client() as client:
        client.delete(ENDPOINT)
        client.delete_secret(SECRET)
        client.revoke_token(made.id)


def test_a_read_only_token_sees_no_write_button(page_as: Any, reader: str) -> None:
    page = page_as(reader)
    page.errors.allow("403")  # a page may ask for something the token may not see
    for path, ready in PAGES:
        page.goto("about:blank")  # a fresh load: nothing of the page before is left
        page.goto(f"/#{path}")
        expect(page.locator(ready).first, f"{path} draws its data").to_be_visible()
        expect(page.get_by_role("button", name=WRITE), f"{path}: a write button").to_have_count(0)
        expect(page.locator("input[type=file]"), f"{path}: an upload").to_have_count(0)
        expect(page.locator("input[type=password]"), f"{path}: a secret's form").to_have_count(0)
        # the admin pages are not even in the menu
        nav = page.locator(".mainnav")
        expect(nav, f"{path}: the menu").to_contain_text("Endpoints")
        expect(nav.get_by_role("link", name="Tokens"), f"{path}: Tokens in the menu").to_have_count(
            0
        )
        expect(nav.get_by_role("link", name="Audit"), f"{path}: Audit in the menu").to_have_count(0)


def test_a_forged_write_is_refused(page_as: Any, reader: str) -> None:
    page = page_as(reader)
    page.errors.allow("403")
    page.goto("/#/secrets")
    expect(page.locator(f'[data-testid="secrets"] tr:has-text("{SECRET}")')).to_be_visible()
    answers = page.evaluate(
        """async ([endpoint, secret]) => {
            const cookie = document.cookie.match(/podium_csrf=([^;]+)/);
            const csrf = cookie ? decodeURIComponent(cookie[1]) : "";
            const call = async (method, path, body) => {
                const res = await fetch("/api/v1/" + path, {
                    method,
                    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
                    body: body === undefined ? undefined : JSON.stringify(body),
                    credentials: "same-origin",
                });
                const type = res.headers.get("content-type");
                return { status: res.status, type, body: await res.json() };
            };
            return [
                csrf,
                await call("DELETE", "endpoints/" + endpoint),
                await call("PUT", "secrets/" + secret, { value: "forged" }),
                await call("POST", "tokens", { name: "forged", scopes: ["admin"] }),
            ];
        }""",
        [ENDPOINT, SECRET],
    )
    csrf, *refusals = answers
    assert csrf, "the page has a CSRF cookie to forge with"
    for answer in refusals:
        assert answer["status"] == 403, answer
        assert answer["type"].startswith("application/problem+json"), answer
        assert answer["body"]["status"] == 403, answer
    # nothing changed
    page.reload()
    expect(page.locator(f'[data-testid="secrets"] tr:has-text("{SECRET}")')).to_be_visible()
