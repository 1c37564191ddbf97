from __future__ import annotations

import json

import pytest

from podium.api.problems import from_podium_error, from_validation_errors
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


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("no", field="name"), 404),
        (Conflict("in use"), 409),
        (Invalid("bad"), 422),
        (UnsafeArchive("../x escapes"), 422),
        (TooLarge("big"), 413),
        (Unavailable("down"), 503),
        (Retryable("busy", retry_after=0.3), 503),
        (LoadError("cannot load"), 422),
    ],
)
def test_each_error_has_its_status(error: PodiumError, status: int) -> None:
    response = from_podium_error(error)
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    body = json.loads(bytes(response.body))
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["detail"] == error.message
    assert body["title"] == error.title
    assert body.get("field") == error.field


def test_retryable_says_when() -> None:
    response = from_podium_error(Retryable("busy", retry_after=2.2))
    assert response.headers["retry-after"] == "3"


def test_validation_errors_are_dotted_without_location() -> None:
    response = from_validation_errors(
        [
            {"loc": ("body", "scaling", "min_replicas"), "msg": "too small", "type": "x"},
            {"loc": ("query", "limit"), "msg": "Value error, too big", "type": "value_error"},
        ]
    )
    body = json.loads(bytes(response.body))
    assert body["field"] == "scaling.min_replicas"
    assert body["detail"] == "scaling.min_replicas: too small"
    assert body["errors"][1] == {"field": "limit", "message": "too big"}
