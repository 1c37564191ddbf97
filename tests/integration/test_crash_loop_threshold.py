"""The default crash-loop threshold end to end: a model whose process dies while loading is
started exactly five times (the README's "five crashes in a row at start"), then its
endpoint is failed and nothing more is started. Only the backoff is shortened here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.core.phases import EndpointStatus, EventKind
from tests.support.lifecycle_models import write_lifecycle_bundle
from tests.support.server import ServerProcess, running_server, wait_until

DEFAULT_THRESHOLD = 5  # ControlSettings.crash_loop_threshold, as the README promises


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("podium"), PODIUM_RESTART_BACKOFF_S="0.1") as s:
        yield s


def test_a_crash_at_load_fails_the_endpoint_after_the_default_threshold(
    server: ServerProcess, tmp_path: Path
) -> None:
    with server.client() as c:
        c.push_model(write_lifecycle_bundle(tmp_path / "m", crash_at_load=True), "doomed")
        c.deploy({"name": "doomed", "model": "doomed", "framework": "python"})
        wait_until(
            lambda: c.endpoint("doomed").status is EndpointStatus.FAILED,
            timeout=120,
            what="the endpoint failed",
        )
        ep = c.endpoint("doomed")
        events = c.events("doomed")
    assert ep.status_reason is not None
    assert f"crashed {DEFAULT_THRESHOLD} times in a row" in ep.status_reason
    assert "exit code 7" in ep.status_reason
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.REPLICA_CRASHED) == DEFAULT_THRESHOLD
    assert kinds.count(EventKind.REPLICA_STARTING) == 1
    assert kinds.count(EventKind.REPLICA_RESTARTED) == DEFAULT_THRESHOLD - 1
    assert ep.replicas == []
