"""Errors → HTTP as a client sees it: status, problem+json body, headers, and the 500 guard.

The handlers run in a small real FastAPI app (`problems.install`) behind TestClient; the
guard is also driven as a bare ASGI app, so each message it sends is seen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from podium.api import problems
from podium.api.problems import (
    ServerErrorGuard,
    from_podium_error,
    from_validation_errors,
    problem_response,
)
from podium.core.errors import (
    Conflict,
    Invalid,
    LoadError,
    NotFound,
    PodiumError,
    Retryable,
    TooLarge,
    Unavailable,
    UnsafeArchive,
)


def _body(response: Any) -> dict[str, Any]:
    return dict(json.loads(bytes(response.body)))


# ---------------------------------------------------------------- the mapping itself


class _GoneModel(NotFound):
    """A subclass keeps its parent's status."""


class _Unmapped(PodiumError):
    """A PodiumError nobody gave a status."""


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (_GoneModel("gone"), 404),
        (UnsafeArchive("x"), 422),  # an Invalid, not a 400
        (Retryable("x"), 503),  # an Unavailable
        (_Unmapped("odd"), 500),  # the base's: a failure no class names
        (PodiumError("plain"), 500),
    ],
)
def test_status_follows_the_error_tree(error: PodiumError, status: int) -> None:
    assert error.status == status
    assert from_podium_error(error).status_code == status


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(0.0, "1"), (0.3, "1"), (1.0, "1"), (1.01, "2"), (2.2, "3"), (30, "30")],
)
def test_retry_after_is_whole_seconds_at_least_one(retry_after: float, header: str) -> None:
    response = from_podium_error(Retryable("busy", retry_after=retry_after))
    assert response.status_code == 503
    assert response.headers["retry-after"] == header


def test_only_retryable_says_when() -> None:
    assert "retry-after" not in from_podium_error(Unavailable("down")).headers


def test_a_field_is_named_twice_as_field_and_in_errors() -> None:
    body = _body(from_podium_error(Invalid("must be positive", field="scaling.min_replicas")))
    assert body["field"] == "scaling.min_replicas"
    assert body["errors"] == [{"field": "scaling.min_replicas", "message": "must be positive"}]


def test_no_field_means_neither_key() -> None:
    body = _body(from_podium_error(Conflict("in use")))
    assert body == {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "in use"}


def test_problem_titles_default_to_the_status_phrase() -> None:
    response = problem_response(404, "nothing", headers={"x-extra": "1"})
    assert response.media_type == "application/problem+json"
    assert response.headers["x-extra"] == "1"
    assert _body(response) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "nothing",
    }
    assert _body(problem_response(599, "odd"))["title"] == "Error"  # no phrase for it
    assert _body(problem_response(409, "x", title="Busy"))["title"] == "Busy"


# ---------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "scaling", "min_replicas"), "scaling.min_replicas"),
        (("query", "limit"), "limit"),
        (("path", "name"), "name"),
        (("header", "x-podium-token"), "x-podium-token"),
        (("cookie", "session"), "session"),
        (("body",), "body"),  # the whole body
        (("body", "items", 0, "name"), "items.0.name"),
        (("scaling", "max_replicas"), "scaling.max_replicas"),  # a model, no location
        ((), "body"),
    ],
)
def test_validation_fields_are_dotted_without_their_location(
    loc: tuple[Any, ...], field: str
) -> None:
    body = _body(from_validation_errors([{"loc": loc, "msg": "bad", "type": "x"}]))
    assert body["field"] == field
    assert body["errors"] == [{"field": field, "message": "bad"}]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"msg": "Value error, must be a DNS label"}, "must be a DNS label"),
        ({"msg": "Assertion failed, min <= max"}, "min <= max"),
        ({"msg": "Field required"}, "Field required"),
        ({}, "invalid"),
        ({"loc": None}, "invalid"),
        (
            {"msg": "JSON decode error", "type": "json_invalid", "ctx": {"error": "Expecting ','"}},
            "malformed JSON (Expecting ',')",
        ),
        ({"msg": "JSON decode error", "type": "json_invalid"}, "malformed JSON"),
    ],
)
def test_validation_messages_drop_pydantic_prefixes(error: dict[str, Any], message: str) -> None:
    raw = {"loc": ("body", "spec"), **error}
    if raw["loc"] is None:
        del raw["loc"]  # pydantic always says where; a bare error names the body
    body = _body(from_validation_errors([raw]))
    field = "body" if error.get("type") == "json_invalid" or "loc" not in raw else "spec"
    assert body["errors"] == [{"field": field, "message": message}]
    assert body["detail"] == f"{field}: {message}"


