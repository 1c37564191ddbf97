"""`make up`'s server: `podium up --demo` deploys `iris` on first start and prints a curl
line that works; a second start finds the endpoint and leaves it as it is."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import httpx

from podium.core.phases import EndpointStatus
from tests.support.server import ServerProcess, free_port, wait_until


def _printed_curl(server: ServerProcess) -> list[str]:
    """The curl line the server printed (its continuation line joined), as arguments."""
    text = server.log_path.read_text(errors="replace")
    found = re.search(r"curl -s .*?\\\n.*?-d '.*?'", text)
    return shlex.split(found.group(0).replace("\\\n", " ")) if found else []


def test_demo_endpoint_is_deployed_once_and_its_curl_line_works(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", free_port(), demo=True)
    server.start()
    try:
        wait_until(lambda: bool(_printed_curl(server)), timeout=180, what="the curl line")
        args = _printed_curl(server)
        url = args[2]
        body = args[args.index("-d") + 1]
        assert url == f"{server.url}/endpoints/iris/"
        r = httpx.post(url, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json() == ["setosa", "virginica"]
        with server.client() as c:
            assert c.endpoint("iris").status is EndpointStatus.RUNNING
        server.stop()

        server.start()  # the same home: nothing pushed or deployed again
        with server.client() as c:
            c.wait_for("iris", {EndpointStatus.RUNNING}, timeout=120)
            versions = c.model("iris").versions
            assert [v.version for v in versions] == [1]
            assert c.endpoint("iris").revision == 1
    finally:
        server.stop()
