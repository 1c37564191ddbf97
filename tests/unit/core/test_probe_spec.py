"""The probe checks that need the endpoint (`core.probe_spec.check_probe`): which
frameworks may have exec probes, and that specs stored before these checks still load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from podium.core.bounds import STORED
from podium.core.probe_spec import EXTERNAL_FRAMEWORKS, MAX_PROBE_TIMEOUT_S, ProbeSpec
from podium.core.spec import EndpointSpec
from podium.runtimes import presets


def test_core_knows_the_same_external_frameworks_as_the_runtimes() -> None:
    """Core cannot import the presets' table: its copy of their names must match it (less
    `container`: an exec probe runs on the host, and a container's program is not there)."""
    assert presets.EXTERNAL_FRAMEWORKS - {presets.CONTAINER} == EXTERNAL_FRAMEWORKS


def test_a_stored_spec_written_before_the_checks_still_loads() -> None:
    exec_probe = {"kind": "exec", "command": ["true"], "period_s": 0.5, "timeout_s": 600}
    doc = {
        "name": "old-ep",
        "model": "iris",
        "framework": "sklearn",
        "readiness": exec_probe,
        "liveness": {**exec_probe, "success_threshold": 2},
    }
    spec = EndpointSpec.model_validate(doc, context=STORED)
    assert spec.liveness.success_threshold == 2 and spec.readiness.period_s == 0.5
    assert spec.readiness.timeout_s == 600  # the old bound was 3600 s; new specs: 60 s


def test_a_probe_timeout_is_at_most_60_s() -> None:
    assert ProbeSpec(timeout_s=MAX_PROBE_TIMEOUT_S).timeout_s == 60
    with pytest.raises(ValidationError, match="timeout_s <= 60, not 61"):
        ProbeSpec(timeout_s=61)