def test_the_first_validation_error_is_the_headline() -> None:
    response = from_validation_errors(
        [
            {"loc": ("body", "name"), "msg": "too long", "type": "x"},
            {"loc": ("body", "model"), "msg": "Field required", "type": "missing"},
        ]
    )
    assert response.status_code == 422
    body = _body(response)
    assert (body["title"], body["field"], body["detail"]) == ("Invalid", "name", "name: too long")
    assert [e["field"] for e in body["errors"]] == ["name", "model"]


def test_no_validation_errors_still_names_the_body() -> None:
    body = _body(from_validation_errors([]))
    assert body == {
        "type": "about:blank",
        "title": "Invalid",
        "status": 422,
        "detail": "body: invalid request",
        "field": "body",
        "errors": [{"field": "body", "message": "invalid request"}],
    }


# ---------------------------------------------------------------- handlers in a real app


class _Scaling(BaseModel):
    min_replicas: int = Field(ge=0)


@pytest.fixture
def client() -> Iterator[TestClient]:
    """Per test, not per module: mutmut runs, for a mutant of `install`, the tests it saw
    calling `install`, and a module fixture calls it during the first test alone."""
    app = FastAPI()

    @app.get("/podium/{kind}")
    def podium_error(kind: str) -> None:
        errors: dict[str, PodiumError] = {
            "not-found": NotFound("no model 'iris'", field="model"),
            "retry": Retryable("starting", retry_after=4.5),
            "too-large": TooLarge("upload over 10 bytes", field="body"),
            "load": LoadError("cannot load"),
        }
        raise errors[kind]

    @app.get("/model")
    def model_error() -> None:
        _Scaling.model_validate({"min_replicas": -1})  # pydantic's ValidationError

    @app.get("/query")
    def query(limit: int = Query(ge=1)) -> int:
        return limit

    @app.post("/json")
    def json_body(scaling: _Scaling) -> int:
        return scaling.min_replicas

    @app.get("/http/{status}")
    def http_error(status: int, detail: str | None = None) -> None:
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        if detail == "dict":
            raise HTTPException(status, detail={"why": "structured"}, headers=headers)
        raise HTTPException(status, detail=detail, headers=headers)

    problems.install(app)
    with TestClient(app) as c:
        yield c


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = dict(r.json())
    assert (body["type"], body["status"]) == ("about:blank", status)
    return body


def test_podium_errors_are_answered_with_their_status(client: TestClient) -> None:
    body = _problem(client.get("/podium/not-found"), 404)
    assert (body["title"], body["detail"], body["field"]) == (
        "Not Found",
        "no model 'iris'",
        "model",
    )
    r = client.get("/podium/retry")
    assert _problem(r, 503)["title"] == "Retry later"
    assert r.headers["retry-after"] == "5"
    assert _problem(client.get("/podium/too-large"), 413)["field"] == "body"
    assert _problem(client.get("/podium/load"), 422)["title"] == "Model failed to load"


def test_a_model_validation_error_is_a_422_naming_the_field(client: TestClient) -> None:
    body = _problem(client.get("/model"), 422)
    assert body["field"] == "min_replicas"
    assert body["detail"].startswith("min_replicas: ")


def test_request_validation_names_the_parameter(client: TestClient) -> None:
    body = _problem(client.get("/query", params={"limit": "0"}), 422)
    assert body["field"] == "limit"
    body = _problem(client.post("/json", json={"min_replicas": "many"}), 422)
    assert body["field"] == "min_replicas"
    r = client.post(
        "/json", content=b'{"min_replicas": ', headers={"content-type": "application/json"}
    )
    body = _problem(r, 422)
    assert body["field"] == "body"
    assert body["detail"].startswith("body: malformed JSON")


