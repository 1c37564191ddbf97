"""The one wrapper over the `ray` API: every call the Ray backend makes into Ray is here.

Why one place: the backend's logic (what to place, when a replica is lost, what to report)
is tested against a fake of `RayApi` without a cluster, and the real calls keep one set of
rules: `ray` is imported only when a `RayCalls` first connects (a server with the local
backend never imports it), every blocking call runs in a thread with a timeout, and an
actor method's result is awaited as a future (no thread per call), also with a timeout.
Ray's own exceptions never leave this module: a dead actor (or its dead node) is
`ActorGone`, an answer that did not come in time `CallTimeout`, a cluster that cannot be
reached `Unavailable`.

Loopback: Ray rewrites a `127.0.0.1` address to the machine's outward address unless
"clusters" are off for the process (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read when `ray`
is imported); a cluster bound to loopback (one machine, tests) is only reachable with it
off, so `RayCalls` turns it off before importing `ray` for a loopback address.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from podium.core.errors import Unavailable

NAMESPACE = "podium"
CONNECT_TIMEOUT_S = 30.0
BLOCKING_TIMEOUT_S = 10.0  # a kill, a lookup, a listing
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class ActorGone(Exception):
    """The actor is dead (killed, crashed, or its node is gone): it will never answer."""


class CallTimeout(Exception):
    """No answer in time: the actor may be busy, pending placement or on an unreachable
    node. Not a verdict: ask again."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and how big one replica's actor is: Ray places it on a node that has these
    resources free; `spread`: prefer a node with fewer of our actors (several replicas)."""

    name: str  # the replica id: a named actor, so a restarted server finds it again
    cpus: float
    gpus: int
    memory_bytes: int
    spread: bool = True


class RayApi(Protocol):
    """What the Ray backend needs of Ray (`RayCalls`; a fake in unit tests). Handles are
    opaque to the caller."""

    async def connect(self) -> None: ...

    async def create(self, placement: Placement, cls: type, *args: Any) -> Any: ...

    async def call(self, handle: Any, method: str, *args: Any, timeout: float) -> Any: ...

    def call_blocking(self, handle: Any, method: str, *args: Any, timeout: float) -> Any: ...

    async def kill(self, handle: Any) -> None: ...

    async def lookup(self, name: str) -> Any | None: ...

    async def shutdown(self) -> None: ...


class RayCalls:
    """`RayApi` over a real cluster at `address` (None: Ray's own default, `RAY_ADDRESS`
    or the cluster started on this machine with `ray start`)."""

    def __init__(self, address: str | None, namespace: str = NAMESPACE) -> None:
        self._address = address
        self._namespace = namespace
        self._lock = threading.Lock()
        self._ray: Any = None  # the module, once connected
        self._remote: dict[type, Any] = {}

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        """Join the cluster (once; later calls return at once). `Unavailable` when it does
        not answer within `CONNECT_TIMEOUT_S` (the next call tries again)."""
        if self._ray is not None:
            return
        await self._blocking(self._connect, timeout=CONNECT_TIMEOUT_S, what="connecting to Ray")

    def _connect(self) -> None:
        with self._lock:
            if self._ray is not None:
                return
            host = (self._address or "").rsplit(":", 1)[0].removeprefix("ray://")
            if host in _LOOPBACK:
                os.environ.setdefault(_CLUSTER_SWITCH, "0")
            import ray

            if not ray.is_initialized():
                ray.init(
                    address=self._address or "auto",
                    namespace=self._namespace,
                    log_to_driver=False,  # replica output stays on its node (the logs API)
                    configure_logging=False,
                )
            self._ray = ray

    def _module(self) -> Any:
        if self._ray is None:
            raise Unavailable("not connected to the Ray cluster", field="backend")
        return self._ray

    # ------------------------------------------------------------------ actors

    async def create(self, placement: Placement, cls: type, *args: Any) -> Any:
        """Ask Ray to place a detached named actor of `cls` (it outlives this server, so a
        restarted one adopts it). Returns at once; the actor starts once Ray placed it."""
        await self.connect()
        return await self._blocking(
            self._create, placement, cls, args, timeout=BLOCKING_TIMEOUT_S, what="placing"
        )

    def _create(self, placement: Placement, cls: type, args: tuple[Any, ...]) -> Any:
        ray = self._module()
        remote = self._remote.get(cls)
        if remote is None:
            remote = self._remote[cls] = ray.remote(cls)
        options: dict[str, Any] = {
            "name": placement.name,
            "namespace": self._namespace,
            "lifetime": "detached",
            "max_restarts": 0,  # a lost replica is re-placed by the controller, not by Ray
            "max_concurrency": 4,  # logs and state answer while a start fetches the model
            "num_cpus": placement.cpus,
            "num_gpus": placement.gpus,
        }
        if placement.memory_bytes > 0:
            options["memory"] = placement.memory_bytes
        if placement.spread:
            options["scheduling_strategy"] = "SPREAD"
        return remote.options(**options).remote(*args)

    async def call(self, handle: Any, method: str, *args: Any, timeout: float) -> Any:
        """`handle.method(*args)` on the actor, awaited without a thread."""
        ray = self._module()
        try:
            ref = getattr(handle, method).remote(*args)
            return await asyncio.wait_for(asyncio.wrap_future(ref.future()), timeout)
        except TimeoutError as e:
            raise CallTimeout(f"{method}: no answer within {timeout:g}s") from e
        except ray.exceptions.ActorUnavailableError as e:  # transient (a restart, a network)
            raise CallTimeout(f"{method}: actor unavailable") from e
        except ray.exceptions.RayActorError as e:
            raise ActorGone(_first_line(e)) from e

    def call_blocking(self, handle: Any, method: str, *args: Any, timeout: float) -> Any:
        """The same from a plain thread (the API's log readers)."""
        ray = self._module()
        try:
            return ray.get(getattr(handle, method).remote(*args), timeout=timeout)
        except ray.exceptions.GetTimeoutError as e:
            raise CallTimeout(f"{method}: no answer within {timeout:g}s") from e
        except ray.exceptions.ActorUnavailableError as e:
            raise CallTimeout(f"{method}: actor unavailable") from e
        except ray.exceptions.RayActorError as e:
            raise ActorGone(_first_line(e)) from e

    async def kill(self, handle: Any) -> None:
        """Kill the actor (its replica child dies with it); a dead one is fine."""
        await self._blocking(
            lambda: self._module().kill(handle, no_restart=True),
            timeout=BLOCKING_TIMEOUT_S,
            what="killing an actor",
        )

    async def lookup(self, name: str) -> Any | None:
        """The live named actor `name` of our namespace (None: none such)."""
        await self.connect()

        def find() -> Any | None:
            try:
                return self._module().get_actor(name, namespace=self._namespace)
            except ValueError:  # Ray's answer for "no such named actor"
                return None

        result: Any | None = await self._blocking(
            find, timeout=BLOCKING_TIMEOUT_S, what="looking up an actor"
        )
        return result

    async def shutdown(self) -> None:
        """Leave the cluster (detached actors keep running)."""
        if self._ray is None:
            return
        await self._blocking(self._ray.shutdown, timeout=BLOCKING_TIMEOUT_S, what="leaving Ray")
        self._ray = None

    # ------------------------------------------------------------------ helpers

    async def _blocking(self, fn: Any, *args: Any, timeout: float, what: str) -> Any:
        """`fn(*args)` in a thread, at most `timeout`; past it `Unavailable` (the thread
        finishes on its own: Ray calls cannot be interrupted)."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
        except TimeoutError as e:
            raise Unavailable(f"{what}: Ray did not answer within {timeout:g}s") from e
        except ConnectionError as e:
            raise Unavailable(f"{what}: {e}", field="backend") from e


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
