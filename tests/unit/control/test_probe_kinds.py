"""TCP and exec probes against real sockets and real processes, and the HTTP probe of a port
other than the replica's (`health.run_probe`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import psutil

from podium.control.health import MAX_DETAIL, exec_probe, run_probe, tcp_probe
from podium.core.probe_spec import ProbeSpec

PY = sys.executable


@asynccontextmanager
async def listening() -> AsyncIterator[int]:
    """A real TCP server on a free port that answers any request with HTTP 200."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tcp_probe_passes_when_accepted_and_is_refused_otherwise() -> None:
    async def main() -> None:
        async with listening() as port:
            assert (await tcp_probe("127.0.0.1", port, 1.0)).ok
        port = closed_port()
        res = await tcp_probe("127.0.0.1", port, 1.0)
        assert not res.ok and res.refused
        assert res.detail == f"tcp probe: connection refused on 127.0.0.1:{port}"

    asyncio.run(main())


def test_exec_probe_exit_status_output_and_timeout() -> None:
    async def main() -> None:
        assert (await exec_probe([PY, "-c", "pass"], 5.0)).ok
        failed = await exec_probe([PY, "-c", "import sys; print('x' * 10000); sys.exit(3)"], 5.0)
        assert not failed.ok
        assert failed.detail.startswith(f"exec probe [{PY} -c ")
        assert " exited 3: xxx" in failed.detail and len(failed.detail) <= MAX_DETAIL
        hung = await exec_probe([PY, "-c", "import time; time.sleep(60)"], 0.5)
        assert not hung.ok and hung.detail.endswith("killed after 0.5s")
        missing = await exec_probe(["/nonexistent/probe"], 1.0)
        assert not missing.ok and "could not start" in missing.detail
        # The probe's environment: the replica's port, not the server's secrets.
        env = await exec_probe(
            [PY, "-c", "import os, sys; sys.exit(os.environ['PORT'] != '9')"],
            5.0,
            env={"PORT": "9"},
        )
        assert env.ok, env

    asyncio.run(main())


def test_a_cancelled_exec_probe_kills_its_command(tmp_path: Path) -> None:
    """The controller cancels probes in flight when it stops: the command must not live on."""
    pid_file = tmp_path / "pid"
    script = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(60)"
    )

    async def main() -> int:
        task = asyncio.create_task(exec_probe([PY, "-c", script], 60.0))
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
        return int(pid_file.read_text())

    pid = asyncio.run(main())
    assert not psutil.pid_exists(pid)


def test_http_probe_of_another_port() -> None:
    """`port` sends the GET to that port on the replica's host, not to the replica's."""

    async def main() -> None:
        async with listening() as port, httpx.AsyncClient() as http:
            spec = ProbeSpec(kind="http", port=port, path="/ok")
            res = await run_probe(http, spec, "127.0.0.1", closed_port())
            assert res.ok, res
            own = await run_probe(http, ProbeSpec(), "127.0.0.1", closed_port())
            assert not own.ok and own.refused
            tcp = ProbeSpec(kind="tcp", port=port)
            assert (await run_probe(http, tcp, "127.0.0.1", closed_port())).ok

    anyio.run(main)
