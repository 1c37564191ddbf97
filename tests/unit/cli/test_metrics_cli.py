"""`podium metrics NAME REPLICA`: one replica's metrics, through the control API (the real
server app in-process; its replica is the echo stand-in, which answers any path)."""

from __future__ import annotations

import json

from tests.unit.cli.conftest import Cli


def test_metrics_prints_what_the_replica_answered(cli: Cli, deployed: str) -> None:
    (rid,) = cli.api.ready("iris")
    cli.api.requests.clear()
    result = cli("metrics", "iris", rid)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["path"] == "/metrics"  # the replica's own route
    assert cli.api.requests == [f"GET /api/v1/endpoints/iris/replicas/{rid}/metrics"]


def test_an_unknown_replica_is_one_line_naming_it(cli: Cli, deployed: str) -> None:
    result = cli("metrics", "iris", "iris-r1-nothere")
    assert result.exit_code == 1
    assert result.stderr == "error: replica_id: endpoint iris has no replica 'iris-r1-nothere'\n"
