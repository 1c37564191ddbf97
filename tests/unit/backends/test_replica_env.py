"""A replica (user code) does not inherit the server's secrets: no `PODIUM_*` setting or
token (but the few a replica reads itself), no `HF_TOKEN` / `HUGGING_FACE_HUB_TOKEN`, no
`AWS_*` variable (the server's own S3 credentials and what points botocore at more); the
endpoint's `env` and `env_from_secrets` values (both in `ReplicaLaunch.env`) do reach it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from podium.backends.launch import replica_command
from podium.core.spec import CommandSpec
from tests.unit.backends.conftest import SyncLocal, launch, wait_for

SERVER_SECRETS = {
    "PODIUM_TOKEN": "pod_000000000000_" + "s" * 43,
    "PODIUM_DATABASE_URL": "postgresql://podium:hunter2@db/podium",
    "PODIUM_HOME": "/srv/podium",
    "HF_TOKEN": "hf_server_token",
    "HUGGING_FACE_HUB_TOKEN": "hf_server_token_old_name",
    "AWS_ACCESS_KEY_ID": "AKIASERVERKEY0000000",
    "AWS_SECRET_ACCESS_KEY": "server-aws-secret",
    "AWS_SESSION_TOKEN": "server-aws-session",
    "AWS_PROFILE": "server-profile",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/creds",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/token",
}
# PODIUM_LOG_FORMAT: the replica formats its log as the server does (text or JSON lines).
KEPT = {
    "PODIUM_MEMORY_RLIMIT": "off",
    "PODIUM_LOG_FORMAT": "json",
    "R1_ORDINARY_VARIABLE": "kept",
}
# What the controller hands the backend: the spec's env with its secrets laid over it.
SPEC_ENV = {
    "FROM_SPEC": "yes",
    "HF_TOKEN": "hf_endpoint_secret",
    "AWS_ACCESS_KEY_ID": "AKIAENDPOINTKEY00000",
}

# Writes its environment to argv[1] (whole, by a rename), then waits to be stopped.
DUMP_ENV = (
    "import json, os, sys, time; tmp = sys.argv[1] + '.tmp'; f = open(tmp, 'w'); "
    "json.dump(dict(os.environ), f); f.close(); os.rename(tmp, sys.argv[1]); time.sleep(60)"
)


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SERVER_SECRETS, **KEPT}.items():
        monkeypatch.setenv(name, value)


def _check(env: dict[str, str]) -> None:
    for name in SERVER_SECRETS:
        if name not in SPEC_ENV:
            assert name not in env, name
    assert env["HF_TOKEN"] == "hf_endpoint_secret"  # the endpoint's secret, not the server's
    # an endpoint that needs AWS keys names them (env_from_secrets); only those arrive
    assert [k for k in env if k.startswith("AWS_")] == ["AWS_ACCESS_KEY_ID"]
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAENDPOINTKEY00000"
    assert env["FROM_SPEC"] == "yes"
    for name, value in KEPT.items():
        assert env[name] == value


def test_a_real_replica_process_gets_no_server_secret(
    server_env: None, backend: SyncLocal, tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    spec = CommandSpec(command=sys.executable, args=["-c", DUMP_ENV, str(out)], port=1)
    model = tmp_path / "model"
    model.mkdir()
    backend.start(launch("env-r1", model, runtime="command", command=spec, env=SPEC_ENV))
    wait_for(out.exists, "the replica to write its environment")
    env = json.loads(out.read_text())
    backend.stop("env-r1")
    _check(env)
    assert env["PODIUM_REPLICA_ID"] == "env-r1"  # what the backend sets itself is there


def test_the_python_replica_command_gets_no_server_secret(server_env: None, tmp_path: Path) -> None:
    _, env = replica_command(
        launch("env-r2", tmp_path, env=SPEC_ENV), tmp_path, 3, tmp_path / "status", "python"
    )
    _check(env)
    assert env["PODIUM_MEMORY_LIMIT_MB"] and env["PODIUM_INSTANCE_TYPE"]


def test_without_an_endpoint_secret_there_is_no_hf_token(server_env: None, tmp_path: Path) -> None:
    _, env = replica_command(launch("env-r3", tmp_path), tmp_path, 3, tmp_path / "status", "python")
    assert "HF_TOKEN" not in env and "HUGGING_FACE_HUB_TOKEN" not in env
    assert not [
        k
        for k in env
        if k.startswith("PODIUM_")
        and k
        not in (
            "PODIUM_MEMORY_RLIMIT",
            "PODIUM_MEMORY_LIMIT_MB",
            "PODIUM_INSTANCE_TYPE",
            "PODIUM_LOG_FORMAT",
        )
    ]


def test_without_endpoint_keys_there_is_no_aws_variable(server_env: None, tmp_path: Path) -> None:
    _, env = replica_command(launch("env-r4", tmp_path), tmp_path, 3, tmp_path / "status", "python")
    assert not [k for k in env if k.startswith("AWS_")]
    assert "server-aws-secret" not in json.dumps(env)
