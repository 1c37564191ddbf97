"""The schema: one declarative class per table.

These classes never leave the store: repositories turn rows into `records` before returning.
`migrations/versions/` must create exactly this schema (a unit test compares the two).

Enums are stored as their string values (no native database enums, so adding a status
needs no migration). Every datetime column is `UTCDateTime`: stored in UTC and returned
timezone-aware on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LEN = 64  # endpoint and model keys: `project.name` (core.ids: 15 + 1 + 48)
PROJECT_LEN = 16  # core.ids allows 15


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored in UTC and always returned timezone-aware (UTC).

    Naive datetimes are refused on the way in: a naive value is ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware one (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":  # SQLite keeps text: store naive UTC, re-attach on read
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


metadata = Base.metadata


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)  # the model's key
    project: Mapped[str] = mapped_column(String(PROJECT_LEN), server_default="default")
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    framework: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class EndpointRow(Base):
    __tablename__ = "endpoints"

    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)  # the endpoint's key
    project: Mapped[str] = mapped_column(String(PROJECT_LEN), server_default="default")
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    model_ref: Mapped[str] = mapped_column(Text)
    desired_replicas: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RevisionRow(Base):
    __tablename__ = "revisions"

    endpoint: Mapped[str] = mapped_column(
        String(NAME_LEN), ForeignKey("endpoints.name", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_ref: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class ReplicaRow(Base):
    __tablename__ = "replicas"

    replica_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    restarts: Mapped[int] = mapped_column(Integer)
    log_path: Mapped[str] = mapped_column(Text)


class EndpointMemoryRow(Base):
    """What the controller remembers about an endpoint across its own restarts (one row per
    endpoint, deleted with it): see `records.EndpointMemoryRecord`."""

    __tablename__ = "endpoint_memory"

    endpoint: Mapped[str] = mapped_column(
        String(NAME_LEN), ForeignKey("endpoints.name", ondelete="CASCADE"), primary_key=True
    )
    crash_streak: Mapped[int] = mapped_column(Integer)
    crashed_at: Mapped[datetime | None]
    backoff_until: Mapped[datetime | None]
    serving_crashes: Mapped[int] = mapped_column(Integer)
    serving_revision: Mapped[int | None] = mapped_column(Integer)
    restarts: Mapped[int] = mapped_column(Integer)
    failure: Mapped[str | None] = mapped_column(Text)
    failure_generation: Mapped[int | None] = mapped_column(Integer)
    scale_desired: Mapped[int | None] = mapped_column(Integer)
    scale_reason: Mapped[str | None] = mapped_column(Text)
    scaled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_endpoint_id", "endpoint", "id"),
        {"sqlite_autoincrement": True},  # never reuse an id: followers page with `after_id`
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    endpoint: Mapped[str] = mapped_column(String(NAME_LEN))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]


class ProjectRow(Base):
    """A project: endpoints, models, secrets and tokens belong to one. Quotas are None when
    unlimited. `default` is made by the migration and cannot be deleted."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(PROJECT_LEN), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    max_endpoints: Mapped[int | None] = mapped_column(Integer)
    max_replicas: Mapped[int | None] = mapped_column(Integer)
    max_cpus: Mapped[float | None] = mapped_column(Float)
    max_gpus: Mapped[int | None] = mapped_column(Integer)
    max_memory_mb: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class TokenRow(Base):
    """An API token. The secret is never stored: `secret_hash` is its SHA-256
    (`core.access`). A revoked token keeps its row (for the audit log), `revoked_at` set."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    projects: Mapped[list[str] | None] = mapped_column(JSON)  # None: every project
    creator: Mapped[str] = mapped_column(String(NAME_LEN))  # a token id, or "podium up"
    rate_rps: Mapped[float | None] = mapped_column(Float)
    rate_burst: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class SecretRow(Base):
    """A named secret of a project, encrypted at rest (`ciphertext`: a Fernet token made
    with the key under PODIUM_HOME); the API never returns it."""

    __tablename__ = "secrets"

    project: Mapped[str] = mapped_column(String(PROJECT_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(NAME_LEN))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditRow(Base):
    """One control action: who (token id and name), what (`action`, e.g. endpoint.create),
    which object, its state before and after, from which address, and the HTTP status."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_project_id", "project", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(16))
    actor_name: Mapped[str] = mapped_column(String(NAME_LEN))
    action: Mapped[str] = mapped_column(String(64))
    object_kind: Mapped[str] = mapped_column(String(32))
    object_name: Mapped[str | None] = mapped_column(String(128))
    project: Mapped[str | None] = mapped_column(String(PROJECT_LEN))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    address: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class ReplicaUsageRow(Base):
    """How long one replica ran, for usage and cost: written when it starts, `ended_at`
    set when it is stopped or exits (None while it runs)."""

    __tablename__ = "replica_usage"
    __table_args__ = (
        Index("ix_replica_usage_project_started_at", "project", "started_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    replica_id: Mapped[str] = mapped_column(String(128), unique=True)
    endpoint: Mapped[str] = mapped_column(String(NAME_LEN))  # the endpoint's key
    project: Mapped[str] = mapped_column(String(PROJECT_LEN))
    instance_type: Mapped[str] = mapped_column(String(64))
    # A `custom` replica's size (`resources`), priced per unit by the report; None for a
    # named type, which the report prices by name.
    cpus: Mapped[float | None] = mapped_column(Float)
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    gpus: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class RequestRecordRow(Base):
    """One invocation of an endpoint (`core.request_record.RequestRecord`, same fields).

    Times are floats (unix seconds, durations in milliseconds): the writer inserts thousands
    of rows a second, and plain numbers need no conversion on the way in."""

    __tablename__ = "request_records"
    __table_args__ = (
        Index("ix_request_records_endpoint_id", "endpoint", "id"),
        Index("ix_request_records_received_at", "received_at"),
        Index("ix_request_records_request_id", "request_id"),
        {"sqlite_autoincrement": True},  # never reuse an id: pages follow `id`
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(NAME_LEN))
    project: Mapped[str] = mapped_column(String(PROJECT_LEN))
    protocol: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(256))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    queue_ms: Mapped[float] = mapped_column(Float)
    revision: Mapped[int | None] = mapped_column(Integer)
    replica_id: Mapped[str | None] = mapped_column(String(128))
    upstream_ms: Mapped[float | None] = mapped_column(Float)
    ttfb_ms: Mapped[float | None] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    streamed: Mapped[bool] = mapped_column(Boolean)
    bytes_in: Mapped[int] = mapped_column(BigInteger)
    bytes_out: Mapped[int] = mapped_column(BigInteger)
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    token_id: Mapped[str | None] = mapped_column(String(16))
    request_body: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(32))  # the async task it ran (issue 13)


