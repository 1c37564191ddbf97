"""Registry credentials (`backends/container_auth.py`) and pulls (`container_pull.py`).

The real test: a tiny registry on 127.0.0.1 that answers every call with 401 and
`WWW-Authenticate: Basic`, recording the Authorization header it gets; `podman pull` with
Podium's private auth file must send the credentials there, and neither the LoadError
nor anything left on disk may carry them."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from podium.backends.container_auth import (
    REDACTED,
    RegistryLogin,
    auth_json,
    image_registry,
    parse_login,
    pull_auth,
    redact,
)
from podium.backends.container_engine import find_engine
from podium.backends.container_pull import ensure_image
from podium.core.container_spec import PullPolicy
from podium.core.errors import LoadError
from podium.core.settings import ContainerSettings

pytestmark = pytest.mark.xdist_group("containers")

PASSWORD = "pa55-w0rd-secret"


def test_the_registry_of_an_image() -> None:
    assert image_registry("ghcr.io/org/x:1") == "ghcr.io"
    assert image_registry("127.0.0.1:5000/x:1") == "127.0.0.1:5000"
    assert image_registry("localhost/x") == "localhost"
    assert image_registry("vllm/vllm-openai:latest") == "docker.io"
    assert image_registry("busybox") == "docker.io"


def test_both_forms_of_the_secret() -> None:
    login = parse_login(f"bob:{PASSWORD}", "ghcr.io/org/x:1")
    assert (login.registry, login.username, login.password) == ("ghcr.io", "bob", PASSWORD)
    assert PASSWORD not in repr(login)
    data = json.dumps({"username": "bob", "password": PASSWORD, "registry": "r.example:443"})
    assert parse_login(data, "x").registry == "r.example:443"
    assert parse_login(json.dumps({"username": "a", "password": "b"}), "x").registry == "docker.io"
    for bad in ("no-colon", ":p", "u:", "{not json", json.dumps({"username": "bob"})):
        with pytest.raises(LoadError) as e:
            parse_login(bad, "x")
        assert e.value.field == "container.registry_secret"
        assert bad not in str(e.value) or bad in ("u:", ":p")


def test_the_auth_file_is_private_and_gone_after(tmp_path: Path) -> None:
    login = RegistryLogin("docker.io", "bob", PASSWORD)
    with pull_auth(login, "podman", tmp_path) as auth:
        path = Path(auth.args[1])
        assert auth.args[0] == "--authfile"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        token = json.loads(path.read_text())["auths"]["docker.io"]["auth"]
        assert base64.b64decode(token).decode() == f"bob:{PASSWORD}"
    assert not path.parent.exists()
    with pull_auth(login, "docker", tmp_path) as auth:
        folder = Path(auth.env["DOCKER_CONFIG"])
        assert "https://index.docker.io/v1/" in (folder / "config.json").read_text()
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_redact_takes_every_form_out() -> None:
    login = RegistryLogin("r", "bob", PASSWORD)
    token = json.loads(auth_json(login, "podman"))["auths"]["r"]["auth"]
    text = redact(f"bad {PASSWORD} / {token} / bob:{PASSWORD}", login)
    assert PASSWORD not in text and token not in text and text.count(REDACTED) == 3


class _Registry(BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization") or "")
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="podium-test"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    """(address, Authorization headers seen); the engine told it is plain HTTP."""
    seen: list[str] = []
    handler = type("Registry", (_Registry,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    address = f"127.0.0.1:{server.server_address[1]}"
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{address}"\ninsecure = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield address, seen
    server.shutdown()
    server.server_close()


def test_a_pull_sends_the_credentials_and_says_none(
    registry: tuple[str, list[str]], tmp_path: Path
) -> None:
    address, seen = registry
    engine = find_engine(ContainerSettings(engine="podman", pull_timeout_s=60))
    image = f"{address}/x:1"
    run_dir = tmp_path / "run"
    with pytest.raises(LoadError) as e:
        ensure_image(engine, image, PullPolicy.ALWAYS, f"bob:{PASSWORD}", run_dir)
    expected = "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    assert expected in seen
    message = str(e.value)
    assert message.startswith(f"image {image} could not be pulled (pull_policy always): ")
    assert PASSWORD not in message and expected.split()[1] not in message
    assert e.value.field == "container.image"
    assert list(run_dir.iterdir()) == []  # the auth folder is gone


def test_if_not_present_pulls_nothing_for_an_image_the_node_has(tmp_path: Path) -> None:
    from tests.support.container_image import build_test_image, remove_image

    image = build_test_image("ctr-auth")  # its own tag: no other module's image removed
    try:
        engine = find_engine(ContainerSettings(engine="podman"))
        assert not ensure_image(engine, image, PullPolicy.IF_NOT_PRESENT, None, tmp_path)
        assert not ensure_image(engine, image, PullPolicy.NEVER, None, tmp_path)
    finally:
        remove_image(image)
