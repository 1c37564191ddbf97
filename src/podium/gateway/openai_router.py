"""The OpenAI router: `/v1/…` at the gateway's root, routed by the body's `model` field.

    POST /v1/chat/completions, /v1/completions, /v1/embeddings
                         the endpoint named by `model`, at the same path on its replica
    GET  /v1/models      the endpoints that serve the OpenAI API, as OpenAI's model list
    GET  /v1/models/{id} one of them

`model` is `"name"` or `"project/name"`. A bare name resolves in the caller's projects:
`default` first, then the caller's other projects in name order (a token for every project:
every project in name order); public endpoints of other projects are named with their
project. The list shows what the caller may invoke, and public endpoints (ids `name` in
`default`, `project/name` elsewhere). Who the caller is comes from the gateway's
`Authenticates` stage (`access.AccessStage`), before the pipeline's stages run; without
one every endpoint is listed and a bare name is looked up in `default`.

An endpoint whose spec says it cannot serve the OpenAI API (sklearn, onnx, triton, a
transformers classifier…) is not listed, and a request naming it is a 404; one that only
its running model can tell (a `python` bundle, a `command` server, a transformers model
without `task`) is listed and routed (`EndpointRoute.openai` is None).

This is the one place the gateway reads a request body before forwarding it: whole, at
most `max_body_bytes`, parsed only for `model`, then sent on unchanged. The answer
streams back like any other. Every error made here, or by the gateway for a request
routed here (paused, no replica in time, …), uses OpenAI's body
`{"error": {"message", "type", "param", "code"}}` instead of problem+json: the router
wraps `send` in `OpenAIErrors`, and the gateway's `send_problem` builds that body directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from podium.core.access import (
    DEFAULT_PROJECT,
    PROJECT_SEPARATOR,
    Principal,
    Visibility,
    endpoint_key,
    split_key,
)
from podium.core.access import Scope as Permission
from podium.core.asgi import send_whole
from podium.core.jsondepth import MAX_JSON_DEPTH, too_deep
from podium.core.routing import EndpointRoute, RoutingSource
from podium.gateway.activator import Refusal
from podium.gateway.body import BodyTooLarge, ClientGone, read_body
from podium.gateway.headers import request_head
from podium.gateway.pipeline import Authenticates, Pipeline
from podium.gateway.responses import JSON, OpenAIErrors, Receive, Scope, Send, openai_error

PREFIX = "/v1/"
ROUTED = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})
MODELS = "/v1/models"
# Every route served here, as patterns (the gateway's `ROUTES` lists them with its own).
ROUTES = (*sorted(ROUTED), MODELS, MODELS + "/{model}")


async def send_json(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send_whole(send, status, JSON, body, headers)


async def send_error(
    send: Send,
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    await send_json(send, status, openai_error(status, message, param=param, code=code), headers)


class OpenAIRouter:
    """Answers `/v1/…` (returns the status sent; 0: the client left).

    It only resolves the endpoint (from `model`) and the replica path, then hands the
    request to the gateway's `pipeline` (metering, stages, refusals, admission, forward),
    the same one `/endpoints/…` goes through; `pipeline.unrouted()` counts a request for
    an unknown model or path."""

    def __init__(
        self,
        routing: RoutingSource,
        max_body_bytes: int,
        pipeline: Pipeline,
        auth: Authenticates | None = None,
    ) -> None:
        self._routing = routing
        self._max_body = max_body_bytes
        self._pipeline = pipeline
        self._auth = auth

    async def __call__(self, scope: Scope, path: str, receive: Receive, send: Send) -> int:
        send = OpenAIErrors(send)
        method: str = scope["method"]
        if path in ROUTED:
            if method != "POST":
                return await _wrong_method(send, "POST", path)
            return await self._routed(scope, path, receive, send)
        if path == MODELS or path.startswith(MODELS + "/"):
            if method not in ("GET", "HEAD"):
                return await _wrong_method(send, "GET", path)
            return await self._models(scope, path, send)
        self._pipeline.unrouted()
        served = ", ".join(sorted(ROUTED | {MODELS}))
        await send_error(send, 404, f"no route {path}; the gateway serves {served}")
        return 404

    async def _routed(self, scope: Scope, path: str, receive: Receive, send: Send) -> int:
        try:
            body = await _read_whole(receive, scope, self._max_body)
        except BodyTooLarge as e:
            await send_error(send, 413, f"request body is larger than the limit of {e.limit} bytes")
            return 413
        except ClientGone:
            return 0
        model, problem, param = _model_of(body)
        if model is None:
            await send_error(send, 400, problem, param=param)
            return 400
        who = self._auth.principal(scope) if self._auth is not None else None
        route = _resolve(self._routing.table.endpoints, model, who)
        if route is None or route.openai is False:
            self._pipeline.unrouted()
            await send_error(
                send, 404, _not_found(model, route), param="model", code="model_not_found"
            )
            return 404
        query: bytes = scope.get("query_string", b"")
        target = f"{path}?{query.decode('latin-1')}" if query else path
        return await self._pipeline.invoke(route, scope, receive, send, target, body)

    async def _models(self, scope: Scope, path: str, send: Send) -> int:
        endpoints = self._routing.table.endpoints
        who: Principal | Refusal | None = None
        if self._auth is not None:
            who = self._auth.principal(scope)
            if isinstance(who, Refusal):  # bad credentials: 401 (or the CSRF 403)
                await who.send(send, request_head(scope).request_id)
                return who.status
        shown = _shown(who, self._auth is None)
        name = path[len(MODELS) + 1 :]
        if not name:
            listed = [r for r in endpoints.values() if r.openai is not False and shown(r)]
            data = sorted((_model(r) for r in listed), key=lambda m: str(m["id"]))
            await send_json(send, 200, json.dumps({"object": "list", "data": data}).encode())
            return 200
        route = _explicit(endpoints, name)
        if route is None or route.openai is False or not shown(route):
            self._pipeline.unrouted()
            await send_error(
                send, 404, _not_found(name, route), param="model", code="model_not_found"
            )
            return 404
        await send_json(send, 200, json.dumps(_model(route)).encode())
        return 200


def _resolve(
    endpoints: Mapping[str, EndpointRoute], model: str, who: Principal | Refusal | None
) -> EndpointRoute | None:
    """The route `model` names for this caller (module docstring); None: none."""
    if "/" in model:
        return _explicit(endpoints, model)
    if PROJECT_SEPARATOR in model:
        return None  # a key is not a model name: `project/name`
    first = endpoints.get(model)  # in `default`
    if not isinstance(who, Principal):
        return first
    if first is not None and (
        first.visibility is Visibility.PUBLIC or who.may(Permission.INVOKE, DEFAULT_PROJECT)
    ):
        return first
    if who.projects is None:
        others = sorted(r.name for r in endpoints.values() if split_key(r.name)[1] == model)
        keys = [k for k in others if k != model]
    else:
        keys = [endpoint_key(p, model) for p in sorted(who.projects) if p != DEFAULT_PROJECT]
    for key in keys:
        route = endpoints.get(key)
        if route is not None and who.may(Permission.INVOKE, route.project):
            return route
    return first  # refused by the access stage (403), or None


def _explicit(endpoints: Mapping[str, EndpointRoute], model: str) -> EndpointRoute | None:
    """The route of `project/name` (or of a bare name in `default`)."""
    project, slash, name = model.partition("/")
    if not slash:
        project, name = DEFAULT_PROJECT, model
    if not name or "/" in name or PROJECT_SEPARATOR in name or PROJECT_SEPARATOR in project:
        return None
    return endpoints.get(endpoint_key(project, name))


def _shown(who: Principal | Refusal | None, everything: bool) -> Callable[[EndpointRoute], bool]:
    """Which routes this caller sees in the model list."""
    if everything:
        return lambda route: True
    if isinstance(who, Principal):
        return lambda route: (
            route.visibility is Visibility.PUBLIC or who.may(Permission.INVOKE, route.project)
        )
    return lambda route: route.visibility is Visibility.PUBLIC


def _model_id(route: EndpointRoute) -> str:
    """`name` in `default`, `project/name` elsewhere."""
    project, name = split_key(route.name)
    return name if project == DEFAULT_PROJECT else f"{project}/{name}"


def _not_found(model: str, route: EndpointRoute | None) -> str:
    if route is None:
        return f"model {model!r} not found"
    project, name = split_key(route.name)
    path = f"/endpoints/{name}/"
    if project != DEFAULT_PROJECT:
        path = f"/p/{project}{path}"
    return (
        f"model {model!r} not found: endpoint {model!r} ({route.framework}) does not serve "
        f"the OpenAI API; call it at {path}"
    )


def _model(route: EndpointRoute) -> dict[str, Any]:
    return {
        "id": _model_id(route),
        "object": "model",
        "created": route.created,
        "owned_by": "podium",
    }


def _model_of(body: bytes) -> tuple[str | None, str, str | None]:
    """(the endpoint name in `model`, "", None) or (None, what is wrong, its param)."""
    if too_deep(body):
        return None, f"the request body nests deeper than {MAX_JSON_DEPTH} levels", None
    try:
        doc = json.loads(body)
    except ValueError as e:  # UnicodeDecodeError too
        return None, f"the request body is not valid JSON: {e}", None
    if not isinstance(doc, dict):
        return None, "the request body must be a JSON object", None
    model = doc.get("model")
    if model is None:
        return None, "you must provide a model parameter (the endpoint's name)", "model"
    if not isinstance(model, str) or not model:
        return None, "model must be a non-empty string (the endpoint's name)", "model"
    return model, "", None


async def _read_whole(receive: Receive, scope: Scope, limit: int) -> bytes:
    """The whole body (at most `limit` bytes: with nothing left to stream, `read_body`
    answers bytes or raises)."""
    length = request_head(scope).content_length
    body = await read_body(receive, length, retry_bytes=limit, max_bytes=limit)
    assert isinstance(body, bytes)
    return body


async def _wrong_method(send: Send, allowed: str, path: str) -> int:
    allow = ((b"allow", allowed.encode()),)
    await send_error(send, 405, f"use {allowed} for {path}", headers=allow)
    return 405
