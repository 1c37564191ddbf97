"""A bound on how deeply a JSON body nests, checked before anything recursive reads it.

`json.loads` (and the runtimes after it: numpy, tokenizers, user code) recurse once per
level; a body of a few kilobytes nested 100,000 deep raises RecursionError, a 500. Every
place that parses a user's JSON calls `check_depth(body)` first: an `Invalid` naming the
limit (a 400 on the data plane). The check runs in C-speed regex passes: strings are
removed, then innermost `[]`/`{}` pairs, one level per pass, at most `max_depth` passes.
"""

from __future__ import annotations

import re

from podium.core.errors import Invalid

MAX_JSON_DEPTH = 64

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]++")
_PAIR = re.compile(rb"\[\]|\{\}")


def too_deep(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True if `body` nests arrays/objects deeper than `max_depth` (or, past that many
    brackets, they do not match: refusing it costs nothing, parsing it might recurse)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # the fast path: not even that many brackets
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets, removed = _PAIR.subn(b"", brackets)
        if not removed:
            break
    return bool(brackets)


def check_depth(
    body: bytes | str, field: str | None = "body", max_depth: int = MAX_JSON_DEPTH
) -> None:
    """Invalid if `body` nests deeper than `max_depth` (see `too_deep`)."""
    if too_deep(body, max_depth):
        raise Invalid(
            f"the JSON body nests deeper than {max_depth} levels (or its brackets do not match)",
            field=field,
        )
