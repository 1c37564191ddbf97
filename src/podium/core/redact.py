"""Secrets out of URLs: what may reach an event, a log line or an error message.

A URL such as `https://user:token@hub.example/?sig=…` (an `HF_ENDPOINT`, a proxy) carries
credentials in its userinfo and often in its query string. `url` strips both (and the
fragment) from one URL; `urls_in` does it to every http(s) URL inside a text (an exception's
message, a child's stderr). `Secrets` replaces every known secret value in a text, or in
the strings of an event's data, by `***`. No I/O.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# A URL runs to the next space or quote, less trailing punctuation (`…?sig=x: timed out`).
_URL = re.compile(r"\bhttps?://[^\s'\"<>]*[^\s'\"<>.,:;!?)\]]", re.IGNORECASE)


def url(value: str) -> str:
    """`value` without `user:password@`, `?query` and `#fragment`."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. a malformed IPv6 host: keep the scheme only
        return value.split("://", 1)[0] + "://…" if "://" in value else "…"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def urls_in(text: str) -> str:
    """`text` with every http(s) URL in it passed through `url`."""
    return _URL.sub(lambda m: url(m.group(0)), text)


MASK = "***"
MIN_SECRET_LEN = 4  # shorter values would mask ordinary words; the API refuses none, though


class Secrets:
    """The secret values this process has decrypted (the controller adds each one it
    uses): `text` and `data` replace every one of them by `***`. Thread-safe."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if len(v) >= MIN_SECRET_LEN}
        with self._lock:
            if new <= self._values:
                return
            self._values = self._values | new
            longest_first = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in longest_first))

    def text(self, value: str) -> str:
        pattern = self._pattern
        return value if pattern is None else pattern.sub(MASK, value)

    def data(self, value: Any) -> Any:
        """`value` (JSON-like: dicts, lists, strings) with every string passed through
        `text`."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
