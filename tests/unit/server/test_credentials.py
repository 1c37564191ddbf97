"""`podium up`'s admin token on a fresh home, and the token directory the server keeps."""

from __future__ import annotations

import logging
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from podium.core.access import (
    AuthFailure,
    IssuedToken,
    Principal,
    Scope,
    TokenEntry,
    issue_token,
)
from podium.core.errors import Unavailable
from podium.core.settings import Settings
from podium.server.credentials import ensure_credentials, read_token_file
from podium.server.tokens import LiveTokens, TokenRefresher, store_loader
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
    TokenRefresher(store_loader(db), tokens, 1.0).reload()
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

    assert [p.name for p in settings.home.iterdir() if p.name.startswith(".credentials")] == []

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


def test_a_credentials_file_that_cannot_be_made_leaves_no_live_admin_token(
    setup: tuple[Settings, Database],
) -> None:
    """The token is committed before the file takes its name; when that fails (here a
    dangling link already holds the name) the token is revoked and nothing half-written
    stays behind."""
    settings, db = setup
    path = settings.credentials_path
    path.symlink_to(settings.home / "nowhere")  # `exists()` is False, the name is taken
    with pytest.raises(Unavailable) as raised:
        ensure_credentials(settings, db)
    assert raised.value.field == "credentials" and "was revoked" in str(raised.value)
    with db.unit_of_work(read_only=True) as uow:
        [record] = uow.tokens.list(include_revoked=True)
        assert uow.tokens.live_entries() == []
    assert record.revoked_at is not None
    assert [p.name for p in settings.home.iterdir() if p.name.startswith(".credentials")] == []
    assert not (settings.home / "nowhere").exists()  # nothing was written through the link
    path.unlink()
    assert ensure_credentials(settings, db) is True  # once the name is free
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert isinstance(_directory(db).authenticate(path.read_text().strip()), Principal)


def _make(db: Database, name: str) -> tuple[TokenRecord, IssuedToken]:
    issued = issue_token()
    with db.unit_of_work() as uow:
        record = uow.tokens.create(
            issued, name=name, scopes=(Scope.INVOKE,), projects=("default",), creator="test"
        )
    return record, issued


def test_a_reload_carries_revocations_made_elsewhere(setup: tuple[Settings, Database]) -> None:
    _, db = setup
    record, issued = _make(db, "ci")
    tokens = LiveTokens()
    refresher = TokenRefresher(store_loader(db), tokens, 60)
    assert refresher.reload() is True
    assert isinstance(tokens.authenticate(issued.token), Principal)
    with db.unit_of_work() as uow:  # another process revokes it
        uow.tokens.revoke(record.id)
    assert isinstance(tokens.authenticate(issued.token), Principal)  # until the next reload
    refresher.reload()
    assert tokens.authenticate(issued.token) is AuthFailure.UNKNOWN


def test_a_failed_reload_keeps_the_tokens_it_had(
    setup: tuple[Settings, Database], caplog: pytest.LogCaptureFixture
) -> None:
    settings, db = setup
    _, issued = _make(db, "ci")
    tokens = LiveTokens()
    TokenRefresher(store_loader(db), tokens, 60).reload()
    away = Database(f"sqlite:///{settings.home / 'missing' / 'x.db'}")  # cannot be opened
    refresher = TokenRefresher(store_loader(away), tokens, 60)
    with caplog.at_level(logging.WARNING, "podium.server"):
        assert refresher.reload() is False
        assert refresher.reload() is False
    assert caplog.text.count("reloading API tokens failed") == 1  # once per failing spell
    assert isinstance(tokens.authenticate(issued.token), Principal)


def test_a_reload_that_raced_the_apis_put_or_drop_does_not_undo_it(
    setup: tuple[Settings, Database],
) -> None:
    """The API puts a new token (drops a revoked one) right after its commit; a reload
    whose read came before that commit must not take it back out (put it back)."""
    _, db = setup
    old, old_issued = _make(db, "old")
    tokens = LiveTokens()
    TokenRefresher(store_loader(db), tokens, 60).reload()
    new: list[IssuedToken] = []

    def read_then_the_api_writes() -> list[TokenEntry]:
        entries = store_loader(db)()  # the store as it was before the API's commit
        record, issued = _make(db, "new")
        tokens.put(TokenEntry(record.principal(), issued.secret_hash))
        with db.unit_of_work() as uow:
            uow.tokens.revoke(old.id)
        tokens.drop(old.id)
        new.append(issued)
        return entries

    TokenRefresher(read_then_the_api_writes, tokens, 60).reload()
    assert isinstance(tokens.authenticate(new[0].token), Principal)
    assert tokens.authenticate(old_issued.token) is AuthFailure.UNKNOWN
    TokenRefresher(store_loader(db), tokens, 60).reload()  # the next one reads them
    assert isinstance(tokens.authenticate(new[0].token), Principal)
    assert tokens.authenticate(old_issued.token) is AuthFailure.UNKNOWN


class _RevokedDuringTheSwap(LiveTokens):
    """A directory in which the API's revoke of `victim` (another thread) lands when the
    refresher has compared the write count and is about to load: the old gap."""

    victim = ""
    api: threading.Thread

    def load(self, entries: Iterable[TokenEntry]) -> None:
        if self.victim:
            api = threading.Thread(target=self.drop, args=(self.victim,))
            api.start()
            # Without the lock the drop is done at once, before the load below; with it, the
            # drop waits for the load (the bound only keeps the test from hanging).
            api.join(timeout=0.5)
            self.victim, self.api = "", api
        super().load(entries)


def test_a_revoke_landing_between_the_compare_and_the_load_is_not_undone(
    setup: tuple[Settings, Database],
) -> None:
    _, db = setup
    record, issued = _make(db, "ci")
    tokens = _RevokedDuringTheSwap()
    refresher = TokenRefresher(store_loader(db), tokens, 60)
    refresher.reload()
    assert isinstance(tokens.authenticate(issued.token), Principal)
    tokens.victim = record.id  # the API revokes it (its commit is not read by this reload)
    refresher.reload()
    tokens.api.join()
    assert tokens.authenticate(issued.token) is AuthFailure.UNKNOWN


def test_the_refresher_thread_reloads_until_stopped(setup: tuple[Settings, Database]) -> None:
    _, db = setup
    tokens = LiveTokens()
    refresher = TokenRefresher(store_loader(db), tokens, 0.01)
    refresher.start()
    try:
        _, issued = _make(db, "later")
        deadline = time.monotonic() + 10
        while not isinstance(tokens.authenticate(issued.token), Principal):
            assert time.monotonic() < deadline, "the thread never reloaded"
            time.sleep(0.01)
    finally:
        refresher.stop()
    _, after = _make(db, "after-stop")
    time.sleep(0.1)  # ten intervals: a running thread would have loaded it
    assert tokens.authenticate(after.token) is AuthFailure.UNKNOWN
