"""The request records' writer: a daemon thread that moves records from the gateway's
`RecordBuffer` into the store (`store.requests`), and prunes them.

Batching: the thread looks at the buffer every `POLL_S`; it writes as soon as
`write_batch` records wait, and at least every `flush_s` whatever is there, one
transaction per batch of at most `write_batch` (multi-row INSERT statements of the rows as
the gateway built them: `RequestRepo.insert_rows`). Full batches go back to back while the
buffer holds a batch's worth.

Failures: a write that fails for a transient reason (`Retryable`: the database is locked
or busy; `Unavailable`: it cannot be reached) keeps its batch and is retried with
exponential backoff (`BACKOFF_S` doubling to `BACKOFF_MAX_S`). Meanwhile the writer drains
nothing more: it never holds more than one batch, the buffer keeps filling, and past its
capacity the gateway's offers are dropped and counted (`RecordBuffer.dropped`) — memory
stays bounded. Any other error is a bug or a record the database refuses (a number too
large, say): the batch is written again record by record, and the ones that still fail
are dropped, counted (`lost`) and logged.

Retention: every `prune_every_s` (and once at start) records older than
`records_max_age_s` and the oldest beyond `records_max_rows` are deleted, `PRUNE_BATCH`
rows per transaction, so the SQLite write lock is never held long.

`stop()` (the gateway stopped first, so nothing is offered any more) flushes what is
buffered within `stop_timeout_s`, then joins; records it could not write are counted lost.

Prometheus (`collect`): `podium_request_records_written_total`,
`podium_request_records_dropped_total{reason="buffer_full"|"write_failed"}`,
`podium_request_records_buffered`, `podium_request_records_write_errors_total`,
`podium_request_records_pruned_total`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from podium.core.clock import Clock, SystemClock
from podium.core.errors import Retryable, Unavailable
from podium.core.request_record import RecordBuffer, Row
from podium.core.settings import ObservabilitySettings
from podium.store.db import Database
from podium.store.requests import PRUNE_BATCH

log = logging.getLogger("podium.records")

POLL_S = 0.05  # how often the thread looks at the buffer
BACKOFF_S = 0.1  # first wait after a failed write; doubles per consecutive failure
BACKOFF_MAX_S = 5.0
STOP_TIMEOUT_S = 10.0  # `stop()` writes what is left for at most this long


class RecordWriter(Collector):
    """Drains `buffer` into `db` on a daemon thread (`start`/`stop`); a Prometheus
    collector of its counts. `run_once` is one turn of the thread's loop (for tests)."""

    def __init__(
        self,
        db: Database,
        buffer: RecordBuffer,
        settings: ObservabilitySettings,
        clock: Clock | None = None,
        *,
        backoff_s: float = BACKOFF_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self._db = db
        self._buffer = buffer
        self._settings = settings
        self._clock = clock or SystemClock()
        self._backoff_first = backoff_s
        self._backoff_max = backoff_max_s
        self._stop_timeout = stop_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[Row] = []  # the batch being written (at most one)
        self._backoff = backoff_s
        self._retry_at = 0.0  # monotonic: no write before then (after a failure)
        now = self._clock.monotonic()
        self._next_flush = now + settings.flush_s
        self._next_prune = now  # once at start: the server may have been down a while
        self.written = 0  # records inserted
        self.write_errors = 0  # failed writes (each retry of a batch counts)
        self.prune_errors = 0
        self.pruned = 0  # records deleted by retention

    # ------------------------------------------------------------------ lifecycle

    @property
    def lost(self) -> int:
        """Records it took but could not write (counted on the buffer, for `/live`)."""
        return self._buffer.lost

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="podium-records", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is buffered (for at most `stop_timeout_s`), then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._stop_timeout + 5.0)
            self._thread = None
        else:
            self._final_flush()

    @property
    def buffered(self) -> int:
        """Records not written yet: in the buffer and in the batch being written."""
        return len(self._buffer) + len(self._pending)

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # never let the thread die: records would pile up unseen
                log.exception("request records: the writer's turn failed")
            self._stop.wait(POLL_S)
        self._final_flush()

    def run_once(self) -> None:
        """Write if a batch waits or a flush is due (full batches back to back), and prune
        if it is time."""
        batch = self._settings.write_batch
        now = self._clock.monotonic()
        if now >= self._retry_at and (
            self._pending or len(self._buffer) >= batch or now >= self._next_flush
        ):
            self._next_flush = now + self._settings.flush_s
            while self._write_batch() and len(self._buffer) >= batch:
                if self._stop.is_set():
                    break
        if now >= self._next_prune:
            self._next_prune = now + self._settings.prune_every_s
            self.prune()

    def _write_batch(self) -> bool:
        """Write the pending batch, or the next one from the buffer; False if it failed
        for a transient reason (kept for a retry after the backoff)."""
        if not self._pending:
            self._pending = self._buffer.drain(self._settings.write_batch)
            if not self._pending:
                return True
        try:
            with self._db.unit_of_work() as uow:
                uow.requests.insert_rows(self._pending)
        except (Retryable, Unavailable) as e:
            self.write_errors += 1
            self._retry_at = self._clock.monotonic() + self._backoff
            log.warning(
                "request records: %d not written yet (%s); retrying in %.1fs",
                len(self._pending),
                e,
                self._backoff,
            )
            self._backoff = min(self._backoff * 2, self._backoff_max)
            return False
        except Exception:
            self.write_errors += 1
            log.exception("request records: a batch of %d failed", len(self._pending))
            self._write_each(self._pending)
        else:
            self.written += len(self._pending)
        self._pending = []
        self._backoff = self._backoff_first
        return True

    def _write_each(self, records: list[Row]) -> None:
        """Write records one by one (after a batch failed for a reason that is no
        transient one): those that fail again are dropped, counted and logged (the first
        with its error, then how many)."""
        failed: list[str] = []
        for record in records:
            try:
                with self._db.unit_of_work() as uow:
                    uow.requests.insert_rows([record])
            except Exception as e:
                if not failed:  # a row's first value is its request id (`COLUMNS`)
                    log.error("request records: record %s dropped: %s", record[0], e)
                failed.append(record[0])
            else:
                self.written += 1
        self._buffer.lost += len(failed)
        if len(failed) > 1:
            log.error("request records: %d of a batch of %d dropped", len(failed), len(records))

    def _final_flush(self) -> None:
        """Write everything left; past `stop_timeout_s` (real time, whatever the clock:
        shutdown must end) the rest is counted lost."""
        deadline = time.monotonic() + self._stop_timeout
        while self.buffered:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                left = self.buffered
                self._buffer.lost += left
                log.error("request records: %d not written at shutdown", left)
                self._pending = []
                self._buffer.drain(left)
                return
            if not self._write_batch():
                time.sleep(min(self._backoff, left_s))

    # ------------------------------------------------------------------ retention

    def prune(self) -> int:
        """Delete records past their age or beyond the row limit, a bounded batch per
        transaction; returns how many. A failure is logged and left for the next turn."""
        settings = self._settings
        now = self._clock.now().timestamp()
        total = 0
        try:
            while True:
                with self._db.unit_of_work() as uow:
                    deleted = uow.requests.prune(
                        now, settings.records_max_age_s, settings.records_max_rows
                    )
                total += deleted
                self.pruned += deleted
                if deleted < PRUNE_BATCH or self._stop.is_set():
                    break
                self._stop.wait(0.01)  # let other writers take the lock in between
        except (Retryable, Unavailable) as e:
            self.prune_errors += 1
            log.warning("request records: pruning stopped (%s); next turn retries", e)
        if total:
            log.info("request records: pruned %d", total)
        return total

    # ------------------------------------------------------------------ Prometheus

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        written = CounterMetricFamily(
            "podium_request_records_written", "Request records written to the store."
        )
        written.add_metric([], self.written)
        dropped = CounterMetricFamily(
            "podium_request_records_dropped",
            "Request records lost: the buffer was full (buffer_full), or the store refused "
            "them (write_failed).",
            labels=["reason"],
        )
        dropped.add_metric(["buffer_full"], self._buffer.dropped)
        dropped.add_metric(["write_failed"], self._buffer.lost)
        buffered = GaugeMetricFamily(
            "podium_request_records_buffered", "Request records waiting for the writer."
        )
        buffered.add_metric([], self.buffered)
        errors = CounterMetricFamily(
            "podium_request_records_write_errors",
            "Failed writes of request records (each retry counts).",
        )
        errors.add_metric([], self.write_errors)
        pruned = CounterMetricFamily(
            "podium_request_records_pruned", "Request records deleted by retention."
        )
        pruned.add_metric([], self.pruned)
        return [written, dropped, buffered, errors, pruned]
