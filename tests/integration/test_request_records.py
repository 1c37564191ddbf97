"""Request records, the metrics history and `podium top` on a real `podium up`.

One server (SQLite, real replica processes) with three endpoints: an LLM bundle (OpenAI
chat, streams), a V2 tensor bundle, and an iris classifier (HF-style `predict`). Every
call through the gateway must leave exactly one record, with the fields the issue names;
the metrics history's counts must agree with the records.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess, run_load, running_server, wait_running, wait_until
from tests.unit.replica.bundles import write_llm_bundle, write_tensor_bundle

MAX_BODY = 64 * 1024


# The module's `server` runs on SQLite and again on PostgreSQL (tests/integration/conftest.py).
DATABASES = ("sqlite", "postgres")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_env: dict[str, str]
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("models")
    env = {"PODIUM_METRICS_INTERVAL_S": "1", "PODIUM_MAX_BODY_BYTES": str(MAX_BODY)}
    env.update(database_env)
    with running_server(tmp_path_factory.mktemp("podium"), **env) as s, s.client() as c:
        c.push_model(write_llm_bundle(tmp / "llm", tmp / "llm-state"), "llm")
        c.deploy({"name": "llm", "model": "llm", "framework": "python"})
        c.push_model(write_tensor_bundle(tmp / "tensor"), "tensor")
        c.deploy({"name": "tensor", "model": "tensor", "framework": "python"})
        c.push_model(train_iris_skops(tmp / "iris"), "iris")
        c.deploy({"name": "iris", "model": "iris", "max_concurrency": 16})
        c.deploy({"name": "load", "model": "iris", "max_concurrency": 16})
        for name in ("llm", "tensor", "iris", "load"):
            wait_running(c, name)
        yield s


def records(server: ServerProcess, name: str, **params: Any) -> list[dict[str, Any]]:
    """Every record of the endpoint, following the cursor."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
        r = httpx.get(
            f"{server.url}/api/v1/endpoints/{name}/requests",
            params=query,
            headers=server.headers,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def record_of(server: ServerProcess, name: str, request_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def written() -> bool:
        found[:] = records(server, name, request_id=request_id)
        return bool(found)

    wait_until(written, timeout=20, what=f"the record of {request_id}")
    (record,) = found
    return record


def token_id(server: ServerProcess) -> str:
    return server.token.split("_")[1]


def test_an_hf_call_has_one_record_with_its_timings_and_caller(server: ServerProcess) -> None:
    r = httpx.post(
        f"{server.url}/endpoints/iris/",
        json={"inputs": [[5.1, 3.5, 1.4, 0.2]]},
        headers={**server.headers, "user-agent": "records-test/1", "x-request-id": "rec-hf-1"},
    )
    assert r.status_code == 200, r.text
    rec = record_of(server, "iris", "rec-hf-1")
    assert rec["protocol"] == "hf"
    assert rec["route"] == "/" and rec["method"] == "POST"
    assert rec["status"] == 200 and rec["error"] is None
    assert rec["replica_id"] == r.headers["x-podium-replica"]
    assert rec["revision"] == 1
    assert rec["token_id"] == token_id(server)
    assert rec["user_agent"] == "records-test/1"
    assert rec["client"] == "127.0.0.1"
    assert rec["bytes_in"] == len(r.request.content)
    assert rec["bytes_out"] == len(r.content)
    assert 0 < rec["upstream_ms"] <= rec["latency_ms"]
    assert 0 <= rec["queue_ms"] <= rec["latency_ms"]
    assert 0 < rec["ttfb_ms"] <= rec["latency_ms"]


def test_openai_calls_through_the_router_and_the_endpoint_path_are_recorded(
    server: ServerProcess,
) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.token, max_retries=0)
    answer = client.chat.completions.with_raw_response.create(
        model="llm",
        messages=[{"role": "user", "content": "one two three"}],
        extra_headers={"x-request-id": "rec-openai-router"},
    )
    usage = answer.parse().usage
    rec = record_of(server, "llm", "rec-openai-router")
    assert rec["protocol"] == "openai" and rec["route"] == "/v1/chat/completions"
    assert rec["status"] == 200 and not rec["streamed"]
    assert usage is not None
    assert rec["tokens_in"] == usage.prompt_tokens
    assert rec["tokens_out"] == usage.completion_tokens

    direct = openai.OpenAI(
        base_url=f"{server.url}/endpoints/llm/v1", api_key=server.token, max_retries=0
    )
    stream = direct.chat.completions.create(
        model="llm",
        messages=[{"role": "user", "content": "a b c d"}],
        stream=True,
        extra_headers={"x-request-id": "rec-openai-stream"},
    )
    chunks = [c for c in stream if c.choices and c.choices[0].delta.content]
    rec = record_of(server, "llm", "rec-openai-stream")
    assert rec["protocol"] == "openai" and rec["streamed"]
    assert rec["status"] == 200 and rec["error"] is None
    assert rec["tokens_out"] >= len(chunks) > 0
    assert 0 < rec["ttfb_ms"] <= rec["ttft_ms"] <= rec["latency_ms"]


def test_a_v2_inference_is_recorded(server: ServerProcess) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}
    r = httpx.post(
        f"{server.url}/endpoints/tensor/v2/models/tensor/infer",
        json=body,
        headers={**server.headers, "x-request-id": "rec-v2"},
    )
    assert r.status_code == 200, r.text
    rec = record_of(server, "tensor", "rec-v2")
    assert rec["protocol"] == "v2" and rec["route"] == "/v2/models/tensor/infer"


