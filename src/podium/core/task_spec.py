"""The `tasks:` block of an endpoint's spec (issue 13): how its async tasks are run.
Re-exported by `core.spec`.

A task's time limit is the endpoint's `timeout_s` (the gateway's timeout of one call, the
same for a task's attempt as for a synchronous call). Its lease (the visibility timeout:
how long a dispatcher holds it before another may take it over) must be longer, or a
task still running would be handed to a second dispatcher: the spec checks that invariant
when it is saved (`EndpointCreate` / the merged update), naming `tasks.lease_s`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from podium.core.tasks import DEFAULT_TTL_S, MAX_TTL_S, MIN_TTL_S

LEASE_MARGIN_S = 30.0  # the default lease: the endpoint's timeout_s plus this


class TaskSpec(BaseModel):
    """Async tasks of one endpoint: attempts, lease, result TTL and queue bound."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(
        3, ge=1, le=100, description="attempts before a task is dead-lettered (failed)"
    )
    lease_s: float | None = Field(
        None,
        gt=0,
        le=4 * 3600,
        description=f"a task's lease, > timeout_s (default: timeout_s + {LEASE_MARGIN_S:g})",
    )
    result_ttl_s: float = Field(
        DEFAULT_TTL_S,
        ge=MIN_TTL_S,
        le=MAX_TTL_S,
        description="results expire this long after the task was created (X-Podium-Task-Ttl)",
    )
    max_pending: int = Field(
        100_000, ge=1, le=10_000_000, description="pending tasks at most (then 429)"
    )

    def lease_for(self, timeout_s: float) -> float:
        """The lease of a task on an endpoint whose calls time out after `timeout_s`."""
        return self.lease_s if self.lease_s is not None else timeout_s + LEASE_MARGIN_S

    def lease_error(self, timeout_s: float) -> str | None:
        """Why this block does not fit an endpoint with this `timeout_s`, or None."""
        if self.lease_s is not None and self.lease_s <= timeout_s:
            return (
                f"tasks.lease_s ({self.lease_s:g} s) must be longer than timeout_s "
                f"({timeout_s:g} s): a task still running would be handed to another dispatcher"
            )
        return None
