"""One error tree for all of Podium.

    PodiumError
     ├── NotFound          a named thing does not exist            (HTTP 404)
     ├── Conflict          it exists / is in use / wrong state     (HTTP 409)
     ├── Invalid           the user's input is wrong               (HTTP 422 / 400)
     │    └── UnsafeArchive   an archive entry escapes the store
     ├── TooLarge          a body or upload over its limit         (HTTP 413)
     ├── Unavailable       cannot serve right now                  (HTTP 503)
     │    └── Retryable    try again after `retry_after` seconds
     ├── LoadError         a runtime could not load a model (endpoint -> failed)
     └── OutOfMemory       a replica ran out of its memory limit     (HTTP 507)

`api/problems.py` alone maps these to HTTP (application/problem+json).
Every error carries a human message and, where one applies, the offending `field`.
"""

from __future__ import annotations


class PodiumError(Exception):
    """Base of every error Podium raises on purpose."""

    title = "Error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class NotFound(PodiumError):
    title = "Not Found"


class Conflict(PodiumError):
    title = "Conflict"


class Invalid(PodiumError):
    title = "Invalid"


class UnsafeArchive(Invalid):
    title = "Unsafe archive"


class TooLarge(PodiumError):
    title = "Too Large"


class Unavailable(PodiumError):
    title = "Unavailable"


class Retryable(Unavailable):
    title = "Retry later"

    def __init__(self, message: str, *, retry_after: float = 1.0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class LoadError(PodiumError):
    """A runtime failed to load a model; deterministic, so not retried."""

    title = "Model failed to load"


class OutOfMemory(PodiumError):
    """A replica ran out of its instance type's memory serving a request."""

    title = "Out of memory"
