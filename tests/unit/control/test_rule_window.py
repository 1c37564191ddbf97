"""A scaling rule's own `window`: its figure is averaged over that window instead of the
stable window (pure policy, fake time); a window longer than the stable one gets a series of
its own (`LoadHistory`), and never thins out the samples of the other signals."""

from __future__ import annotations

import itertools
from pathlib import Path

from podium.control.autoscaling import Autoscaling
from podium.control.load_history import LoadHistory
from podium.control.scale_policy import (
    Sample,
    ScalerState,
    ScalingContext,
    decide,
    long_rule_windows,
)
from podium.core.bounds import STORED
from podium.core.clock import FakeClock
from podium.core.phases import EndpointStatus
from podium.core.routing import EndpointLoad
from podium.core.scaling_spec import ScalingSpec
from podium.core.settings import Settings
from podium.core.spec import EndpointSpec
from podium.store import Database
from tests.unit.control.test_autoscaling import (
    FakeGateway,
    clock,
    db,
    endpoints,
    gateway,
    one_pass,
    replica,
    settings,
    sqlite_url,
)

__all__ = ["clock", "db", "gateway", "settings", "sqlite_url"]


def scaling(**rule: object) -> ScalingSpec:
    return ScalingSpec.model_validate(
        {
            "min_replicas": 1,
            "max_replicas": 10,
            "stable_window": 30,
            "rules": [{"metric": "cpu", "target": 50, **rule}],
        }
    )


def cpu_load(now: float) -> tuple[Sample, ...]:
    """One replica at 200 % cpu from t=0 to t=60, then at 0 % until `now` (1 s samples)."""
    return tuple(Sample(float(t), metrics={"cpu": 200.0 if t <= 60 else 0.0}) for t in range(now))


def cpu_at(spec: ScalingSpec, now: int) -> object:
    """The rule's figure (summed over the ready replicas, averaged over its window) at `now`."""
    ctx = ScalingContext(now=float(now), spec=spec, desired=1, ready=1, samples=cpu_load(now + 1))
    return decide(ctx, ScalerState(known_desired=1)).data["cpu"]


def test_a_rule_without_a_window_uses_the_stable_window() -> None:
    spec = scaling()
    assert cpu_at(spec, 60) == 200.0
    assert cpu_at(spec, 70) == 133.333  # 20 s of 200 % and 10 s of 0 % in (40, 70]
    assert cpu_at(spec, 100) == 0.0  # the spike left the 30 s window


def test_a_rule_with_a_longer_window_still_remembers_the_spike() -> None:
    spec = scaling(window="2m")
    # At t=100 the samples since t=0 hold 60 s of 200 % and 40 s of 0 % (the first sample
    # only bounds the first interval): 200 x 60 / 100.
    assert cpu_at(spec, 100) == 120.0
    assert cpu_at(spec, 200) == 0.0


def test_a_rule_with_a_shorter_window_forgets_sooner() -> None:
    spec = scaling(window="5s")
    assert cpu_at(spec, 60) == 200.0
    assert cpu_at(spec, 70) == 0.0  # the stable window still says 133.333 (above)


def test_the_text_names_the_rules_own_window() -> None:
    spec = scaling(window=90)
    ctx = ScalingContext(now=61.0, spec=spec, desired=1, ready=1, samples=cpu_load(62))
    d = decide(ctx, ScalerState(known_desired=1))
    assert d.desired == 4  # ceil(60 s of 200 % and 1 s of 0 % over 61 s / 50 %)
    assert d.reason is not None and "over 90s, target 50%" in d.reason


def test_only_rules_longer_than_the_stable_window_get_a_series_of_their_own() -> None:
    assert long_rule_windows(scaling()) == {}
    assert long_rule_windows(scaling(window=5)) == {}
    assert long_rule_windows(scaling(window="2m")) == {"cpu": 120.0}


def stored_scaling(**rule: object) -> ScalingSpec:
    """As read back from the store: a rule window of 7 days was accepted before the 1 h
    bound, and such a spec still loads."""
    return ScalingSpec.model_validate(
        {"stable_window": 30, "rules": [{"metric": "cpu", "target": 50, **rule}]},
        context=STORED,
    )


def test_a_long_rule_window_keeps_its_own_series_and_the_dense_samples_stay_dense() -> None:
    """A 1 h cpu window: the rule reads its hour (half of it at 100 %), while concurrency and
    requests/s keep samples half a second apart over the stable window only."""
    spec = scaling(window="1h")
    history = LoadHistory()
    for i in range(36_000):  # an hour of passes at 10 Hz
        t = i / 10
        history.add(t, EndpointLoad(), {"cpu": 100.0 if t < 1800 else 0.0}, spec)
    now = 3599.9
    assert history.samples[0].t >= now - spec.stable_window - 0.5
    times = [s.t for s in history.samples]
    assert all(b - a <= 0.5 + 1e-9 for a, b in itertools.pairwise(times))
    series = history.rule_samples()["cpu"]
    assert len(series) < 650  # about one per 6 s (1 h / MAX_SAMPLES), not 36,000
    ctx = ScalingContext(
        now=now,
        spec=spec,
        desired=1,
        ready=1,
        samples=tuple(history.samples),
        rule_samples=history.rule_samples(),
    )
    d = decide(ctx, ScalerState(known_desired=1))
    assert abs(float(d.data["cpu"]) - 50.0) < 0.5  # type: ignore[arg-type]
    assert d.data["concurrency"] == 0.0


def test_a_request_burst_is_forgotten_after_the_stable_window_whatever_a_rule_window() -> None:
    """A stored 7-day rule window once spaced every sample 1008 s apart: a burst at t=10
    still read as arriving at t=200. The request rate keeps its own dense samples."""
    spec = stored_scaling(window=7 * 86400)
    history = LoadHistory()
    requests = 0
    for i in range(2000):  # 200 s of passes at 10 Hz, 100 requests at t=10
        t = i / 10
        if i == 100:
            requests += 100
        history.add(t, EndpointLoad(requests=requests), {}, spec)
    assert history.samples[-1].rps == 0.0


def test_a_long_rule_window_does_not_delay_scale_to_zero(
    tmp_path: Path, settings: Settings, db: Database, clock: FakeClock, gateway: FakeGateway
) -> None:
    """Through the glue, on the store: an endpoint whose stored spec has a 7-day cpu window
    goes to zero `scale_to_zero_after` after its last request, not days later."""
    spec = EndpointSpec.model_validate(
        {
            "name": "echo",
            "model": "bundle:1",
            "framework": "python",
            "scaling": {
                "min_replicas": 0,
                "max_replicas": 2,
                "scale_to_zero_after": "20s",
                "rules": [{"metric": "cpu", "target": 50, "window": "168h"}],
            },
        },
        context=STORED,
    )
    with db.unit_of_work() as uow:
        uow.endpoints.create(
            spec, model_ref="bundle:1", status=EndpointStatus.RUNNING, desired_replicas=1
        )
    scaler = Autoscaling(settings, db, clock, gateway)
    for t in range(60):
        gateway.loads["echo"] = EndpointLoad(requests=100 if t >= 10 else 0)  # a burst at 10
        one_pass(scaler, db, [replica("r1")])
        clock.advance(1)
    (ep,) = endpoints(db)
    assert ep.desired_replicas == 0
