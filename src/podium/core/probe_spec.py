"""The `readiness:` and `liveness:` blocks of an endpoint spec (pydantic, no I/O).

A probe is HTTP (GET `path`, 200 is success), TCP (a connection is accepted) or exec (a
command run on the replica's host exits 0). `port` defaults to the replica's own port.
As in Kubernetes, `failure_threshold` failures in a row turn a passing replica failing
(liveness: killed; readiness: out of routing), and `success_threshold` passes in a row
turn a failing one back (readiness: routed again); any pass ends a run of failures.
Liveness's `success_threshold` must be 1 (a replica that failed liveness is killed, so
there is nothing to turn back). `enabled: false` switches the probe off: a replica
without readiness is routed once its process runs and its port accepts a connection; one
without liveness is never restarted for not answering (a process that exits still is).

Exec probes run a program on the host, outside the replica's limits: they are allowed
only where the user already runs a program (framework `command` and the server presets,
`EXTERNAL_FRAMEWORKS`), at most once a second (`period_s` >= 1). A probe waits at most
60 s for its answer (`timeout_s`; specs stored with a longer one still load).
`check_probe` is the check that needs the framework; the endpoint spec calls it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from podium.core.bounds import AtMost, is_stored

PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]
_Path = Annotated[str, AtMost(256), Field(pattern=r"^/[A-Za-z0-9._~/%-]*$")]
MAX_EXEC_ARGS = 64
MIN_EXEC_PERIOD_S = 1.0
MAX_PROBE_TIMEOUT_S = 60.0  # a probe out longer would delay its own kind's next answer
# The frameworks whose replica is a program the user runs: `command` and the server
# presets (`runtimes.presets.EXTERNAL_FRAMEWORKS` less `container`, whose program is in its
# image, not on the host; core cannot import the presets; a test keeps
# the two equal).
EXTERNAL_FRAMEWORKS = frozenset(
    {"command", "vllm", "sglang", "tgi", "llama.cpp", "triton", "torchserve"}
)
EXEC_ONLY_EXTERNAL = (
    "exec probes run a program on the host: only for framework command and server presets"
)
_ExecArg = Annotated[str, AtMost(1024)]


class ProbeKind(StrEnum):
    HTTP = "http"
    TCP = "tcp"
    EXEC = "exec"


class ProbeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false: no probe of this kind (see the module doc)")
    kind: ProbeKind = Field(ProbeKind.HTTP, description="http, tcp or exec")
    path: _Path = Field("/health/ready", description="http: the route to GET")
    port: int | None = Field(
        None, ge=1, le=65535, description="http/tcp: the port to probe; default the replica's"
    )
    command: Annotated[list[_ExecArg], AtMost(MAX_EXEC_ARGS)] | None = Field(
        None, description="exec: argv run on the replica's host; exit status 0 is success"
    )
    initial_delay_s: float = Field(0.0, ge=0, le=3600)
    period_s: PositiveSeconds = 1.0
    timeout_s: PositiveSeconds = 1.0
    failure_threshold: int = Field(3, ge=1, le=100)
    success_threshold: int = Field(1, ge=1, le=100, description="passes in a row to pass again")

    @field_validator("period_s")
    @classmethod
    def _exec_period(cls, v: float, info: ValidationInfo) -> float:
        if (
            info.data.get("kind") is ProbeKind.EXEC
            and v < MIN_EXEC_PERIOD_S
            and not is_stored(info)
        ):
            raise ValueError(f"an exec probe runs at most once a second: period_s >= 1, not {v:g}")
        return v

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, v: float, info: ValidationInfo) -> float:
        # Not `Field(le=60)`: specs stored under the older 3600 s bound still load.
        if v > MAX_PROBE_TIMEOUT_S and not is_stored(info):
            raise ValueError(
                f"a probe waits at most {MAX_PROBE_TIMEOUT_S:g}s for its answer: "
                f"timeout_s <= {MAX_PROBE_TIMEOUT_S:g}, not {v:g}"
            )
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        if self.kind is ProbeKind.EXEC and not self.command:
            raise ValueError("an exec probe needs `command` (a non-empty argv list)")
        if self.kind is not ProbeKind.EXEC and self.command is not None:
            raise ValueError(f"`command` applies only to exec probes, not to {self.kind.value}")
        if self.kind is ProbeKind.EXEC and self.port is not None:
            raise ValueError("`port` applies only to http and tcp probes")
        return self


def liveness_default() -> ProbeSpec:
    return ProbeSpec(path="/health/live", period_s=5.0, timeout_s=2.0, failure_threshold=3)


def check_probe(probe: ProbeSpec, *, liveness: bool, framework: str | None) -> None:
    """The checks that need the endpoint: an exec probe only for an external framework
    (`framework` None: not known yet, checked once it is), liveness passing once. Raises
    pydantic's `ValidationError` located in the probe (`kind`, `success_threshold`): raised
    from the endpoint's field validator, its 422 names `readiness.kind`."""
    external = framework is None or framework in EXTERNAL_FRAMEWORKS
    if probe.kind is ProbeKind.EXEC and not external:
        _invalid("kind", probe.kind.value, f"{EXEC_ONLY_EXTERNAL}, not for {framework}")
    if liveness and probe.success_threshold != 1:
        _invalid(
            "success_threshold",
            probe.success_threshold,
            "liveness success_threshold must be 1 (a replica failing liveness is killed)",
        )


def _invalid(field: str, value: object, message: str) -> None:
    error = PydanticCustomError("value_error", message)
    details = InitErrorDetails(type=error, loc=(field,), input=value)
    raise ValidationError.from_exception_data("ProbeSpec", [details])
