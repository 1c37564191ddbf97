"""Models from `s3://bucket/prefix`: a real Podium server fetching from a real S3-compatible
server (moto, authentication on) on loopback.

The server lends no AWS credentials of its own (PODIUM_S3_SERVER_CREDENTIALS is off, the
default): each endpoint names its keys as secrets of its project
(`model_source.access_key_secret` / `secret_key_secret`), so the test also shows that those,
and only those, are what the download signs with, and that a spec naming none is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from podium.core.errors import Invalid
from podium.core.phases import EventKind
from tests.support.models import _iris_classifier, train_iris_skops
from tests.support.s3_store import REGION, S3Store, running_s3, slow_proxy
from tests.support.server import ServerProcess, running_server, wait_running, wait_until

SAMPLE = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
WRONG_SECRET = "wrong-S3-secret-7f3a9c"
BIG = 2 * 1024 * 1024  # bytes: about 4 s over the slow link


def _keys(id_secret: str, key_secret: str) -> dict[str, object]:
    return {"model_source": {"access_key_secret": id_secret, "secret_key_secret": key_secret}}


def _failed(server: ServerProcess, name: str) -> str:
    with server.client() as c:
        ep = c.wait_for(name, {"failed"}, timeout=120)
    assert ep.status_reason
    return ep.status_reason


def test_deploy_from_s3_through_the_api_cli_and_gateway(tmp_path: Path) -> None:
    with running_s3(tmp_path / "moto") as store:
        store.upload_folder("models", "team/iris/v1", train_iris_skops(tmp_path / "iris"))
        store.client().put_object(Bucket="models", Key="team/big/w.bin", Body=b"w" * BIG)
        # the server reaches the store over a slow link: a download is seen while it runs
        with slow_proxy(store.url, BIG // 4) as link:
            env = {"PODIUM_S3_ENDPOINT_URL": link, "PODIUM_S3_REGION": REGION}
            with running_server(tmp_path / "podium", **env) as server:
                _check(server, store, tmp_path)


def _check(server: ServerProcess, store: S3Store, tmp_path: Path) -> None:
    expected = _iris_classifier().predict(np.array(SAMPLE)).tolist()
    with server.client() as c:
        c.set_secret("s3-id", store.access_key_id)
        c.set_secret("s3-key", store.secret_access_key)
        c.set_secret("s3-wrong", WRONG_SECRET)

        # the API (through the SDK), the endpoint's own keys, called through the gateway
        c.deploy(
            {
                "name": "iris-s3",
                "model": "s3://models/team/iris/v1",
                "framework": "sklearn",
                **_keys("s3-id", "s3-key"),
            }
        )
        ep = wait_running(c, "iris-s3")
        assert ep.model_ref == "s3://models/team/iris/v1"
        answer = c.invoke("iris-s3", {"inputs": SAMPLE})
        assert answer == expected, answer
        events = c.events("iris-s3")
        kinds = [e.kind for e in events]
        assert EventKind.DOWNLOAD_STARTED in kinds and EventKind.DOWNLOAD_DONE in kinds
        done = next(e for e in events if e.kind == EventKind.DOWNLOAD_DONE)
        size = (tmp_path / "iris" / "model.skops").stat().st_size
        assert done.data["bytes"] == size  # progress: what was fetched, in bytes
        assert done.message.startswith("downloaded s3://models/team/iris/v1@")

        # progress: the status reason says how much of the total has come
        c.deploy(
            {
                "name": "s3-big",
                "model": "s3://models/team/big",
                "framework": "sklearn",
                **_keys("s3-id", "s3-key"),
            }
        )
        reasons: list[str] = []

        def progress_shown() -> bool:
            reasons.append(c.endpoint("s3-big").status_reason or "")
            return "downloading s3://models/team/big: " in reasons[-1] and (
                "of 2.0 MiB (" in reasons[-1] and "(0%)" not in reasons[-1]
            )

        wait_until(progress_shown, timeout=60, what="download progress in the status reason")
        c.delete("s3-big")

        # no keys at all: refused at deploy, naming the field (nothing is fetched)
        with pytest.raises(Invalid) as refused:
            c.deploy(
                {"name": "s3-nokeys", "model": "s3://models/team/iris/v1", "framework": "sklearn"}
            )
        assert refused.value.field == "model_source.access_key_secret"
        assert "PODIUM_S3_SERVER_CREDENTIALS is off" in str(refused.value)

        # wrong keys, a missing prefix: failed, saying why
        c.deploy(
            {
                "name": "s3-wrong",
                "model": "s3://models/team/iris/v1",
                "framework": "sklearn",
                **_keys("s3-id", "s3-wrong"),
            }
        )
        c.deploy(
            {
                "name": "s3-missing",
                "model": "s3://models/team/absent",
                "framework": "sklearn",
                **_keys("s3-id", "s3-key"),
            }
        )
    assert "refused the credentials for s3://models/team/iris/v1" in _failed(server, "s3-wrong")
    assert "no objects under s3://models/team/absent" in _failed(server, "s3-missing")

    # the CLI, from a spec file, the same way
    spec = tmp_path / "iris-cli.yaml"
    spec.write_text(
        "name: iris-cli\nmodel: s3://models/team/iris/v1\nframework: sklearn\n"
        "model_source:\n  access_key_secret: s3-id\n  secret_key_secret: s3-key\n"
    )
    server.cli("deploy", "-f", str(spec), "--wait", "--timeout", "120")
    with server.client() as c:
        assert c.invoke("iris-cli", {"inputs": SAMPLE}) == expected

        # no secret value in events, answers or the server's log
        seen = [c.endpoint(n).model_dump_json() for n in ("iris-s3", "s3-wrong", "iris-cli")]
        for name in ("iris-s3", "s3-wrong", "s3-missing", "iris-cli"):
            seen += [e.model_dump_json() for e in c.events(name)]
    seen.append(server.log_path.read_text())
    for text in seen:
        assert WRONG_SECRET not in text
        assert store.secret_access_key not in text
