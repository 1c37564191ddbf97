"""Payload capture for the request records: what of a body may be stored, and redacted.

An endpoint's `observability.capture` (`core.observability_spec.CaptureSpec`) samples a
fraction of its requests; for each, `captured(...)` turns the request body and the response
body into the text stored with the record. Rules, safest first:

- With `redact` keys, a body is stored only if the gateway holds it whole and it parses as
  JSON: every value under a redacted key (case-insensitive, at any depth, in objects inside
  arrays too) becomes `"***"`, the document is serialised again (compact), and only then cut
  to `max_bytes`, so a cut can never show a value that redaction would have hidden. A body
  the gateway cannot parse whole is NOT stored, only a note saying why:
  `[not stored: not JSON, cannot redact]`, or `[not stored: N bytes, more than the
  gateway reads whole; cannot redact]` (a streamed request body, a streamed answer, a body
  over `max(4 x max_bytes, PARSE_FLOOR)`: at most 256 KiB). Leaking a secret in a record
  is worse than a missing payload.
- Without `redact` keys, the first `max_bytes` are stored as they came (decoded as UTF-8,
  bad bytes replaced); a cut body ends with `…[cut: first N of M bytes]`.
- An empty body is stored as None (nothing to see).

Pure functions: the recording stage calls them on the event loop, only for sampled requests.
"""

from __future__ import annotations

import json
from typing import Any

from podium.core.jsondepth import too_deep
from podium.core.observability_spec import CaptureSpec

# The largest body parsed for redaction (on the event loop: a bound on its cost): four times
# what is kept, at least 64 KiB, so at most 256 KiB (`max_bytes` is at most 64 KiB).
PARSE_FLOOR = 64 * 1024
REDACTED = "***"
NOT_JSON = "[not stored: not JSON, cannot redact]"


def captured(data: bytes, total: int, spec: CaptureSpec) -> str | None:
    """The text stored for a body of `total` bytes of which the gateway holds `data` (all
    of it when `len(data) == total`, else its first bytes)."""
    if not total:
        return None
    if spec.redact:
        if len(data) < total or total > max(4 * spec.max_bytes, PARSE_FLOOR):
            return f"[not stored: {total} bytes, more than the gateway reads whole; cannot redact]"
        text = redacted(data, frozenset(spec.redact))
        if text is None:
            return NOT_JSON
        return _cut(text.encode("utf-8"), len(text.encode("utf-8")), spec.max_bytes)
    return _cut(data, total, spec.max_bytes)


def redacted(data: bytes, keys: frozenset[str]) -> str | None:
    """The JSON document in `data` with the values of `keys` (lower case) replaced by
    `"***"`, serialised again; None when `data` is not JSON (or nests too deep to parse)."""
    if too_deep(data):
        return None
    try:
        doc = json.loads(data)
    except ValueError:  # UnicodeDecodeError too
        return None
    return json.dumps(_redact(doc, keys), ensure_ascii=False, separators=(",", ":"))


def _redact(doc: Any, keys: frozenset[str]) -> Any:
    if isinstance(doc, dict):
        return {k: REDACTED if k.lower() in keys else _redact(v, keys) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_redact(v, keys) for v in doc]
    return doc


def _cut(data: bytes, total: int, max_bytes: int) -> str:
    text = data[:max_bytes].decode("utf-8", "replace")
    if total > max_bytes:
        return f"{text}…[cut: first {max_bytes} of {total} bytes]"
    return text
