"""One line of a job's input, as the job runner reads it (issue 13): whether it counts,
the JSON object it holds or why it holds none, and, for an OpenAI batch, the request it
names. Nothing here trusts a line: the reader already bounded its length (`LongLine`),
and nesting is checked (`core.jsondepth`) before `json.loads` may recurse, so a
pathological line fails alone, naming why, and never raises into the runner.
"""

from __future__ import annotations

import json

from podium.core.jsondepth import MAX_JSON_DEPTH, too_deep
from podium.store.files import LongLine

OPENAI_URLS = frozenset({"/v1/chat/completions", "/v1/embeddings", "/v1/completions"})
MAX_LINE_ERROR = 300  # characters of a parser's message kept in a line's error


def counts(raw: bytes | LongLine) -> bool:
    """Whether a line of the input is one of the job's lines (blank lines are skipped)."""
    return isinstance(raw, LongLine) or bool(raw.strip())


def line_object(raw: bytes | LongLine) -> tuple[dict[str, object] | None, str | None]:
    """The line as a JSON object, or why it is not one. Bounded: a line over the size
    limit was never read, and nesting is checked before `json.loads` may recurse."""
    if isinstance(raw, LongLine):
        return None, (
            f"larger than the limit of {raw.limit} bytes a line (a request body: "
            "PODIUM_MAX_BODY_BYTES)"
        )
    if too_deep(raw):
        return None, f"not JSON this server parses: it nests deeper than {MAX_JSON_DEPTH} levels"
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        return None, f"not JSON ({str(e)[:MAX_LINE_ERROR]})"
    if not isinstance(doc, dict):
        return None, f"a line must be a JSON object, not {type(doc).__name__}"
    return doc, None


def openai_request(doc: dict[str, object], url: str) -> tuple[str, str, bytes, str | None]:
    """(model, path, body, None) of an OpenAI batch line, or ("", "", b"", why)."""
    if doc.get("method", "POST") != "POST":
        return "", "", b"", "method must be POST"
    if doc.get("url") != url:
        return "", "", b"", f"url must be the batch's endpoint {url!r}, not {doc.get('url')!r}"
    body = doc.get("body")
    if not isinstance(body, dict):
        return "", "", b"", "body must be a JSON object"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "", "", b"", "body.model must name an endpoint"
    return model, url, json.dumps(body).encode(), None
