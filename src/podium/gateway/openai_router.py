"""The OpenAI router: `/v1/…` at the gateway's root, routed by the body's `model` field.

    POST /v1/chat/completions, /v1/completions, /v1/embeddings
                         the endpoint named by `model`, at the same path on its replica
    GET  /v1/models      the endpoints that serve the OpenAI API, as OpenAI's model list
    GET  /v1/models/{id} one of them

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
from typing import Any

from podium.core.asgi import send_whole
from podium.core.jsondepth import MAX_JSON_DEPTH, too_deep
from podium.core.routing import EndpointRoute, RoutingSource
from podium.gateway.body import BodyTooLarge, ClientGone, read_body
from podium.gateway.headers import request_head
from podium.gateway.pipeline import Pipeline
from podium.gateway.responses import JSON, OpenAIErrors, Receive, Scope, Send, openai_error

PREFIX = "/v1/"
ROUTED = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})
MODELS = "/v1/models"


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

    def __init__(self, routing: RoutingSource, max_body_bytes: int, pipeline: Pipeline) -> None:
        self._routing = routing
        self._max_body = max_body_bytes
        self._pipeline = pipeline

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
            return await self._models(path, send)
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
        route = self._routing.table.endpoints.get(model)
        if route is None or route.openai is False:
            self._pipeline.unrouted()
            await send_error(
                send, 404, _not_found(model, route), param="model", code="model_not_found"
            )
            return 404
        query: bytes = scope.get("query_string", b"")
        target = f"{path}?{query.decode('latin-1')}" if query else path
        return await self._pipeline.invoke(route, scope, receive, send, target, body)

    async def _models(self, path: str, send: Send) -> int:
        endpoints = self._routing.table.endpoints
        name = path[len(MODELS) + 1 :]
        if not name:
            listed = sorted(n for n, r in endpoints.items() if r.openai is not False)
            data = [_model(endpoints[n]) for n in listed]
            await send_json(send, 200, json.dumps({"object": "list", "data": data}).encode())
            return 200
        route = endpoints.get(name)
        if route is None or route.openai is False:
            self._pipeline.unrouted()
            await send_error(
                send, 404, _not_found(name, route), param="model", code="model_not_found"
            )
            return 404
        await send_json(send, 200, json.dumps(_model(route)).encode())
        return 200


def _not_found(model: str, route: EndpointRoute | None) -> str:
    if route is None:
        return f"model {model!r} not found"
    return (
        f"model {model!r} not found: endpoint {model!r} ({route.framework}) does not serve "
        f"the OpenAI API; call it at /endpoints/{model}/"
    )


def _model(route: EndpointRoute) -> dict[str, Any]:
    return {"id": route.name, "object": "model", "created": route.created, "owned_by": "podium"}


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
