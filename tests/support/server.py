"""Run a real `podium up` in a subprocess, and a closed-loop load generator against it.

Access control is on, as in production: `podium up` writes its admin token to
`home/credentials`; `ServerProcess.token` / `headers` carry it for raw HTTP calls, and
`client()`, `cli()` and `run_load(..., headers=)` send it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from podium.client import PodiumClient
from podium.core.phases import EndpointStatus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    home: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    demo: bool = False  # `podium up --demo`, as `make up` runs it
    no_auth: bool = False  # `podium up --no-auth`
    # `podium server --roles …` instead of `podium up` (issue 16): e.g. ("server", "--roles",
    # "api,gateway,controller"); the port is added. Several such processes may share a home:
    # give each its own `log_name`.
    command: tuple[str, ...] = ()
    log_name: str = "server.log"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / self.log_name

    @property
    def credentials_path(self) -> Path:
        return self.home / "credentials"

    @property
    def token(self) -> str:
        """The admin token `podium up` made on this home."""
        return self.credentials_path.read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        """`Authorization: Bearer <admin token>` for raw HTTP calls (none with --no-auth)."""
        return {} if self.no_auth else {"authorization": f"Bearer {self.token}"}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PODIUM_HOME=str(self.home),
            PODIUM_URL=self.url,
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            # The CLI's tables are drawn this wide whatever runs the tests (a terminal, a
            # pipe, an xdist worker): rich reads COLUMNS, else the terminal, else 80.
            COLUMNS="200",
        )
        env.pop("PODIUM_TOKEN", None)  # the CLI and SDK use home/credentials unless told
        env.update(self.extra_env)  # may override the defaults above (HF_HUB_OFFLINE)
        return env

    def start(self, timeout: float = 60) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "podium"),
                *(
                    self.command
                    or ("up", "--demo" if self.demo else "--no-demo")
                    + (("--no-auth",) if self.no_auth else ())
                ),
                *("--port", str(self.port)),
            ],
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"podium up exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self._answers():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"podium up not healthy:\n{self.log_path.read_text()[-3000:]}")

    def _answers(self) -> bool:
        """Up: the API's health is 200, or, for a process without the API role, its own
        /metrics answers at all (uvicorn serves nothing before start-up has ended)."""
        roles = self.command[self.command.index("--roles") + 1] if "--roles" in self.command else ""
        if not roles or "api" in roles.split(","):
            return httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200
        return httpx.get(self.url + "/metrics", timeout=1).status_code in (200, 401, 403)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self, token: str | None = None) -> PodiumClient:
        """An SDK client with `token`, else the admin token (none with --no-auth)."""
        if token is None and not self.no_auth:
            token = self.token
        return PodiumClient(self.url, token=token, timeout=60)

    def cli(
        self, *args: str, check: bool = True, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`podium ARGS…` with this server's env: the admin token from home/credentials,
        or `token` ($PODIUM_TOKEN)."""
        env = self.env()
        if token is not None:
            env["PODIUM_TOKEN"] = token
        res = subprocess.run(
            [sys.executable, "-m", "podium", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"podium {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
        return res


@contextmanager
def running_server(home: Path, **extra_env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(home, free_port(), dict(extra_env))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_running(client: PodiumClient, name: str, timeout: float = 120) -> Any:
    return client.wait_for(name, {EndpointStatus.RUNNING}, timeout=timeout)


def wait_until(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass(frozen=True)
class Call:
    """One request of a load: when it was sent (time.monotonic()), and its status (0: no
    answer, `error` says why)."""

    sent: float
    status: int
    error: str = ""


@dataclass
class LoadReport:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)
    replicas: Counter[str] = field(default_factory=Counter)
    last_body: str = ""
    calls: list[Call] = field(default_factory=list)  # every request, in the order answered


async def _closed_loop(
    url: str,
    payload: dict[str, Any],
    clients: int,
    stop: asyncio.Event,
    report: LoadReport,
    body_key: Callable[[Any], str],
    headers: Mapping[str, str] | None,
) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as http:

        async def one_client() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    resp = await http.post(url, json=payload)
                except httpx.HTTPError as e:
                    report.failures.append(f"{type(e).__name__}: {e}")
                    report.calls.append(Call(sent, 0, f"{type(e).__name__}: {e}"))
                    continue
                report.calls.append(Call(sent, resp.status_code))
                if resp.status_code != 200:
                    report.failures.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
                    continue
                report.ok += 1
                key = body_key(resp.json())
                report.bodies[key] += 1
                report.last_body = key
                report.replicas[resp.headers.get("x-podium-replica", "?")] += 1

        await asyncio.gather(*(one_client() for _ in range(clients)))


def run_load(
    url: str,
    payload: dict[str, Any],
    *,
    seconds: float,
    clients: int = 8,
    during: Callable[[float], None] | None = None,
    body_key: Callable[[Any], str] = lambda body: str(body),
    headers: Mapping[str, str] | None = None,
) -> LoadReport:
    """Closed-loop load for `seconds`; `during(elapsed)` runs in a thread alongside it.
    `headers` go with every request (`server.headers` for a protected endpoint)."""
    import threading

    report = LoadReport()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        task = asyncio.create_task(
            _closed_loop(url, payload, clients, stop, report, body_key, headers)
        )
        if during is not None:
            t = threading.Thread(target=during, args=(started,), daemon=True)
            t.start()
        await asyncio.sleep(seconds)
        stop.set()
        await task
        del loop

    asyncio.run(main())
    return report


class TritonBearer:
    """A tritonclient plugin (`client.register_plugin(TritonBearer(token))`) that sends
    `Authorization: Bearer <token>` with every call, as `headers=` on each would."""

    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    def __call__(self, request: Any) -> None:
        request.headers["authorization"] = self._value
