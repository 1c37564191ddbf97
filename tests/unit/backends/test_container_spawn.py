"""`ContainerRuntime.spawn` (`backends/container_runtime.py`): the env file, which holds
every env value and secret of the replica, is gone whenever the start fails, and an
environment `Popen` cannot pass is a `LoadError` naming `container.env`, never a bare
`ValueError`. Real processes (`/bin/true` stands in for the engine's client)."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.backends.container_runtime import ContainerRuntime
from podium.backends.containers import ContainerPlan
from podium.core.container_spec import PullPolicy
from podium.core.errors import LoadError, Unavailable
from podium.core.settings import ContainerSettings

SECRET = "hunter2-secret"


def _plan(tmp_path: Path, argv: list[str], client_env: dict[str, str]) -> ContainerPlan:
    return ContainerPlan(
        name="podium-r1",
        image="localhost/x:1",
        pull_policy=PullPolicy.NEVER,
        argv=argv,
        client_env=client_env,
        env_file=tmp_path / "run" / "r1.container.env",
        env_text=f"API_KEY={SECRET}\n",
        port=1,
        container_port=8080,
    )


@pytest.mark.parametrize(
    "client_env",
    [
        {"A=B": "x\ny"},  # a name with `=` (its value went by name): "illegal ... name"
        {"PEM": f"{SECRET}\0tail"},  # "embedded null byte"
    ],
)
def test_an_environment_popen_refuses_is_a_load_error_and_leaves_no_env_file(
    tmp_path: Path, client_env: dict[str, str]
) -> None:
    plan = _plan(tmp_path, ["/bin/true"], client_env)
    with pytest.raises(LoadError) as e:
        ContainerRuntime(ContainerSettings()).spawn(plan, tmp_path / "r1.log")
    assert e.value.field == "container.env"
    assert SECRET not in str(e.value) and "x\ny" not in str(e.value)
    assert not plan.env_file.exists()


def test_an_os_error_is_unavailable_and_leaves_no_env_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [str(tmp_path / "no-engine")], {})
    with pytest.raises(Unavailable):
        ContainerRuntime(ContainerSettings()).spawn(plan, tmp_path / "r1.log")
    assert not plan.env_file.exists()


def test_any_other_failure_leaves_no_env_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["/bin/true", 1], {})  # type: ignore[list-item]
    with pytest.raises(TypeError):
        ContainerRuntime(ContainerSettings()).spawn(plan, tmp_path / "r1.log")
    assert not plan.env_file.exists()


def test_a_started_client_has_its_env_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["/bin/true"], {"PATH": "/usr/bin:/bin"})
    client = ContainerRuntime(ContainerSettings()).spawn(plan, tmp_path / "r1.log")
    assert client.wait(timeout=30) == 0
    assert plan.env_file.read_text(encoding="utf-8") == f"API_KEY={SECRET}\n"
    assert plan.env_file.stat().st_mode & 0o777 == 0o600
