"""A daemon thread that does one thing every period until it is closed.

`GatewayReporter` (one report) and `ClusterGatewayView` (one read) are such loops: each
gives its `run_once`, so a test calls that directly, one iteration, without a thread. A
failing iteration is logged once per outage (with its message), and again when it
succeeds; nothing an iteration raises ends the thread. `on_exit` runs on the thread as its
last act after `close()`, so it cannot race an iteration still in progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class LoopThread:
    def __init__(
        self,
        name: str,
        period_s: float,
        run_once: Callable[[], None],
        *,
        what: str,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._period_s = period_s
        self._run_once = run_once
        self._what = what  # for log lines: "gateway g1's load report"
        self._on_exit = on_exit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> bool:
        """Stop after the iteration in progress; True once the thread has ended (or never
        started), False if it is still inside an iteration after `timeout`."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_once()
                if self._failing:
                    log.info("%s works again", self._what)
                self._failing = False
            except Exception as e:
                if not self._failing:  # once per outage, not at every period
                    log.warning("%s failed: %s: %s", self._what, type(e).__name__, e)
                self._failing = True
            self._stop.wait(self._period_s)
        if self._on_exit is not None:
            try:
                self._on_exit()
            except Exception:
                log.exception("%s: its last act failed", self._what)
