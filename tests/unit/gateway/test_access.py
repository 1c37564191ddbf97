"""The gateway's access stage over real sockets: the `openai` client, rate limits (429 +
Retry-After + counters), revocation, the session cookie and its CSRF rule, projects in URLs,
`model` resolution in the caller's projects, and what reaches the replica.

The matrix of route x caller x visibility is `test_access_matrix.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from prometheus_client import generate_latest

from podium.core.access import RateLimit, Scope, TokenDirectory, Visibility
from podium.gateway import AccessStage
from podium.gateway.rate_limit import Buckets, retry_after
from tests.unit.gateway.access_kit import bearer, route, token
from tests.unit.gateway.conftest import Replica, RunningGateway, Servers

BOTH = ("default", "team")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Servers, list[Replica]]]:
    s = Servers("http1")
    replicas = s.replicas(2)
    yield s, replicas
    s.close()


@pytest.fixture
def directory() -> TokenDirectory:
    return TokenDirectory()


@pytest.fixture
def gw(
    servers: tuple[Servers, list[Replica]], directory: TokenDirectory
) -> tuple[RunningGateway, Replica, Replica]:
    s, (r0, r1) = servers
    running = s.gateway(stages=[AccessStage(directory, auth=True)])
    running.publish(
        route("default", "prot", r0.route),
        route("team", "prot", r1.route),
        route("default", "pub", r0.route, Visibility.PUBLIC),
        route("default", "slow", r0.route, rate_limit=RateLimit(rps=0.001, burst=2)),
    )
    return running, r0, r1


def metrics(gateway: RunningGateway) -> str:
    return generate_latest(gateway.gateway.metrics_registry).decode()


def chat(client: openai.OpenAI, model: str, headers: dict[str, Any] | None = None) -> Any:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], extra_headers=headers
    )


# -- the openai client ---------------------------------------------------------------------


def test_the_openai_client_against_a_protected_endpoint(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, _, _ = gw
    base = f"{gateway.url}/v1"
    invoke, _ = token(directory, "ci", [Scope.INVOKE], BOTH)
    read, _ = token(directory, "viewer", [Scope.READ], BOTH)
    # without a key (the client needs one unless told to omit the header), a wrong one
    omit = {"Authorization": openai.Omit()}
    for key, headers, why in (
        ("unused", omit, "no token was given"),
        ("sk-123", {}, "not a Podium token"),
    ):
        client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            chat(client, "prot", headers)
        assert e.value.status_code == 401
        assert e.value.code == "invalid_api_key"
        assert why in e.value.message
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(openai.OpenAI(base_url=base, api_key=read, max_retries=0), "prot")
    assert "lacks scope 'invoke' on project 'default'" in denied.value.message
    answer = chat(openai.OpenAI(base_url=base, api_key=invoke, max_retries=0), "prot")
    assert answer.model_extra is not None and answer.model_extra["path"] == "/v1/chat/completions"
    # the token never reaches the replica
    assert "authorization" not in dict(answer.model_extra["headers"])
    models = openai.OpenAI(base_url=base, api_key=invoke, max_retries=0).models.list()
    assert {m.id for m in models} == {"prot", "team/prot", "pub", "slow"}


def test_the_openai_client_gets_a_rate_limit_error(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, _, _ = gw
    limited, _ = token(directory, "slow", [Scope.INVOKE], BOTH, rate_limit=RateLimit(0.001, 1))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=limited, max_retries=0)
    chat(client, "prot")
    with pytest.raises(openai.RateLimitError) as e:
        chat(client, "prot")
    assert e.value.status_code == 429
    assert e.value.code == "rate_limit_exceeded"
    assert int(e.value.response.headers["retry-after"]) >= 1


# -- rate limits ---------------------------------------------------------------------------


def test_a_token_over_its_rate_limit_gets_429_with_retry_after_and_is_counted(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, _, _ = gw
    limited, _ = token(directory, "burst3", [Scope.INVOKE], BOTH, rate_limit=RateLimit(0.01, 3))
    other, _ = token(directory, "free", [Scope.INVOKE], BOTH)
    with gateway.client(headers=bearer(limited)) as client:
        codes = [client.post("/endpoints/prot/x").status_code for _ in range(3)]
        refused = client.post("/endpoints/prot/x")
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    problem = refused.json()
    assert problem["limited_by"] == "token" and problem["title"] == "Too Many Requests"
    # another token is not limited by this one's bucket
    with gateway.client(headers=bearer(other)) as client:
        assert client.post("/endpoints/prot/x").status_code == 200
    assert 'podium_gateway_rate_limited_total{by="token",endpoint="prot"} 1.0' in metrics(gateway)


def test_an_endpoint_rate_limit_counts_every_caller_together(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, _, _ = gw
    a, _ = token(directory, "a", [Scope.INVOKE], BOTH)
    b, _ = token(directory, "b", [Scope.INVOKE], BOTH)
    with gateway.client() as client:
        assert client.post("/endpoints/slow/x", headers=bearer(a)).status_code == 200
        assert client.post("/endpoints/slow/x", headers=bearer(b)).status_code == 200
        refused = client.post("/endpoints/slow/x", headers=bearer(a))
        assert refused.status_code == 429
        assert refused.json()["limited_by"] == "endpoint"
        assert int(refused.headers["retry-after"]) >= 1
        # a caller without a token is refused (401) before any limit is looked at
        assert client.post("/endpoints/slow/x").status_code == 401
    text = metrics(gateway)
    assert 'podium_gateway_rate_limited_total{by="endpoint",endpoint="slow"} 1.0' in text
    assert 'podium_gateway_auth_refused_total{code="401",endpoint="slow"} 1.0' in text


def test_with_auth_off_only_endpoint_limits_apply(
    servers: tuple[Servers, list[Replica]], directory: TokenDirectory
) -> None:
    s, (r0, _) = servers
    gateway = s.gateway(stages=[AccessStage(directory, auth=False)])
    gateway.publish(
        route("team", "prot", r0.route),
        route("default", "slow", r0.route, rate_limit=RateLimit(rps=0.001, burst=1)),
    )
    with gateway.client() as client:
        assert client.post("/p/team/endpoints/prot/x").status_code == 200
        assert client.post("/endpoints/slow/x").status_code == 200
        assert client.post("/endpoints/slow/x").status_code == 429
        models = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert models == {"team/prot", "slow"}


def test_buckets_refill_at_the_rate_up_to_the_burst() -> None:
    buckets, limit = Buckets(), RateLimit(rps=2.0, burst=2)
    for _ in range(2):
        assert buckets.wait("t", limit, now=100.0) == 0.0
        buckets.take("t")
    assert buckets.wait("t", limit, now=100.0) == pytest.approx(0.5)
    assert buckets.wait("t", limit, now=100.25) == pytest.approx(0.25)
    assert buckets.wait("t", limit, now=100.5) == 0.0
    buckets.take("t")
    assert buckets.wait("t", limit, now=200.0) == 0.0  # idle: full again, never past burst
    buckets.take("t")
    buckets.take("t")
    assert buckets.wait("t", limit, now=200.0) > 0.0
    assert [retry_after(s) for s in (0.01, 1.0, 1.2, float("inf"))] == [1, 1, 2, 3600]


def test_buckets_forget_idle_full_ones_past_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("podium.gateway.rate_limit.MAX_BUCKETS", 3)
    buckets, limit = Buckets(), RateLimit(rps=1.0, burst=1)
    for key in ("a", "b", "c"):
        assert buckets.wait(key, limit, now=0.0) == 0.0
        buckets.take(key)
    assert buckets.wait("c", limit, now=40.0) == 0.0  # "c" was used lately
    assert buckets.wait("d", limit, now=90.0) == 0.0  # past the bound: idle "a", "b" go
    assert len(buckets) == 2


# -- revocation and expiry -----------------------------------------------------------------


def test_a_dropped_token_fails_from_its_next_request(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, _, _ = gw
    bearer_token, token_id = token(directory, "soon-gone", [Scope.INVOKE], BOTH)
    with gateway.client(headers=bearer(bearer_token)) as client:
        assert client.post("/endpoints/prot/x").status_code == 200
        directory.drop(token_id)
        r = client.post("/endpoints/prot/x")
    assert r.status_code == 401
    assert "unknown or was revoked" in r.json()["detail"]


# -- the session cookie --------------------------------------------------------------------


def test_the_session_cookie_needs_its_csrf_token(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, _, _ = gw
    session, _ = token(directory, "browser", [Scope.INVOKE], BOTH)
    cookie = f"theme=dark; podium_session={session}; podium_csrf=abc123"
    with gateway.client() as client:
        missing = client.post("/endpoints/prot/x", headers={"Cookie": cookie})
        wrong = client.post("/endpoints/prot/x", headers={"Cookie": cookie, "X-CSRF-Token": "nope"})
        good = client.post(
            "/endpoints/prot/x", headers={"Cookie": cookie, "X-CSRF-Token": "abc123"}
        )
        no_csrf_cookie = client.post(
            "/endpoints/prot/x",
            headers={"Cookie": f"podium_session={session}", "X-CSRF-Token": ""},
        )
    for r in (missing, wrong, no_csrf_cookie):
        assert r.status_code == 403
        assert r.json()["field"] == "X-CSRF-Token" and "CSRF" in r.json()["detail"]
    assert good.status_code == 200
    forwarded = dict(good.json()["headers"])
    # the session token never reaches the replica; the page's other cookies do
    assert forwarded["cookie"] == "theme=dark"


# -- projects in URLs and model names ------------------------------------------------------


def test_project_urls_reach_the_projects_endpoint(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, r0, r1 = gw
    admin, _ = token(directory, "root", [Scope.ADMIN], None)
    with gateway.client(headers=bearer(admin)) as client:
        team = client.post("/p/team/endpoints/prot/v2/models/m/infer?a=1")
        default = client.post("/p/default/endpoints/prot/x")
        assert client.post("/endpoints/team.prot/x").status_code == 404  # a key, not a name
        assert client.post("/p/team/endpoints/pub/x").status_code == 404
        assert client.post("/p/team/other/prot/x").status_code == 404
        assert client.post("/p//endpoints/prot/x").status_code == 404
    assert team.status_code == 200
    assert (team.json()["server"], team.json()["path"], team.json()["query"]) == (
        r1.id,
        "/v2/models/m/infer",
        "a=1",
    )
    assert default.json()["server"] == r0.id


def test_a_bare_model_name_resolves_in_the_callers_projects(
    gw: tuple[RunningGateway, Replica, Replica], directory: TokenDirectory
) -> None:
    gateway, r0, r1 = gw
    team_only, _ = token(directory, "team-ci", [Scope.INVOKE], ["team"])
    both, _ = token(directory, "both-ci", [Scope.INVOKE], BOTH)
    admin, _ = token(directory, "root", [Scope.ADMIN], None)

    def served_by(key: str, model: str) -> str:
        body = json.dumps({"model": model, "messages": []}).encode()
        with gateway.client(headers=bearer(key)) as client:
            r = client.post("/v1/chat/completions", content=body)
        assert r.status_code == 200, r.text
        return str(r.json()["server"])

    assert served_by(team_only, "prot") == r1.id  # not allowed in default: its own project
    assert served_by(both, "prot") == r0.id  # default first
    assert served_by(admin, "prot") == r0.id
    assert served_by(both, "team/prot") == r1.id  # explicit
    assert served_by(team_only, "pub") == r0.id  # default's public endpoint
    with gateway.client(headers=bearer(both)) as client:
        dotted = client.post("/v1/chat/completions", content=b'{"model": "team.prot"}')
    assert dotted.status_code == 404 and dotted.json()["error"]["code"] == "model_not_found"


def test_a_users_own_authorization_header_reaches_a_public_endpoint(
    gw: tuple[RunningGateway, Replica, Replica],
) -> None:
    gateway, _, _ = gw
    with gateway.client(headers={"Authorization": "Basic dXNlcjpwYXNz"}) as client:
        r = client.post("/endpoints/pub/x")
    assert r.status_code == 200
    assert dict(r.json()["headers"])["authorization"] == "Basic dXNlcjpwYXNz"


def test_no_podium_credential_is_forwarded_even_without_the_stage(
    servers: tuple[Servers, list[Replica]], directory: TokenDirectory
) -> None:
    s, (r0, _) = servers
    gateway = s.gateway()  # no stage at all
    gateway.publish(route("default", "open", r0.route))
    podium_token, _ = token(directory, "t", [Scope.INVOKE])
    with gateway.client() as client:
        r = client.post(
            "/endpoints/open/x",
            headers=[
                ("Authorization", f"Bearer {podium_token}"),
                ("Cookie", "podium_session=x; podium_csrf=y"),
                ("Cookie", "theme=dark"),
                ("X-CSRF-Token", "y"),
            ],
        )
    forwarded = r.json()["headers"]
    names = [name for name, _ in forwarded]
    assert "authorization" not in names
    assert [v for n, v in forwarded if n == "cookie"] == ["theme=dark"]
    assert ["x-csrf-token", "y"] in forwarded


def test_only_podiums_own_cookies_are_cut_from_a_cookie_header(
    servers: tuple[Servers, list[Replica]],
) -> None:
    """A Cookie header holding the session cookie keeps the page's other cookies (it was
    once dropped whole); `podium_session` and `podium_csrf` never reach the replica."""
    s, (r0, _) = servers
    gateway = s.gateway()
    gateway.publish(route("default", "open", r0.route))
    with gateway.client() as client:
        r = client.post(
            "/endpoints/open/x",
            headers=[
                ("Cookie", "a=1; podium_session=pod_x; b=2;podium_csrf=y ;c=podium_session"),
                ("Cookie", "podium_csrf=y; podium_session=pod_x"),  # nothing else: dropped
                ("Cookie", "podium_sessionx=3"),  # not Podium's: kept
            ],
        )
    cookies = [v for n, v in r.json()["headers"] if n == "cookie"]
    assert cookies == ["a=1; b=2;c=podium_session", "podium_sessionx=3"]
