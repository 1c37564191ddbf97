"""`make up`'s server: `podium up --demo` deploys `iris` on first start and prints a curl
line that works; a second start finds the endpoint and leaves it as it is."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from podium.core.phases import EndpointStatus
from tests.support.server import ServerProcess, free_port, wait_until


def _printed_curl(server: ServerProcess) -> str:
    """The curl command the server printed, its continuation lines joined."""
    text = server.log_path.read_text(errors="replace")
    found = re.search(r"curl -s (?:.*?\\\n)*?.*?-d '.*?'", text)
    return found.group(0).replace("\\\n", " ") if found else ""


def test_demo_endpoint_is_deployed_once_and_its_curl_line_works(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", free_port(), demo=True)
    server.start()
    try:
        wait_until(lambda: bool(_printed_curl(server)), timeout=180, what="the curl line")
        line = _printed_curl(server)
        args = shlex.split(line)
        assert args[2] == f"{server.url}/endpoints/iris/"
        # The token is read from the credentials file by the shell, never printed.
        assert f"Authorization: Bearer $(cat {server.credentials_path})" in line
        assert server.token not in server.log_path.read_text(errors="replace")
        ran = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout) == ["setosa", "virginica"]
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
