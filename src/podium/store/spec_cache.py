"""Parsed endpoint specs, kept between units of work of one `Database`.

Listing the endpoints is the control plane's hottest read: the controller lists every
endpoint on every pass (once a second) and the dashboard's list asks for all of them. With
1,000 endpoints, decoding each row's spec JSON and validating it into an `EndpointSpec`
was most of that cost (bench/scale.py), though a spec only changes when the endpoint's
`generation` moves on. So `EndpointRepo.list` reads the rows without their spec and takes
the parsed spec from here, keyed by what identifies one stored spec:

    (key, created_at, generation)

`generation` is bumped by every write of the spec (`EndpointRepo.update_spec`), and
`created_at` tells a re-created endpoint of the same name (whose generation starts at 1
again) from the old one. A key also moves on when only the desired count is written
(that bumps the generation too): the spec is then read and parsed once more, never
stale. The repository also forgets an endpoint's entry when it deletes or updates it, so
a re-creation within one clock tick (a fake clock in tests) is never mistaken for the old
endpoint in this process.

Only read-only units of work add to the cache (the controller's pass and the API's
reads are): a writing one may read its own uncommitted spec, and after a rollback another
server could commit a different spec under that same generation.

The list of the API also takes each spec's JSON from here (`json`: most of the 1.7 MB
that GET /endpoints answers at 1,000 endpoints; dumping it again on every call was a fifth
of the call): it is dumped once and kept with the parsed spec it was dumped from, and
only handed out for that very object, so it can be no staler than the parsed spec is.

One entry per endpoint (the newest identity seen), so the cache holds at most one spec per
endpoint of the store; entries of endpoints deleted by another server are dropped when the
cache passes `MAX_SPECS` (it starts over: one parse per endpoint on the next list). Specs
are treated as immutable everywhere (nothing assigns to a spec's fields), so one parsed
object is shared by every reader.
"""

from __future__ import annotations

import threading
from datetime import datetime

from podium.core.spec import EndpointSpec

MAX_SPECS = 100_000  # endpoints; far above what one server holds

SpecKey = tuple[str, datetime, int]  # (endpoint key, created_at, generation)


class _Entry:
    """One stored spec: its identity, the parsed spec and (once asked for) its JSON."""

    __slots__ = ("json", "key", "spec")

    def __init__(self, key: SpecKey, spec: EndpointSpec) -> None:
        self.key = key
        self.spec = spec
        self.json: bytes | None = None


class SpecCache:
    """A bounded, thread-safe map of endpoint key → (stored spec identity, parsed
    `EndpointSpec`, its JSON): the API's threads and the controller's thread share one
    `Database`."""

    def __init__(self, limit: int = MAX_SPECS) -> None:
        self._limit = limit
        self._specs: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: SpecKey) -> EndpointSpec | None:
        """The spec parsed for exactly this identity, else None."""
        entry = self._specs.get(key[0])
        return entry.spec if entry is not None and entry.key == key else None

    def put(self, key: SpecKey, spec: EndpointSpec) -> None:
        with self._lock:
            if len(self._specs) >= self._limit and key[0] not in self._specs:
                self._specs.clear()
            self._specs[key[0]] = _Entry(key, spec)

    def json(self, key: SpecKey, spec: EndpointSpec) -> bytes:
        """`spec` as JSON, as pydantic dumps it inside a model (`model_dump_json`): kept
        with the entry when `spec` is the very object cached under `key`, so it is dumped
        once per stored spec; any other spec (one read by a writing unit of work, one
        newer than the cache) is dumped afresh."""
        entry = self._specs.get(key[0])
        if entry is None or entry.key != key or entry.spec is not spec:
            return dump_json(spec)
        doc = entry.json
        if doc is None:  # two threads may both dump it: the same bytes either way
            doc = entry.json = dump_json(spec)
        return doc

    def forget(self, name: str) -> None:
        """Drop the endpoint's entry (it is being deleted or its spec rewritten)."""
        with self._lock:
            self._specs.pop(name, None)

    def __len__(self) -> int:
        return len(self._specs)


def dump_json(spec: EndpointSpec) -> bytes:
    """The spec's JSON, byte for byte what it is inside a model that holds it."""
    return spec.__pydantic_serializer__.to_json(spec)
