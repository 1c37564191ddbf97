"""The quota arithmetic both the API and the autoscaler use."""

from __future__ import annotations

import pytest

from podium.core.errors import QuotaExceeded
from podium.core.phases import EndpointStatus
from podium.core.quotas import Quotas, Usage, check, endpoint_usage, room, total

S = EndpointStatus


def test_usage_counts_what_is_not_paused_deleting_or_at_zero() -> None:
    assert endpoint_usage(S.RUNNING, 3, 2.0, 1) == Usage(1, 3, 6.0, 3)
    assert endpoint_usage(S.PENDING, 1, 2.0, 1) == Usage(1, 1, 2.0, 1)
    # scaled to zero: no endpoint, no replica (the status may lag the desired count)
    assert endpoint_usage(S.SCALED_TO_ZERO, 0, 2.0, 1) == Usage()
    assert endpoint_usage(S.RUNNING, 0, 2.0, 1) == Usage()
    # woken from zero, before its status moves on: counts in full
    assert endpoint_usage(S.SCALED_TO_ZERO, 2, 2.0, 1) == Usage(1, 2, 4.0, 2)
    # failed: nothing runs, so no replicas; still an endpoint
    assert endpoint_usage(S.FAILED, 3, 2.0, 1) == Usage(endpoints=1)
    assert endpoint_usage(S.PAUSED, 3, 2.0, 1) == Usage()
    assert endpoint_usage(S.DELETING, 3, 2.0, 1) == Usage()
    assert total([Usage(1, 1, 1.0, 0), Usage(1, 2, 4.0, 2)]) == Usage(2, 3, 5.0, 2)


def test_check_refuses_growth_past_a_quota_only() -> None:
    q = Quotas(max_replicas=4, max_cpus=2.5)
    check("team", q, Usage(replicas=2), Usage(replicas=4))  # up to the quota: fine
    with pytest.raises(QuotaExceeded) as e:
        check("team", q, Usage(replicas=2), Usage(replicas=6))
    assert (e.value.field, e.value.message, e.value.status) == (
        "max_replicas",
        "project 'team' allows max_replicas=4; this would make 6",
        409,
    )
    with pytest.raises(QuotaExceeded, match=r"allows max_cpus=2\.5; this would make 3"):
        check("team", q, Usage(cpus=1), Usage(cpus=3))
    # already past (the quota was lowered): shrinking or staying passes, growing does not
    check("team", q, Usage(replicas=9), Usage(replicas=8))
    check("team", q, Usage(replicas=9), Usage(replicas=9))
    with pytest.raises(QuotaExceeded):
        check("team", q, Usage(replicas=9), Usage(replicas=10))
    check("team", Quotas(), Usage(), Usage(99, 99, 99.0, 99))


def test_room_is_the_tightest_quota() -> None:
    assert room(Quotas(), Usage(), 1.0, 0) == (None, None)
    assert room(Quotas(max_replicas=5, max_cpus=8), Usage(replicas=1, cpus=2), 4.0, 0) == (
        1,
        "max_cpus",
    )
    assert room(Quotas(max_gpus=1), Usage(gpus=2), 4.0, 1) == (0, "max_gpus")
    assert room(Quotas(max_gpus=0), Usage(), 1.0, 0) == (None, None)  # no gpus: not bound
    # `resources`: a tiny CPU share with a lot of memory is bound by memory, not cpus
    small = Quotas(max_cpus=1, max_memory_mb=8192)
    assert room(small, Usage(cpus=0.02, memory_mb=4096), 0.02, 0, 4096) == (1, "max_memory_mb")


def test_room_from_zero_is_bounded_by_max_endpoints() -> None:
    q = Quotas(max_endpoints=2)
    assert room(q, Usage(endpoints=2), 1.0, 0) == (None, None)  # already counted: not bound
    assert room(q, Usage(endpoints=2), 1.0, 0, from_zero=True) == (0, "max_endpoints")
    assert room(q, Usage(endpoints=1), 1.0, 0, from_zero=True) == (None, None)
    both = Quotas(max_endpoints=2, max_replicas=3)
    assert room(both, Usage(endpoints=1, replicas=1), 1.0, 0, from_zero=True) == (
        2,
        "max_replicas",
    )
