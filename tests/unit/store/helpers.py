"""Small builders shared by the store tests."""

from __future__ import annotations

from typing import Any

from podium.core.spec import EndpointSpec
from podium.store import Database
from podium.store.records import ModelVersionRecord


def spec(name: str = "iris-api", **changes: Any) -> EndpointSpec:
    fields: dict[str, Any] = {"name": name, "model": "iris:1", "framework": "sklearn"}
    return EndpointSpec.model_validate({**fields, **changes})


def add_model(db: Database, name: str = "iris", sha256: str = "ab" * 32) -> ModelVersionRecord:
    with db.unit_of_work() as uow:
        return uow.models.add_version(
            name,
            framework="sklearn",
            sha256=sha256,
            size_bytes=5 * 2**32,  # needs 64 bits
            files=2,
            source="path:/tmp/iris",
            path=f"/var/podium/artifacts/{name}",
        )
