"""The server's log: text lines (default) or JSON lines (`PODIUM_LOG_FORMAT=json`), each
naming the request that caused it.

One handler on the root logger (`core.log_format`: the replicas format theirs the same
way), so every library's lines, uvicorn's included, come out in one format: uvicorn is
started with `log_config=None` (`UVICORN_LOG_CONFIG`), which leaves its loggers without
handlers of their own, and `configure_logging` makes sure they propagate to the root.

The request id is whatever `core.log_context.bind_request` bound in the task that logs:
the gateway's pipeline binds each request's id (`X-Request-ID`, made by the gateway when
the client sent none) when it starts serving it, so the gateway's lines and those of the
stages it runs carry it; lines logged outside a request (the controller, startup) have
none. Standard library only: a `logging.Formatter` subclass is all JSON lines need, and a
structured-logging library would be one more dependency for every replica too.
"""

from __future__ import annotations

import logging
from typing import IO

from podium.core.log_format import install, log_handler
from podium.core.settings import ObservabilitySettings

# uvicorn.Config(log_config=...): None keeps uvicorn from installing its own handlers.
UVICORN_LOG_CONFIG = None
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# One line per probe and per SDK call otherwise.
QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging(
    observability: ObservabilitySettings,
    *,
    stream: IO[str] | None = None,
    level: int = logging.INFO,
) -> logging.Handler:
    """Install the server's one log handler (on `stream`, stderr by default) in the format
    the settings ask for; returns it (a test removes it again)."""
    handler = log_handler(observability.log_json, stream)
    install(handler, level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
