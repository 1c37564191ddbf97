"""The request records' way to the store, for `bench/gateway.py --records`: what ships.

`start_sink(buffer, url, report)` migrates a real store (`podium.store.db.Database`, SQLite
in the bench's temp folder) and starts the server's own writer on it
(`podium.server.recorder.RecordWriter`, with the default `ObservabilitySettings`), as the
server does, in the gateway's process. A small reporting thread writes the records offered,
dropped and written, and the writer thread's CPU per record, to `report` (JSON) every
`REPORT_S` while they change: uvicorn ends its process by re-raising SIGTERM, so nothing
runs after it stops serving.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from podium.core.request_record import RecordBuffer
from podium.core.settings import ObservabilitySettings
from podium.server.recorder import RecordWriter
from podium.store.db import Database

REPORT_S = 0.5


def thread_cpu_s(native_id: int | None) -> float:
    """CPU time (user + system) of one thread of this process (Linux /proc)."""
    if native_id is None:
        return 0.0
    try:
        text = Path(f"/proc/self/task/{native_id}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_sink(
    buffer: RecordBuffer,
    url: str,
    report: Path | None = None,
    settings: ObservabilitySettings | None = None,
) -> Callable[[], dict[str, float]]:
    """Start the server's writer on a migrated store at `url`; returns `stop()`, which
    writes what is buffered, stops the writer and returns the counts."""
    settings = settings or ObservabilitySettings()
    db = Database(url)
    db.migrate()
    writer = RecordWriter(db, buffer, settings)
    writer.start()
    thread = writer._thread  # the bench reads the writer thread's own CPU time
    native_id = thread.native_id if thread is not None else None
    done = threading.Event()

    def counts() -> dict[str, float]:
        written = writer.written
        return {
            "offered": buffer.offered,
            "dropped": buffer.dropped,
            "written": written,
            "lost": writer.lost,
            "writer_cpu_us_per_record": round(thread_cpu_s(native_id) / max(written, 1) * 1e6, 1),
        }

    def run() -> None:
        reported = -1
        while not done.wait(REPORT_S):
            if report is not None and writer.written != reported:
                reported = writer.written
                report.write_text(json.dumps(counts()), encoding="utf-8")

    reporter = threading.Thread(target=run, name="podium-records-report", daemon=True)
    reporter.start()

    def stop() -> dict[str, float]:
        writer.stop()
        done.set()
        reporter.join(5)
        final = counts()
        db.dispose()
        return final

    return stop
