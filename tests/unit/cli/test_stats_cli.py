"""`podium ls` and `podium describe` show what endpoints and replicas served (the figures
the API computes from the metrics history; known points are written into the real
server's store), readable on a 120-column terminal."""

from __future__ import annotations

import re
import time

from podium.cli.main import app
from tests.support.live import insert, point
from tests.unit.cli.conftest import Cli


def served(cli: Cli) -> None:
    """iris served 1000 requests today, 60 of them (3 failed, 20 ms average) lately;
    its replica 40 of those (25 ms average)."""
    now = int(time.time()) // 10 * 10
    insert(
        cli.api.podium.db,
        point("iris", "", now - 10, requests=60, errors_5xx=3, latency_sum_ms=1200.0),
        point("iris", "", (now - 3600) // 60 * 60, resolution=60, requests=940),  # a minute
        point("iris", "", (now - 3600) // 3600 * 3600, resolution=3600, requests=940),  # its hour
        point("iris", "iris-r1-000000", now - 10, requests=40, latency_sum_ms=1000.0),
    )


def test_ls_shows_the_figures_on_120_columns(cli: Cli, deployed: str) -> None:
    served(cli)
    env = {"PODIUM_URL": cli.api.url, "COLUMNS": "120"}
    result = cli.runner.invoke(app, ["ls"], env=env)
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split()[4:8] == ["REQ/MIN", "LATENCY", "ERR%", "UPTIME"]
    cells = row.split()
    assert cells[:7] == ["iris", "iris:1", "running", "1/1", "12.0", "20.0ms", "5.0%"]
    assert re.fullmatch(r"\d+s", cells[7])  # ready a moment ago
    assert cells[8].startswith("http://127.0.0.1")
    assert all(len(line) <= 120 for line in result.stdout.splitlines())


def test_describe_shows_the_figures_and_the_instances(cli: Cli, deployed: str) -> None:
    served(cli)
    result = cli("describe", "iris")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()

    def value(key: str) -> str:
        [line] = [line for line in lines if line.split()[:1] == [key]]
        return line.removeprefix(key).strip()

    assert value("requests") == "1000 in 24 h, 12.0/min (last 5 min)"
    assert value("latency") == "20.0ms average (last 5 min)"
    assert value("errors") == "5.0% 5xx (last 5 min)"
    assert re.fullmatch(r"\d+s", value("uptime"))
    header = next(line for line in lines if line.startswith("REPLICA"))
    assert header.split() == [
        *("REPLICA", "REV", "STATE", "PID", "CPUS", "GPUS", "UPTIME"),
        *("REQUESTS", "REQ/MIN", "LATENCY", "RESTARTS", "ADDRESS"),
    ]
    [replica] = [line for line in lines if line.startswith("iris-r1-000000")]
    cells = replica.split()
    assert cells[:6] == ["iris-r1-000000", "1", "ready", "-", "1", "0"]  # cpu-small
    assert cells[7:11] == ["40", "8.0", "25.0ms", "0"]
