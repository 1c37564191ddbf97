"""`podium up`'s admin token on a fresh home, and the token directory the server keeps."""

from __future__ import annotations

import logging
import stat
import time
from pathlib import Path

import pytest

from podium.core.access import AuthFailure, Principal, Scope, TokenEntry, issue_token
from podium.core.settings import Settings
from podium.server.credentials import ensure_credentials, read_token_file
from podium.server.tokens import LiveTokens, TokenRefresher
from podium.store.db import Database
from podium.store.tokens import TokenRecord


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Settings, Database]:
    settings = Settings(home=tmp_path / "home")
    settings.home.mkdir()
    db = Database(settings.database_url)
    db.migrate()
    return settings, db


def _directory(db: Database) -> LiveTokens:
    tokens = LiveTokens()
    TokenRefresher(db, tokens, 1.0).reload()
    return tokens


def test_a_fresh_home_gets_an_admin_token_in_a_private_file(
    setup: tuple[Settings, Database], caplog: pytest.LogCaptureFixture
) -> None:
    settings, db = setup
    with caplog.at_level(logging.INFO, "podium.server"):
        assert ensure_credentials(settings, db) is True
    path = settings.credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert token.endswith("\n") and token.count("\n") == 1
    who = _directory(db).authenticate(token.strip())
    assert isinstance(who, Principal)
    assert (who.name, who.projects, who.is_admin) == ("podium-up-admin", None, True)
    with db.unit_of_work(read_only=True) as uow:
        [record] = uow.tokens.list()
    assert record.creator == "podium up"
    assert token.strip() not in caplog.text  # the id may be logged, never the token

    assert ensure_credentials(settings, db) is False  # the next start makes nothing
    with db.unit_of_work(read_only=True) as uow:
        assert len(uow.tokens.list()) == 1
    assert path.read_text() == token


def test_a_revoked_or_unknown_credentials_token_is_warned_about_not_replaced(
    setup: tuple[Settings, Database], caplog: pytest.LogCaptureFixture
) -> None:
    settings, db = setup
    ensure_credentials(settings, db)
    token = read_token_file(settings.credentials_path)
    assert token is not None
    with db.unit_of_work() as uow:
        [record] = uow.tokens.list()
        uow.tokens.revoke(record.id)
    with caplog.at_level(logging.WARNING, "podium.server"):
        assert ensure_credentials(settings, db) is False
    assert "holds no usable token" in caplog.text
    assert AuthFailure.UNKNOWN.value in caplog.text
    assert token not in caplog.text
    assert read_token_file(settings.credentials_path) == token
    with db.unit_of_work(read_only=True) as uow:
        assert uow.tokens.list() == []  # no new token was made


def _make(db: Database, name: str) -> tuple[str, str]:
    issued = issue_token()
    with db.unit_of_work() as uow:
        uow.tokens.create(
            issued, name=name, scopes=(Scope.INVOKE,), projects=("default",), creator="test"
        )
    return issued.token_id, issued.token


def test_a_reload_carries_revocations_made_elsewhere(setup: tuple[Settings, Database]) -> None:
    _, db = setup
    token_id, token = _make(db, "ci")
    tokens = LiveTokens()
    refresher = TokenRefresher(db, tokens, 60)
    assert refresher.reload() is True
    assert isinstance(tokens.authenticate(token), Principal)
    with db.unit_of_work() as uow:  # another process revokes it
        uow.tokens.revoke(token_id)
    assert isinstance(tokens.authenticate(token), Principal)  # until the next reload
    refresher.reload()
    assert tokens.authenticate(token) is AuthFailure.UNKNOWN


def test_a_failed_reload_keeps_the_tokens_it_had(
    setup: tuple[Settings, Database], caplog: pytest.LogCaptureFixture
) -> None:
    _, db = setup
    _, token = _make(db, "ci")
    tokens = LiveTokens()
    refresher = TokenRefresher(db, tokens, 60)
    refresher.reload()
    db.dispose()
    broken = Database(f"sqlite:///{setup[0].home / 'missing' / 'x.db'}")  # cannot open
    refresher = TokenRefresher(broken, tokens, 60)
    with caplog.at_level(logging.WARNING, "podium.server"):
        assert refresher.reload() is False
        assert refresher.reload() is False
    assert caplog.text.count("reloading API tokens failed") == 1  # once per failing spell
    assert isinstance(tokens.authenticate(token), Principal)


def test_a_reload_that_raced_a_put_does_not_undo_it(setup: tuple[Settings, Database]) -> None:
    """The API puts a new token after its commit; a reload that read the store before that
    commit must not drop it (nor bring back one the API dropped)."""
    _, db = setup
    tokens = LiveTokens()
    refresher = TokenRefresher(db, tokens, 60)
    real_uow = db.unit_of_work
    made: list[str] = []

    def racing_uow(**kw: bool):  # type: ignore[no-untyped-def]
        ctx = real_uow(**kw)
        uow = ctx.__enter__()
        real_live = uow.tokens.live_entries

        def live_then_put():  # type: ignore[no-untyped-def]
            entries = real_live()  # read before the API's token exists
            issued = issue_token()
            with real_uow() as w:
                record = w.tokens.create(
                    issued, name="new", scopes=(Scope.READ,), projects=None, creator="t"
                )
            tokens.put(_entry(record, issued.secret_hash))
            made.append(issued.token)
            return entries

        uow.tokens.live_entries = live_then_put

        class _Ctx:
            def __enter__(self):  # type: ignore[no-untyped-def]
                return uow

            def __exit__(self, *exc: object) -> None:
                ctx.__exit__(*exc)

        return _Ctx()

    db.unit_of_work = racing_uow  # type: ignore[method-assign]
    refresher.reload()
    db.unit_of_work = real_uow  # type: ignore[method-assign]
    assert isinstance(tokens.authenticate(made[0]), Principal)
    refresher.reload()  # the next reload sees it in the store
    assert isinstance(tokens.authenticate(made[0]), Principal)


def _entry(record: TokenRecord, secret_hash: str) -> TokenEntry:
    return TokenEntry(record.principal(), secret_hash)


def test_the_refresher_thread_starts_and_stops(setup: tuple[Settings, Database]) -> None:
    _, db = setup
    tokens = LiveTokens()
    refresher = TokenRefresher(db, tokens, 0.01)
    refresher.start()
    _, token = _make(db, "later")
    deadline = time.monotonic() + 10
    while not isinstance(tokens.authenticate(token), Principal):
        assert time.monotonic() < deadline, "the thread never reloaded"
        time.sleep(0.01)
    refresher.stop()
