"""Projects in the store, on SQLite and PostgreSQL: the repository's rules, and endpoints and
models kept under their keys (`core.access.endpoint_key`) in their project."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.phases import EndpointStatus
from podium.core.quotas import Quotas
from podium.store import Database
from tests.support.db import IN_THIS_DATABASE
from tests.unit.store.helpers import add_model, spec

S = EndpointStatus


def make(db: Database, name: str = "team", **quotas: object) -> None:
    with db.unit_of_work() as uow:
        uow.projects.create(name, description="the team", quotas=Quotas(**quotas))  # type: ignore[arg-type]


def test_default_exists_and_others_are_created_listed_and_changed(database: Database) -> None:
    make(database, "team", max_replicas=4, max_cpus=2.5)
    with database.unit_of_work(read_only=True) as uow:
        assert [p.name for p in uow.projects.list()] == ["default", "team"]
        team = uow.projects.get("team")
        assert (team.description, team.quotas) == ("the team", Quotas(max_replicas=4, max_cpus=2.5))
        assert uow.projects.get("default").quotas == Quotas()
        assert [p.name for p in uow.projects.list(["team", "ghost"])] == ["team"]
        assert uow.projects.with_quotas() == {"team": Quotas(max_replicas=4, max_cpus=2.5)}
    with database.unit_of_work() as uow:
        uow.projects.update("team", quotas=Quotas(max_gpus=1))
        uow.projects.update("team", description=None)
    with database.unit_of_work(read_only=True) as uow:
        team = uow.projects.get("team")
        assert (team.description, team.quotas) == (None, Quotas(max_gpus=1))


def test_names_taken_missing_and_invalid(database: Database) -> None:
    make(database)
    with pytest.raises(Conflict) as e, database.unit_of_work() as uow:
        uow.projects.create("team")
    assert (e.value.message, e.value.field) == ("project 'team' already exists", "name")
    with pytest.raises(NotFound) as nf, database.unit_of_work(read_only=True) as uow:
        uow.projects.get("ghost")
    assert (nf.value.message, nf.value.field) == ("project 'ghost' not found", "project")
    with pytest.raises(Invalid) as bad, database.unit_of_work() as uow:
        uow.projects.create("a.b")
    assert bad.value.field == "name"
    with pytest.raises(NotFound), database.unit_of_work() as uow:
        uow.projects.update("ghost", description="x")


def test_delete_refuses_default_and_a_project_that_holds_anything(database: Database) -> None:
    with (
        pytest.raises(Conflict, match="'default' cannot be deleted"),
        database.unit_of_work() as uow,
    ):
        uow.projects.delete("default")
    make(database, "team")
    make(database, "lab")
    with database.unit_of_work() as uow:
        uow.endpoints.create(
            spec("chat", project="team"), model_ref="iris:1", status=S.PENDING, desired_replicas=1
        )
    add_model(database, "lab.iris")
    for name, what in (("team", "endpoints"), ("lab", "models")):
        with pytest.raises(Conflict) as e, database.unit_of_work() as uow:
            uow.projects.delete(name)
        assert e.value.message == f"project {name!r} still holds {what}: delete them first"
    make(database, "empty")
    with database.unit_of_work() as uow:
        assert uow.projects.delete("empty").name == "empty"
    with database.unit_of_work(read_only=True) as uow:
        assert [p.name for p in uow.projects.list()] == ["default", "lab", "team"]


def test_the_same_endpoint_name_in_two_projects_has_two_keys(database: Database) -> None:
    make(database, "team")
    with database.unit_of_work() as uow:
        for project in ("default", "team"):
            uow.endpoints.create(
                spec("chat", project=project),
                model_ref="iris:1",
                status=S.PENDING,
                desired_replicas=1,
            )
    with database.unit_of_work(read_only=True) as uow:
        both = uow.endpoints.list()
        assert [(e.name, e.project, e.bare_name) for e in both] == [
            ("chat", "default", "chat"),
            ("team.chat", "team", "chat"),
        ]
        assert [e.name for e in uow.endpoints.list(projects=["team"])] == ["team.chat"]
        assert uow.endpoints.list(projects=[]) == []
        # a name filter matches the name, not the project in the key
        assert [e.name for e in uow.endpoints.list(name_contains="tea")] == []
        assert uow.endpoints.get("team.chat").spec.project == "team"
    with database.unit_of_work() as uow:  # an update keeps the key
        rec = uow.endpoints.get("team.chat")
        new = rec.spec.model_copy(update={"max_queue": 3})
        uow.endpoints.update_spec("team.chat", new, new_revision_model_ref=None, desired_replicas=2)
        with pytest.raises(Invalid):
            uow.endpoints.update_spec("chat", new, new_revision_model_ref=None, desired_replicas=1)


def test_an_endpoint_or_model_of_a_missing_project_is_not_found(database: Database) -> None:
    with pytest.raises(NotFound) as e, database.unit_of_work() as uow:
        uow.endpoints.create(
            spec("chat", project="ghost"), model_ref="iris:1", status=S.PENDING, desired_replicas=1
        )
    assert (e.value.message, e.value.field) == ("project 'ghost' not found", "project")
    with pytest.raises(NotFound) as e:
        add_model(database, "ghost.iris")
    assert e.value.field == "project"


def test_models_are_kept_by_key_in_their_project(database: Database) -> None:
    make(database, "team")
    add_model(database, "iris")
    rec = add_model(database, "team.iris", sha256="cd" * 32)
    assert (rec.name, rec.project, rec.bare_name, rec.ref, rec.bare_ref) == (
        "team.iris",
        "team",
        "iris",
        "team.iris:1",
        "iris:1",
    )
    with database.unit_of_work(read_only=True) as uow:
        assert uow.models.list_names() == ["iris", "team.iris"]
        assert uow.models.list_names(["team"]) == ["team.iris"]
        assert uow.models.get("team.iris").sha256 == "cd" * 32
        assert uow.models.get("iris").project == "default"


# ------------------------------------------------------- adding to a project being deleted


def _postgres(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes every writer already: no lock to wait for")


def _blocked_or_done(db: Database, thread: threading.Thread) -> None:
    """Return once `thread` waits on an advisory lock of this database, or has finished
    (the old code, which took no lock, never waits): no timing, only state."""
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        f" AND {IN_THIS_DATABASE}"
    )
    while thread.is_alive():
        with db.engine.connect() as conn:
            if conn.execute(waiting).scalar_one() > 0:
                return
        time.sleep(0.005)


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # reported by the test
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _create_endpoint(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec("chat", project="team"), model_ref="iris:1", status=S.PENDING, desired_replicas=1
        )


def test_an_endpoint_created_while_its_project_is_deleted_is_refused(database: Database) -> None:
    _postgres(database)
    make(database)
    with database.unit_of_work() as uow:
        uow.projects.delete("team")  # holds the project's lock until commit
        thread, errors = _in_thread(lambda: _create_endpoint(database))
        _blocked_or_done(database, thread)
    thread.join()
    assert [type(e) for e in errors] == [NotFound]
    assert errors[0].field == "project"  # type: ignore[attr-defined]
    with database.unit_of_work(read_only=True) as uow:
        assert uow.endpoints.list() == []


def test_a_model_pushed_while_its_project_is_deleted_is_refused(database: Database) -> None:
    _postgres(database)
    make(database)
    with database.unit_of_work() as uow:
        uow.projects.delete("team")
        thread, errors = _in_thread(lambda: add_model(database, "team.iris"))
        _blocked_or_done(database, thread)
    thread.join()
    assert [type(e) for e in errors] == [NotFound]
    with database.unit_of_work(read_only=True) as uow:
        assert uow.models.list_names() == []


def test_a_secret_set_while_its_project_is_deleted_is_refused(database: Database) -> None:
    _postgres(database)
    make(database)

    def set_secret() -> None:
        with database.unit_of_work() as uow:
            uow.secrets.put("team", "hf-token", "ciphertext", by="test")

    with database.unit_of_work() as uow:
        uow.projects.delete("team")
        thread, errors = _in_thread(set_secret)
        _blocked_or_done(database, thread)
    thread.join()
    assert [type(e) for e in errors] == [NotFound]
    with database.unit_of_work(read_only=True) as uow:
        assert uow.secrets.list() == []


def test_a_project_deleted_while_an_endpoint_is_created_is_kept(database: Database) -> None:
    _postgres(database)
    make(database)
    with database.unit_of_work() as uow:
        uow.endpoints.create(
            spec("chat", project="team"), model_ref="iris:1", status=S.PENDING, desired_replicas=1
        )

        def delete() -> None:
            with database.unit_of_work() as other:
                other.projects.delete("team")

        thread, errors = _in_thread(delete)
        _blocked_or_done(database, thread)
    thread.join()
    assert [type(e) for e in errors] == [Conflict]
    assert "still holds endpoints" in str(errors[0])
    with database.unit_of_work(read_only=True) as uow:
        assert [e.name for e in uow.endpoints.list()] == ["team.chat"]
        assert uow.projects.get("team").name == "team"
