"""`PgRoutingSource` on the real PostgreSQL server: a table published by the leader reaches
followers with connections of their own (one of them in a separate process), by
notification, by the periodic refresh when the notification is lost, and after the
listener's connection was killed; a fenced publish changes nothing; the API's add/remove
overlay wakes the leader; the gateway's concurrency share follows the live gateways."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from podium.coordination import routing_codec
from podium.coordination.routing_pg import PgRoutingSource, share
from podium.coordination.wake import WakeListener
from podium.core.access import RateLimit, Visibility
from podium.core.errors import Fenced, Unavailable
from podium.core.observability_spec import CaptureSpec
from podium.core.phases import EndpointStatus
from podium.core.routing import RoutingSource, RoutingTable
from podium.core.task_spec import TaskSpec
from podium.store import Database
from tests.unit.coordination.helpers import LeaseFence, lead, route, terminate, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def sources(pg: Database) -> Iterator[list[PgRoutingSource]]:
    """Sources to close after the test (each makes its own connections)."""
    made: list[PgRoutingSource] = []
    yield made
    for s in made:
        s.close()


def follower(pg: Database, made: list[PgRoutingSource], **kw: object) -> PgRoutingSource:
    """A source as another process's gateway or API would have: its own Database."""
    db = Database(url_of(pg))
    s = PgRoutingSource(db, **kw)  # type: ignore[arg-type]
    made.append(s)
    assert s.start()
    return s


