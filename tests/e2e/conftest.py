"""The dashboard in a real browser: one real `podium up` shared by every test here, and a
headless Chromium (Debian's `/usr/bin/chromium`, driven by playwright) per module.

Every e2e test runs in one xdist group ("browser"), so under `make test` they share one
server on one worker while the unit tests use the other core (and this one after them).

    server     the shared server (auth on; `server.token` is the admin token)
    browser    a Chromium per test module (see its docstring)
    page       a fresh browser context logged in as admin, at the dashboard's home
    page_as    page_as(token): a fresh context logged in with that token
    deployed   deployed(name, spec=None): an sklearn endpoint created through the API,
               running (each test names its own endpoint)

A JavaScript error or a console error on a page (a failed module import, a CSP refusal,
an exception in a component) fails the test that caused it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.client import Conflict, NotFound
from tests.support.server import ServerProcess, running_server, wait_running

CHROMIUM = os.environ.get("PODIUM_CHROMIUM", "/usr/bin/chromium")
E2E = Path(__file__).parent


@pytest.hookimpl(wrapper=True)  # before every plain impl, xdist's (it reads the group) too
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(E2E):
            item.add_marker(pytest.mark.xdist_group("browser"))
    yield


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Package-scoped, not session-scoped: the server and its replicas stop when the last
    browser test ends, instead of loading the worker's core while it runs unit tests."""
    with running_server(tmp_path_factory.mktemp("podium-e2e")) as s:
        yield s


@pytest.fixture(scope="package", autouse=True)
def _expect_timeout() -> None:
    """`expect` waits 15 s like the contexts' actions, not playwright's default 5 s: the
    live pages poll every 5 s, so "the poll picks it up" needs a poll plus its answer's
    time on a loaded machine (a models-page check failed at exactly 5 s in CI)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per module (about a second to start). Not per session: playwright's
    sync API runs an event loop in this thread while it is open, and a unit test that the
    same xdist worker runs after the browser tests would find it (`asyncio.run() cannot be
    called from a running event loop`); closed at the module's end, it is gone by then."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install-test` installs Debian's chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class PageErrors:
    """Errors the page reported (uncaught exceptions, console errors)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.allowed: list[str] = []  # substrings a test expects (e.g. "403")

    def allow(self, text: str) -> None:
        self.allowed.append(text)

    def unexpected(self) -> list[str]:
        return [e for e in self.items if not any(a in e for a in self.allowed)]


def _open(browser: Any, server: ServerProcess, token: str | None) -> tuple[Any, Any, PageErrors]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    if token is not None:
        res = context.request.post("/api/v1/session", data={"token": token})
        assert res.ok, res.text()
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda e: errors.items.append(f"pageerror: {e}"))
    # A failed fetch the page handles (a 403 it shows) is logged by Chromium as a console
    # error "Failed to load resource: … 403"; tests that expect one allow it.
    page.on("console", lambda m: m.type == "error" and errors.items.append(f"console: {m.text}"))
    return context, page, errors


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    context, pg, errors = _open(browser, server, server.token)
    pg.goto("/")
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert not errors.unexpected(), errors.unexpected()


@pytest.fixture
def page_as(browser: Any, server: ServerProcess) -> Iterator[Callable[[str | None], Any]]:
    opened: list[tuple[Any, PageErrors]] = []

    def open_as(token: str | None) -> Any:
        context, pg, errors = _open(browser, server, token)
        opened.append((context, errors))
        pg.goto("/")
        pg.errors = errors  # type: ignore[attr-defined]
        return pg

    yield open_as
    for context, errors in opened:
        context.close()
        assert not errors.unexpected(), errors.unexpected()


@pytest.fixture(scope="package")
def iris_model(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`iris` pushed once: a real sklearn classifier (skops) trained on sklearn's iris."""
    from tests.support.models import train_iris_skops

    with server.client() as client:
        client.push_model(train_iris_skops(tmp_path_factory.mktemp("iris")), "iris")
    return "iris"


@pytest.fixture
def deployed(server: ServerProcess, iris_model: str) -> Iterator[Callable[..., Any]]:
    """Deletes what it deployed when the test ends, so replicas of earlier tests do not
    pile up on the shared server (each test names its own endpoints)."""
    names: list[str] = []

    def deploy(name: str, **spec: Any) -> Any:
        with server.client() as client:
            client.deploy({"name": name, "model": iris_model, **spec})
            names.append(name)
            return wait_running(client, name)

    yield deploy
    with server.client() as client:
        for name in names:
            with contextlib.suppress(NotFound, Conflict):
                client.delete(name)
