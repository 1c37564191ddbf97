"""An API with auth on and tokens of chosen scopes and projects, for the project tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from podium.api import ApiContext, create_api
from podium.core.access import Scope, TokenDirectory, issue_token
from podium.store import Database


class Tokens:
    """Makes tokens in the store and puts them in the API's directory."""

    def __init__(self, db: Database, directory: TokenDirectory) -> None:
        self.db = db
        self.directory = directory

    def make(self, name: str, *scopes: Scope, projects: tuple[str, ...] | None) -> dict[str, str]:
        issued = issue_token()
        with self.db.unit_of_work() as uow:
            uow.tokens.create(issued, name=name, scopes=scopes, projects=projects, creator="test")
            entries = uow.tokens.live_entries()
        self.directory.load(entries)
        return {"authorization": f"Bearer {issued.token}"}


@pytest.fixture
def tokens(ctx: ApiContext) -> Tokens:
    return Tokens(ctx.db, TokenDirectory())


@pytest.fixture
def secure(ctx: ApiContext, tokens: Tokens) -> Iterator[TestClient]:
    """The API with auth on (the conftest's runs with it off)."""
    secured = replace(ctx, settings=ctx.settings.with_overrides(auth=True), tokens=tokens.directory)
    with TestClient(create_api(secured)) as c:
        yield c


@pytest.fixture
def admin(tokens: Tokens) -> dict[str, str]:
    return tokens.make("admin", Scope.ADMIN, projects=None)
