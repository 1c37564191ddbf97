"""A just-created endpoint is routable at once (issue 8, item 14): a request sent right
after the create returned is held until a replica is ready, never a 404."""

from __future__ import annotations

from pathlib import Path

import httpx

from podium.core.phases import EndpointStatus
from tests.support.models import write_python_bundle
from tests.support.server import ServerProcess

ROUNDS = 4


def test_request_right_after_create_is_held_not_404(
    server: ServerProcess, models_dir: Path
) -> None:
    with server.client() as c:
        c.push_model(write_python_bundle(models_dir / "b", version=7), "held", framework="python")
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as http:
        for i in range(ROUNDS):
            name = f"held-{i}"
            spec = {"name": name, "model": "held", "framework": "python"}
            created = http.post("/api/v1/endpoints", json=spec)
            assert created.status_code == 201, created.text
            # Same thread, no sleep: the controller has not necessarily run yet.
            r = http.post(f"/endpoints/{name}/", json={"inputs": [i]})
            assert r.status_code == 200, f"round {i}: {r.status_code} {r.text}"
            assert r.json()["version"] == 7
            # Deleted: gone from routing at once, not at the controller's next pass.
            assert http.delete(f"/api/v1/endpoints/{name}").status_code == 202
            gone = http.post(f"/endpoints/{name}/", json={"inputs": [i]})
            assert gone.status_code == 404, gone.text
    with server.client() as c:
        assert all(e.status is EndpointStatus.DELETING for e in c.endpoints(name="held-"))
