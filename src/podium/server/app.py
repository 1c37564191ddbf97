"""The server: one process running the API, the gateway and the controller, or some of them.

`podium up` runs all three roles in one process on SQLite. `podium server --roles …`
(issue 16) runs any subset, several processes sharing one PostgreSQL database: `Podium`
builds only what its roles need (`settings.roles`):

- api: the control API, the dashboard;
- gateway: the gateway, the async task dispatcher, the request-record writer;
- controller: a controller candidate (it runs passes only while it holds the lease,
  `podium.coordination.leadership`), the job runner (only while the candidate leads: two
  runners would read one job's input twice) and the callback sender (safe in several
  processes at once: `CallbackQueue.take` skips rows another sender has locked and holds
  what it took for longer than a delivery may take).

Every process serves `/metrics` (its own parts' figures: a Prometheus scrapes each
process). A path of a role this process does not run is answered 404 problem+json.

`/endpoints/…`, `/p/{project}/endpoints/…` and the OpenAI router's `/v1/…` go to the
gateway (raw ASGI, the hot path); everything else to the control-plane API (FastAPI, under
`/api/v1`). The controller runs in its own thread and publishes the routing table the
gateway reads. Before any of that, every request's Host header is checked (`hosts.py`).

Access control: the server owns one token directory (`tokens.py`), which the API and the
gateway's access stage authenticate against; on a fresh home with auth on, `podium up`'s
admin token is made first (`credentials.py`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from podium.api.app import create_api
from podium.api.deps import ApiContext, GatewayLive
from podium.artifacts.store import ArtifactStore
from podium.backends.base import RunsContainers
from podium.control.loop import Controller
from podium.coordination.leadership import lease_for
from podium.core.asgi import Receive, Scope, Send, serve_lifespan
from podium.core.problems import PROBLEM, SAFE_HEADERS, problem_body
from podium.core.request_record import RecordBuffer
from podium.core.routing import InProcessRoutingSource, RoutingSource
from podium.core.settings import ALL_ROLES, Role, Settings
from podium.gateway.access import AccessStage
from podium.gateway.app import Gateway
from podium.gateway.task_store import DatabaseTaskStore
from podium.gateway.tasks import TaskDispatcher
from podium.server.backend_choice import make_backend
from podium.server.callbacks import CallbackSender
from podium.server.cluster import Cluster
from podium.server.credentials import ensure_credentials
from podium.server.hosts import HostCheck, allowed_hosts
from podium.server.jobs import JobRunner
from podium.server.recorder import RecordWriter
from podium.server.scrape import scrape_refusal
from podium.server.tokens import LiveTokens, TokenRefresher, store_loader
from podium.store.db import Database
from podium.store.files import FileStore, TaskResultFiles
from podium.store.secret_box import SecretBox
from podium.web.app import create_web, is_web_path

log = logging.getLogger("podium.server")
# OpenAI's Batch API is served by the control-plane API (api/routes/openai_batches.py).
OPENAI_BATCH_PREFIXES = ("/v1/files", "/v1/batches")
WHY_FAILED_WAIT_S = 2.0  # how long a 502 for a crashed replica waits to say why


class Podium:
    """Podium's parts for this process's roles wired together, as one ASGI app (lifespan
    starts and stops the parts)."""

    def __init__(self, settings: Settings, *, one_of_several: bool = False) -> None:
        """`one_of_several`: a `podium server` on PostgreSQL, one of the processes sharing
        the database (its replicas outlive it: the next leader adopts them)."""
        self.settings = settings
        self.one_of_several = one_of_several
        roles = settings.roles
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.db.migrate()
        if settings.auth:
            ensure_credentials(settings, self.db)
        # The live tokens, for the API, the gateway and /metrics (reloaded while serving).
        self.tokens = LiveTokens()
        self.token_refresher = TokenRefresher(
            store_loader(self.db), self.tokens, settings.token_refresh_s
        )
        self.token_refresher.reload()
        self.hosts = HostCheck(allowed_hosts(settings))
        self.artifacts = ArtifactStore(settings.artifacts_dir, limits=settings.limits.archive)
        # Replicas on this machine (local) or a Ray cluster's nodes (`backend_choice`); the
        # backend gets the models onto the replicas' nodes itself. Every role uses it: the
        # controller acts through it, the API reads replica logs and the gateway a crashed
        # replica's cause through it.
        self.backend = make_backend(settings, self.db)
        # The controller candidate's lease (the sole one on SQLite, `podium up`), made
        # first: the routing source publishes under its fence.
        self.lease = lease_for(settings.database_url) if Role.CONTROLLER in roles else None
        fence = None if self.lease is None else self.lease.fence
        # The routing table, wakes and gateway load: in memory for `podium up`; through
        # PostgreSQL for one `podium server` of several (`cluster.Cluster`).
        self.cluster = Cluster(settings, self.db, fence=fence) if one_of_several else None
        self.holder: RoutingSource = (
            InProcessRoutingSource() if self.cluster is None else self.cluster.routing
        )
        # The server's one Prometheus registry, which `/metrics` serves (docs/metrics.md):
        # the gateway, the controller and the records writer register into it.
        self.registry = CollectorRegistry(auto_describe=False)
        self.records: RecordBuffer | None = None
        self.recorder: RecordWriter | None = None
        self.gateway: Gateway | None = None
        self.dispatcher: TaskDispatcher | None = None
        if Role.GATEWAY in roles:
            self._build_gateway()
        self.controller: Controller | None = None
        self.jobs: JobRunner | None = None
        self.callbacks: CallbackSender | None = None
        if Role.CONTROLLER in roles:
            self._build_controller()
        self._register()
        self.api: Any = None
        self.web: Any = None
        if Role.API in roles:
            self.api = create_api(
                ApiContext(
                    settings=settings,
                    db=self.db,
                    artifacts=self.artifacts,
                    logs=self.backend,
                    wake=self._wake,
                    routing=self.holder,
                    tokens=self.tokens,
                    max_upload_bytes=settings.limits.max_upload_bytes,
                    # `GET /api/v1/live` and `podium top`: the gateway's counts right now.
                    live=(
                        None
                        if self.gateway is None
                        else GatewayLive(self.gateway, records=self.records)
                    ),
                )
            )
            self.web = create_web()  # the dashboard at / (issue 15)

    def _build_gateway(self) -> None:
        settings = self.settings
        # Request records (issue 12): the gateway offers one per invocation to the buffer,
        # the writer thread stores them in batches and prunes them.
        observed = settings.observability
        self.records = RecordBuffer(observed.buffer_records) if observed.records else None
        self.recorder = (
            None if self.records is None else RecordWriter(self.db, self.records, observed)
        )
        task_store = DatabaseTaskStore(self.db)
        self.gateway = Gateway(
            self.holder,
            settings.gateway,
            wake=self._wake,
            # A replica that refused a connection: the controller looks at once.
            on_replica_failure=lambda _replica, _reason: self._wake(),
            why_failed=self._why_failed,
            # Tokens, visibility and rate limits, checked from the routing table.
            stages=[AccessStage(self.tokens, auth=settings.auth)],
            records=self.records,  # one record per invocation, offered to the buffer
            registry=self.registry,
            # Async tasks (issue 13): the async route stores them in the server's queue...
            tasks=task_store,
            task_settings=settings.tasks,
        )
        # ...and the dispatcher runs them through the gateway's own pipeline.
        # Results too large (or not JSON) to keep inline go to the file store (issue 13).
        result_files = TaskResultFiles(self.db, FileStore(settings.files_dir))
        self.dispatcher = TaskDispatcher(
            self.gateway.pipeline,
            self.holder,
            task_store,
            settings.tasks,
            save_result=result_files.save_result,
            delete_files=result_files.delete_files,
            # A task runs as its creator while the creator's token is live (auth on).
            tokens=self.tokens if settings.auth else None,
        )
        if self.gateway.task_intake is not None:
            self.gateway.task_intake.on_enqueued = self.dispatcher.wake
        if self.cluster is not None:
            self.cluster.report(self.gateway)  # the leader sums every gateway's load

    def _build_controller(self) -> None:
        settings = self.settings
        lease = self.lease
        assert lease is not None  # made with the controller role
        self.controller = controller = Controller(
            settings,
            self.db,
            self.backend,
            self.holder,
            # The load the autoscaler and the draining read: this process's gateway, or
            # the sum of every gateway's reports (one process of several).
            gateway=self.gateway if self.cluster is None else self.cluster.view,
            lease=lease,
        )
        if self.cluster is not None:
            self.cluster.listen(controller.wake)  # wakes from every process
        # Batch jobs (issue 13): turns job lines into tasks, writes their output files;
        # only while this process's controller leads, its writes fenced like the
        # controller's.
        self.jobs = JobRunner(
            controller.db,
            FileStore(settings.files_dir),
            settings.tasks,
            max_line_bytes=settings.gateway.max_body_bytes,
            active=None if lease.sole else (lambda: controller.leading),
        )
        # Task callbacks (issue 13): POSTs each ended task's document to its callback URL.
        self.callbacks = CallbackSender(
            self.db, settings.tasks, SecretBox(settings.secret_key_path)
        )

    def _register(self) -> None:
        """Register the controller's, the records writer's and the server process's own
        collectors in the server's registry (the gateway registered its own)."""
        registry = self.registry
        if self.controller is not None:
            registry.register(self.controller.collector())
            # The sampler's latest figures.
            registry.register(self.controller.history_collector())
        if self.recorder is not None:  # the request records written, dropped, buffered
            registry.register(self.recorder)
        ProcessCollector(registry=registry)  # process_*: the server's CPU, memory, fds

    def _wake(self, endpoint: str | None = None) -> None:
        """Wake the leading controller: this process's own at once (a standby ignores it),
        the leader elsewhere through PostgreSQL (one process of several)."""
        controller = self.controller
        if controller is not None:
            controller.wake(endpoint)
        if self.cluster is not None and not (controller is not None and controller.leading):
            self.cluster.waker(endpoint)

    async def _why_failed(self, replica_id: str) -> str | None:
        """Why a replica died serving a request, as the backend learns it (the controller,
        woken by the failure, polls it): waits at most WHY_FAILED_WAIT_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WHY_FAILED_WAIT_S
        while (cause := self.backend.exit_cause(replica_id)) is None:
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.05)
        return cause

    async def startup(self) -> None:
        if self.cluster is not None and not await asyncio.to_thread(self.cluster.start):
            log.warning("the routing table could not be read yet: serving none until it is")
        if self.gateway is not None:
            await self.gateway.startup()
        self.token_refresher.start()
        if self.recorder is not None:
            self.recorder.start()
        if self.controller is not None:
            self.controller.start()  # a standby returns after its first try to lead
        if self.dispatcher is not None:
            self.dispatcher.start()
        if self.callbacks is not None:
            self.callbacks.start()
        if self.jobs is not None:
            # The job runner's thread wakes the dispatcher, through the loop, when it
            # enqueued (a dispatcher in another process finds the tasks at its next round).
            loop = asyncio.get_running_loop()
            dispatcher = self.dispatcher

            def wake_dispatcher() -> None:
                if dispatcher is not None:
                    loop.call_soon_threadsafe(dispatcher.wake)

            self.jobs.on_enqueued = wake_dispatcher
            self.jobs.start()
        # Everything built so far lives as long as the server: move it out of the garbage
        # collector's generations, so the full collections that long-lived objects (request
        # records waiting for the writer, connections) trigger under load no longer walk
        # the whole startup heap each time (measured: bench/gateway.py --records).
        gc.collect()
        gc.freeze()
        # The port is bound already (`server.main.serve` binds it before building the app).
        log.info("Podium is up at %s (state in %s)", self.settings.public_url, self.settings.home)
        if self.settings.roles != ALL_ROLES:
            log.info("roles: %s", ",".join(sorted(self.settings.roles)))
        if self.controller is not None and isinstance(self.backend, RunsContainers):
            # The engine container replicas run with (the process that starts replicas).
            log.info("containers: %s", await asyncio.to_thread(self.backend.container_engine))
        if self.settings.auth:
            log.info(
                "API token for this machine's CLI and SDK: in %s (never printed)",
                self.settings.credentials_path,
            )
        if hint := cli_hint():
            log.info("%s", hint)

    async def shutdown(self, *, stop_replicas: bool = True) -> None:
        if self.jobs is not None:
            await asyncio.to_thread(self.jobs.stop)
        # `podium up` stops its replicas with it, as it always did (if it leads: on
        # PostgreSQL another leader may have taken them over). A `podium server` of several
        # leaves them to the next leader, which adopts them: a rolling restart of the
        # servers restarts no replica. A process that never led never started any.
        leads = self.controller is not None and self.controller.leading
        stop = stop_replicas and leads and not self.one_of_several
        if self.controller is not None:
            self.controller.stop(replicas_stay=not stop)
        if self.dispatcher is not None:
            await self.dispatcher.stop()  # before the gateway: its calls run through it
        if self.callbacks is not None:
            await asyncio.to_thread(self.callbacks.stop)
        self.token_refresher.stop()
        await self.backend.close(stop_replicas=stop)
        if self.gateway is not None:
            await self.gateway.shutdown()
        if self.recorder is not None:  # after the gateway: nothing is offered any more
            await asyncio.to_thread(self.recorder.stop)
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.close)
        self.db.dispose()
        gc.unfreeze()  # an embedded server (tests, notebooks) gives its heap back to the GC

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if (host := self.hosts.refused(scope.get("headers", ()))) is not None:
            await _misdirected(send, host, kind)
            return
        path: str = scope.get("path", "")
        if (
            kind == "http"
            and (path.startswith(("/endpoints/", "/v1/", "/p/")) or path == "/endpoints")
            and not path.startswith(OPENAI_BATCH_PREFIXES)
        ):
            if self.gateway is None:
                await _not_here(send, "gateway", path)
                return
            await self.gateway(scope, receive, send)  # /v1/…: the OpenAI router
        elif kind == "http" and path == "/metrics":
            await self._metrics(scope, send)
        elif self.api is None:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            elif kind == "http":
                await _not_here(send, "api", path)
        elif kind == "http" and is_web_path(path):
            await self.web(scope, receive, send)  # the dashboard (issue 15)
        else:
            await self.api(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await serve_lifespan(receive, send, self.startup, self.shutdown)

    async def _metrics(self, scope: Scope, send: Send) -> None:
        """The server's Prometheus metrics (`registry`): every project's, so a token for
        every project with `read` is needed when auth is on (`scrape.py`)."""
        if self.settings.auth:
            refused = scrape_refusal(self.tokens, scope.get("headers", ()))
            if refused is not None:
                status, headers, body = refused
                headers = [*headers, *SAFE_HEADERS]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await _plain(send, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)


def cli_hint() -> str:
    """How to run the `podium` command from another shell, when it is not on PATH."""
    script = Path(sys.executable).parent / "podium"
    if not script.exists() or shutil.which("podium") == str(script):
        return ""
    activate = script.parent / "activate"
    also = f", or `source {activate}` to put it on PATH" if activate.exists() else ""
    return f"The podium command is {script}{also}"


async def _plain(send: Any, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), *SAFE_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _not_here(send: Any, role: str, path: str) -> None:
    """404 problem+json for a path of a role this process does not run (`--roles`)."""
    detail = f"{path} is served by a Podium process with the {role} role, not this one"
    headers = [(b"content-type", PROBLEM), *SAFE_HEADERS]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": problem_body(404, detail)})


async def _misdirected(send: Any, host: str, kind: str) -> None:
    """421 for a Host this server does not answer to (a websocket is closed instead)."""
    if kind != "http":
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        return
    status, headers, body = HostCheck.answer(host)
    headers = [*headers, *SAFE_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
