"""The secrets routes: values go in encrypted and never come out (not in a list, a PUT's
answer or an error), scopes per project, the key file, and the deploy-time check that the
secrets an endpoint names exist."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.artifacts.store import ArtifactStore
from podium.backends.local_logs import LocalLogs
from podium.control import secret_refs
from podium.core.access import (
    Principal,
    Scope,
    TokenDirectory,
    TokenEntry,
    granted,
    issue_token,
)
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.secret_box import SecretBox
from podium.store.tables import ProjectRow
from tests.unit.api.conftest import WakeRecorder

VALUE = "hf_S3cr3tV4lue-never-shown-0123456789"


class Tokens:
    """Bearer headers of an admin, a deployer on `default` and a reader of `team`."""

    def __init__(self) -> None:
        self.directory = TokenDirectory()
        self.admin = self._add("admin", {Scope.ADMIN}, None)
        self.deployer = self._add("ci", {Scope.DEPLOY}, {"default"})
        self.reader = self._add("viewer", {Scope.READ}, {"team"})

    def _add(self, name: str, scopes: set[Scope], projects: set[str] | None) -> dict[str, str]:
        issued = issue_token()
        principal = Principal(
            token_id=issued.token_id,
            name=name,
            scopes=granted(scopes),
            projects=None if projects is None else frozenset(projects),
        )
        self.directory.put(TokenEntry(principal, issued.secret_hash))
        return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def tokens() -> Tokens:
    return Tokens()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", port=8123)


def add_project(db: Database, name: str) -> None:
    with db.unit_of_work() as uow:
        uow.session.add(ProjectRow(name=name, created_at=datetime.now(UTC)))


@pytest.fixture
def client(settings: Settings, db: Database, tokens: Tokens) -> Iterator[TestClient]:
    add_project(db, "team")
    ctx = ApiContext(
        settings=settings,
        db=db,
        artifacts=ArtifactStore(settings.artifacts_dir),
        logs=LocalLogs(settings.logs_dir, settings.log_retention),
        wake=WakeRecorder(),
        tokens=tokens.directory,
    )
    with TestClient(create_api(ctx)) as c:
        yield c


def test_a_secret_is_stored_encrypted_and_its_value_never_answered(
    client: TestClient, tokens: Tokens, settings: Settings, db: Database
) -> None:
    answers = []
    put = client.put("/api/v1/secrets/hf-token", json={"value": VALUE}, headers=tokens.deployer)
    answers.append(put)
    assert put.status_code == 200, put.text
    view = put.json()
    assert view["project"] == "default" and view["name"] == "hf-token"
    assert set(view) == {"project", "name", "created_by", "created_at", "updated_at"}
    again = client.put(
        "/api/v1/secrets/hf-token", json={"value": VALUE + "2"}, headers=tokens.admin
    )
    answers.append(again)
    assert again.json()["created_at"] == view["created_at"]
    listed = client.get("/api/v1/secrets", headers=tokens.admin)
    answers.append(listed)
    assert [(s["project"], s["name"]) for s in listed.json()] == [("default", "hf-token")]
    for answer in answers:
        assert VALUE not in answer.text
    # At rest: a Fernet token, not the value; the key file is the owner's only.
    with db.unit_of_work(read_only=True) as uow:
        ciphertext = uow.secrets.get_ciphertext("default", "hf-token")
    assert VALUE not in ciphertext
    box = SecretBox(settings.secret_key_path)
    assert box.decrypt(ciphertext, name="hf-token") == VALUE + "2"
    mode = stat.S_IMODE(settings.secret_key_path.stat().st_mode)
    assert mode == 0o600


def test_errors_never_echo_the_value(client: TestClient, tokens: Tokens) -> None:
    big = VALUE * (64 * 1024 // len(VALUE) + 1)
    too_big = client.put("/api/v1/secrets/big", json={"value": big}, headers=tokens.admin)
    assert too_big.status_code == 422
    assert too_big.json()["field"] == "value"
    extra = client.put(
        "/api/v1/secrets/x-extra", json={"value": "v", "other": VALUE}, headers=tokens.admin
    )
    assert extra.status_code == 422
    bad_name = client.put("/api/v1/secrets/Bad_Name", json={"value": VALUE}, headers=tokens.admin)
    assert bad_name.status_code == 422 and bad_name.json()["field"] == "name"
    forbidden = client.put("/api/v1/secrets/a-b-c", json={"value": VALUE}, headers=tokens.reader)
    assert forbidden.status_code == 403
    for answer in (too_big, extra, bad_name, forbidden):
        assert VALUE not in answer.text


def test_scopes_decide_who_reads_and_who_writes_which_project(
    client: TestClient, tokens: Tokens
) -> None:
    none = client.get("/api/v1/secrets")
    assert none.status_code == 401
    assert none.headers["www-authenticate"].startswith("Bearer")
    denied = client.put(
        "/api/v1/secrets/db-pass?project=team", json={"value": VALUE}, headers=tokens.deployer
    )
    assert denied.status_code == 403
    assert "lacks scope 'deploy' on project 'team'" in denied.json()["detail"]
    made = client.put(
        "/api/v1/secrets/db-pass?project=team", json={"value": VALUE}, headers=tokens.admin
    )
    assert made.status_code == 200
    client.put("/api/v1/secrets/hf-token", json={"value": VALUE}, headers=tokens.admin)
    # The reader of `team` sees team's secrets only; asking for `default` is refused.
    mine = client.get("/api/v1/secrets", headers=tokens.reader).json()
    assert [(s["project"], s["name"]) for s in mine] == [("team", "db-pass")]
    assert client.get("/api/v1/secrets?project=default", headers=tokens.reader).status_code == 403
    assert len(client.get("/api/v1/secrets", headers=tokens.admin).json()) == 2
    # Deleting needs deploy on the project.
    gone = client.delete("/api/v1/secrets/db-pass?project=team", headers=tokens.reader)
    assert gone.status_code == 403
    assert (
        client.delete("/api/v1/secrets/db-pass?project=team", headers=tokens.admin).status_code
        == 204
    )
    missing = client.delete("/api/v1/secrets/db-pass?project=team", headers=tokens.admin)
    assert missing.status_code == 404
    nowhere = client.put(
        "/api/v1/secrets/db-pass?project=nowhere", json={"value": VALUE}, headers=tokens.admin
    )
    assert nowhere.status_code == 404 and nowhere.json()["field"] == "project"


def test_a_lost_key_is_an_error_not_a_new_key(
    client: TestClient, tokens: Tokens, settings: Settings
) -> None:
    assert client.put("/api/v1/secrets/one", json={"value": VALUE}, headers=tokens.admin).is_success
    settings.secret_key_path.unlink()
    lost = client.put("/api/v1/secrets/two", json={"value": VALUE}, headers=tokens.admin)
    assert lost.status_code == 503
    assert "secret key file" in lost.json()["detail"] and "missing" in lost.json()["detail"]
    assert not settings.secret_key_path.exists()
    settings.secret_key_path.write_text("not a key\n")
    corrupt = client.put("/api/v1/secrets/two", json={"value": VALUE}, headers=tokens.admin)
    assert corrupt.status_code == 503 and "corrupt" in corrupt.json()["detail"]


def _endpoint(**extra: object) -> dict[str, object]:
    return {"name": "chat", "model": "hf://org/tiny", "framework": "transformers", **extra}


def test_an_endpoint_naming_a_missing_secret_is_refused_with_the_field(
    client: TestClient, tokens: Tokens
) -> None:
    env = client.post(
        "/api/v1/endpoints",
        json=_endpoint(env_from_secrets={"HF_TOKEN": "absent"}),
        headers=tokens.admin,
    )
    assert env.status_code == 422, env.text
    assert env.json()["field"] == "env_from_secrets.HF_TOKEN"
    assert "'absent'" in env.json()["detail"]
    source = client.post(
        "/api/v1/endpoints",
        json=_endpoint(model_source={"token_secret": "absent"}),
        headers=tokens.admin,
    )
    assert source.status_code == 422 and source.json()["field"] == "model_source.token_secret"
    put = client.put("/api/v1/secrets/hf-token", json={"value": VALUE}, headers=tokens.admin)
    assert put.status_code == 200
    made = client.post(
        "/api/v1/endpoints",
        json=_endpoint(
            env_from_secrets={"HF_TOKEN": "hf-token"}, model_source={"token_secret": "hf-token"}
        ),
        headers=tokens.admin,
    )
    assert made.status_code == 201, made.text
    assert VALUE not in made.text
    # An update that names a missing secret is refused the same way.
    patched = client.patch(
        "/api/v1/endpoints/chat", json={"env_from_secrets": {"OTHER": "nope"}}, headers=tokens.admin
    )
    assert patched.status_code == 422 and patched.json()["field"] == "env_from_secrets.OTHER"


def test_the_api_and_the_controller_read_one_map_of_secret_references() -> None:
    """`EndpointSpec.secret_refs` is the one place that says which spec field names
    which secret: the API's existence check and the controller's decryption both use it."""
    spec = EndpointSpec.model_validate(
        _endpoint(
            env_from_secrets={"HF_TOKEN": "hf-token", "KEY": "other-key"},
            model_source={"token_secret": "hf-token"},
        )
    )
    assert spec.secret_refs() == {
        "env_from_secrets.HF_TOKEN": "hf-token",
        "env_from_secrets.KEY": "other-key",
        "model_source.token_secret": "hf-token",
    }
    assert EndpointSpec.model_validate(_endpoint()).secret_refs() == {}
    assert not hasattr(secret_refs, "refs")  # no second copy in the controller