def test_a_stream_the_client_cancels_is_recorded_as_such(server: ServerProcess) -> None:
    body = {
        "model": "llm",
        "messages": [{"role": "user", "content": "[endless] go"}],
        "stream": True,
    }
    headers = {**server.headers, "x-request-id": "rec-cancelled"}
    with (
        httpx.Client(timeout=30) as http,
        http.stream("POST", f"{server.url}/v1/chat/completions", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200
        for n, _line in enumerate(r.iter_lines()):
            if n >= 6:
                break  # leave mid-stream
    rec = record_of(server, "llm", "rec-cancelled")
    assert rec["streamed"] and rec["error"] == "client_gone"
    assert rec["tokens_out"] >= 1


def test_a_413_and_a_refused_caller_are_recorded(server: ServerProcess) -> None:
    r = httpx.post(
        f"{server.url}/endpoints/iris/",
        content=b"x" * (MAX_BODY + 1),
        headers={**server.headers, "x-request-id": "rec-413"},
    )
    assert r.status_code == 413
    rec = record_of(server, "iris", "rec-413")
    assert rec["status"] == 413 and rec["error"] == "too_large"
    assert rec["replica_id"] is None and rec["upstream_ms"] is None

    r = httpx.post(
        f"{server.url}/endpoints/iris/",
        json={"inputs": [[1, 2, 3, 4]]},
        headers={"x-request-id": "rec-401"},
    )
    assert r.status_code == 401
    rec = record_of(server, "iris", "rec-401")
    assert rec["error"] == "unauthenticated" and rec["token_id"] is None


def test_records_download_as_csv(server: ServerProcess) -> None:
    for i in range(3):
        httpx.post(
            f"{server.url}/endpoints/iris/",
            json={"inputs": [[5.1, 3.5, 1.4, 0.2]]},
            headers={**server.headers, "x-request-id": f"rec-csv-{i}"},
        )
    for i in range(3):
        record_of(server, "iris", f"rec-csv-{i}")  # written: the CSV and JSON see the same
    r = httpx.get(
        f"{server.url}/api/v1/endpoints/iris/requests",
        params={"limit": 1000},
        headers={**server.headers, "accept": "text/csv"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    as_json = records(server, "iris")
    assert [p["request_id"] for p in parsed] == [j["request_id"] for j in as_json]
    assert {p["status"] for p in parsed} == {str(j["status"]) for j in as_json}


def test_every_answered_request_of_a_20_second_load_has_exactly_one_record(
    server: ServerProcess,
) -> None:
    """Count equality: the records of the endpoint are exactly the requests answered."""
    started = time.time()
    report = run_load(
        f"{server.url}/endpoints/load/",
        {"inputs": [[5.1, 3.5, 1.4, 0.2]]},
        seconds=20,
        clients=8,
        headers=server.headers,
    )
    answered = [c for c in report.calls if c.status != 0]
    assert len(answered) == len(report.calls) > 100  # every request got an answer
    wait_until(
        lambda: len(records(server, "load")) >= len(answered), timeout=30, what="all records"
    )
    rows = records(server, "load")
    assert len(rows) == len(answered)
    assert len({r["request_id"] for r in rows}) == len(rows)
    assert sorted(r["status"] for r in rows) == sorted(c.status for c in answered)

    # The metrics history counted the same requests, and the same total latency (the
    # records and the meters take one measure): sum(avg latency x requests) per step.
    def history() -> dict[str, list[float | None]]:
        r = httpx.get(
            f"{server.url}/api/v1/endpoints/load/metrics",
            params={"series": "requests,latency_avg_ms", "from": started - 30},
            headers=server.headers,
        )
        assert r.status_code == 200, r.text
        return dict(r.json()["series"])

    wait_until(
        lambda: sum(v or 0 for v in history()["requests"]) == len(rows),
        timeout=30,
        what="the metrics history to count every request",
    )
    series = history()
    total_ms = sum(
        (n or 0) * (avg or 0)
        for n, avg in zip(series["requests"], series["latency_avg_ms"], strict=True)
    )
    assert total_ms == pytest.approx(sum(r["latency_ms"] for r in rows), rel=0.01)


def test_podium_top_renders_the_endpoints_once(server: ServerProcess) -> None:
    out = server.cli("top", "--once")
    assert out.returncode == 0, out.stderr
    for name in ("iris", "llm", "tensor", "load"):
        assert name in out.stdout


def test_podium_requests_shows_the_records(server: ServerProcess) -> None:
    out = server.cli("requests", "iris", "--csv")
    assert out.returncode == 0, out.stderr
    parsed = list(csv.DictReader(io.StringIO(out.stdout)))
    assert {"rec-hf-1"} <= {p["request_id"] for p in parsed}


def test_every_server_metric_the_docs_name_is_on_metrics(server: ServerProcess) -> None:
    """docs/metrics.md lists the server's families; each one is served (no drift)."""
    import re
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    server_part = docs.split("## The server's `/metrics`")[1].split("\n## ")[0]
    names = set(re.findall(r"^\| `(podium_[a-z0-9_]+)`", server_part, flags=re.M))
    assert len(names) > 15
    text = httpx.get(f"{server.url}/metrics", headers=server.headers).text
    served = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.M))
    missing = {n for n in names if n.removesuffix("_total") not in served and n not in served}
    assert not missing, f"documented but not served: {sorted(missing)}"
