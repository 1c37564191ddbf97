"""A real replica process over real HTTP: probes, info, both protocols, errors."""

from __future__ import annotations

import httpx

from tests.unit.replica.conftest import MODEL_VERSION, Replica

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def infer_body(shape: list[int], data: list[float], datatype: str = "FP64") -> dict[str, object]:
    return {"inputs": [{"name": "input-0", "datatype": datatype, "shape": shape, "data": data}]}


def test_status_file_says_ready(iris: Replica) -> None:
    status = iris.status()
    assert status["state"] == "ready"
    assert status["pid"] == iris.proc.pid
    assert status["port"] == iris.port
    assert status["load_s"] >= 0


def test_health_and_info_carry_the_replica_header(iris: Replica) -> None:
    with iris.client() as c:
        live = c.get("/health/live")
        assert (live.status_code, live.json()["status"]) == (200, "live")
        ready = c.get("/health/ready")
        assert ready.json() == {"status": "ready", "replica_id": iris.replica_id}
        info = c.get("/podium/info").json()
        for r in (live, ready):
            assert r.headers["x-podium-replica"] == iris.replica_id
    assert info["replica_id"] == iris.replica_id
    assert (info["endpoint"], info["revision"], info["runtime"]) == ("iris", 1, "sklearn")
    assert info["pid"] == iris.proc.pid
    assert info["capabilities"]["tensor"] is True


def test_hf_predict(iris: Replica) -> None:
    with iris.client() as c:
        r = c.post("/", json={"inputs": [SETOSA, VIRGINICA]})
        assert (r.status_code, r.json()) == (200, [0, 2])
        assert r.headers["x-podium-replica"] == iris.replica_id
        r = c.post("/", json={"inputs": SETOSA, "parameters": {"return_probabilities": True}})
        [probs] = r.json()
        assert max(probs, key=probs.__getitem__) == "0"


def test_invalid_json_is_a_422_problem(iris: Replica) -> None:
    with iris.client() as c:
        r = c.post("/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-podium-replica"] == iris.replica_id
    body = r.json()
    assert body["type"] == "about:blank"
    assert body["status"] == 422
    assert body["field"] == "body"
    assert "not valid JSON" in body["detail"]
    assert "Traceback" not in r.text


def test_bad_rows_are_a_422_naming_the_field(iris: Replica) -> None:
    with iris.client() as c:
        r = c.post("/", json={"inputs": [1, 2, 3]})
    assert r.status_code == 422
    assert r.json()["field"] == "inputs"
    assert r.json()["detail"] == "each row needs 4 features, got 3"


def test_v2_server_and_model_metadata(iris: Replica) -> None:
    with iris.client() as c:
        assert c.get("/v2").json()["name"] == "podium"
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").json() == {"ready": True}
        assert c.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
        answer = c.get("/v2/models/iris")
        meta = answer.json()
        assert c.get("/v2/models/iris/versions/3").json() == meta
    assert meta["name"] == "iris"
    # The model's version; the endpoint's revision is a header.
    assert (meta["versions"], answer.headers["x-podium-revision"]) == ([MODEL_VERSION], "1")
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]


def test_v2_infer(iris: Replica) -> None:
    body = infer_body([2, 4], SETOSA + VIRGINICA, "FP32") | {
        "id": "req-7",
        "outputs": [{"name": "predict"}],
    }
    with iris.client() as c:
        r = c.post("/v2/models/iris/infer", json=body)
        also = c.post("/v2/models/iris/versions/3/infer", json=infer_body([1, 4], SETOSA))
    assert r.status_code == 200, r.text
    assert r.headers["x-podium-replica"] == iris.replica_id
    assert r.headers["x-podium-revision"] == "1"
    assert r.json() == {
        "model_name": "iris",
        "model_version": MODEL_VERSION,
        "id": "req-7",
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 2]}],
    }
    outputs = {o["name"]: o for o in also.json()["outputs"]}
    assert outputs["predict_proba"]["shape"] == [1, 3]


def test_v2_errors_use_the_error_body(iris: Replica) -> None:
    with iris.client() as c:
        shape = c.post("/v2/models/iris/infer", json=infer_body([1, 3], [1.0, 2.0, 3.0]))
        dtype = c.post("/v2/models/iris/infer", json=infer_body([1, 4], [1, 2, 3, 4], "INT64"))
        unknown = c.post("/v2/models/nope/infer", json=infer_body([1, 4], SETOSA))
        bad_json = c.post("/v2/models/iris/infer", content=b"[")
    assert shape.status_code == 422
    assert shape.json() == {
        "error": "input 'input-0' has shape [1, 3]; expected [-1, 4] (-1: any size)"
    }
    assert dtype.status_code == 422
    assert dtype.json() == {"error": "input 'input-0' has datatype INT64; expected FP64 or FP32"}
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "model 'nope' not found"}
    assert bad_json.status_code == 422
    assert set(bad_json.json()) == {"error"}
    for r in (shape, dtype, unknown, bad_json):
        assert r.headers["x-podium-replica"] == iris.replica_id


def test_unknown_route_and_method(iris: Replica) -> None:
    with iris.client() as c:
        missing = c.get("/nope")
        wrong = c.get("/")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


def test_metrics_count_predictions(iris: Replica) -> None:
    with iris.client() as c:
        c.post("/", json={"inputs": SETOSA})
        c.post("/", content=b"nope")
        text = c.get("/metrics").text
    assert 'podium_replica_requests_total{code="200",protocol="hf"}' in text
    assert 'podium_replica_requests_total{code="422",protocol="hf"}' in text
    assert "podium_replica_in_flight 0.0" in text
    assert "podium_replica_queued 0.0" in text
    assert "podium_replica_request_seconds_bucket" in text


def test_python_bundle_serves_hf_only(echo: Replica) -> None:
    with echo.client() as c:
        r = c.post("/", json={"inputs": {"text": "hi"}, "parameters": {"x": 1}})
        v2 = c.get("/v2/models/echo")
        info = c.get("/podium/info").json()
    assert r.json() == {"version": 2, "echo": {"text": "hi"}}
    assert r.headers["x-podium-replica"] == echo.replica_id
    assert v2.status_code == 404
    assert v2.json() == {
        "error": "the python runtime does not serve the Open Inference Protocol v2"
    }
    assert info["capabilities"]["tensor"] is False


def test_client_for_unknown_host_header_still_works(echo: Replica) -> None:
    # The replica does not care about Host: the gateway forwards requests unchanged.
    r = httpx.post(f"{echo.url}/", json={"inputs": 1}, headers={"host": "example.com"})
    assert r.status_code == 200
