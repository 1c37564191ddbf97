"""Readiness and liveness probes (each replica's in its own task of the controller,
`control.probing`): an HTTP GET (`probe`), a TCP connection (`tcp_probe`) or a command run
on the replica's host (`exec_probe`); `run_probe` picks by the spec's kind.

A replica's `/health/live?hung_after_s=N` answers 503 with a problem whose `hung` member
is true when a call into its runtime has run longer than N seconds; the result then says
`hung`, with the replica's own words and figures. A probe that gets no answer in time is
`timed_out`: the replica's event loop may be blocked (the controller calls it hung once
no probe has been answered for the endpoint's timeout plus the grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from podium.backends.replica_env import inherited_env
from podium.core.probe_spec import ProbeKind, ProbeSpec

MAX_DETAIL = 300  # characters of a replica's own explanation kept in a probe's detail
MAX_BODY = 64 * 1024  # bytes of a probe's body read at most; a larger one is not parsed
MAX_EXEC_OUTPUT = 4 * 1024  # bytes of an exec probe's output kept (the rest is read and dropped)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    refused: bool = False  # nothing listening yet (a starting replica), not a failure
    detail: str = ""
    timed_out: bool = False  # connected (or tried) but no answer within the timeout
    hung: bool = False  # the replica says a call into its runtime has run too long
    figures: dict[str, float] = field(default_factory=dict)  # e.g. oldest_call_s, limit_s


async def run_probe(
    client: httpx.AsyncClient,
    spec: ProbeSpec,
    host: str,
    port: int,
    params: dict[str, str] | None = None,
) -> ProbeResult:
    """The probe `spec` describes, of the replica at `host:port` (`spec.port` instead when
    given). `params` are the query of an HTTP probe."""
    port = spec.port or port
    if spec.kind is ProbeKind.TCP:
        return await tcp_probe(host, port, spec.timeout_s)
    if spec.kind is ProbeKind.EXEC:
        return await exec_probe(spec.command or [], spec.timeout_s, env={"PORT": str(port)})
    return await probe(client, f"http://{host}:{port}{spec.path}", spec.timeout_s, params)


async def tcp_probe(host: str, port: int, timeout_s: float) -> ProbeResult:
    """A connection to `host:port` accepted within `timeout_s` (then closed at once)."""
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(
            ok=False, detail=f"tcp probe: no connection within {timeout_s:g}s on {where}"
        )
    except ConnectionRefusedError:
        return ProbeResult(
            ok=False, refused=True, detail=f"tcp probe: connection refused on {where}"
        )
    except OSError as e:
        return ProbeResult(ok=False, detail=f"tcp probe: {e.strerror or e} on {where}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(ok=True)


async def exec_probe(
    argv: Sequence[str],
    timeout_s: float,
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ProbeResult:
    """Run `argv` (no shell) with the environment a replica inherits plus `env`; exit status
    0 is success. Output (stdout and stderr together) is read to its end, its first
    `MAX_EXEC_OUTPUT` bytes kept: the failure detail quotes it. Killed (its process group)
    at `timeout_s`, or when the probe is cancelled."""
    shown = f"exec probe [{shlex.join(argv)}]"[: MAX_DETAIL // 2]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=cwd,
            env={**inherited_env(), **(env or {})},
            start_new_session=True,  # its own group: a timeout kills what it started too
        )
    except OSError as e:
        return ProbeResult(ok=False, detail=f"{shown} could not start: {e.strerror or e}")
    try:
        async with asyncio.timeout(timeout_s):
            kept = await _read_bounded(proc.stdout, MAX_EXEC_OUTPUT)
            code = await proc.wait()
    except TimeoutError:
        _kill_group(proc)
        await proc.wait()
        return ProbeResult(ok=False, detail=f"{shown} killed after {timeout_s:g}s")
    except asyncio.CancelledError:  # the controller stops, or the replica left: no orphan
        _kill_group(proc)
        with contextlib.suppress(asyncio.CancelledError):
            await proc.wait()
        raise
    if code == 0:
        return ProbeResult(ok=True)
    said = kept.decode(errors="replace").strip()
    detail = f"{shown} exited {code}" + (f": {said}" if said else "")
    return ProbeResult(ok=False, detail=detail[:MAX_DETAIL])


async def _read_bounded(stream: asyncio.StreamReader | None, limit: int) -> bytearray:
    """Read `stream` to its end, keeping its first `limit` bytes."""
    kept = bytearray()
    if stream is None:
        return kept
    while chunk := await stream.read(64 * 1024):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return kept


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def probe(
    client: httpx.AsyncClient, url: str, timeout_s: float, params: dict[str, str] | None = None
) -> ProbeResult:
    """GET `url`; the body is streamed and at most `MAX_BODY` bytes of it are read."""
    try:
        async with client.stream("GET", url, params=params, timeout=timeout_s) as resp:
            body = await _read_at_most(resp, MAX_BODY)
    except httpx.ConnectError as e:
        return ProbeResult(ok=False, refused=True, detail=f"connection failed: {e}")
    except httpx.TimeoutException:
        return ProbeResult(ok=False, timed_out=True, detail=f"no answer within {timeout_s:g}s")
    except httpx.HTTPError as e:
        return ProbeResult(ok=False, detail=f"{type(e).__name__}: {e}")
    if resp.status_code == 200:
        return ProbeResult(ok=True)
    if resp.status_code == 503 and body is not None:
        hung = _hung(body)
        if hung is not None:
            return hung
    return ProbeResult(ok=False, detail=f"HTTP {resp.status_code}")


async def _read_at_most(resp: httpx.Response, limit: int) -> bytes | None:
    """The body if it is at most `limit` bytes; None (and the rest left unread) if longer."""
    data = bytearray()
    async for chunk in resp.aiter_bytes():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def _hung(body: bytes) -> ProbeResult | None:
    """The replica's "hung" problem, if that is what this 503's body is."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("hung") is not True:
        return None
    detail = str(doc.get("detail") or "hung")[:MAX_DETAIL]
    figures = {
        k: float(v)
        for k in ("oldest_call_s", "limit_s", "running_calls")
        if isinstance(v := doc.get(k), int | float) and not isinstance(v, bool)
    }
    return ProbeResult(ok=False, hung=True, detail=detail, figures=figures)
