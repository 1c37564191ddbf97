"""The Tokens, Secrets and Audit pages in Chromium, as an admin."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.support.server import ServerProcess


def test_a_token_made_on_the_page_is_shown_once_then_revoked(
    page: Any, server: ServerProcess
) -> None:
    page.goto("/#/tokens")
    page.get_by_role("button", name="New token").click()
    form = page.get_by_role("form", name="New token")
    form.get_by_label("Token name").fill("admin-page-ci")
    form.get_by_label("read: list and inspect").uncheck()
    form.get_by_label("invoke: call endpoints").check()
    form.get_by_label("Expires").select_option(label="7 days")
    form.get_by_role("button", name="Create token").click()

    shown = page.get_by_test_id("new-token")
    expect(shown).to_contain_text("not shown again")
    expect(shown.get_by_role("button", name="Copy token")).to_be_visible()
    secret = page.get_by_test_id("new-token-value").inner_text().strip()
    assert secret.startswith("pod_"), secret
    token_id = secret.split("_")[1]

    # the new token works: the API knows who it is
    me = httpx.get(f"{server.url}/api/v1/whoami", headers={"authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["scopes"] == ["invoke"], me.text

    row = page.get_by_test_id("tokens").locator("tr", has_text=token_id)
    expect(row).to_contain_text("admin-page-ci")
    expect(row).to_contain_text("invoke")
    expect(row).to_contain_text("active")

    # shown once: after Done, and after a reload, the secret is nowhere on the page
    shown.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    page.reload()
    expect(row).to_be_visible()
    assert secret not in page.content()

    row.get_by_role("button", name="Revoke admin-page-ci").click()
    page.get_by_test_id("confirm").click()
    expect(row).to_have_count(0)  # the list shows active tokens
    page.get_by_label("Show revoked").check()
    expect(row).to_contain_text("revoked")

    refused = httpx.get(
        f"{server.url}/api/v1/whoami", headers={"authorization": f"Bearer {secret}"}
    )
    assert refused.status_code == 401, refused.text

    # the audit page lists the creation: who made it, and the action
    page.goto(f"/#/audit?action=token.create&object={token_id}")
    entry = page.get_by_test_id("audit").locator("tbody tr", has_text=token_id)
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("token.create")
    expect(entry).to_contain_text("podium-up-admin")
    expect(entry).to_contain_text("201")
    expect(entry).to_contain_text("admin-page-ci")  # the token's name next to its id
    entry.click()
    expect(page.get_by_test_id("audit-detail")).to_contain_text('"name": "admin-page-ci"')
    # the revoke is there too once the action filter is cleared
    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Object").fill(token_id)
    page.get_by_role("button", name="Filter").click()
    expect(
        page.get_by_test_id("audit").locator("tbody tr", has_text="token.revoke")
    ).to_contain_text(token_id)


def test_a_secret_is_listed_by_name_never_by_value(page: Any, server: ServerProcess) -> None:
    value = "s3cr3t-admin-page-value-7f2c"
    page.goto("/#/secrets")
    page.get_by_role("button", name="New secret").click()
    form = page.get_by_role("form", name="New secret")
    form.get_by_label("Secret name").fill("admin-page-key")
    form.get_by_label("Project").select_option("default")
    value_input = form.get_by_label("Value")
    expect(value_input).to_have_attribute("type", "password")
    value_input.fill(value)
    form.get_by_role("button", name="Save secret").click()

    row = page.get_by_test_id("secrets").locator("tr", has_text="admin-page-key")
    expect(row).to_contain_text("default")
    expect(page.get_by_role("form", name="New secret")).to_have_count(0)
    assert value not in page.content()
    listed = httpx.get(f"{server.url}/api/v1/secrets", headers=server.headers).json()
    assert any(s["name"] == "admin-page-key" for s in listed)

    # replace: the form asks for a new value and shows nothing of the old one
    row.get_by_role("button", name="Replace admin-page-key").click()
    form = page.get_by_role("form", name="Replace secret")
    expect(form.get_by_label("Value")).to_have_value("")
    form.get_by_label("Value").fill(value + "-2")
    form.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("form", name="Replace secret")).to_have_count(0)
    assert value not in page.content()

    row.get_by_role("button", name="Delete admin-page-key").click()
    page.get_by_test_id("confirm").click()
    expect(row).to_have_count(0)
    listed = httpx.get(f"{server.url}/api/v1/secrets", headers=server.headers).json()
    assert not any(s["name"] == "admin-page-key" for s in listed)


def test_an_invalid_secret_name_is_shown_next_to_its_field(page: Any) -> None:
    page.errors.allow("422")
    page.goto("/#/secrets")
    page.get_by_role("button", name="New secret").click()
    form = page.get_by_role("form", name="New secret")
    form.get_by_label("Secret name").fill("Not_Valid")
    form.get_by_label("Value").fill("x")
    form.get_by_role("button", name="Save secret").click()
    error = form.locator('[data-field="name"] .field-error')
    expect(error).to_be_visible()
    expect(error).to_have_text(re.compile(r"\S"))


def test_the_audit_log_follows_new_entries(page: Any, server: ServerProcess) -> None:
    page.goto("/#/audit?object=admin-audit-live")
    table = page.get_by_test_id("audit")
    expect(table).to_contain_text("No entries match")
    with server.client() as client:
        client.set_secret("admin-audit-live", "live-value-9d1e")
        client.delete_secret("admin-audit-live")
    # no reload: the page reads what came after its last entry
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first).to_contain_text("secret.delete")
    expect(table.locator("tbody tr").last).to_contain_text("secret.set")
    assert "live-value-9d1e" not in page.content()


def test_a_deploy_token_writes_secrets_but_sees_no_admin_page(
    page_as: Any, server: ServerProcess
) -> None:
    with server.client() as client:
        made = client.create_token("admin-deployer", ["deploy"], projects=["default"])
    try:
        page = page_as(made.token)
        nav = page.locator(".mainnav")
        expect(nav.get_by_role("link", name="Secrets")).to_be_visible()
        expect(nav.get_by_role("link", name="Tokens")).to_have_count(0)
        expect(nav.get_by_role("link", name="Audit")).to_have_count(0)
        page.goto("/#/secrets")
        page.get_by_role("button", name="New secret").click()
        form = page.get_by_role("form", name="New secret")
        form.get_by_label("Secret name").fill("admin-deployer-key")
        form.get_by_label("Value").fill("deployer-value")
        form.get_by_role("button", name="Save secret").click()
        row = page.get_by_test_id("secrets").locator("tr", has_text="admin-deployer-key")
        row.get_by_role("button", name="Delete admin-deployer-key").click()
        page.get_by_test_id("confirm").click()
        expect(row).to_have_count(0)
        page.goto("/#/tokens")  # typed in: the page says why there is nothing
        expect(page.locator(".page")).to_contain_text("admin")
        expect(page.get_by_role("button", name="New token")).to_have_count(0)
    finally:
        with server.client() as client:
            client.revoke_token(made.id)


TEAM = "adm-team"


def test_an_admin_of_one_project_makes_a_token_of_that_project(
    page_as: Any, server: ServerProcess
) -> None:
    """The form offers exactly the projects the admin may grant, one of them ticked, and
    sends only those (it once sent a hidden "default" too, refused with 403)."""
    with server.client() as client:
        client.create_project(TEAM)
        made = client.create_token("adm-team-admin", ["admin"], projects=[TEAM])
    try:
        page = page_as(made.token)
        page.goto("/#/tokens")
        page.get_by_role("button", name="New token").click()
        form = page.get_by_role("form", name="New token")
        boxes = form.locator('[data-field="projects"] input[type=checkbox]')
        expect(boxes).to_have_count(1)
        expect(boxes.first).to_have_attribute("value", TEAM)
        expect(boxes.first).to_be_checked()
        form.get_by_label("Token name").fill("adm-team-reader")
        form.get_by_role("button", name="Create token").click()
        secret = page.get_by_test_id("new-token-value").inner_text().strip()
        me = httpx.get(
            f"{server.url}/api/v1/whoami", headers={"authorization": f"Bearer {secret}"}
        ).json()
        assert me["projects"] == [TEAM] and me["scopes"] == ["read"], me

        # none ticked: said under the projects, nothing sent
        page.get_by_role("button", name="New token").click()
        form = page.get_by_role("form", name="New token")
        form.get_by_label("Token name").fill("adm-team-none")
        form.get_by_label(TEAM).uncheck()
        writes: list[str] = []
        page.on("request", lambda r: writes.append(r.url) if r.method != "GET" else None)
        form.get_by_role("button", name="Create token").click()
        expect(form.locator('[data-field="projects"] .field-error')).to_have_text(
            "Choose at least one project"
        )
        assert writes == []
    finally:
        with server.client() as client:
            for t in client.tokens():
                if t.name.startswith("adm-team-"):
                    client.revoke_token(t.id)


def test_a_refusal_of_the_token_is_shown_above_the_buttons(page: Any) -> None:
    """A 403 names a right the caller lacks, not a mistake in a field: it is not put under
    the projects' boxes (where it named a project that had no box)."""
    page.errors.allow("403")
    message = "token 'x' lacks scope 'admin' on project 'elsewhere'"

    def refuse(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        problem = {"title": "Forbidden", "status": 403, "detail": message, "field": "projects"}
        route.fulfill(status=403, content_type="application/problem+json", json=problem)

    page.route("**/api/v1/tokens", refuse)
    page.goto("/#/tokens")
    page.get_by_role("button", name="New token").click()
    form = page.get_by_role("form", name="New token")
    form.get_by_label("Token name").fill("admin-page-refused")
    form.get_by_role("button", name="Create token").click()
    expect(form.get_by_role("alert").filter(has_text="lacks scope")).to_have_count(1)
    expect(form.locator('[data-field="projects"]')).not_to_contain_text("lacks scope")


def test_a_secret_name_of_only_spaces_is_refused_before_sending(page: Any) -> None:
    page.goto("/#/secrets")
    page.get_by_role("button", name="New secret").click()
    form = page.get_by_role("form", name="New secret")
    form.get_by_label("Secret name").fill("   ")
    form.get_by_label("Value").fill("x")
    writes: list[str] = []
    page.on("request", lambda r: writes.append(r.url) if r.method != "GET" else None)
    form.get_by_role("button", name="Save secret").click()
    expect(form.locator('[data-field="name"] .field-error')).to_have_text("Enter a name")
    assert writes == []


def test_the_audit_log_reads_the_newest_page_first_and_older_on_demand(
    page: Any, server: ServerProcess
) -> None:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        for i in range(55):
            r = http.put("/api/v1/secrets/admin-page-many", json={"value": f"v{i}"})
            assert r.status_code == 200, r.text
        http.delete("/api/v1/secrets/admin-page-many")
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/api/v1/audit" in r.url else None)
    page.goto("/#/audit?action=secret.set&object=admin-page-many")
    pager = page.get_by_test_id("audit-page")
    expect(pager).to_have_text(re.compile(r"^1\u201350 of 50\+"))
    first = reads[0]
    assert "order=desc" in first and "limit=50" in first, first  # not the whole log
    expect(page.get_by_test_id("audit").locator("tbody tr").first).to_contain_text("secret.set")
    page.get_by_role("button", name="Older").click()
    expect(pager).to_have_text(re.compile(r"^51\u201355 of 55 \u00b7 page 2 of 2$"))
    assert any("before_id=" in url for url in reads), reads
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(pager).to_have_text(re.compile(r"^1\u201350 of 55 "))


def test_overlapping_audit_reads_add_no_entry_twice(page: Any, server: ServerProcess) -> None:
    """The first read is held past the 3 s poll: a second one must not start from the same
    point and add the same entries again."""
    with server.client() as client:
        client.set_secret("admin-audit-dup", "dup-value")
        client.delete_secret("admin-audit-dup")
    held: list[Any] = []

    def hold_first(route: Any) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.clock.install()
    page.goto("about:blank")
    page.route("**/api/v1/audit?**", hold_first)
    page.goto("/#/audit?object=admin-audit-dup")
    for _ in range(200):  # until the first read reaches the handler
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page read the audit log"
    page.clock.fast_forward(3500)  # a poll fires while the first read is out
    held[0].continue_()
    rows = page.get_by_test_id("audit").locator("tbody tr")
    expect(rows).to_have_count(2)
    with server.client() as client:
        client.set_secret("admin-audit-dup", "dup-value-2")
    page.clock.fast_forward(3500)  # the next poll adds what came after, once
    expect(rows.first).to_contain_text("secret.set")
    expect(page.get_by_test_id("audit-page")).to_have_text(re.compile(r"^1\u20133 of 3\+? "))
    expect(rows).to_have_count(3)
