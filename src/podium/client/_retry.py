"""When the SDK sends a request again: a refusal the server made before doing anything.

    429 Too Many Requests                 (`RateLimited`; Retry-After, else 1 s)
    503 Service Unavailable + Retry-After (`Retryable`: a cold start, a full queue)

From Podium itself (the control API, the gateway, a Podium replica) both say "nothing was
done, try again later", so the request is retried, POSTs included, provided its body can be
sent again (an upload streamed from a file cannot: it is never retried). A 503 without
Retry-After, a 502/504 or a lost connection are not retried: the server may have acted.
Each wait is the server's Retry-After, capped at `RetryPolicy.max_wait_s`; the retries stop
after `max_retries` or once the waits together would pass `max_total_s`, and the last
refusal is raised as its error.

The data plane is different: the gateway passes an endpoint's answer on as it came, and a
server Podium does not control (a `command` server, vLLM, TGI) may answer 503 or 429 with
Retry-After after it started the work. So a call through the gateway (`relayed`) is retried
only when the refusal is Podium's own (`podiums_own`): it carries `x-podium-refused`
(`gateway` or `replica`), which the gateway puts on the 429/503s it makes itself and a Podium
replica on its full-queue refusal, never on an error a model's code raised; anything else is
raised at once. The gateway does not strip that header from the answers it forwards, so an
endpoint's own server (a `command` server) could send it and have its clients retry: that
server's own answers only, as its author chose.

The decision is pure (`RetryPolicy.delay`), so the sync and async clients share it and
only sleep differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from podium.client._errors import error_from_response
from podium.core.errors import RateLimited, Retryable
from podium.core.problems import REFUSED_HEADER

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

    def delay(
        self, response: httpx.Response, retries: int, waited: float, *, relayed: bool = False
    ) -> float | None:
        """How long to wait before sending the request again after `response`, or None
        to stop (not a refusal, or no retry left). `retries`: retries made so far;
        `waited`: seconds already spent waiting in this call; `relayed`: a call through the
        gateway, retried only on Podium's own refusal."""
        if retries >= self.max_retries or response.status_code not in (429, 503):
            return None
        if relayed and not podiums_own(response):
            return None
        error = error_from_response(response)
        after = error.retry_after if isinstance(error, RateLimited | Retryable) else None
        if after is None:
            return None
        wait = min(after, self.max_wait_s)
        if waited + wait > self.max_total_s:
            return None
        return wait


_REFUSERS = ("gateway", "replica")


def podiums_own(response: httpx.Response) -> bool:
    """Whether an answer through the gateway is a refusal Podium made before doing any of
    the work: its `x-podium-refused` header (`core.problems.REFUSED_HEADER`) says `gateway`
    or `replica`. Nothing else counts: not the body, not the other headers."""
    return response.headers.get(REFUSED_HEADER) in _REFUSERS


def replayable(kwargs: dict[str, object]) -> bool:
    """Whether a request's body can be sent twice: JSON, form data, bytes or none (not an
    iterator, which the first send used up)."""
    content = kwargs.get("content")
    return content is None or isinstance(content, bytes | str)
