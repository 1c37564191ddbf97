"""huggingface_hub's `create_inference_endpoint(custom_image=...)` against a real `podium up`
that runs the image with podman, answered through the gateway by the real
`huggingface_hub.InferenceClient` (`ep.client`).

The image is the tests' busybox image (`tests.support.container_image`); its `command` and
`args` (Podium's own keys of `custom_image`) make it answer `POST /` as a text-generation
server does (`[{"generated_text": ...}]`), from a CGI written under /tmp at start, so the
Hub's client has something to parse. Skipped where the local backend has no container
replicas yet (`podium.backends.containers`, issue 17's backend).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import podium
from podium.client import NotFound, PodiumClient
from tests.support.container_image import build_test_image, remove_image
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess, running_server, wait_until

TAG = "ctr-surface-hub"  # its own tag, removed when the module is done
NAME = "ctr-surface-hub"
# How this machine runs podman (see the README's container section).
ENGINE_ENV = {
    "PODIUM_CONTAINER_RUNTIME": "runc",
    "PODIUM_CONTAINER_RUN_ARGS": "--ulimit nofile=1024:1024 --ulimit nproc=4096:4096",
}
# A TGI-shaped answer at POST / (busybox httpd runs /cgi-bin/index.cgi for a folder with no
# index.html), from a script written under /tmp (writable even in a read-only container);
# printf's \173 and \175 are { and }; the header ends in CRLF (the gateway's parser refuses
# a bare LF, which busybox httpd passes on as the CGI wrote it). httpd runs in the
# background, so the shell (PID 1) ends it on TERM: a prompt stop.
CGI = (
    'printf "Content-Type: application/json\\r\\n\\r\\n"; n=$(wc -c); '
    'printf "[\\173\\"generated_text\\": \\"got %s bytes\\"\\175]" "$n"'
)
SERVE = f"""cd /tmp && /bin/busybox mkdir -p www/cgi-bin && /bin/busybox cp /www/health www/ &&
echo '#!/bin/sh' > www/cgi-bin/index.cgi && echo '{CGI}' >> www/cgi-bin/index.cgi &&
/bin/busybox chmod 755 www/cgi-bin/index.cgi || exit 1
/bin/httpd -f -p {{port}} -h /tmp/www & pid=$!
trap "kill $pid; exit 0" TERM INT
wait $pid
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("ctr-surface")
    with running_server(tmp / "home", **ENGINE_ENV) as s, s.client() as c:
        c.push_model(write_python_bundle(tmp / "files"), "files", framework="python")
        yield s


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    built = build_test_image(TAG)
    yield built
    remove_image(built)


def _gone(client: PodiumClient, name: str) -> bool:
    try:
        client.endpoint(name)
    except NotFound:
        return True
    return False


def test_custom_image_is_served_to_the_hub_client(server: ServerProcess, image: str) -> None:
    with server.client() as client:
        ep = podium.create_inference_endpoint(
            NAME,
            repository="files",
            framework="pytorch",  # the Hub's name: the image decides what runs
            custom_image={
                "url": image,
                "health_route": "/health",
                "port": 8080,
                "env": {"MODEL_ID": "/repository"},
                "command": ["/bin/sh", "-c"],
                "args": [SERVE],
                "pull_policy": "never",
            },
            min_replica=1,
            max_replica=1,
            client=client,
        )
        try:
            assert ep.framework == "container"
            ep.wait(timeout=120)
            assert ep.status == "running"
            health = f"{ep.url}/health"
            wait_until(
                lambda: httpx.get(health, headers=server.headers, timeout=5).status_code == 200,
                60,
                "the container's health route through the gateway",
            )
            # The real huggingface_hub client: TGI-style POST / through the gateway.
            text = ep.client.text_generation("hello world", max_new_tokens=5)
            assert text.startswith("got ") and text.endswith(" bytes"), text
        finally:
            ep.delete()
            wait_until(lambda: _gone(client, NAME), 120, f"{NAME} removed")
