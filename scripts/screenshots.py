"""`make screenshots`: PNGs of each page of the dashboard into docs/screenshots/ (not in CI).

Starts a real `podium up` on a fresh home (auth on), pushes the iris classifier, deploys
two endpoints, sends them some traffic, makes a token and a secret, then opens each page
in Debian's Chromium (playwright, headless) at 1400x900 and saves docs/screenshots/NAME.png.

    python scripts/screenshots.py [--out DIR] [--only NAME,NAME]

A page that is not built yet is shot as it is (a placeholder); a page that fails to load
is reported and the others are still shot (exit status 1 at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support, whichever folder this runs from
sys.path.insert(0, str(ROOT / "src"))

from tests.support.models import train_iris_skops  # noqa: E402
from tests.support.server import ServerProcess, running_server, wait_running  # noqa: E402

CHROMIUM = os.environ.get("PODIUM_CHROMIUM", "/usr/bin/chromium")
VIEWPORT: Any = {"width": 1400, "height": 900}  # playwright's ViewportSize
ENDPOINT = "iris"
SAMPLE = {"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}

# (file name, address after '#', what shows the page is drawn)
PAGES: list[tuple[str, str, str]] = [
    ("endpoints", "/endpoints", ".page"),
    ("create", "/new", ".page"),
    ("overview", f"/endpoints/{ENDPOINT}/overview", '[data-tab-body="overview"]'),
    ("instances", f"/endpoints/{ENDPOINT}/instances", '[data-tab-body="instances"]'),
    ("monitoring", f"/endpoints/{ENDPOINT}/monitoring", '[data-tab-body="monitoring"]'),
    ("logs", f"/endpoints/{ENDPOINT}/logs", '[data-tab-body="logs"]'),
    ("events", f"/endpoints/{ENDPOINT}/events", '[data-tab-body="events"]'),
    ("request-logs", f"/endpoints/{ENDPOINT}/requests", '[data-tab-body="requests"]'),
    ("playground", f"/endpoints/{ENDPOINT}/playground", '[data-tab-body="playground"]'),
    ("scaling", f"/endpoints/{ENDPOINT}/scaling", '[data-tab-body="scaling"]'),
    ("models", "/models", ".page"),
    ("secrets", "/secrets", '[data-testid="secrets"]'),
    ("tokens", "/tokens", '[data-testid="tokens"]'),
    ("audit", "/audit", '[data-testid="audit"]'),
]


def prepare(server: ServerProcess, work: Path) -> None:
    """Data for the pages: a model, two running endpoints with traffic, a token, a secret."""
    with server.client() as client:
        print("pushing iris…", flush=True)
        client.push_model(train_iris_skops(work / "iris"), "iris")
        for name in (ENDPOINT, "iris-canary"):
            client.deploy({"name": name, "model": "iris"})
        for name in (ENDPOINT, "iris-canary"):
            print(f"waiting for {name} to run…", flush=True)
            wait_running(client, name, timeout=300)
        print("sending traffic…", flush=True)
        for i in range(60):
            client.invoke(ENDPOINT, SAMPLE)
            if i % 3 == 0:
                client.invoke("iris-canary", SAMPLE)
            time.sleep(0.05)
        client.create_token("ci-deployer", ["deploy"], projects=["default"])
        client.create_token(
            "grafana-reader", ["read"], projects=["default"], expires_in_s=30 * 86400
        )
        client.set_secret("hf-token", "hf_not-a-real-token")
        client.set_secret("s3-credentials", "not-a-real-key")


def settle(page: Any) -> None:
    """Let a page's first answers and charts arrive (its polls never leave the network
    idle for long, so this waits for a quiet moment or gives up after a few seconds)."""
    with contextlib.suppress(Exception):  # a page that keeps polling is shot as it is
        page.wait_for_load_state("networkidle", timeout=5000)
    page.wait_for_timeout(700)


def shoot(server: ServerProcess, out: Path, only: set[str] | None) -> list[str]:
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            if only is None or "login" in only:
                context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
                page = context.new_page()
                page.goto("/")
                page.get_by_label("API token").wait_for()
                settle(page)
                page.screenshot(path=str(out / "login.png"))
                print(f"  {out / 'login.png'}", flush=True)
                context.close()

            context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
            context.set_default_timeout(15_000)
            res = context.request.post("/api/v1/session", data={"token": server.token})
            assert res.ok, res.text()
            page = context.new_page()
            for name, path, ready in PAGES:
                if only is not None and name not in only:
                    continue
                try:
                    page.goto("about:blank")
                    page.goto(f"/#{path}")
                    page.locator(ready).first.wait_for()
                    settle(page)
                    page.screenshot(path=str(out / f"{name}.png"))
                    print(f"  {out / f'{name}.png'}", flush=True)
                except Exception as e:  # report it, shoot the others
                    print(f"  {name}: FAILED: {e}", file=sys.stderr, flush=True)
                    failed.append(name)
            context.close()
        finally:
            browser.close()
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--only", help="comma-separated names (login, endpoints, tokens, …)")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: `make install-test` installs it", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="podium-shots-") as tmp:
        work = Path(tmp)
        with running_server(work / "home") as server:
            print(f"podium up at {server.url}", flush=True)
            prepare(server, work)
            print(f"shooting into {args.out}…", flush=True)
            failed = shoot(server, args.out, only)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
