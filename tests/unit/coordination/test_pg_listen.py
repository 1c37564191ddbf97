"""`Listening` on the real PostgreSQL server: a statement the server refuses in a callback
is logged once with its message and costs no reconnect; anything else that escapes the
connection loop is logged and the thread starts again, never ending silently."""

from __future__ import annotations

import logging

import pytest

from podium.coordination.pg_listen import Conn, Listening, dsn_of
from podium.store import Database
from tests.unit.coordination.helpers import wait_for

pytestmark = pytest.mark.postgres


def test_a_refused_query_is_logged_once_and_is_no_reconnect(
    pg: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = 0

    def tick(conn: Conn) -> None:
        nonlocal ticks
        ticks += 1
        conn.execute("SELECT * FROM no_such_table")  # UndefinedTable: before migrations

    listening = Listening(
        dsn_of(pg),
        "podium_test",
        name="podium-listen-test",
        on_notify=lambda c, p: None,
        on_tick=tick,
        tick_s=0.02,
    )
    with caplog.at_level(logging.WARNING, logger="podium.coordination.pg_listen"):
        listening.start()
        try:
            wait_for(lambda: ticks >= 10, "ten ticks")
        finally:
            listening.close()
    assert listening.connects == 1
    refused = [r for r in caplog.records if "no_such_table" in r.getMessage()]
    assert len(refused) == 1 and "UndefinedTable" in refused[0].getMessage()


class Flaky(Listening):  # type: ignore[misc]
    """A listener whose first wait fails with an error that is no psycopg error (as
    psycopg < 3.2's `notifies(timeout=…)`, a TypeError, did)."""

    fails = 1

    def _serve(self, conn: Conn) -> None:
        if self.fails:
            self.fails -= 1
            raise TypeError("notifies() got an unexpected keyword argument 'timeout'")
        super()._serve(conn)


def test_an_unexpected_error_is_logged_and_the_thread_goes_on(
    pg: Database, caplog: pytest.LogCaptureFixture
) -> None:
    listening = Flaky(dsn_of(pg), "podium_test", name="podium-flaky", on_notify=lambda c, p: None)
    with caplog.at_level(logging.ERROR, logger="podium.coordination.pg_listen"):
        listening.start()
        try:
            wait_for(lambda: listening.connects == 2, "a second connection")
            wait_for(listening.connected.is_set, "the listener to serve")
        finally:
            listening.close()
    assert "TypeError" in caplog.text
