"""What a replica is launched with, from its revision's spec: the size `resources` gives
(an instance type named `custom`) and only the enabled env entries."""

from __future__ import annotations

from pathlib import Path

from podium.control.loop import Controller
from podium.core.spec import EndpointUpdate, InstanceType
from podium.store import Database
from tests.support.fake_replicas import FakeReplicas
from tests.unit.control.fakes import Harness, db, sqlite_url

__all__ = ["db", "sqlite_url"]


def test_a_replica_gets_its_custom_size_and_no_disabled_variable(
    tmp_path: Path, db: Database
) -> None:
    change = {
        "resources": {"cpus": 0.5, "memory": "768Mi"},
        "env": {"PLAIN": "yes", "OFF": {"value": "no", "disabled": True}},
    }
    with db.unit_of_work() as uow:
        new = EndpointUpdate.model_validate(change).apply(uow.endpoints.get("spin").spec)
        uow.endpoints.update_spec(
            "spin", new, new_revision_model_ref="bundle:1", desired_replicas=2
        )
    h = Harness(tmp_path, db, FakeReplicas())

    async def steps(ctl: Controller) -> None:
        await h.passes(ctl, 2)

    h.run(steps)
    launch = h.backend.started[0]
    assert launch.revision == 2
    assert launch.instance_type == InstanceType(name="custom", cpus=0.5, memory_mb=768)
    assert launch.env == {"PLAIN": "yes"}
