"""The server's one `TokenDirectory`, kept in step with the store.

Loaded when the server is built; reloaded every `settings.token_refresh_s` by a thread that
`Podium.startup` starts and `shutdown` stops. A failed reload logs (once per failing spell)
and keeps the directory as it was. In one process the API's token routes put and drop
entries at once after their commit; the reload is what carries a change made by another
process (revocation within `token_refresh_s` plus one query).

A reload that read the store before such a put/drop must not undo it: `LiveTokens` counts
its writes, and a reload during which one happened is dropped (the next one is current).
The count's compare and the reload's swap are one step under the directory's lock, which
put/drop take too, so a revoke cannot land between them (checks take no lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from podium.core.access import TokenDirectory, TokenEntry
from podium.store.db import Database

log = logging.getLogger("podium.server")


class LiveTokens(TokenDirectory):
    """A `TokenDirectory` that counts the API's writes (`put`, `drop`) since it was made,
    under a lock that `load_unless_written` holds too (authentication takes none)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self._lock = threading.Lock()

    def put(self, entry: TokenEntry) -> None:
        with self._lock:
            self.writes += 1
            super().put(entry)

    def drop(self, token_id: str) -> None:
        with self._lock:
            self.writes += 1
            super().drop(token_id)

    def load_unless_written(self, entries: list[TokenEntry], writes: int) -> bool:
        """Load `entries` (read from the store after `writes` was seen) unless a put/drop
        came since: then they may be older than it, and False."""
        with self._lock:
            if self.writes != writes:
                return False
            self.load(entries)
            return True


Loader = Callable[[], list[TokenEntry]]


def store_loader(db: Database) -> Loader:
    """Reads every live token from the store (one read-only query)."""

    def load() -> list[TokenEntry]:
        with db.unit_of_work(read_only=True) as uow:
            return uow.tokens.live_entries()

    return load


class TokenRefresher:
    """Reloads `directory` with `load()` every `interval` seconds in a daemon thread."""

    def __init__(self, load: Loader, directory: LiveTokens, interval: float) -> None:
        self._load = load
        self.directory = directory
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def reload(self) -> bool:
        """One reload; False (logged once per failing spell) when the store could not be read."""
        writes = self.directory.writes  # before the read: a put/drop after it is newer
        try:
            entries = self._load()
        except Exception:  # the store is away: keep serving with the tokens we know
            if not self._failing:
                log.warning("reloading API tokens failed; keeping the last ones", exc_info=True)
            self._failing = True
            return False
        self.directory.load_unless_written(entries, writes)  # a newer put/drop is kept
        if self._failing:
            log.info("reloading API tokens works again")
        self._failing = False
        return True

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="podium-tokens", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.reload()
