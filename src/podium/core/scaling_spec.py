"""The `scaling:` block of an endpoint spec: replica bounds and the autoscaling policy knobs.

Durations accept seconds (`30`, `2.5`) or a string with a unit (`"500ms"`, `"30s"`,
`"5m"`, `"1h"`). Changing this block never makes a new revision: it applies in place.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, NoReturn

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.core.bounds import AtMost, is_stored

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def _seconds(value: object) -> object:
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(
                f"{value!r} is not a duration: use seconds or e.g. '500ms', '30s', '5m'"
            )
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0, le=7 * 86400)]
# A rule's window: longer ones once were accepted (up to 7 days) and stored specs keep them.
MAX_RULE_WINDOW_S = 3600.0

# Metrics a scaling rule may use. `custom` reads a gauge the replica exposes on /metrics.
RuleMetric = Literal["cpu", "memory", "p95_latency_ms", "queue_depth", "custom"]


class ScalingRule(BaseModel):
    """Scale so that `metric` stays near `target` (averaged over replicas)."""

    model_config = ConfigDict(extra="forbid")

    metric: RuleMetric
    target: float = Field(
        gt=0, allow_inf_nan=False, description="cpu/memory in %, latency in ms, depth in requests"
    )
    gauge: Annotated[str, AtMost(128)] | None = Field(
        None,
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        description="name of the replica's Prometheus gauge (metric: custom only)",
    )

    window: Duration | None = Field(
        None,
        ge=1,  # it must hold a reading, and rules are read at most once a second
        description="averaging window of this rule's metric, at most 1h; default: "
        "scaling.stable_window",
        json_schema_extra={"maximum": MAX_RULE_WINDOW_S},
    )
    watch_period: Duration | None = Field(
        None,
        ge=1,
        le=3600,
        description="how often the metric is read from each replica; default: 1s (the "
        "scraper's interval)",
    )

    @field_validator("window")
    @classmethod
    def _window_bound(cls, v: float | None, info: ValidationInfo) -> float | None:
        # Not a Field(le=…): a spec stored with a longer window (once accepted) still loads.
        if v is not None and v > MAX_RULE_WINDOW_S and not is_stored(info):
            raise ValueError(
                f"a rule window is at most 1h ({MAX_RULE_WINDOW_S:g}s), not {v:g}s: a longer "
                "window would average the metric too coarsely to follow it"
            )
        return v

    @model_validator(mode="after")
    def _gauge(self) -> ScalingRule:
        if self.metric == "custom" and not self.gauge:
            raise ValueError("a custom rule needs `gauge`: the name of a gauge on /metrics")
        if self.metric != "custom" and self.gauge:
            raise ValueError(f"`gauge` applies only to custom rules, not to {self.metric}")
        if self.metric in ("cpu", "memory") and self.target > 100:
            raise ValueError(f"a {self.metric} target is a percentage (at most 100)")
        return self


class ScalingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=0, le=64)
    max_replicas: int = Field(1, ge=1, le=64)
    target_concurrency: float = Field(
        4.0, gt=0, le=10_000, description="in-flight requests per replica the autoscaler aims at"
    )
    target_rps: float | None = Field(None, gt=0, description="requests/s per replica (optional)")
    stable_window: Duration = Field(30.0, gt=0, description="averaging window for decisions")
    panic_window: Duration = Field(
        3.0, gt=0, description="short window; entered when load reaches 2x current capacity"
    )
    scale_up_delay: Duration = Field(0.0, description="load must stay high this long first")
    scale_down_delay: Duration = Field(30.0, description="load must stay low this long first")
    stability_period: Duration = Field(
        10.0, description="no scale-down sooner than this after any change of the count"
    )
    scale_to_zero_after: Duration = Field(
        300.0, description="idle time before going to zero (when min_replicas is 0)"
    )
    max_queued_requests: int = Field(
        1000, ge=0, le=1_000_000, description="requests the gateway holds while no replica is ready"
    )
    wait_timeout: Duration = Field(
        60.0, gt=0, description="how long a held request waits (header X-Podium-Wait-Timeout)"
    )
    rules: Annotated[list[ScalingRule], AtMost(16)] = Field(default_factory=list)

    @staticmethod
    def check_bounds(min_replicas: int, max_replicas: int) -> None:
        """ValueError (for pydantic) unless min_replicas <= max_replicas."""
        if min_replicas > max_replicas:
            raise ValueError(
                f"min_replicas ({min_replicas}) must not exceed max_replicas ({max_replicas})"
            )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ScalingSpec:
        # Each error names the field a user changes to fix it (`scaling.max_replicas`, as
        # `ScaleRequest` does), not the whole block: a form puts it next to that input.
        try:
            self.check_bounds(self.min_replicas, self.max_replicas)
        except ValueError as e:
            self._refuse(("max_replicas",), str(e), self.max_replicas)
        if self.panic_window > self.stable_window:
            self._refuse(
                ("panic_window",),
                f"panic_window ({self.panic_window:g}s) must not exceed "
                f"stable_window ({self.stable_window:g}s)",
                self.panic_window,
            )
        if not is_stored(info):  # a stored spec checked before this rule still loads
            self._rule_windows()
        return self

    def _refuse(self, loc: tuple[str | int, ...], message: str, value: object) -> NoReturn:
        """A validation error at `loc` inside this block (pydantic prefixes `scaling`)."""
        error = PydanticCustomError("value_error", "{message}", {"message": message})
        detail = InitErrorDetails(type=error, loc=loc, input=value)
        raise ValidationError.from_exception_data(type(self).__name__, [detail])

    def _rule_windows(self) -> None:
        """Each rule's window (its own, else the stable window) holds at least one reading:
        it is not shorter than the rule's watch_period. Named `rules.N.watch_period`."""
        for i, rule in enumerate(self.rules):
            period = rule.watch_period
            own = self.stable_window if rule.window is None else rule.window
            if period is None or own >= period:
                continue
            which = "window" if rule.window is not None else "window (stable_window)"
            error = PydanticCustomError(
                "value_error",
                "watch_period ({period}s) must not exceed the rule's {which}, {own}s: the "
                "window must hold one reading",
                {"period": f"{period:g}", "which": which, "own": f"{own:g}"},
            )
            detail = InitErrorDetails(type=error, loc=("rules", i, "watch_period"), input=period)
            raise ValidationError.from_exception_data(type(self).__name__, [detail])
