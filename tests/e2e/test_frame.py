"""The dashboard's frame in Chromium: polling against a slow server, the project switcher
(a project other than `default`, a stored choice that is not the user's), moving from one
endpoint to another, the chart kept across refreshes, the confirm dialog, `upload()` on a
401, a server started with `--no-auth`, and the Makefile's Chromium rule.

Two endpoints cost nothing (`min_replicas: 0`, no replica): `frame-team` in project `team`
and `frame-default` in `default`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import ServerProcess, free_port, wait_until

ZERO = {"scaling": {"min_replicas": 0, "max_replicas": 1}}
TEAM = "team"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def frame_endpoints(
    server: ServerProcess, iris_model: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """`frame-team` (project team) and `frame-default`, both scaled to zero."""
    from tests.support.models import train_iris_skops

    team_ep, default_ep = "frame-team", "frame-default"
    with server.client() as client:
        if TEAM not in {p.name for p in client.projects()}:
            client.create_project(TEAM)
        client.push_model(
            train_iris_skops(tmp_path_factory.mktemp("iris-team")), "iris", project=TEAM
        )
        client.deploy({"name": team_ep, "project": TEAM, "model": "iris", **ZERO})
        client.deploy({"name": default_ep, "model": iris_model, **ZERO})

        def both_at_zero() -> bool:
            team = client.endpoint(team_ep, project=TEAM).status
            return bool(team == client.endpoint(default_ep).status == "scaled_to_zero")

        wait_until(both_at_zero, what="both endpoints scaled to zero")
        yield team_ep, default_ep
        client.delete(team_ep, project=TEAM)
        client.delete(default_ep)


# ---------------------------------------------------------------- polling (review item 2)

SLOW_ENDPOINT_GET = """
(() => {
  // Every GET of one endpoint answers 2.5 s late: longer than the page's 2 s poll.
  const real = window.fetch.bind(window);
  window.__slow = { inFlight: 0, maxInFlight: 0, done: 0 };
  window.fetch = async (url, opts) => {
    if (!/\\/api\\/v1\\/endpoints\\/[^/?]+(\\?|$)/.test(String(url))) return real(url, opts);
    const s = window.__slow;
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 2500));
      return await real(url, opts);
    } finally {
      s.inFlight--;
      s.done++;
    }
  };
})();
"""


def test_a_slow_answer_is_drawn_and_polls_do_not_pile_up(
    page: Any, frame_endpoints: tuple[str, str]
) -> None:
    team_ep, _ = frame_endpoints
    page.add_init_script(SLOW_ENDPOINT_GET)
    page.goto(f"/#/endpoints/{team_ep}?project={TEAM}")
    page.reload()  # a new document, with the slow fetch
    expect(page.get_by_test_id("endpoint-name")).to_have_text(team_ep, timeout=20_000)
    page.wait_for_function("() => window.__slow.done >= 3", timeout=20_000)
    assert page.evaluate("window.__slow.maxInFlight") == 1  # one call at a time


# ---------------------------------------------------------------- projects (items 4, 18)


def test_the_switcher_scopes_the_list_to_another_project(
    page: Any, frame_endpoints: tuple[str, str]
) -> None:
    team_ep, default_ep = frame_endpoints
    page.goto("/#/endpoints?q=frame-")
    switcher = page.get_by_test_id("project")
    table = page.get_by_test_id("endpoints-table")
    switcher.select_option(TEAM)
    expect(table).to_contain_text(team_ep)
    expect(table).not_to_contain_text(default_ep)
    switcher.select_option("")
    expect(table).to_contain_text(default_ep)
    expect(table).to_contain_text(team_ep)

    # The endpoint page of a project other than default.
    page.goto(f"/#/endpoints/{team_ep}/overview?project={TEAM}")
    expect(page.get_by_test_id("endpoint-name")).to_have_text(team_ep)
    expect(page.locator(".page-header .subtitle")).to_contain_text(TEAM)
    expect(page.get_by_test_id("endpoint-status")).to_contain_text("scaled to zero")
    expect(page.get_by_role("button", name="Wake")).to_be_visible()


def test_a_stored_project_must_be_the_users_and_goes_at_logout(
    page: Any, server: ServerProcess, frame_endpoints: tuple[str, str]
) -> None:
    switcher = page.get_by_test_id("project")
    # A project left in this browser that this user has not (deleted, or another user's).
    page.evaluate("localStorage.setItem('podium.project', 'frame-no-such-project')")
    page.reload()
    expect(switcher).to_have_value("")  # all projects
    assert page.evaluate("localStorage.getItem('podium.project')") == ""

    switcher.select_option(TEAM)
    assert page.evaluate("localStorage.getItem('podium.project')") == TEAM
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("localStorage.getItem('podium.project')") is None

    page.get_by_label("API token").fill(server.token)
    page.get_by_role("button", name="Log in").click()
    expect(switcher).to_have_value("")


# ---------------------------------------------------------------- endpoint page (item 8)


def test_another_endpoint_in_the_address_replaces_the_page_at_once(
    page: Any, frame_endpoints: tuple[str, str]
) -> None:
    page.errors.allow("404")
    team_ep, default_ep = frame_endpoints
    page.goto(f"/#/endpoints/{team_ep}?project={TEAM}")
    expect(page.get_by_test_id("endpoint-name")).to_have_text(team_ep)

    page.evaluate(f"location.hash = '#/endpoints/{default_ep}'")
    expect(page.get_by_test_id("endpoint-name")).to_have_text(default_ep)

    page.evaluate("location.hash = '#/endpoints/frame-no-such-endpoint'")
    expect(page.get_by_role("alert")).to_contain_text("frame-no-such-endpoint")
    expect(page.get_by_test_id("endpoint-name")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)


# ---------------------------------------------------------------- chart (items 5, 6)

DRAW_CHART = """
async (shift) => {
  const { TimeChart } = await import("/ui/js/chart.js");
  const { html, render } = await import("/ui/vendor/preact-htm.js");
  let box = document.getElementById("frame-chart");
  if (!box) {
    box = document.createElement("div");
    box.id = "frame-chart";
    box.style.cssText = "position: fixed; top: 80px; left: 20px; width: 800px; z-index: 100;";
    document.body.append(box);
  }
  const t0 = 1700000000 + shift;
  const times = Array.from({ length: 10 }, (_, i) => t0 + i * 10);
  const series = [{ label: "requests", values: times.map((_, i) => i + shift) }];
  const marks = [{ t: 1700000050, label: "scale up: 1 -> 2" }];  // new arrays each time
  const props = { testid: "frame-chart", times, series, marks };
  render(html`<${TimeChart} ...${props} />`, box);
}
"""


def test_the_chart_keeps_its_plot_zoom_and_shows_mark_labels(page: Any) -> None:
    expect(page.locator(".topbar")).to_be_visible()
    page.evaluate(DRAW_CHART, 0)
    figure = page.get_by_test_id("frame-chart")
    over = figure.locator(".u-over")
    expect(over).to_be_visible()
    page.evaluate(
        "document.querySelector('[data-testid=frame-chart] .uplot').dataset.first = 'yes'"
    )

    # The mark at t0+50 of t0..t0+90: its label shows when the cursor is on it.
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 50 / 90, box["y"] + box["height"] / 2)
    tip = figure.locator(".chart-mark-tip")
    expect(tip).to_be_visible()
    expect(tip).to_have_text("scale up: 1 -> 2")

    # A drag zooms in; the time under the cursor is what the legend shows.
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    legend_time = figure.locator(".u-legend .u-series").first.locator(".u-value")
    zoomed = legend_time.inner_text()

    # A refresh with new arrays (10 s later): the same plot, still zoomed.
    page.evaluate(DRAW_CHART, 10)
    expect(figure).to_have_attribute("data-values", "10")
    expect(figure.locator(".uplot")).to_have_attribute("data-first", "yes")
    page.mouse.move(box["x"] + box["width"] * 0.5 + 1, y)
    page.mouse.move(box["x"] + box["width"] * 0.5, y)
    expect(legend_time).to_have_text(zoomed)


# ---------------------------------------------------------------- dialog, upload (item 21)

TWO_CONFIRMS = """
async () => {
  const { confirm } = await import("/ui/js/ui.js");
  const first = confirm({ title: "First question" });
  window.__second = confirm({ title: "Second question", confirmLabel: "Go" });
  // (an unanswered first promise would hang this evaluate: give up after 2 s)
  return await Promise.race([first, new Promise((r) => setTimeout(() => r("unanswered"), 2000))]);
}
"""


def test_the_confirm_dialog_focus_escape_and_a_second_question(page: Any) -> None:
    expect(page.locator(".topbar")).to_be_visible()
    assert page.evaluate(TWO_CONFIRMS) is False  # the first is answered when the second comes
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Second question")
    expect(page.get_by_test_id("confirm")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert page.evaluate("window.__second") is False


def test_an_upload_answered_401_shows_the_login(page: Any) -> None:
    page.errors.allow("401")
    expect(page.locator(".topbar")).to_be_visible()
    page.route(
        "**/api/v1/frame-upload",
        lambda route: route.fulfill(
            status=401, json={"title": "Unauthorized", "detail": "session ended"}
        ),
    )
    status = page.evaluate(
        """async () => {
          const { upload } = await import("/ui/js/api.js");
          return upload("POST", "frame-upload", "x").then(() => 200, (e) => e.status);
        }"""
    )
    assert status == 401
    expect(page.get_by_label("API token")).to_be_visible()


# ---------------------------------------------------------------- --no-auth (item 18)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path_factory.mktemp("podium-no-auth"), free_port(), no_auth=True)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_a_server_without_auth_shows_the_dashboard_without_login(
    browser: Any, open_server: ServerProcess
) -> None:
    context = browser.new_context(base_url=open_server.url)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def on_console(message: Any) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", on_console)
        page.goto("/")
        expect(page.locator(".topbar")).to_contain_text("Endpoints")
        expect(page.get_by_test_id("endpoints-empty")).to_be_visible()  # no endpoint yet
        expect(page.get_by_role("link", name="Tokens")).to_be_visible()  # everything allowed
        expect(page.get_by_role("button", name="Log out")).to_have_count(0)
        expect(page.get_by_label("API token")).to_have_count(0)
        assert not errors, errors
    finally:
        context.close()


# ---------------------------------------------------------------- Makefile (item 12)


def test_make_installs_the_system_packages_after_updating_empty_package_lists(
    tmp_path: Path,
) -> None:
    """A fake apt-get that, like a fresh container's, cannot find chromium (or podman, runc,
    busybox-static) until `update`: `make` updates the lists and installs them all."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "$DEBIAN_FRONTEND $*" >> {log}\n'
        f'case "$1" in update) touch {tmp_path}/lists ;; install)\n'
        f"  [ -e {tmp_path}/lists ] || {{ echo 'Unable to locate package' >&2; exit 100; }}\n"
        f"  touch {tmp_path}/chromium ;; esac\n"
    )
    (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    target = tmp_path / "chromium"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    res = subprocess.run(
        ["make", "-C", str(REPO), f"CHROMIUM={target}", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert target.exists()
    packages = "chromium podman runc busybox-static"  # the Makefile's SYSTEM_PACKAGES
    assert log.read_text().splitlines() == [
        f"noninteractive install -y -q {packages}",
        "noninteractive update -q",
        f"noninteractive install -y -q {packages}",
    ]