class MetricPointRow(Base):
    """One point of the metrics history: an endpoint (`replica` "") or one of its replicas,
    over [`ts`, `ts` + `resolution`) seconds. Counts are of that interval; gauges
    (in flight, held, replicas, CPU, memory, GPU) are their last or mean value in it.
    `latency_buckets` (counts per `core.metric_names.LATENCY_BUCKETS` bucket, +Inf last)
    lets a rollup recompute exact-to-the-bucket percentiles."""

    __tablename__ = "metric_points"
    # Rollups and pruning select one resolution's points by time, across every series.
    __table_args__ = (Index("ix_metric_points_resolution_ts", "resolution", "ts"),)

    endpoint: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    replica: Mapped[str] = mapped_column(String(128), primary_key=True)
    resolution: Mapped[int] = mapped_column(Integer, primary_key=True)  # 10, 60 or 3600 s
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix s, a multiple of it
    requests: Mapped[int] = mapped_column(Integer)
    ok: Mapped[int] = mapped_column(Integer)  # 2xx and 3xx
    errors_4xx: Mapped[int] = mapped_column(Integer)
    errors_5xx: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[int] = mapped_column(Integer)  # the client left before an answer
    latency_sum_ms: Mapped[float] = mapped_column(Float)
    latency_buckets: Mapped[list[int]] = mapped_column(JSON)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p95_ms: Mapped[float | None] = mapped_column(Float)
    p99_ms: Mapped[float | None] = mapped_column(Float)
    in_flight: Mapped[float] = mapped_column(Float)
    held: Mapped[float] = mapped_column(Float)
    ready: Mapped[int | None] = mapped_column(Integer)  # endpoint points only
    desired: Mapped[int | None] = mapped_column(Integer)
    cpu_percent: Mapped[float | None] = mapped_column(Float)  # 100 = one core busy
    rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    bytes_in: Mapped[int] = mapped_column(BigInteger)  # through the gateway
    bytes_out: Mapped[int] = mapped_column(BigInteger)
    gpu_util_percent: Mapped[float | None] = mapped_column(Float)  # None: no GPU (no NVML)
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger)


