"""The demo endpoint `iris` that `make up` deploys on first start.

It goes through the public REST API with the Python SDK, exactly as a user would.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from podium.client import PodiumClient
from podium.core.errors import NotFound, PodiumError
from podium.core.phases import EndpointStatus
from podium.core.settings import Settings
from podium.server.app import cli_hint
from podium.server.credentials import read_token_file

log = logging.getLogger("podium.demo")

SAMPLE = '{"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


def train_iris(dest: Path) -> Path:
    """Train a small classifier on sklearn's bundled iris data and save it with skops."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target_names[data.target])
    dest.mkdir(parents=True, exist_ok=True)
    sio.dump(model, dest / "model.skops")
    return dest


def deploy_demo(settings: Settings, server: Any) -> None:
    url = settings.public_url
    deadline = time.monotonic() + 60
    while not getattr(server, "started", False):
        if time.monotonic() > deadline or getattr(server, "should_exit", False):
            return
        time.sleep(0.1)
    try:
        token = read_token_file(settings.credentials_path) if settings.auth else None
        with PodiumClient(url, token=token, timeout=120) as client:
            try:
                client.endpoint("iris")
            except NotFound:
                with tempfile.TemporaryDirectory() as tmp:
                    client.push_model(train_iris(Path(tmp) / "iris"), "iris", framework="sklearn")
                client.deploy({"name": "iris", "model": "iris", "framework": "sklearn"})
            ep = client.wait_for("iris", {EndpointStatus.RUNNING}, timeout=120)
    except PodiumError as e:
        log.error("demo endpoint not deployed: %s", e)
        return
    print(
        f"\n  Podium is up: {url}   (API docs: {url}/api/v1/docs)\n"
        f"  Demo endpoint 'iris' is {ep.status.value}: {ep.url}\n\n"
        f"  {curl_line(settings, ep.url)}\n" + (f"\n  {hint}\n" if (hint := cli_hint()) else ""),
        flush=True,
    )


def curl_line(settings: Settings, url: str) -> str:
    """The demo's curl command (with the credentials file's token when auth is on; the
    token itself is never printed)."""
    auth = (
        f'-H "Authorization: Bearer $(cat {settings.credentials_path})" \\\n       '
        if settings.auth
        else ""
    )
    return f"curl -s {url}/ {auth}-H 'content-type: application/json' \\\n       -d '{SAMPLE}'"
