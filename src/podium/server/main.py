"""`podium up` and `podium server`: run the server (and optionally deploy the demo endpoint).

`podium server --roles …` (issue 16) runs some of the roles, one of several processes on
one PostgreSQL database; a split on SQLite is refused before anything else (`check_roles`).

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
from sqlalchemy.engine import make_url

from podium.core.errors import Invalid
from podium.core.settings import ALL_ROLES, Settings
from podium.server.app import Podium
from podium.server.home import UMASK, bind, claim_home
from podium.server.hosts import check_no_auth
from podium.server.logging_setup import UVICORN_LOG_CONFIG, configure_logging

log = logging.getLogger("podium.server")
NO_AUTH_WARNING = (
    "AUTHENTICATION IS OFF (--no-auth): anyone who can reach %s may deploy, delete and "
    "invoke anything. Use it only on a machine you alone use."
)


def on_postgres(settings: Settings) -> bool:
    """Is the store PostgreSQL (where several server processes may share it)?"""
    return make_url(settings.database_url).get_backend_name() in ("postgresql", "postgres")


def check_roles(settings: Settings) -> None:
    """Several processes need PostgreSQL: a process with only some roles on SQLite is
    refused in one line (its peers could not reach its store, nor share its controller)."""
    if settings.roles != ALL_ROLES and not on_postgres(settings):
        roles = ",".join(sorted(settings.roles))
        raise Invalid(
            f"--roles {roles} needs PostgreSQL (PODIUM_DATABASE_URL=postgresql://…): "
            "server processes with some of the roles share one database; on SQLite run "
            "every role in one process (podium up)",
            field="roles",
        )


def serve(settings: Settings, *, demo: bool = False, server_id: str | None = None) -> None:
    """Run the server until it is stopped. `server_id` (`podium server`): this process's
    name among those sharing the home on PostgreSQL (see `home.claim_home`)."""
    check_no_auth(settings)
    check_roles(settings)
    configure_logging(settings.observability)  # text or JSON lines, with the request id
    if not settings.auth:
        for _ in range(3):  # hard to miss in a scrolling log
            log.warning(NO_AUTH_WARNING, settings.public_url)
    os.umask(UMASK)  # state, logs and artifacts are the user's alone (replicas inherit it)
    # On SQLite the server is alone on its home whatever it was started as.
    several = server_id is not None and on_postgres(settings)
    lock = claim_home(settings, server_id=server_id if several else None)
    try:
        sock = bind(settings.host, settings.port)
        try:
            _run(settings, sock, demo=demo, one_of_several=several)
        finally:
            sock.close()
    finally:
        lock.release()


def _run(settings: Settings, sock: socket.socket, *, demo: bool, one_of_several: bool) -> None:
    app = Podium(settings, one_of_several=one_of_several)
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
