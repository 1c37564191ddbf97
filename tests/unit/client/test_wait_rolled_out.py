"""`PodiumClient.wait_rolled_out`: done only when the revision alone serves, all ready."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from podium.client import Conflict, LoadError, PodiumClient, Unavailable
from podium.core.phases import EndpointStatus, ReplicaState

S, R = EndpointStatus, ReplicaState
NOW = datetime.now(UTC).isoformat()


def _ep(
    status: EndpointStatus,
    revision: int,
    replicas: list[tuple[int, ReplicaState]],
    desired: int = 2,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "name": "ep-one",
        "spec": {"name": "ep-one", "model": "iris:1", "framework": "sklearn"},
        "status": status.value,
        "status_reason": reason,
        "revision": revision,
        "model_ref": "iris:1",
        "desired_replicas": desired,
        "ready_replicas": sum(1 for _, state in replicas if state is R.READY),
        "replicas": [
            {"replica_id": f"r{i}", "revision": rev, "state": state.value, "host": "h", "port": 1}
            for i, (rev, state) in enumerate(replicas)
        ],
        "url": "http://x/endpoints/ep-one",
        "created_at": NOW,
        "updated_at": NOW,
    }


def _client(answers: list[dict[str, Any]]) -> tuple[PodiumClient, list[int]]:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(len(seen))
        return httpx.Response(200, json=answers[min(len(seen), len(answers)) - 1])

    return PodiumClient("http://podium.test", transport=httpx.MockTransport(handler)), seen


def test_waits_until_the_old_replicas_are_gone_and_all_new_ones_ready() -> None:
    answers = [
        # The status still says running: the wait does not trust it.
        _ep(S.RUNNING, 2, [(1, R.READY), (1, R.READY)]),
        _ep(S.UPDATING, 2, [(1, R.READY), (1, R.READY), (2, R.STARTING)]),
        _ep(S.UPDATING, 2, [(1, R.DRAINING), (2, R.READY), (2, R.READY)]),
        _ep(S.RUNNING, 2, [(2, R.READY), (2, R.STARTING)]),  # one of them replaced
        _ep(S.RUNNING, 2, [(2, R.READY), (2, R.READY)]),
    ]
    client, seen = _client(answers)
    ep = client.wait_rolled_out("ep-one", 2, timeout=30, poll=0)
    assert len(seen) == 5
    assert [r.revision for r in ep.replicas] == [2, 2]


def test_failure_of_the_revision_raises_with_the_reason() -> None:
    reason = "model failed to load: weights are corrupt; still serving revision 1"
    answers = [
        _ep(S.UPDATING, 2, [(1, R.READY), (2, R.STARTING)]),
        _ep(S.FAILED, 2, [(1, R.READY)], reason=reason),
    ]
    client, _ = _client(answers)
    with pytest.raises(LoadError, match="failed at revision 2: model failed to load"):
        client.wait_rolled_out("ep-one", 2, timeout=30, poll=0)


def test_a_newer_revision_is_a_conflict() -> None:
    client, _ = _client([_ep(S.UPDATING, 3, [(1, R.READY)])])
    with pytest.raises(Conflict, match="replaced by revision 3"):
        client.wait_rolled_out("ep-one", 2, timeout=30, poll=0)


def test_scaled_to_zero_is_rolled_out_with_no_replica_left() -> None:
    answers = [
        _ep(S.RUNNING, 2, [(1, R.DRAINING)], desired=0),
        _ep(S.SCALED_TO_ZERO, 2, [], desired=0),
    ]
    client, seen = _client(answers)
    assert client.wait_rolled_out("ep-one", 2, timeout=30, poll=0).status is S.SCALED_TO_ZERO
    assert len(seen) == 2


def test_timeout_says_what_is_missing() -> None:
    client, _ = _client([_ep(S.UPDATING, 2, [(1, R.READY), (2, R.STARTING)])])
    with pytest.raises(Unavailable, match="1 replica\\(s\\) of an older revision still up"):
        client.wait_rolled_out("ep-one", 2, timeout=0.05, poll=0.01)


def test_update_wait_keys_on_the_revision_the_patch_made() -> None:
    answers = [
        _ep(S.UPDATING, 2, [(1, R.READY), (1, R.READY)]),  # the PATCH answer
        _ep(S.UPDATING, 2, [(1, R.READY), (2, R.READY)]),
        _ep(S.RUNNING, 2, [(2, R.READY), (2, R.READY)]),
    ]
    client, seen = _client(answers)
    ep = client.update("ep-one", {"env": {"A": "1"}}, wait=True, timeout=30)
    assert (ep.revision, len(seen)) == (2, 3)
