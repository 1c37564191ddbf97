"""The whole path of a secret, API to replica, and where its value must never show: after a
deploy with secrets, a revision naming a secret deleted since, and a download that fails,
the value is in no API answer, no event, no status reason and no log file under
PODIUM_HOME/logs (the controller's log lines are written there by a file handler, as the
server's are). The API and the controller share one store; the download is a real child
against a loopback Hub; replicas are the fake backend's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.artifacts.store import ArtifactStore
from podium.backends.local_logs import LocalLogs
from podium.core.phases import EndpointStatus, EventKind
from podium.core.settings import Settings
from podium.store import Database
from tests.support.db import sqlite_url
from tests.support.silent_hub import fake_hub
from tests.unit.api.conftest import WakeRecorder
from tests.unit.api.test_secrets_api import Tokens
from tests.unit.control.hub_recorder import recording_proxy
from tests.unit.control.test_secret_hf_token import backend_for, run_passes

__all__ = ["sqlite_url"]

HF_VALUE = "hf_ScenarioToken-0123456789abcdefXYZ"
DB_VALUE = "db-Scenario-Passw0rd-4567"
VALUES = (HF_VALUE, DB_VALUE)


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    yield database
    database.dispose()


def _endpoint(name: str, model: str, **extra: object) -> dict[str, object]:
    return {"name": name, "model": model, "framework": "python", **extra}


def test_a_secret_value_shows_nowhere_after_a_full_run(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path / "home", port=8123)
    tokens = Tokens()
    ctx = ApiContext(
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.artifacts_dir),
        logs=LocalLogs(settings.logs_dir, settings.log_retention),
        wake=WakeRecorder(),
        tokens=tokens.directory,
    )
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    file_log = logging.FileHandler(settings.logs_dir / "server.log")
    podium_log = logging.getLogger("podium")
    podium_log.addHandler(file_log)
    caplog.set_level(logging.DEBUG, logger="podium")
    answers: list[httpx.Response] = []
    admin = tokens.admin
    with TestClient(create_api(ctx)) as api:

        def call(method: str, path: str, **kw: object) -> httpx.Response:
            answer = api.request(method, path, headers=admin, **kw)  # type: ignore[arg-type]
            answers.append(answer)
            return answer

        assert call("PUT", "/api/v1/secrets/hf-token", json={"value": HF_VALUE}).is_success
        assert call("PUT", "/api/v1/secrets/db-pass", json={"value": DB_VALUE}).is_success
        assert call("PUT", "/api/v1/secrets/gone-soon", json={"value": DB_VALUE}).is_success
        uses_both = {
            "model_source": {"token_secret": "hf-token"},
            "env_from_secrets": {"DB_PASSWORD": "db-pass"},
        }
        made = call(
            "POST", "/api/v1/endpoints", json=_endpoint("echo", "hf://acme/echo", **uses_both)
        )
        assert made.status_code == 201, made.text
        later = _endpoint("later", "hf://acme/echo", env_from_secrets={"DB": "gone-soon"})
        assert call("POST", "/api/v1/endpoints", json=later).status_code == 201
        assert call("DELETE", "/api/v1/secrets/gone-soon").status_code == 204
        broken = _endpoint("broken", "hf://acme/missing", **uses_both)
        assert call("POST", "/api/v1/endpoints", json=broken).status_code == 201
        # A PUT whose answer is an error, and an update naming a missing secret.
        call("PUT", "/api/v1/secrets/Bad", json={"value": HF_VALUE})
        call("PATCH", "/api/v1/endpoints/echo", json={"env_from_secrets": {"X": "nope"}})

        def status(name: str) -> EndpointStatus:
            with db.unit_of_work(read_only=True) as uow:
                return uow.endpoints.get(name).status

        seen: list[tuple[str, str]] = []
        with (
            fake_hub("acme/echo", {"model.bin": b"w" * 5000}) as hub,
            recording_proxy(hub, seen) as proxy,
        ):
            backend = backend_for(tmp_path, proxy)

            def settled() -> bool:
                return (
                    any(s.endpoint == "echo" for s in backend.started)
                    and status("later") is EndpointStatus.FAILED
                    and status("broken") is EndpointStatus.FAILED
                )

            run_passes(settings, db, backend, settled)
        (echo,) = [s for s in backend.started if s.endpoint == "echo"]
        assert echo.env["DB_PASSWORD"] == DB_VALUE  # it did reach the replica
        for name in ("echo", "later", "broken"):
            call("GET", f"/api/v1/endpoints/{name}")
            call("GET", f"/api/v1/endpoints/{name}/events")
            call("GET", f"/api/v1/endpoints/{name}/revisions")
        call("GET", "/api/v1/endpoints")
        call("GET", "/api/v1/secrets")
        call("GET", "/api/v1/usage")
    podium_log.removeHandler(file_log)
    file_log.close()

    with db.unit_of_work(read_only=True) as uow:
        later_reason = uow.endpoints.get("later").status_reason or ""
        events = [e for n in ("echo", "later", "broken") for e in uow.events.list(n)]
        reasons = [uow.endpoints.get(n).status_reason or "" for n in ("echo", "later", "broken")]
    assert "secret 'gone-soon'" in later_reason
    assert any(e.kind is EventKind.DOWNLOAD_FAILED for e in events)
    written = [
        *(a.text for a in answers),
        *(f"{e.message} {e.data}" for e in events),
        *reasons,
        caplog.text,
        *(p.read_text(errors="replace") for p in settings.logs_dir.rglob("*") if p.is_file()),
    ]
    assert "download failed" in caplog.text  # the logs were captured: there was something
    for value in VALUES:
        assert not [w for w in written if value in w], value
