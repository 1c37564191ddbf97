"""`podium up`: run the embedded server (and optionally deploy the demo endpoint)."""

from __future__ import annotations

import logging
import threading

import uvicorn

from podium.core.settings import Settings
from podium.server.app import Podium


def serve(settings: Settings, *, demo: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore"):  # one line per probe and per SDK call otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = Podium(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=15,
    )
    server = uvicorn.Server(config)
    if demo:
        from podium.server.demo import deploy_demo

        threading.Thread(
            target=deploy_demo, args=(settings, server), name="podium-demo", daemon=True
        ).start()
    server.run()
