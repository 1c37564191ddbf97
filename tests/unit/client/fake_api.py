"""A faithful, in-memory fake of Podium's REST API and gateway, for SDK and CLI tests.

It follows the contract of /api/v1 (status codes, problem+json, schemas from core) but
keeps everything in dicts. Endpoints move through a scripted status plan, one step per
GET, so `wait_for` sees pending -> initializing -> running (or -> failed for a model
whose name starts with "broken"). `served(app)` runs an app with uvicorn in a thread.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from podium.core.errors import (
    Conflict,
    Invalid,
    NotFound,
    PodiumError,
    Retryable,
    TooLarge,
    Unavailable,
    UnsafeArchive,
)
from podium.core.ids import check_name
from podium.core.phases import EndpointStatus, EventKind, ReplicaState
from podium.core.schemas import (
    EndpointPublic,
    EventPublic,
    LogLine,
    ModelVersionPublic,
    ReplicaPublic,
    RevisionPublic,
)
from podium.core.settings import DEFAULT_INSTANCE_TYPES
from podium.core.spec import (
    EndpointCreate,
    EndpointUpdate,
    RepoRef,
    ScaleRequest,
    parse_model_ref,
)

S = EndpointStatus
STATUS_CODES: dict[type[PodiumError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    TooLarge: 413,
    Unavailable: 503,
}


@dataclass
class Upload:
    name: str
    filename: str
    framework: str | None
    content_type: str | None
    body: bytes
    members: list[str]


@dataclass
class Endpoint:
    public: EndpointPublic
    plan: list[tuple[EndpointStatus, str | None]] = field(default_factory=list)


class FakePodium:
    def __init__(self) -> None:
        self.url = ""
        self.reset()

    def reset(self) -> None:
        self.models: dict[str, list[ModelVersionPublic]] = {}
        self.uploads: list[Upload] = []
        self.endpoints: dict[str, Endpoint] = {}
        self.revisions: dict[str, list[RevisionPublic]] = {}
        self.events: list[EventPublic] = []
        self.requests: list[str] = []  # "METHOD /path?query"
        self.invocations: list[tuple[str, str, Any]] = []  # (endpoint, path, body)

    # ------------------------------------------------------------ helpers

    def model_public(self, name: str) -> dict[str, Any]:
        versions = self.models.get(name)
        if not versions:
            raise NotFound(f"model {name!r} not found")
        return {
            "name": name,
            "latest": versions[-1].version,
            "versions": [v.model_dump(mode="json") for v in versions],
        }

    def get(self, name: str) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise NotFound(f"endpoint {name!r} not found") from None

    def event(self, name: str, kind: EventKind, message: str) -> None:
        self.events.append(
            EventPublic(
                id=len(self.events) + 1, endpoint=name, at=_now(), kind=kind, message=message
            )
        )

    def set_status(self, ep: Endpoint, status: EndpointStatus, reason: str | None = None) -> None:
        p = ep.public
        p.status, p.status_reason = status, reason
        ready = status is S.RUNNING
        p.desired_replicas = (
            0 if status in (S.PAUSED, S.SCALED_TO_ZERO) else max(1, p.spec.scaling.min_replicas)
        )
        p.ready_replicas = p.desired_replicas if ready else 0
        p.replicas = [
            ReplicaPublic(
                replica_id=f"{p.name}-r{p.revision}-{i:06x}",
                revision=p.revision,
                state=ReplicaState.READY if ready else ReplicaState.STARTING,
                pid=4000 + i,
                host="127.0.0.1",
                port=41000 + i,
                started_at=_now(),
            )
            for i in range(p.desired_replicas if status not in (S.FAILED,) else 0)
        ]
        p.updated_at = _now()
        self.event(
            p.name, EventKind.STATUS, f"status {status.value}" + (f": {reason}" if reason else "")
        )

    def advance(self, ep: Endpoint) -> None:
        if ep.plan:
            self.set_status(ep, *ep.plan.pop(0))

    def start_plan(self, ep: Endpoint) -> None:
        broken = ep.public.model_ref.startswith("broken")
        last = (S.FAILED, "model failed to load: bad pickle") if broken else (S.RUNNING, None)
        ep.plan = [(S.INITIALIZING, None), last]

    def add_revision(self, ep: Endpoint) -> None:
        p = ep.public
        self.revisions.setdefault(p.name, []).append(
            RevisionPublic(
                number=p.revision,
                model_ref=p.model_ref,
                spec=p.spec.revision_view(),
                created_at=_now(),
            )
        )

    def framework_of(self, ref: str) -> str:
        """The framework a model version records (as the server fills a missing one)."""
        parsed = parse_model_ref(ref)
        if not isinstance(parsed, RepoRef):
            return ""
        name, _, version = self.resolve(ref).partition(":")
        found = [v for v in self.models[name] if v.version == int(version)]
        return found[0].framework or "" if found else ""

    def resolve(self, ref: str) -> str:
        parsed = parse_model_ref(ref)
        if not isinstance(parsed, RepoRef):
            return ref
        versions = self.models.get(parsed.name)
        if not versions:
            raise Invalid(f"model {parsed.name!r} not found; push it first", field="model")
        version = parsed.version or versions[-1].version
        if all(v.version != version for v in versions):
            raise Invalid(f"model {parsed.name}:{version} not found", field="model")
        return f"{parsed.name}:{version}"


def _now() -> datetime:
    return datetime.now(UTC)


def _problem(
    status: int, title: str, detail: str, field: str | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _validate(cls: type[BaseModel], data: Any) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise Invalid(first["msg"].removeprefix("Value error, "), field=loc or None) from None


def _dump(ep: Endpoint) -> dict[str, Any]:
    return ep.public.model_dump(mode="json")


def create_app(state: FakePodium) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        state.requests.append(f"{request.method} {request.url.path}{query}")
        response: Response = await call_next(request)
        return response

    @app.exception_handler(PodiumError)
    async def podium_error(request: Request, exc: PodiumError) -> JSONResponse:
        status = next((c for t, c in STATUS_CODES.items() if isinstance(exc, t)), 500)
        headers = {"retry-after": "2"} if isinstance(exc, Retryable) else None
        response = _problem(status, exc.title, exc.message, exc.field)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        field = ".".join(str(p) for p in errors[0]["loc"][1:]) if errors else None
        return _problem(422, "Invalid", errors[0]["msg"], field, errors=errors)

    api = "/api/v1"

    @app.get(api + "/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(api + "/instance-types")
    def instance_types() -> list[dict[str, Any]]:
        return [t.model_dump() for t in DEFAULT_INSTANCE_TYPES]

    @app.post(api + "/models/{name}/versions")
    async def push(
        name: str, filename: str, request: Request, framework: str | None = None
    ) -> Response:
        check_name(name)
        body = await request.body()
        members: list[str] = []
        if filename.endswith((".tar.gz", ".tgz")):
            try:
                with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
                    for m in tar.getmembers():
                        parts = PurePosixPath(m.name).parts
                        if m.name.startswith("/") or ".." in parts or parts[:1] == (".",):
                            raise UnsafeArchive(f"{m.name!r} is not a relative name", field="body")
                        if m.issym() or m.islnk():
                            raise UnsafeArchive(f"{m.name!r} is a link", field="body")
                        members.append(m.name)
            except tarfile.TarError as e:
                raise Invalid(f"not a valid .tar.gz: {e}", field="body") from None
        state.uploads.append(
            Upload(name, filename, framework, request.headers.get("content-type"), body, members)
        )
        sha = hashlib.sha256(body).hexdigest()
        versions = state.models.setdefault(name, [])
        if versions and versions[-1].sha256 == sha:
            return JSONResponse(
                {**versions[-1].model_dump(mode="json"), "created": False},
                headers={"x-podium-duplicate": "true"},
            )
        number = versions[-1].version + 1 if versions else 1
        version = ModelVersionPublic(
            name=name,
            version=number,
            ref=f"{name}:{number}",
            framework=framework,
            sha256=sha,
            size_bytes=len(body),
            files=sum(1 for m in members if "." in m.rsplit("/", 1)[-1]) or 1,
            source=f"upload:{filename}",
            created_at=_now(),
        )
        versions.append(version)
        return JSONResponse(version.model_dump(mode="json"), status_code=201)

    @app.get(api + "/models")
    def models() -> list[dict[str, Any]]:
        return [state.model_public(n) for n in sorted(state.models) if state.models[n]]

    @app.get(api + "/models/{name}")
    def model(name: str) -> dict[str, Any]:
        return state.model_public(name)

    @app.get(api + "/models/{name}/versions/{version}")
    def model_version(name: str, version: int) -> dict[str, Any]:
        for v in state.models.get(name, []):
            if v.version == version:
                return v.model_dump(mode="json")
        raise NotFound(f"model {name}:{version} not found")

    @app.delete(api + "/models/{name}/versions/{version}", status_code=204)
    def delete_version(name: str, version: int) -> None:
        model_version(name, version)
        users = [
            e.public.name
            for e in state.endpoints.values()
            if e.public.model_ref == f"{name}:{version}"
        ]
        if users:
            raise Conflict(f"{name}:{version} is used by endpoint {users[0]}", field="model")
        state.models[name] = [v for v in state.models[name] if v.version != version]

    @app.delete(api + "/models/{name}", status_code=204)
    def delete_model(name: str) -> None:
        state.model_public(name)
        del state.models[name]

    @app.post(api + "/endpoints", status_code=201)
    async def create(request: Request) -> dict[str, Any]:
        create: EndpointCreate = _validate(EndpointCreate, await request.json())
        framework = create.framework or state.framework_of(create.model)
        if not framework:
            raise Invalid(f"{create.model} does not record its framework", field="framework")
        spec = create.with_framework(framework)
        if spec.name in state.endpoints:
            raise Conflict(f"endpoint {spec.name!r} already exists", field="name")
        if spec.instance_type not in {t.name for t in DEFAULT_INSTANCE_TYPES}:
            raise Invalid(f"unknown instance type {spec.instance_type!r}", field="instance_type")
        now = _now()
        ep = Endpoint(
            EndpointPublic(
                name=spec.name,
                spec=spec,
                status=S.PENDING,
                revision=1,
                model_ref=state.resolve(spec.model),
                desired_replicas=max(1, spec.scaling.min_replicas),
                ready_replicas=0,
                url=f"{str(request.base_url).rstrip('/')}/endpoints/{spec.name}/",
                created_at=now,
                updated_at=now,
            )
        )
        state.endpoints[spec.name] = ep
        state.add_revision(ep)
        state.event(spec.name, EventKind.SPEC, "created")
        state.start_plan(ep)
        return _dump(ep)

    @app.get(api + "/endpoints")
    def list_endpoints(
        request: Request, status: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        labels = [item.split("=", 1) for item in request.query_params.getlist("label")]
        items = [
            _dump(e)
            for n, e in sorted(state.endpoints.items())
            if (status is None or e.public.status == status)
            and (name is None or name in n)
            and all(e.public.spec.labels.get(k) == v for k, v in labels)
        ]
        return {"items": items}

    @app.get(api + "/endpoints/{name}")
    def get_endpoint(name: str) -> dict[str, Any]:
        ep = state.get(name)
        state.advance(ep)
        return _dump(ep)

    @app.patch(api + "/endpoints/{name}")
    async def update(name: str, request: Request) -> dict[str, Any]:
        ep = state.get(name)
        changes: EndpointUpdate = _validate(EndpointUpdate, await request.json())
        new_spec = changes.apply(ep.public.spec)
        old_view = ep.public.spec.revision_view()
        ep.public.spec = new_spec
        if new_spec.revision_view() != old_view:
            ep.public.revision += 1
            ep.public.model_ref = state.resolve(new_spec.model)
            state.add_revision(ep)
            state.set_status(ep, S.UPDATING)
            ep.plan = [(S.RUNNING, None)]
        state.event(name, EventKind.SPEC, f"updated: {', '.join(sorted(changes.model_fields_set))}")
        return _dump(ep)

    @app.post(api + "/endpoints/{name}/pause")
    def pause(name: str) -> dict[str, Any]:
        ep = state.get(name)
        ep.plan = []
        state.set_status(ep, S.PAUSED)
        return _dump(ep)

    @app.post(api + "/endpoints/{name}/resume")
    def resume(name: str) -> dict[str, Any]:
        ep = state.get(name)
        if ep.public.status is not S.PAUSED:
            raise Conflict(f"endpoint {name} is not paused", field="status")
        state.set_status(ep, S.PENDING)
        state.start_plan(ep)
        return _dump(ep)

    @app.post(api + "/endpoints/{name}/wake")
    def wake(name: str) -> dict[str, Any]:
        ep = state.get(name)
        if ep.public.status is S.SCALED_TO_ZERO:
            state.set_status(ep, S.INITIALIZING)
            ep.plan = [(S.RUNNING, None)]
        return _dump(ep)

    @app.post(api + "/endpoints/{name}/scale")
    async def scale(name: str, request: Request) -> dict[str, Any]:
        ep = state.get(name)
        body = await request.json()
        try:
            req = ScaleRequest.model_validate(body)
        except ValidationError as e:
            msg = e.errors()[0]["msg"].removeprefix("Value error, ")
            raise Invalid(msg, field="scaling") from None
        ep.public.spec = ep.public.spec.model_copy(
            update={"scaling": ep.public.spec.scaling.model_copy(update=req.model_dump())}
        )
        state.event(name, EventKind.SCALED, f"scaling {req.min_replicas}..{req.max_replicas}")
        state.set_status(ep, S.SCALED_TO_ZERO if req.min_replicas == 0 else ep.public.status)
        return _dump(ep)

    @app.delete(api + "/endpoints/{name}", status_code=202)
    def delete(name: str) -> dict[str, Any]:
        ep = state.get(name)
        state.set_status(ep, S.DELETING)
        del state.endpoints[name]
        return _dump(ep)

    @app.get(api + "/endpoints/{name}/events")
    def events(name: str, after: int = 0, limit: int = 500) -> dict[str, Any]:
        state.get(name)
        items = [e for e in state.events if e.endpoint == name and e.id > after][:limit]
        return {"items": [e.model_dump(mode="json") for e in items]}

    @app.get(api + "/endpoints/{name}/revisions")
    def revisions(name: str) -> list[dict[str, Any]]:
        state.get(name)
        return [r.model_dump(mode="json") for r in state.revisions.get(name, [])]

    @app.get(api + "/endpoints/{name}/logs", response_model=None)
    def logs(name: str, tail: int = 200, replica: str | None = None, follow: bool = False) -> Any:
        ep = state.get(name)
        rid = replica or f"{name}-r{ep.public.revision}-000000"
        lines = [LogLine(replica_id=rid, line=f"[{i}] log line {i} of {name}") for i in range(1, 6)]
        lines = lines[-tail:] if tail else []
        if follow:

            def stream() -> Iterator[bytes]:
                for item in lines:
                    yield f"{item.replica_id} | {item.line}\n".encode()
                    time.sleep(0.01)

            return StreamingResponse(stream(), media_type="text/plain")
        return {"items": [x.model_dump() for x in lines]}

    @app.post("/endpoints/{name}/{path:path}")
    async def invoke(name: str, path: str, request: Request) -> Response:
        ep = state.get(name)
        if ep.public.status is S.PAUSED:
            raise Retryable(f"endpoint {name} is paused", retry_after=2)
        body = await request.json()
        state.invocations.append((name, "/" + path, body))
        if isinstance(body, dict) and body.get("inputs") == "boom":
            return _problem(500, "Internal Server Error", "the model raised ValueError: boom")
        inputs = body.get("inputs") if isinstance(body, dict) else body
        return JSONResponse({"outputs": inputs, "path": "/" + path, "endpoint": name})

    return app


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free local port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake Podium API did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@contextmanager
def fake_podium() -> Iterator[FakePodium]:
    state = FakePodium()
    with served(create_app(state)) as url:
        state.url = url
        yield state


def free_port() -> int:
    """A local port with nothing listening on it (for connection-refused tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
