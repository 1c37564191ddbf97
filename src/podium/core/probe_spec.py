"""The `readiness:` and `liveness:` blocks of an endpoint spec (pydantic, no I/O).

A probe is HTTP (GET `path`, 200 is success), TCP (a connection is accepted) or exec (a
command run on the replica's host exits 0). `port` defaults to the replica's own port.
`success_threshold` answers in a row turn a failing replica back to passing;
`failure_threshold` failures in a row turn it failing. `enabled: false` switches the probe
off: a replica without readiness is routed once its process runs and its port accepts a
connection; one without liveness is never restarted for not answering (a process that
exits still is).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from podium.core.bounds import AtMost

PositiveSeconds = Annotated[float, Field(gt=0, le=3600)]
_Path = Annotated[str, AtMost(256), Field(pattern=r"^/[A-Za-z0-9._~/%-]*$")]
MAX_EXEC_ARGS = 64
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
