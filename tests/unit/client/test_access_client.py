"""The SDK's access control: where its token comes from, how refusals map to errors, and
what the access methods send (httpx.MockTransport: the request as it leaves the client)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.client import QUOTA_NAMES as CLIENT_QUOTA_NAMES
from podium.client import (
    Conflict,
    Forbidden,
    PodiumClient,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    discover_token,
)
from podium.core.quotas import QUOTA_NAMES

TOKEN = "pod_0123456789ab_" + "s" * 43


# ---------------------------------------------------------------- finding the token


def test_the_argument_wins_then_the_env_then_the_credentials_file(tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(f"{TOKEN}\n")
    env = {"PODIUM_HOME": str(tmp_path), "PODIUM_TOKEN": "pod_from_env"}
    assert discover_token("pod_given", env) == "pod_given"
    assert discover_token(None, env) == "pod_from_env"
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path)}) == TOKEN
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path), "PODIUM_TOKEN": " "}) == TOKEN


def test_no_token_anywhere_sends_none(tmp_path: Path) -> None:
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path / "nowhere")}) is None
    (tmp_path / "credentials").write_text("\n")
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path)}) is None


def test_an_unreadable_credentials_file_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "credentials").mkdir()  # reading it fails, as a mode-000 file would
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path)}) is None
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "credentials").write_bytes(b"\xff\xfe not utf-8")
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path / "other")}) is None


def test_the_default_home_is_dot_podium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".podium").mkdir()
    (tmp_path / ".podium" / "credentials").write_text(TOKEN)
    assert discover_token(None, {}) == TOKEN


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.9.8.7:1",
        "http://localhost:8000",
        "http://LOCALHOST./",
        "http://[::1]:8000",
    ],
)
def test_the_credentials_file_goes_to_a_loopback_server(tmp_path: Path, url: str) -> None:
    (tmp_path / "credentials").write_text(TOKEN)
    assert discover_token(None, {"PODIUM_HOME": str(tmp_path)}, url=url) == TOKEN


@pytest.mark.parametrize(
    "url",
    [
        "https://other.example",
        "http://10.0.0.5:8000",
        "http://[2001:db8::1]:8000",
        "http://localhost.other.example",
        "http://127.0.0.1.nip.io",
    ],
)
def test_the_credentials_file_never_goes_to_another_server(tmp_path: Path, url: str) -> None:
    (tmp_path / "credentials").write_text(TOKEN)
    home = {"PODIUM_HOME": str(tmp_path)}
    assert discover_token(None, home, url=url) is None
    assert discover_token(None, {**home, "PODIUM_URL": url}) is None  # $PODIUM_URL alike
    # a token given explicitly is the caller's choice, for any server
    assert discover_token("pod_given", home, url=url) == "pod_given"
    assert discover_token(None, {**home, "PODIUM_TOKEN": "pod_env"}, url=url) == "pod_env"


def test_the_client_sends_the_admin_token_to_no_other_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`podium --url https://other.example ls` (or $PODIUM_URL) must not leak the file."""
    (tmp_path / "credentials").write_text(TOKEN)
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    seen: Seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok"})

    def sent(url: str | None, token: str | None = None) -> str | None:
        transport = httpx.MockTransport(handler)
        with PodiumClient(url, token=token, transport=transport) as client:
            client._request("GET", "/health")
        return seen[-1].headers.get("authorization")

    assert sent("https://other.example") is None
    assert sent("http://127.0.0.1:8000") == f"Bearer {TOKEN}"
    assert sent("https://other.example", token="pod_given") == "Bearer pod_given"
    monkeypatch.setenv("PODIUM_URL", "https://other.example")
    assert sent(None) is None
    monkeypatch.setenv("PODIUM_TOKEN", "pod_env")
    assert sent(None) == "Bearer pod_env"


def test_the_client_has_the_one_list_of_quota_names() -> None:
    assert CLIENT_QUOTA_NAMES is QUOTA_NAMES


# ---------------------------------------------------------------- what goes on the wire

Seen = list[httpx.Request]


def _client(seen: Seen, answer: Callable[[httpx.Request], httpx.Response]) -> PodiumClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return PodiumClient(
        "http://podium.test", token=TOKEN, transport=httpx.MockTransport(handler), max_retries=0
    )


def _json(data: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json=data)


VIEW = {
    "id": "0123456789ab",
    "name": "ci",
    "scopes": ["deploy"],
    "projects": ["team"],
    "creator": "podium-up-admin",
    "created_at": "2026-12-01T10:00:00Z",
    "expires_at": None,
    "revoked_at": None,
    "rate_limit": {"rps": 5.0, "burst": 10},
}


def test_every_request_carries_the_bearer_token() -> None:
    seen: Seen = []
    with _client(seen, _json({"id": "x", "name": "n", "scopes": ["read"]})) as c:
        assert c.whoami().scopes == ["read"]
        c.invoke("iris", {"inputs": 1})
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {TOKEN}"] * 2
    assert seen[0].url.path == "/api/v1/whoami"


def test_create_token_sends_the_contract_body_and_returns_the_token_once() -> None:
    seen: Seen = []
    with _client(seen, _json({**VIEW, "token": TOKEN}, 201)) as c:
        made = c.create_token(
            "ci",
            ["deploy"],
            projects=["team"],
            expires_in_s=3600,
            rate_limit={"rps": 5, "burst": 10},
        )
    assert made.token == TOKEN and made.rate_limit is not None and made.rate_limit.burst == 10
    assert (seen[0].method, seen[0].url.path) == ("POST", "/api/v1/tokens")
    assert json.loads(seen[0].content) == {
        "name": "ci",
        "scopes": ["deploy"],
        "projects": ["team"],
        "expires_in_s": 3600,
        "rate_limit": {"rps": 5, "burst": 10},
    }