def test_a_body_that_is_not_utf8_is_the_422_of_malformed_json(client: TestClient) -> None:
    r = client.post(
        "/json",
        content=b'{"min_replicas": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    body = _problem(r, 422)
    detail = "body: malformed JSON (not UTF-8, or nested too deep)"
    assert (body["field"], body["detail"]) == ("body", detail)


def test_unknown_route_and_method(client: TestClient) -> None:
    body = _problem(client.get("/nothing/here"), 404)
    assert (body["title"], body["detail"]) == ("Not Found", "no such route")
    assert "field" not in body
    r = client.delete("/query")
    body = _problem(r, 405)
    assert (body["title"], body["detail"]) == ("Method Not Allowed", "Method Not Allowed")
    assert r.headers["allow"] == "GET"


def test_http_exceptions_keep_their_detail_and_headers(client: TestClient) -> None:
    body = _problem(client.get("/http/404", params={"detail": "no such version"}), 404)
    assert body["detail"] == "no such version"  # only the router's own 404 is rewritten
    r = client.get("/http/401", params={"detail": "dict"})
    body = _problem(r, 401)
    assert (body["title"], body["detail"]) == ("Unauthorized", "Unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    body = _problem(client.get("/http/400", params={"detail": "bad range"}), 400)
    assert body["detail"] == "bad range"
    assert "field" not in body


def test_problem_responses_are_declared_in_openapi() -> None:
    app = FastAPI()

    @app.get("/thing", responses=problems.responses(404, 409))
    def thing() -> None: ...

    with TestClient(app) as c:
        declared = c.get("/openapi.json").json()["paths"]["/thing"]["get"]["responses"]
    assert declared["404"]["description"] == "Not Found"
    assert declared["409"]["description"] == "Conflict"
    schema = declared["404"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}


# ---------------------------------------------------------------- the 500 guard, message by message


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def statuses(self) -> list[int]:
        return [m["status"] for m in self.sent if m["type"] == "http.response.start"]


def _http(path: str = "/x") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": []}


async def _start(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def test_a_bug_before_the_answer_is_a_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("secret internals")

    rec = _Recorder()
    with caplog.at_level(logging.ERROR, logger="podium.api.problems"):
        await ServerErrorGuard(app)(_http("/api/v1/boom"), rec.receive, rec.send)
    assert rec.statuses() == [500]
    body = json.loads(rec.sent[-1]["body"])
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "internal error",
    }
    (record,) = caplog.records
    assert record.getMessage() == "unhandled error on GET /api/v1/boom"
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])


async def test_a_bug_after_the_whole_answer_keeps_that_answer() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        await send({"type": "http.response.body", "body": b"done", "more_body": False})
        raise RuntimeError("in a background task")

    rec = _Recorder()
    await ServerErrorGuard(app)(_http(), rec.receive, rec.send)  # does not raise
    assert rec.statuses() == [200]
    assert [m.get("body") for m in rec.sent] == [None, b"done"]


async def test_a_bug_in_the_middle_of_an_answer_cuts_the_connection() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-stream")

    rec = _Recorder()
    with pytest.raises(RuntimeError, match="mid-stream"):
        await ServerErrorGuard(app)(_http(), rec.receive, rec.send)
    assert rec.statuses() == [200]  # no second head: the server must cut the connection


async def test_a_bug_after_the_head_only_cuts_the_connection() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _start(send)
        raise RuntimeError("before the body")

    rec = _Recorder()
    with pytest.raises(RuntimeError, match="before the body"):
        await ServerErrorGuard(app)(_http(), rec.receive, rec.send)
    assert rec.statuses() == [200]


async def test_other_scopes_pass_through_the_guard() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        raise RuntimeError("lifespan failed")

    rec = _Recorder()
    with pytest.raises(RuntimeError, match="lifespan failed"):
        await ServerErrorGuard(app)({"type": "lifespan"}, rec.receive, rec.send)
    assert seen == ["lifespan"]
    assert rec.sent == []  # no HTTP answer on a channel that is not HTTP
