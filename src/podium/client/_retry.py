"""When the SDK sends a request again: a refusal the server made before doing anything.

    429 Too Many Requests                 (`RateLimited`; Retry-After, else 1 s)
    503 Service Unavailable + Retry-After (`Retryable`: a cold start, a full queue)

Both say "nothing was done, try again later", so any request is retried, POSTs included,
provided its body can be sent again (an upload streamed from a file cannot: it is never
retried). A 503 without Retry-After, a 502/504 or a lost connection are not retried: the
server may have acted. Each wait is the server's Retry-After, capped at
`RetryPolicy.max_wait_s`; the retries stop after `max_retries` or once the waits together
would pass `max_total_s`, and the last refusal is raised as its error.

The decision is pure (`RetryPolicy.delay`), so the sync and async clients share it and
only sleep differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from podium.client._errors import error_from_response
from podium.core.errors import RateLimited, Retryable

DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_WAIT_S = 10.0  # one wait, whatever Retry-After asks
DEFAULT_MAX_TOTAL_S = 30.0  # all waits of one call together


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries refused requests (see the module doc). `max_retries=0`: never."""

    max_retries: int = DEFAULT_MAX_RETRIES
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    max_total_s: float = DEFAULT_MAX_TOTAL_S

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_wait_s < 0 or self.max_total_s < 0:
            raise ValueError("retry limits must not be negative")

    def delay(self, response: httpx.Response, retries: int, waited: float) -> float | None:
        """How long to wait before sending the request again after `response`, or None
        to stop (not a refusal, or no retry left). `retries`: retries made so far;
        `waited`: seconds already spent waiting in this call."""
        if retries >= self.max_retries or response.status_code not in (429, 503):
            return None
        error = error_from_response(response)
        after = error.retry_after if isinstance(error, RateLimited | Retryable) else None
        if after is None:
            return None
        wait = min(after, self.max_wait_s)
        if waited + wait > self.max_total_s:
            return None
        return wait


def replayable(kwargs: dict[str, object]) -> bool:
    """Whether a request's body can be sent twice: JSON, form data, bytes or none (not an
    iterator, which the first send used up)."""
    content = kwargs.get("content")
    return content is None or isinstance(content, bytes | str)
