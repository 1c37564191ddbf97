"""`create_api(ctx)`: the control plane's FastAPI app, under /api/v1.

The docs page (`/api/v1/docs`, Swagger UI) loads its JavaScript and CSS from Podium itself
(`/api/v1/docs-assets/…`, the files the `fastapi-offline` package ships), not from a CDN:
it works on a machine without internet access.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

import podium
from podium.api import access, problems
from podium.api.audit import AuditTrail, AuditWriter
from podium.api.deps import ApiContext
from podium.api.headers import SecurityHeaders
from podium.api.limits import BodyLimit
from podium.api.routes import (
    apply,
    audit,
    callback_keys,
    endpoints,
    files,
    jobs,
    live,
    metrics_history,
    models,
    observe,
    openai_batches,
    projects,
    requests,
    secrets,
    session,
    system,
    tasks,
    tokens,
    usage,
)

PREFIX = "/api/v1"
DOCS_ASSETS = f"{PREFIX}/docs-assets"  # Swagger UI's files, served locally


def create_api(ctx: ApiContext) -> FastAPI:
    app = FastAPIOffline(
        title="Podium",
        version=podium.__version__,
        summary="Control plane of Podium: models, endpoints, revisions, events, logs.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        static_url=DOCS_ASSETS,
        swagger_ui_oauth2_redirect_url=f"{PREFIX}/docs/oauth2-redirect",
    )
    app.state.podium = ctx
    for module in (
        system,
        session,
        tokens,
        audit,
        projects,
        models,
        endpoints,
        apply,  # POST /apply and the export of an endpoint (issue 14)
        observe,
        requests,  # request records (issue 12)
        metrics_history,
        live,  # GET /live: the gateway's counts now
        secrets,
        usage,
        tasks,  # async tasks (issue 13)
        callback_keys,
        files,  # the file store: job inputs and outputs (issue 13)
        jobs,  # batch jobs (issue 13)
    ):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(openai_batches.router)  # /v1/files, /v1/batches (no /api/v1)
    limits = ctx.settings.limits
    app.add_middleware(  # before problems.install: its ServerErrorGuard goes outside this
        BodyLimit,
        max_json_bytes=limits.max_json_bytes,
        max_upload_bytes=ctx.max_upload_bytes,
        max_file_bytes=ctx.settings.tasks.max_file_bytes,  # job inputs (issue 13)
    )
    # Outside BodyLimit: a 413 met while the body streams in is recorded (one answered
    # from the declared length, before routing, names no route and is not).
    app.state.audit = AuditWriter(ctx.db)
    app.add_middleware(AuditTrail, writer=app.state.audit)
    problems.install(app)
    access.check_before_body_errors(app)
    docs = frozenset({f"{PREFIX}/docs", f"{PREFIX}/docs/oauth2-redirect"})
    app.add_middleware(SecurityHeaders, docs_paths=docs)  # outermost: on 500s too
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with error responses declared as `application/problem+json` and
    the bearer token each operation needs (none for the public ones), so the docs page's
    "Authorize" button works."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        public = _public_operations(app)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an API token"}
        }
        for route_path, path in schema.get("paths", {}).items():
            for method, operation in path.items():
                secured = (method.upper(), route_path) not in public
                operation["security"] = [{"bearer": []}] if secured else []
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if code[:1] in "45" and "application/json" in content:
                        content[problems.PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = schema
    return app.openapi_schema


def _public_operations(app: FastAPI) -> set[tuple[str, str]]:
    """`(METHOD, path)` of the routes marked `access.PUBLIC`."""
    out: set[tuple[str, str]] = set()
    for methods, path, marks in access.routes(app):
        if None in marks:
            out |= {(m, path) for m in methods}
    return out
