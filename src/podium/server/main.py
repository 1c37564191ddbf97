"""`podium up`: run the embedded server (and optionally deploy the demo endpoint).

Order matters, so that a server that cannot run changes nothing: the umask and the lock on
`PODIUM_HOME` first (a second server on one home stops here), then the listening socket (a
port in use stops here), and only then the database migration and the controller, which
adopts the replicas a previous server left running.

`settings.auth` False (`podium up --no-auth`) is refused unless the host is a loopback
address, and logged loudly when it runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import uvicorn

from podium.core.settings import Settings
from podium.server.app import Podium
from podium.server.home import UMASK, bind, claim_home
from podium.server.hosts import check_no_auth
from podium.server.logging_setup import UVICORN_LOG_CONFIG, configure_logging

log = logging.getLogger("podium.server")
NO_AUTH_WARNING = (
    "AUTHENTICATION IS OFF (--no-auth): anyone who can reach %s may deploy, delete and "
    "invoke anything. Use it only on a machine you alone use."
)


def serve(settings: Settings, *, demo: bool = False) -> None:
    check_no_auth(settings)
    configure_logging(settings.observability)  # text or JSON lines, with the request id
    if not settings.auth:
        for _ in range(3):  # hard to miss in a scrolling log
            log.warning(NO_AUTH_WARNING, settings.public_url)
    os.umask(UMASK)  # state, logs and artifacts are the user's alone (replicas inherit it)
    lock = claim_home(settings)
    try:
        sock = bind(settings.host, settings.port)
        try:
            _run(settings, sock, demo=demo)
        finally:
            sock.close()
    finally:
        lock.release()


def _run(settings: Settings, sock: socket.socket, *, demo: bool) -> None:
    app = Podium(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_config=UVICORN_LOG_CONFIG,  # uvicorn's lines go through our one handler
        log_level="info",
        timeout_graceful_shutdown=15,
    )
    server = uvicorn.Server(config)
    if demo:
        from podium.server.demo import deploy_demo

        threading.Thread(
            target=deploy_demo, args=(settings, server), name="podium-demo", daemon=True
        ).start()
    server.run(sockets=[sock])