class TaskRow(Base):
    """One async task (`core.tasks`): the call to make, its state, lease and result.

    `seq` orders the queue (first in, first out within a priority); `id` is the public id.
    The running attempt is `attempts` and holds the lease (`lease_owner`, `lease_until`):
    a dispatcher records an outcome only while it still holds it (fencing by attempt), so
    a result is recorded once even when a task ran twice. Times are unix seconds."""

    __tablename__ = "tasks"
    __table_args__ = (
        # The claim: pending tasks of an endpoint, highest priority first, then oldest.
        Index("ix_tasks_status_endpoint_priority_seq", "status", "endpoint", "priority", "seq"),
        Index("ix_tasks_status_lease_until", "status", "lease_until"),
        Index("ix_tasks_expires_at", "expires_at"),
        Index("ix_tasks_callback_next_at", "callback_next_at"),
        Index("ix_tasks_job_id_line", "job_id", "line"),
        Index("uq_tasks_endpoint_idempotency_key", "endpoint", "idempotency_key", unique=True),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    endpoint: Mapped[str] = mapped_column(String(NAME_LEN))  # the endpoint's key
    project: Mapped[str] = mapped_column(String(PROJECT_LEN))
    job_id: Mapped[str | None] = mapped_column(String(32))
    line: Mapped[int | None] = mapped_column(Integer)  # its line in the job's input (0-based)
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)  # the replica path and query, as a call's
    headers: Mapped[list[list[str]]] = mapped_column(JSON)  # forwarded: content-type, accept…
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)  # begun so far; the running one is the last
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_s: Mapped[float] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)  # the first attempt's start
    finished_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)  # created_at + its TTL
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    token_id: Mapped[str | None] = mapped_column(String(16))  # who created it
    result_status: Mapped[int | None] = mapped_column(Integer)  # the replica's HTTP status
    result_type: Mapped[str | None] = mapped_column(String(128))  # its content type
    result: Mapped[bytes | None] = mapped_column(LargeBinary)  # inline (small JSON)
    result_file: Mapped[str | None] = mapped_column(String(32))  # else a file's id
    error: Mapped[str | None] = mapped_column(Text)  # why it failed, was cancelled, expired
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_state: Mapped[str | None] = mapped_column(String(16))  # pending|delivered|failed
    callback_attempts: Mapped[int] = mapped_column(Integer)
    callback_next_at: Mapped[float | None] = mapped_column(Float)
    callback_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)


class TaskAttemptRow(Base):
    """One attempt of a task: who ran it, when, and how it ended (`core.tasks.AttemptOutcome`)."""

    __tablename__ = "task_attempts"
    __table_args__ = (
        Index("ix_task_attempts_task_id_attempt", "task_id", "attempt"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)  # 1, 2, …
    owner: Mapped[str] = mapped_column(String(64))  # the dispatcher that ran it
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))  # None: still running
    status: Mapped[int | None] = mapped_column(Integer)  # the HTTP status it got
    reason: Mapped[str | None] = mapped_column(Text)
    replica_id: Mapped[str | None] = mapped_column(String(128))


class JobRow(Base):
    """One batch job (`core.tasks.JobStatus`): its lines are tasks with `job_id` set."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_created_at", "project", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project: Mapped[str] = mapped_column(String(PROJECT_LEN))
    endpoint: Mapped[str | None] = mapped_column(String(NAME_LEN))  # None: per line (OpenAI)
    kind: Mapped[str] = mapped_column(String(16))  # podium | openai
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)  # the replica path every line is sent to
    concurrency: Mapped[int] = mapped_column(Integer)  # lines running at once at most
    input_file: Mapped[str] = mapped_column(String(32))
    output_file: Mapped[str | None] = mapped_column(String(32))
    error_file: Mapped[str | None] = mapped_column(String(32))
    lines_total: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    token_id: Mapped[str | None] = mapped_column(String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)  # OpenAI's `metadata`
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class FileRow(Base):
    """A file in the file store (`store.files`): job inputs and outputs, large results. The
    bytes are on disk under `Settings.files_dir`, named by id."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_project_created_at", "project", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project: Mapped[str] = mapped_column(String(PROJECT_LEN))
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))  # core.tasks.FilePurpose
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(128))
    token_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)


class CallbackKeyRow(Base):
    """The key an endpoint's task callbacks are signed with (HMAC-SHA256), encrypted at rest
    with the server's secret key like a secret (`store.secret_box`)."""

    __tablename__ = "callback_keys"

    endpoint: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class ControllerLeaseRow(Base):
    """Who leads the controllers (issue 16): one row (`id` 1). `epoch` is the fencing
    number, raised by every controller that takes the lead; every write a controller makes
    checks it still holds the epoch it took (`podium.coordination.fencing`)."""

    __tablename__ = "controller_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(128))
    acquired_at: Mapped[datetime | None]


class RoutingStateRow(Base):
    """The routing table the leading controller last published, for gateways in other
    processes (`podium.coordination.routing_pg`): one row (`id` 1), the table as JSON."""

    __tablename__ = "routing_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int] = mapped_column(BigInteger)  # the publisher's fencing number
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime]


class GatewayReportRow(Base):
    """One gateway process's latest load report (in flight, held, cumulative counts per
    endpoint and replica), which the controller sums (`podium.coordination.loads`)."""

    __tablename__ = "gateway_reports"

    gateway_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reported_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
