"""The backend the settings name: local by default without importing `ray`; Ray with a token
for the nodes that may only read, made fresh at each start (the previous one revoked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from podium.backends.local import LocalBackend
from podium.core.access import Scope
from podium.core.settings import BackendKind, Role, Settings
from podium.server.backend_choice import RAY_TOKEN_NAME, make_backend, node_token_name
from podium.store.db import Database

NO_RAY = """
import sys
from pathlib import Path
from podium.core.settings import Settings
from podium.server.app import Podium
app = Podium(Settings(home=Path(sys.argv[1])))
assert type(app.backend).__name__ == "LocalBackend"
print("ray" in sys.modules)
"""


def test_the_local_backend_never_imports_ray(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_RAY, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "False", out.stderr


def test_ray_gets_a_read_only_token_and_an_earlier_one_is_revoked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", backend=BackendKind.RAY, ray_address="h:1")
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.migrate()
    try:
        first = make_backend(settings, db)
        second = make_backend(settings, db)
        assert not isinstance(second, LocalBackend)
        with db.unit_of_work(read_only=True) as uow:
            tokens = [
                t
                for t in uow.tokens.list(include_revoked=True)
                if t.name == node_token_name(settings)
            ]
        assert [t.scopes for t in tokens] == [(Scope.READ,), (Scope.READ,)]
        assert sorted(t.revoked_at is None for t in tokens) == [False, True]  # one live
        assert first.name == second.name == "ray"
    finally:
        db.dispose()


def test_another_process_starting_leaves_the_leaders_node_token_alive(tmp_path: Path) -> None:
    """Several server processes (issue 16): a standby on another port, and a gateway or API
    process (which start no replica and make no token), never revoke the token the
    leader's actors fetch models with."""
    home = tmp_path / "home"
    leader = Settings(home=home, backend=BackendKind.RAY, ray_address="h:1", port=8001)
    standby = leader.with_overrides(port=8002)
    gateway = leader.with_overrides(port=8003, roles=frozenset({Role.GATEWAY}))
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.migrate()
    try:
        for settings in (leader, standby, gateway):
            make_backend(settings, db)
        with db.unit_of_work(read_only=True) as uow:
            live = sorted(t.name for t in uow.tokens.list() if t.name.startswith(RAY_TOKEN_NAME))
        assert live == [node_token_name(leader), node_token_name(standby)]
    finally:
        db.dispose()
