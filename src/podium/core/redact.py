"""Secrets out of URLs: what may reach an event, a log line or an error message.

A URL such as `https://user:token@hub.example/?sig=…` (an `HF_ENDPOINT`, a proxy) carries
credentials in its userinfo and often in its query string. `url` strips both (and the
fragment) from one URL; `urls_in` does it to every http(s) URL inside a text (an exception's
message, a child's stderr). Pure functions, no I/O.
"""

from __future__ import annotations

import re
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