def test_all_projects_is_null_and_the_default_is_the_default_project() -> None:
    seen: Seen = []
    with _client(seen, _json({**VIEW, "token": TOKEN}, 201)) as c:
        c.create_token("a", ["admin"], projects=None)
        c.create_token("b", ["invoke"])
    assert json.loads(seen[0].content)["projects"] is None
    assert json.loads(seen[1].content)["projects"] == ["default"]


@pytest.mark.parametrize("shape", ["list", "items"])
def test_tokens_reads_a_list_or_an_items_page(shape: str) -> None:
    seen: Seen = []
    body: Any = [VIEW] if shape == "list" else {"items": [VIEW]}
    with _client(seen, _json(body)) as c:
        assert [t.name for t in c.tokens(include_revoked=True)] == ["ci"]
    assert seen[0].url.params["include_revoked"] == "true"


def test_revoke_is_a_delete_of_the_token() -> None:
    seen: Seen = []
    with _client(seen, _json({**VIEW, "revoked_at": "2026-12-02T00:00:00Z"})) as c:
        assert c.revoke_token("0123456789ab").revoked_at is not None
    assert (seen[0].method, seen[0].url.path) == ("DELETE", "/api/v1/tokens/0123456789ab")


def test_project_params_go_in_the_query_and_the_gateway_path() -> None:
    seen: Seen = []
    secret = {"project": "team", "name": "HF", "created_by": "ci"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/secrets"):
            return httpx.Response(200, json=secret if request.method == "PUT" else [secret])
        return httpx.Response(200, json={"outputs": 1})

    with _client(seen, answer) as c:
        c.invoke("chat", {"inputs": 1}, project="team")
        c.invoke("chat", {"inputs": 1}, project="default")
        c.set_secret("HF", "v", project="team")
        c.delete_secret("HF", project="team")
        c.secrets()
    assert [r.url.path for r in seen[:2]] == ["/p/team/endpoints/chat/", "/endpoints/chat/"]
    put = seen[2]
    assert (put.method, put.url.path, put.url.params["project"]) == (
        "PUT",
        "/api/v1/secrets/HF",
        "team",
    )
    assert json.loads(put.content) == {"value": "v"}
    assert seen[3].method == "DELETE" and seen[3].url.params["project"] == "team"
    assert "project" not in seen[4].url.params  # every project the caller may read


def test_usage_asks_with_from_to_and_reads_them_back() -> None:
    seen: Seen = []
    report = {
        "from": "2026-11-01T00:00:00Z",
        "to": "2026-12-01T00:00:00Z",
        "group_by": "day",
        "currency": "USD",
        "rows": [{"project": "team", "day": "2026-11-02", "instance_type": "cpu-small",
                  "replica_seconds": 7200.0, "cost": 0.2}],
        "total_replica_seconds": 7200.0,
        "total_cost": 0.2,
    }  # fmt: skip
    with _client(seen, _json(report)) as c:
        got = c.usage("team", "2026-11-01", "2026-12-01", group_by="day")
    assert got.start is not None and got.start.month == 11 and got.rows[0].day == "2026-11-02"
    assert dict(seen[0].url.params) == {
        "project": "team",
        "from": "2026-11-01",
        "to": "2026-12-01",
        "group_by": "day",
    }
    seen.clear()
    csv = "project,day,instance_type,replica_seconds,cost\n"
    with _client(seen, lambda _r: httpx.Response(200, text=csv)) as c:
        assert c.usage_csv("team") == csv
    assert seen[0].url.params["format"] == "csv"


# ---------------------------------------------------------------- refusals


def _problem(status: int, title: str, field: str | None = None, **headers: str) -> Any:
    body = {"type": "about:blank", "title": title, "status": status, "detail": "why"}
    if field:
        body["field"] = field
    return lambda _r: httpx.Response(
        status, json=body, headers={"content-type": "application/problem+json", **headers}
    )


@pytest.mark.parametrize(
    ("status", "title", "cls"),
    [
        (401, "Unauthorized", Unauthenticated),
        (403, "Forbidden", Forbidden),
        (409, "Quota exceeded", QuotaExceeded),
        (409, "Conflict", Conflict),
        (429, "Too Many Requests", RateLimited),
    ],
)
def test_refusals_map_to_their_error_class(status: int, title: str, cls: type) -> None:
    with _client([], _problem(status, title, "max_replicas")) as c, pytest.raises(cls) as info:
        c.projects()
    assert type(info.value) is cls
    assert info.value.message == "why"


def test_a_429_says_when_to_retry() -> None:
    with (
        _client([], _problem(429, "Too Many Requests", **{"retry-after": "3"})) as c,
        pytest.raises(RateLimited) as info,
    ):
        c.invoke("iris", {})
    assert info.value.retry_after == 3.0


def test_openai_shaped_refusals_map_too() -> None:
    body = {"error": {"message": "bad key", "type": "authentication_error", "code": "x"}}
    with _client([], _json(body, 401)) as c, pytest.raises(Unauthenticated, match="bad key"):
        c.invoke("gpt", {}, path="/v1/completions")