def url_of(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def routes_of(table: RoutingTable) -> dict[str, tuple[int, ...]]:
    return {n: tuple(r.port for r in route.replicas) for n, route in table.endpoints.items()}


def test_a_table_published_in_a_child_process_reaches_a_follower(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    b = follower(pg, sources, refresh_s=60.0)  # only the notification can bring it in time
    seen: list[int] = []
    b.subscribe(lambda t: seen.append(t.version))
    child = textwrap.dedent(
        f"""
        from podium.coordination.fencing import SoleFence
        from podium.coordination.routing_pg import PgRoutingSource
        from podium.store import Database
        from tests.unit.coordination.helpers import route
        src = PgRoutingSource(Database({url_of(pg)!r}), fence=SoleFence())
        t = src.publish({{"iris": route("iris", 9001, 9002)}})
        print(t.version, src.store_version)
        """
    )
    root = Path(__file__).resolve().parents[3]  # the checkout: its src/ and tests/
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    out = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=root,
        env=env,
    )
    assert out.stdout.split() == ["1", "1"]  # the leader's own table is installed at once
    wait_for(lambda: "iris" in b.table.endpoints, "the follower to see the table")
    assert routes_of(b.table) == {"iris": (9001, 9002)}
    assert b.store_version == 1
    assert seen == [b.table.version]


def test_versions_grow_and_the_leader_installs_its_own_table_once(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    a = follower(pg, sources, fence=lead(pg, 1))
    b = follower(pg, sources, refresh_s=60.0)
    versions: list[int] = []
    b.subscribe(lambda t: versions.append(t.version))
    for n in range(1, 4):
        a.publish({"iris": route("iris", *range(9000, 9000 + n))})
    wait_for(lambda: b.store_version == 3, "the third table")
    assert routes_of(b.table) == {"iris": (9000, 9001, 9002)}
    assert versions == sorted(set(versions))  # only grows, never twice the same
    assert a.store_version == 3 and a.table.version == 3  # its listener installed nothing more
    with pg.engine.connect() as conn:
        row = conn.execute(text("SELECT version, epoch FROM routing_state")).one()
    assert tuple(row) == (3, 1)


def test_a_lost_notification_is_made_up_by_the_refresh(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    b = follower(pg, sources, refresh_s=0.3)
    body = routing_codec.encode({"iris": route("iris", 9100)})
    with pg.engine.begin() as conn:  # the row changes and no NOTIFY is ever sent
        conn.execute(
            text(
                "INSERT INTO routing_state (id, version, epoch, body, published_at) "
                "VALUES (1, 7, 1, :b, now())"
            ),
            {"b": body},
        )
    wait_for(lambda: b.store_version == 7, "the refresh to read the row")
    assert routes_of(b.table) == {"iris": (9100,)}


def test_a_source_started_later_reads_the_current_table_at_once(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    follower(pg, sources, fence=lead(pg, 1)).publish({"iris": route("iris", 9200)})
    late = follower(pg, sources, refresh_s=60.0)  # start() waited for the first read
    assert routes_of(late.table) == {"iris": (9200,)}


def test_the_listener_reconnects_after_its_session_is_killed(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    a = follower(pg, sources, fence=lead(pg, 1))
    b = follower(pg, sources, refresh_s=60.0, name="podium-routing-victim")
    a.publish({"iris": route("iris", 9300)})
    wait_for(lambda: b.store_version == 1, "the first table")
    before = b.table
    assert terminate(pg, "podium-routing-victim") == 1
    a.publish({"iris": route("iris", 9301)})  # sent while b is away: lost for b's LISTEN
    assert b.table is before and b.store_version == 1  # the old table serves meanwhile
    wait_for(lambda: b.listening.connects == 2, "the listener to reconnect")
    wait_for(lambda: b.store_version == 2, "the table published while away (read at connect)")
    a.publish({"iris": route("iris", 9302)})  # refresh is 60 s: only NOTIFY brings it
    wait_for(lambda: b.store_version == 3, "a notification after the reconnect")
    assert routes_of(b.table) == {"iris": (9302,)}


def test_a_fenced_publish_changes_nothing(pg: Database, sources: list[PgRoutingSource]) -> None:
    old = follower(pg, sources, fence=lead(pg, 1))
    b = follower(pg, sources, refresh_s=0.3)
    old.publish({"iris": route("iris", 9400)})
    wait_for(lambda: b.store_version == 1, "the first table")
    new = follower(pg, sources, fence=lead(pg, 2))  # a takeover raised the epoch
    mine = old.table
    with pytest.raises(Fenced):
        old.publish({"iris": route("iris", 9401)})
    assert old.table is mine and old.store_version == 1
    new.publish({"iris": route("iris", 9402)})
    wait_for(lambda: b.store_version == 2, "the new leader's table")
    assert routes_of(b.table) == {"iris": (9402,)}  # never 9401
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT epoch FROM routing_state")).scalar_one() == 2


def test_a_process_without_a_fence_never_publishes(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    b = follower(pg, sources)
    with pytest.raises(Fenced):
        b.publish({"iris": route("iris", 9500)})
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM routing_state")).scalar_one() == 0


def test_add_and_remove_change_this_process_at_once_and_wake_the_leader(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    from podium.coordination.wake import NotifyWaker

    woken: list[str | None] = []
    listener = WakeListener(pg, woken.append)
    listener.start()
    waker = NotifyWaker(pg)
    waker.start()
    try:
        leader = follower(pg, sources, fence=lead(pg, 1))
        api = follower(pg, sources, wake=waker, refresh_s=0.3)
        other = follower(pg, sources, refresh_s=0.3)
        leader.publish({"old": route("old", 9600)})
        wait_for(lambda: api.store_version == 1 and other.store_version == 1, "table 1")
        api.add(route("new"))
        api.remove("old")
        assert set(api.table.endpoints) == {"new"}  # at once, here
        wait_for(lambda: "new" in woken and "old" in woken, "the leader to be woken")
        # A table built before the leader read the change does not undo it here...
        leader.publish({"old": route("old", 9601)})
        wait_for(lambda: api.store_version == 2, "table 2")
        assert set(api.table.endpoints) == {"new"}
        # ...while another process's gateway routes by the leader's table meanwhile.
        wait_for(lambda: other.store_version == 2, "table 2 elsewhere")
        assert set(other.table.endpoints) == {"old"}
        leader.publish({"new": route("new", 9602)})  # the leader knows now
        wait_for(lambda: api.store_version == 3 and other.store_version == 3, "table 3")
        assert routes_of(api.table) == routes_of(other.table) == {"new": (9602,)}
    finally:
        waker.close()
        listener.close()


def _report(pg: Database, gateway_id: str, age_s: float) -> None:
    with pg.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO gateway_reports (gateway_id, reported_at, body) "
                "VALUES (:g, now() - make_interval(secs => :a), '{}') "
                "ON CONFLICT (gateway_id) DO UPDATE SET reported_at = excluded.reported_at"
            ),
            {"g": gateway_id, "a": age_s},
        )


def test_each_gateway_routes_with_its_share_of_max_concurrency(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    leader = follower(pg, sources, fence=lead(pg, 1))
    g1 = follower(pg, sources, gateway_id="g1", refresh_s=0.2)
    api = follower(pg, sources, refresh_s=0.2)  # no gateway: the whole figure
    leader.publish({"iris": route("iris", 9700, max_concurrency=8)})
    wait_for(lambda: g1.store_version == 1, "the table")
    assert g1.table.endpoints["iris"].max_concurrency == 8  # alone so far
    version = g1.table.version
    _report(pg, "g1", 0.0)  # its own report does not count twice
    _report(pg, "g2", 0.0)
    _report(pg, "g3", 0.0)
    _report(pg, "gone", 60.0)  # stale: not live
    wait_for(lambda: g1.shares == 3, "three live gateways")
    assert g1.table.endpoints["iris"].max_concurrency == 2  # 8 // 3
    assert g1.table.version > version  # a new local version, same store version
    assert g1.store_version == 1
    wait_for(lambda: api.store_version == 1, "the API's table")
    assert api.table.endpoints["iris"].max_concurrency == 8
    with pg.engine.begin() as conn:
        conn.execute(text("DELETE FROM gateway_reports WHERE gateway_id IN ('g2', 'g3')"))
    wait_for(lambda: g1.shares == 1, "alone again")
    assert g1.table.endpoints["iris"].max_concurrency == 8


def test_share_is_never_below_one() -> None:
    assert [share(8, n) for n in (0, 1, 2, 3, 8, 9, 100)] == [8, 8, 4, 2, 1, 1, 1]


def test_every_route_field_survives_the_row() -> None:
    from dataclasses import replace

    full = replace(
        route("p.iris", 1, 2),
        status=EndpointStatus.SCALED_TO_ZERO,
        timeout_s=12.5,
        max_queued_requests=7,
        wait_timeout_s=3.25,
        created=1_700_000_000,
        framework="python",
        openai=None,
        project="p",
        visibility=Visibility.PUBLIC,
        rate_limit=RateLimit(2.5, 9),
        capture=CaptureSpec(sample=0.5, max_bytes=100, redact=("password",)),
        tasks=TaskSpec(max_attempts=5, lease_s=90.0),
    )
    plain = route("plain", 3)
    body = routing_codec.encode({"p.iris": full, "plain": plain})
    assert routing_codec.decode(body) == {"p.iris": full, "plain": plain}
    assert json.loads(body)["p.iris"]["visibility"] == "public"


def test_it_is_a_routing_source(pg: Database) -> None:
    source: RoutingSource = PgRoutingSource(pg)  # not started: no thread, no connection
    assert source.table == RoutingTable()


class FlakyFence(LeaseFence):
    """The lease's fence, whose first `fails` checks find the database unavailable."""

    def __init__(self, epoch: int, fails: int) -> None:
        super().__init__(epoch)
        self.fails = fails

    def check(self, session: Session) -> None:
        if self.fails:
            self.fails -= 1
            raise Unavailable("the database is unavailable: (test)")
        super().check(session)


def refreshed(source: PgRoutingSource, n: int) -> None:
    """Wait until the source's listener has read the row `n` more times."""
    start = source.refreshes
    wait_for(lambda: source.refreshes >= start + n, f"{n} refreshes")


def test_a_refused_publish_installs_nothing_and_the_next_one_stores_it(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    """Nothing keeps a refused table: the controller publishes it again at its next pass
    (`control.publishing`), and that publish stores it."""
    lead(pg, 1)
    leader = follower(pg, sources, fence=FlakyFence(1, fails=1), refresh_s=0.05)
    b = follower(pg, sources, refresh_s=60.0)
    mine = leader.table
    with pytest.raises(Unavailable):
        leader.publish({"iris": route("iris", 9800)})
    assert leader.table is mine  # not installed before it is stored
    refreshed(leader, 3)  # no second writer: the listener stores nothing of its own
    with pg.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM routing_state")).scalar_one() == 0
    leader.publish({"iris": route("iris", 9800)})
    wait_for(lambda: b.store_version == 1, "the table, stored by the second publish")
    assert routes_of(b.table) == routes_of(leader.table) == {"iris": (9800,)}


def test_a_store_reset_to_a_lower_version_by_a_newer_leader_is_installed(
    pg: Database, sources: list[PgRoutingSource]
) -> None:
    """A restored database (or a schema made again) starts its versions low again; the
    next leader's higher epoch says the row is newer, so followers install it. A row
    with a lower epoch is never newer."""
    a = follower(pg, sources, fence=lead(pg, 1))
    b = follower(pg, sources, refresh_s=0.05)
    for port in (9400, 9401, 9402):
        a.publish({"iris": route("iris", port)})
    wait_for(lambda: b.store_version == 3, "the third table")
    with pg.engine.begin() as conn:  # restored from a backup taken before any publish
        conn.execute(text("DELETE FROM routing_state"))
    c = follower(pg, sources, fence=lead(pg, 2))  # a new leader
    c.publish({"iris": route("iris", 9500)})  # version 1 again, epoch 2
    wait_for(lambda: routes_of(b.table) == {"iris": (9500,)}, "the reset table")
    assert b.store_version == 1
    with pg.engine.begin() as conn:  # a row from epoch 1 is older whatever its version
        conn.execute(
            text("UPDATE routing_state SET epoch = 1, version = 7, body = :b"),
            {"b": routing_codec.encode({"iris": route("iris", 9999)})},
        )
    refreshed(b, 3)
    assert b.store_version == 1 and routes_of(b.table) == {"iris": (9500,)}


def test_an_unreadable_row_is_logged_once_and_the_last_table_serves(
    pg: Database, sources: list[PgRoutingSource], caplog: pytest.LogCaptureFixture
) -> None:
    # The publisher never refreshes during the test (its log line would count too: on a
    # loaded machine its default 5 s refresh fell inside the window once).
    a = follower(pg, sources, fence=lead(pg, 1), refresh_s=3600.0)
    b = follower(pg, sources, refresh_s=0.05)
    a.publish({"iris": route("iris", 9600)})
    wait_for(lambda: b.store_version == 1, "the first table")
    with caplog.at_level("ERROR", logger="podium.coordination.routing_pg"):
        with pg.engine.begin() as conn:
            conn.execute(text("UPDATE routing_state SET version = 2, body = 'not json'"))
        refreshed(b, 5)
    assert caplog.text.count("unreadable") == 1
    assert routes_of(b.table) == {"iris": (9600,)} and b.store_version == 1
