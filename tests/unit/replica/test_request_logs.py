"""A real replica process names the request in the lines it logs while serving it: the
gateway's `X-Request-ID`, bound by the replica's app and carried into the worker thread
that runs the model, in the format `PODIUM_LOG_FORMAT` gives (the server's, inherited)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.unit.replica.conftest import launch

# A python-runtime model that logs from predict (in the replica's worker thread).
MODEL = """\
import logging

log = logging.getLogger("model")


class Model:
    def load(self, path):
        log.info("loaded")

    def predict(self, inputs, parameters):
        log.info("predicting %s", inputs)
        return {"echo": inputs}
"""


def _bundle(dest: Path) -> Path:
    dest.mkdir(parents=True)
    (dest / "model.py").write_text(MODEL, encoding="utf-8")
    return dest


def _serve_two(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/", json={"inputs": "first"}, headers={"x-request-id": "gw-req-1"})
        assert r.status_code == 200, r.text
        r = c.post("/", json={"inputs": "second"})  # no id (not through a gateway)
        assert r.status_code == 200, r.text
        bad = "x" * 129  # longer than the gateway ever sends: not logged as an id
        r = c.post("/", json={"inputs": "third"}, headers={"x-request-id": bad})
        assert r.status_code == 200, r.text


def test_json_lines_carry_the_request_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_LOG_FORMAT", "json")
    replica = launch(tmp_path, runtime="python", model_path=_bundle(tmp_path / "m"), endpoint="j")
    try:
        assert replica.proc.poll() is None, replica.log()
        _serve_two(replica.url)
    finally:
        assert replica.stop() == 0, replica.log()
    docs = [json.loads(line) for line in replica.log().splitlines() if line.startswith("{")]
    model = [(d["message"], d["request_id"]) for d in docs if d["logger"] == "model"]
    assert model == [
        ("loaded", None),
        ("predicting first", "gw-req-1"),
        ("predicting second", None),
        ("predicting third", None),
    ]
    # uvicorn's own lines come through the replica's handler too
    assert any(d["logger"].startswith("uvicorn") for d in docs), docs


def test_text_lines_tag_the_request_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODIUM_LOG_FORMAT", raising=False)
    replica = launch(tmp_path, runtime="python", model_path=_bundle(tmp_path / "m"), endpoint="t")
    try:
        assert replica.proc.poll() is None, replica.log()
        _serve_two(replica.url)
    finally:
        assert replica.stop() == 0, replica.log()
    model = [line for line in replica.log().splitlines() if " model" in line]
    assert [line.split(" INFO ", 1)[1] for line in model] == [
        "model: loaded",
        "model [req=gw-req-1]: predicting first",
        "model: predicting second",
        "model: predicting third",
    ]
