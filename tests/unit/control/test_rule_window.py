"""A scaling rule's own `window`: its figure is averaged over that window instead of the
stable window (pure policy, fake time), and the glue keeps samples for the longest one."""

from __future__ import annotations

from podium.control.scale_policy import (
    Sample,
    ScalerState,
    ScalingContext,
    decide,
    history_span,
)
from podium.core.scaling_spec import ScalingSpec


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


def test_the_glue_keeps_samples_for_the_longest_window() -> None:
    assert history_span(scaling()) == 30.0
    assert history_span(scaling(window="2m")) == 120.0
    assert history_span(scaling(window=5)) == 30.0
