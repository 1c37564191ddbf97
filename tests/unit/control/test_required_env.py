"""A required variable whose secret is deleted after the spec was saved: the start fails
naming the variable (`secret_refs.resolve`, which fails the revision with its message)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.control.secret_refs import resolve
from podium.core import redact
from podium.core.errors import Invalid
from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.secret_box import SecretBox
from tests.support.db import sqlite_url

__all__ = ["sqlite_url"]


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    database.migrate()
    yield database
    database.dispose()


def _spec(env: dict[str, object]) -> EndpointSpec:
    return EndpointSpec.model_validate(
        {
            "name": "echo",
            "model": "iris:1",
            "framework": "python",
            "env": env,
            "env_from_secrets": {"API_KEY": "gone", "OTHER": "gone-too"},
        }
    )


def test_a_required_variable_whose_secret_is_gone_is_named(tmp_path: Path, db: Database) -> None:
    box = SecretBox(tmp_path / "secret.key")
    with pytest.raises(Invalid) as e:
        resolve(db, box, redact.Secrets(), "echo", _spec({"API_KEY": {"required": True}}))
    assert e.value.field == "env_from_secrets.API_KEY"
    assert str(e.value.message).startswith(
        "required variable API_KEY has no value: secret 'gone' (env_from_secrets.API_KEY) "
        "does not exist in project 'default'"
    )
    # A variable that is not required: the secret is named, not a "required variable".
    with pytest.raises(Invalid) as plain:
        resolve(db, box, redact.Secrets(), "echo", _spec({}))
    assert plain.value.message.startswith("secret 'gone' (env_from_secrets.API_KEY)")
