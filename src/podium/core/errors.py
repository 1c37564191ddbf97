"""One error tree for all of Podium.

    PodiumError            a bug or a failure no class below names    500 Error
     ├── Unauthenticated   no valid token was given                   401 Unauthorized (+ WWW-Auth.)
     ├── Forbidden         the token lacks the scope or project       403 Forbidden
     ├── NotFound          a named thing does not exist               404 Not Found
     │    └── Gone            it existed, but expired                 410 Gone
     ├── Conflict          it exists / is in use / wrong state        409 Conflict
     │    └── QuotaExceeded   a project's quota would be passed       409 Quota exceeded
     ├── Invalid           the user's input is wrong                  422 Invalid
     │    └── UnsafeArchive   an archive entry escapes the store      422 Unsafe archive
     ├── TooLarge          a body or upload over its limit            413 Too Large
     ├── RateLimited       over a token's or endpoint's rate limit    429 Too Many Requests
     ├── Unavailable       cannot serve right now                     503 Unavailable
     │    ├── Retryable    try again after `retry_after` s            503 Retry later, Retry-After
     │    ├── Fenced       this process no longer leads the controllers 503 (never a user's)
     │    └── NoRoom       a replica cannot be placed yet (GPUs busy)   503 (the controller waits)
     ├── LoadError         a runtime could not load a model           422 Model failed to load
     └── OutOfMemory       a replica ran out of its memory limit      507 Out of memory

The rule: an error's HTTP status and problem title are attributes of its class (`status`,
`title`), and every surface (control API, gateway, replica) answers with them, built by
`core/problems.py`. Input that is wrong, malformed JSON included, is 422 everywhere; the
one exception is a wire protocol that fixes its own code: OpenAI-shaped answers turn 422
into 400, as OpenAI does (`protocols/openai.error_status`).
Every error carries a human message and, where one applies, the offending `field`.
"""

from __future__ import annotations


class PodiumError(Exception):
    """Base of every error Podium raises on purpose."""

    title = "Error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class Unauthenticated(PodiumError):
    """No token, or one that is malformed, unknown, revoked or expired. Answered with
    `WWW-Authenticate: Bearer`."""

    title = "Unauthorized"
    status = 401


class Forbidden(PodiumError):
    """A valid token without the scope (or the project) the action needs; the message
    names the scope missing."""

    title = "Forbidden"
    status = 403


class NotFound(PodiumError):
    title = "Not Found"
    status = 404


class Gone(NotFound):
    """It existed but is no more: a task's result past its TTL (issue 13)."""

    title = "Gone"
    status = 410


class Conflict(PodiumError):
    title = "Conflict"
    status = 409


class QuotaExceeded(Conflict):
    """The action would pass a project's quota; `field` names the quota (`max_replicas`)."""

    title = "Quota exceeded"


class Invalid(PodiumError):
    title = "Invalid"
    status = 422


class UnsafeArchive(Invalid):
    title = "Unsafe archive"


class TooLarge(PodiumError):
    title = "Too Large"
    status = 413


class RateLimited(PodiumError):
    """Over a rate limit; try again after `retry_after` seconds."""

    title = "Too Many Requests"
    status = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Unavailable(PodiumError):
    title = "Unavailable"
    status = 503


class Retryable(Unavailable):
    title = "Retry later"

    def __init__(self, message: str, *, retry_after: float = 1.0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Fenced(Unavailable):
    """A controller that lost the lead tried to act: its fencing number (epoch) is no longer
    the lease's (`podium.coordination.fencing`). The action is refused, never half done."""

    title = "Not the leader"


class NoRoom(Unavailable):
    """A backend cannot place a replica now: what it asks for (GPUs) is held by other
    replicas. Not a crash and not the revision's fault: the controller holds the replica
    pending, says why once (an event), and starts it when room frees up."""

    title = "No room for the replica"


class LoadError(PodiumError):
    """A runtime failed to load a model; deterministic, so not retried."""

    title = "Model failed to load"
    status = 422  # the model the user gave cannot be used


class OutOfMemory(PodiumError):
    """A replica ran out of its instance type's memory serving a request."""

    title = "Out of memory"
    status = 507
