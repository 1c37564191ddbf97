"""Two changes at once cannot both take a project's last room: the quota check takes the
project's lock (PostgreSQL) or runs in a writer that SQLite serializes."""

from __future__ import annotations

import threading
from pathlib import Path

from podium.api.services.endpoints import EndpointService
from podium.core.errors import QuotaExceeded
from podium.core.quotas import Quotas
from podium.core.settings import Settings
from podium.core.spec import EndpointCreate
from podium.store import Database
from tests.support.db import database, postgres_shared_url, sqlite_url

__all__ = ["database", "postgres_shared_url", "sqlite_url"]

RACERS = 6


def test_only_one_of_several_concurrent_deploys_fits(tmp_path: Path, database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.projects.create("team", quotas=Quotas(max_endpoints=1))
    service = EndpointService(Settings(home=tmp_path / "home"), database, lambda _: None)
    start = threading.Barrier(RACERS)
    outcomes: list[str] = []

    def deploy(i: int) -> None:
        spec = EndpointCreate.model_validate(
            {"name": f"ep-{i}", "project": "team", "model": "hf://org/tiny", "framework": "python"}
        )
        start.wait()
        try:
            service.create(spec)
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=deploy, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["refused"] * (RACERS - 1)
    with database.unit_of_work(read_only=True) as uow:
        assert len(uow.endpoints.list(projects=["team"])) == 1
