"""Settings: built once by the entry point (`Settings.from_env()`) and passed in.

Environment variables (all optional):
  PODIUM_HOME            state folder (store, artifacts, logs, caches)   default ./.podium
  PODIUM_HOST/PORT       where `podium up` listens                       127.0.0.1:8000
  PODIUM_DATABASE_URL    SQLAlchemy URL                                  sqlite:///$PODIUM_HOME/podium.db
  PODIUM_INSTANCE_TYPES  JSON list of instance types replacing the built-in catalog
  PODIUM_MAX_BODY_BYTES  gateway request body limit                      33554432 (32 MiB)
  PODIUM_API_MAX_JSON_BYTES  control API body limit (all but uploads)    1048576 (1 MiB)
  PODIUM_MAX_UPLOAD_BYTES    model upload limit (streamed to disk)       21474836480 (20 GiB)
  PODIUM_ARCHIVE_MAX_BYTES   an archive's files, unpacked, in all        21474836480 (20 GiB)
  PODIUM_ARCHIVE_MAX_FILES   entries in one archive                      10000
  PODIUM_ARCHIVE_MAX_RATIO   unpacked bytes per archive byte             100
  PODIUM_TICK_S          seconds between controller passes (traffic wakes it sooner)   1.0
  PODIUM_RESTART_BACKOFF_S, PODIUM_CRASH_LOOP_THRESHOLD, PODIUM_STOP_TIMEOUT_S   controller
  PODIUM_HUNG_GRACE_S    a call running this long past the endpoint's timeout_s is hung   10
  PODIUM_DOWNLOAD_STALL_S        fail a model download with no new data for this long    60
  PODIUM_HUB_CONNECT_TIMEOUT_S   connect timeout of every request to the Hugging Face Hub 10
  PODIUM_HUB_READ_TIMEOUT_S      read timeout of every request to the Hugging Face Hub    30
                                 (both timeouts apply to S3 stores too)
  PODIUM_DOWNLOAD_MAX_BYTES      an s3:// model's objects, in all        21474836480 (20 GiB)
  PODIUM_DOWNLOAD_MAX_FILES      objects of one s3:// model              10000
  PODIUM_S3_ENDPOINT_URL, PODIUM_S3_REGION  the S3-compatible store s3:// models come from
                         (read by the download child, `artifacts/s3.py`)   AWS S3, us-east-1
  PODIUM_S3_SERVER_CREDENTIALS  1: an s3:// model whose spec names no keys is fetched with
                         the server's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (every
                         deployer can read what they can read); 0: such a spec is refused  0
  PODIUM_LOG_RETENTION           replica log files kept per endpoint (older are deleted)  20
  PODIUM_SERVER_NAMES    comma-separated host names the server answers to besides the
                         loopback names and PODIUM_HOST (the Host header check)
  PODIUM_TOKEN_REFRESH_S how often the token directory is reloaded from the store     0.5
  PODIUM_ROLES           what this server process runs: any of api,gateway,controller  all three
                         (`podium server --roles`; several processes need PostgreSQL)
  PODIUM_BACKEND         where replicas run: local (this machine) or ray (a Ray cluster) local
  PODIUM_RAY_ADDRESS     the Ray cluster to join (`ray://…` or `host:port`)      Ray's own default
  PODIUM_ROUTING_REFRESH_S  a gateway of several re-reads the whole routing table this often,
                         besides following its changes (LISTEN/NOTIFY)                  5
  PODIUM_PRICE_PER_CPU_HOUR, PODIUM_PRICE_PER_GIB_HOUR, PODIUM_PRICE_PER_GPU_HOUR
                         the hourly price of a `resources` (custom) replica, per unit:
                         cpus, memory in GiB, gpus; added up                        0 each

Every numeric one must be positive (PODIUM_PORT: 0-65535, 0 for any free port; a price:
0 or more); a bad value is `Invalid` naming the variable, never silently replaced.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from pathlib import Path
from typing import TypeVar

from podium.core.errors import Invalid
from podium.core.spec import EndpointCreate, InstanceType

# 1: an s3:// spec without keys uses the server's own (`DownloadSettings`, docs/s3.md).
S3_SERVER_CREDENTIALS_VAR = "PODIUM_S3_SERVER_CREDENTIALS"
CUSTOM = "custom"  # the instance type name of a replica sized by `resources`
DEFAULT_INSTANCE_TYPES: tuple[InstanceType, ...] = (
    InstanceType(name="cpu-small", cpus=1, memory_mb=2048, price_per_hour=0.05),
    InstanceType(name="cpu-medium", cpus=2, memory_mb=4096, price_per_hour=0.10),
    InstanceType(name="cpu-large", cpus=4, memory_mb=8192, price_per_hour=0.20),
    InstanceType(name="gpu-small", cpus=4, memory_mb=16384, gpus=1, price_per_hour=0.60),
)


_E = TypeVar("_E", bound=StrEnum)


class Role(StrEnum):
    """What one server process runs (`podium server --roles`); `podium up` runs all three."""

    API = "api"  # the control API, the dashboard and /metrics
    GATEWAY = "gateway"  # invocations: /endpoints/…, /v1/…, the async task dispatcher
    CONTROLLER = "controller"  # a controller candidate: one leads, the others stand by


ALL_ROLES = frozenset(Role)


class BackendKind(StrEnum):
    """Where replicas run."""

    LOCAL = "local"  # processes on this machine
    RAY = "ray"  # placed by Ray on a cluster's nodes


@dataclass(frozen=True, slots=True)
class SizePrices:
    """What a replica sized by `resources` (instance type `custom`) costs per hour: the sum
    of its CPUs, memory (GiB) and GPUs times these prices (the named types carry their own
    `price_per_hour`). All 0 by default: custom sizes are free until the operator prices them."""

    per_cpu_hour: float = 0.0
    per_gib_hour: float = 0.0
    per_gpu_hour: float = 0.0

    def per_hour(self, cpus: float, memory_mb: int, gpus: int) -> float:
        gib = memory_mb / 1024
        return cpus * self.per_cpu_hour + gib * self.per_gib_hour + gpus * self.per_gpu_hour


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    max_body_bytes: int = 32 * 1024 * 1024
    retry_body_bytes: int = 1024 * 1024  # bodies up to this size are buffered and retryable
    connect_timeout_s: float = 2.0
    eject_s: float = 2.0  # how long a replica whose connection failed is skipped


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What unpacking one archive may produce; counted while writing, not read from headers."""

    max_bytes: int = 20 * 2**30  # uncompressed bytes of all its files
    max_entries: int = 10_000  # files and folders
    max_ratio: float = 100.0  # uncompressed bytes per archive byte (beyond ratio_free_bytes)
    ratio_free_bytes: int = 16 * 2**20  # this much may always be unpacked, whatever the ratio


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_json_bytes: int = 2**20  # any control API body but a model upload
    max_upload_bytes: int = 20 * 2**30  # a model upload (streamed to disk, never in memory)
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


@dataclass(frozen=True, slots=True)
class ControlSettings:
    tick_s: float = 1.0
    restart_backoff_s: float = 1.0  # first restart delay; doubles per consecutive crash
    restart_backoff_max_s: float = 30.0
    crash_loop_threshold: int = 5  # consecutive crashes before the endpoint is failed
    ready_timeout_s: float = 300.0  # a replica not ready by then is replaced
    drain_timeout_s: float = 30.0
    stop_timeout_s: float = 10.0  # SIGTERM -> SIGKILL
    hung_grace_s: float = 10.0  # a call past the endpoint's timeout_s by this much: hung


@dataclass(frozen=True, slots=True)
class DownloadSettings:
    """Bounds of model downloads (hf://, s3://): see `artifacts/download.py`, `artifacts/s3.py`."""

    stall_s: float = 60.0  # no new bytes in the cache for this long: the download fails
    connect_timeout_s: float = 10.0  # of every request to the Hub or an S3 store
    read_timeout_s: float = 30.0  # of every request to the Hub or an S3 store (between reads)
    max_bytes: int = 20 * 1024**3  # an s3:// model's objects in all (as the archive limit)
    max_files: int = 10_000  # objects of one s3:// model
    # An s3:// model whose spec names no keys may use the server's own AWS environment keys
    # (PODIUM_S3_SERVER_CREDENTIALS=1). Off: any deployer could read whatever they can.
    s3_server_credentials: bool = False


class ContainerNetwork(StrEnum):
    """How a container replica's port is reached."""

    PUBLISHED = "published"  # its own network; its port published on 127.0.0.1 only
    # The host's network: the server listens on `PORT`, a free host port. Presets bind
    # 127.0.0.1 there; a custom image must too (0.0.0.0 would bypass the gateway).
    HOST = "host"


@dataclass(frozen=True, slots=True)
class ContainerSettings:
    """Container replicas (`framework: container`; `backends.container_engine`).

    `engine`: "auto" (podman, else docker when its daemon answers), "podman", "docker", or
    a path to either program. `runtime`: the OCI runtime flag (`--runtime runc`; None: the
    engine's default). `run_args`: further flags for every `run` (shell words, e.g.
    "--ulimit nofile=1024:1024"), the operator's escape hatch for a machine's quirks."""

    engine: str = "auto"
    runtime: str | None = None
    run_args: tuple[str, ...] = ()
    network: ContainerNetwork = ContainerNetwork.PUBLISHED
    pull_timeout_s: float = 600.0  # one `pull`; past it the start fails naming the image
    command_timeout_s: float = 30.0  # any other engine command (inspect, rm, kill, ps)


# The metrics history's sampling intervals: whole seconds dividing a minute.
METRICS_INTERVALS_S = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """Request records, the metrics history and logs (issue 12)."""

    records: bool = True  # one request record per invocation (PODIUM_REQUEST_RECORDS=0: none)
    buffer_records: int = 100_000  # records waiting for the writer; past it they are dropped
    write_batch: int = 5_000  # records written per transaction
    flush_s: float = 0.5  # the writer drains the buffer at least this often
    records_max_age_s: float = 7 * 86400.0  # older records are pruned
    records_max_rows: int = 1_000_000  # past this many, the oldest records are pruned
    prune_every_s: float = 60.0  # how often records and metric points are pruned
    metrics_interval_s: float = 10.0  # the metrics history's finest resolution
    metrics_10s_max_age_s: float = 86400.0  # points kept per resolution
    metrics_1m_max_age_s: float = 7 * 86400.0
    metrics_1h_max_age_s: float = 90 * 86400.0
    log_json: bool = False  # the server's log as JSON lines (PODIUM_LOG_FORMAT=json)

    def __post_init__(self) -> None:
        # The sampled points roll up into whole minutes: an interval that does not divide
        # 60 (7 s) would have points straddling two minutes.
        if self.metrics_interval_s not in METRICS_INTERVALS_S:
            name = "PODIUM_METRICS_INTERVAL_S"
            allowed = ", ".join(str(v) for v in METRICS_INTERVALS_S)
            raise Invalid(
                f"{name} must divide a minute in whole seconds ({allowed}), "
                f"not {self.metrics_interval_s:g}",
                field=name,
            )


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """Async tasks, batch jobs and their callbacks (issue 13; docs/tasks.md)."""

    # The share of an endpoint's replica slots (max_concurrency x ready replicas) tasks may
    # use at once; the rest stay free for synchronous callers (at least one task runs).
    slot_share: float = 0.5
    poll_s: float = 0.2  # a dispatcher with nothing to do looks for new tasks this often
    claim_batch: int = 64  # tasks one claim takes at most
    sweep_s: float = 5.0  # expired leases and TTLs are looked for this often
    inline_result_bytes: int = 65536  # a larger (or non-JSON) result is stored as a file
    # Hosts (names, IP addresses or CIDR blocks) callbacks may be sent to; empty: none
    # (PODIUM_CALLBACK_HOSTS=127.0.0.1,hooks.example.com). A URL naming any other host is
    # refused when the task is created, and checked again before each delivery.
    callback_hosts: tuple[str, ...] = ()
    callback_attempts: int = 6  # deliveries of one callback before it is given up
    callback_backoff_s: float = 1.0  # first retry delay; doubles per failed delivery
    callback_timeout_s: float = 10.0  # connect + answer, per delivery
    max_file_bytes: int = 512 * 2**20  # an uploaded job input (or OpenAI batch file)
    max_job_lines: int = 200_000  # lines of one job's input

    def __post_init__(self) -> None:
        if not 0 < self.slot_share <= 1:
            name = "PODIUM_TASK_SLOT_SHARE"
            raise Invalid(
                f"{name} must be above 0 and at most 1, not {self.slot_share:g}", field=name
            )


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = ""
    instance_types: Mapping[str, InstanceType] = field(
        default_factory=lambda: {t.name: t for t in DEFAULT_INSTANCE_TYPES}
    )
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    download: DownloadSettings = field(default_factory=DownloadSettings)
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    prices: SizePrices = field(default_factory=SizePrices)  # of `resources` (custom) sizes
    log_retention: int = 20  # replica log files kept per endpoint; older ones are deleted
    limits: ApiLimits = field(default_factory=ApiLimits)
    # Access control (docs/security.md): off only with `podium up --no-auth` (loopback only).
    auth: bool = True
    server_names: tuple[str, ...] = ()  # Host names answered besides loopback and `host`
    token_refresh_s: float = 0.5  # the token directory is reloaded from the store this often
    # Several server processes on PostgreSQL (issue 16): what this one runs, where replicas
    # run, and how often a gateway re-reads the whole routing table (a safety net under
    # LISTEN/NOTIFY).
    roles: frozenset[Role] = ALL_ROLES
    backend: BackendKind = BackendKind.LOCAL
    ray_address: str | None = None
    routing_refresh_s: float = 5.0
    containers: ContainerSettings = field(default_factory=ContainerSettings)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'podium.db'}")

    # Folders under home; created by whoever writes there, never at import time.
    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def files_dir(self) -> Path:
        """Job inputs and outputs, large task results (`store.files`)."""
        return self.home / "files"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def credentials_path(self) -> Path:
        """The admin token `podium up` creates, for the CLI and SDK on this machine (0600)."""
        return self.home / "credentials"

    @property
    def secret_key_path(self) -> Path:
        """The key that encrypts secrets at rest (0600)."""
        return self.home / "secret.key"

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def instance_type(self, name: str, field_name: str = "instance_type") -> InstanceType:
        try:
            return self.instance_types[name]
        except KeyError:
            known = ", ".join(sorted(self.instance_types))
            raise Invalid(
                f"unknown instance type {name!r}; known: {known}", field=field_name
            ) from None

    def replica_size(self, spec: EndpointCreate) -> InstanceType:
        """The size of one replica of `spec`: its `resources` (`custom_size`) or its named
        instance type."""
        r = spec.resources
        if r is None:
            return self.instance_type(spec.instance_type)
        return self.custom_size(r.cpus, r.memory, r.gpus)

    def custom_size(self, cpus: float, memory_mb: int, gpus: int) -> InstanceType:
        """A size given by `resources`: the instance type `custom`, priced per unit
        (`prices`)."""
        price = self.prices.per_hour(cpus, memory_mb, gpus)
        return InstanceType(
            name=CUSTOM, cpus=cpus, memory_mb=memory_mb, gpus=gpus, price_per_hour=price
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every numeric variable comes from one table (`_ENV`) under one rule: a value that
        is not a number of its kind, or not positive where a positive one is required (all
        but the port), is `Invalid` naming the variable."""
        env = os.environ if env is None else env
        home = Path(env.get("PODIUM_HOME", ".podium")).expanduser().resolve()
        kwargs: dict[str, object] = {"home": home}
        if "PODIUM_HOST" in env:
            kwargs["host"] = env["PODIUM_HOST"]
        if env.get("PODIUM_DATABASE_URL"):
            kwargs["database_url"] = env["PODIUM_DATABASE_URL"]
        if env.get("PODIUM_ROLES"):
            kwargs["roles"] = parse_roles(env["PODIUM_ROLES"], "PODIUM_ROLES")
        if env.get("PODIUM_BACKEND"):
            kwargs["backend"] = _choice(BackendKind, env["PODIUM_BACKEND"], "PODIUM_BACKEND")
        if env.get("PODIUM_RAY_ADDRESS"):
            kwargs["ray_address"] = env["PODIUM_RAY_ADDRESS"]
        if env.get("PODIUM_SERVER_NAMES"):
            names = (n.strip().lower() for n in env["PODIUM_SERVER_NAMES"].split(","))
            kwargs["server_names"] = tuple(n for n in names if n)
        observed: dict[str, object] = {}
        if "PODIUM_REQUEST_RECORDS" in env:
            observed["records"] = _flag(env["PODIUM_REQUEST_RECORDS"], "PODIUM_REQUEST_RECORDS")
        if "PODIUM_LOG_FORMAT" in env:
            observed["log_json"] = _log_format(env["PODIUM_LOG_FORMAT"])
        if env.get("PODIUM_CALLBACK_HOSTS"):
            hosts = (h.strip().lower() for h in env["PODIUM_CALLBACK_HOSTS"].split(","))
            sections_tasks: dict[str, object] = {"callback_hosts": tuple(h for h in hosts if h)}
        else:
            sections_tasks = {}
        if env.get("PODIUM_INSTANCE_TYPES"):
            try:
                items = json.loads(env["PODIUM_INSTANCE_TYPES"])
                types = [InstanceType.model_validate(i) for i in items]
            except (ValueError, TypeError) as e:
                raise Invalid(f"invalid instance types: {e}", field="PODIUM_INSTANCE_TYPES") from e
            kwargs["instance_types"] = {t.name: t for t in types}
        sections: dict[str, dict[str, object]] = {}
        for var in _ENV:
            if var.env in env:
                sections.setdefault(var.section, {})[var.name] = var.read(env[var.env])
        kwargs.update(sections.pop("", {}))
        if archive := sections.pop("archive", None):
            limits = sections.setdefault("limits", {})
            limits["archive"] = ArchiveLimits(**archive)  # type: ignore[arg-type]
        if observed:
            sections.setdefault("observability", {}).update(observed)
        if sections_tasks:
            sections.setdefault("tasks", {}).update(sections_tasks)
        if containers := _container_env(env):
            sections.setdefault("containers", {}).update(containers)
        if (name := S3_SERVER_CREDENTIALS_VAR) in env:
            sections.setdefault("download", {})["s3_server_credentials"] = _flag(env[name], name)
        for name, values in sections.items():
            kwargs[name] = _SECTIONS[name](**values)
        return cls(**kwargs)  # type: ignore[arg-type]


def _container_env(env: Mapping[str, str]) -> dict[str, object]:
    """PODIUM_CONTAINER_ENGINE, _RUNTIME, _RUN_ARGS (shell words), _NETWORK."""
    out: dict[str, object] = {}
    if engine := env.get("PODIUM_CONTAINER_ENGINE", "").strip():
        out["engine"] = engine
    if runtime := env.get("PODIUM_CONTAINER_RUNTIME", "").strip():
        out["runtime"] = runtime
    if args := env.get("PODIUM_CONTAINER_RUN_ARGS", "").strip():
        try:
            out["run_args"] = tuple(shlex.split(args))
        except ValueError as e:
            name = "PODIUM_CONTAINER_RUN_ARGS"
            raise Invalid(f"{name} is not shell words: {e}", field=name) from None
    if network := env.get("PODIUM_CONTAINER_NETWORK", "").strip():
        out["network"] = _choice(ContainerNetwork, network, "PODIUM_CONTAINER_NETWORK")
    return out


def parse_roles(value: str, name: str = "roles") -> frozenset[Role]:
    """ "api,gateway" → {API, GATEWAY}; an unknown or empty list is `Invalid` naming `name`."""
    parts = [p.strip().lower() for p in value.split(",") if p.strip()]
    if not parts:
        raise Invalid(f"{name} must name at least one of api, gateway, controller", field=name)
    return frozenset(_choice(Role, p, name) for p in parts)


def _choice(kind: type[_E], value: str, name: str) -> _E:
    try:
        return kind(value.strip().lower())
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise Invalid(f"{name} must be one of {known}, not {value!r}", field=name) from None


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise Invalid(f"{name} must be true or false, not {value!r}", field=name)


def _log_format(value: str) -> bool:
    """True for JSON lines, False for text."""
    lowered = value.strip().lower()
    if lowered not in ("text", "json"):
        name = "PODIUM_LOG_FORMAT"
        raise Invalid(f"{name} must be text or json, not {value!r}", field=name)
    return lowered == "json"


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise Invalid(f"{name} must be a number, not {value!r}", field=name) from None


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"{name} must be an integer, not {value!r}", field=name) from None


class _Bound(Enum):
    POSITIVE = "positive"
    PORT = "port"  # 0-65535
    PRICE = "price"  # 0 or more, finite


@dataclass(frozen=True, slots=True)
class _Var:
    """One numeric environment variable: the Settings field it sets and how it is read."""

    env: str
    section: (
        str  # "" for a field of Settings itself, else the group's field ("archive": limits.archive)
    )
    name: str
    parse: Callable[[str, str], float]
    bound: _Bound = _Bound.POSITIVE

    def read(self, raw: str) -> float:
        value = self.parse(raw, self.env)
        if self.bound is _Bound.POSITIVE and not value > 0:  # `not >`: NaN too
            raise Invalid(f"{self.env} must be positive, not {raw.strip()}", field=self.env)
        if self.bound is _Bound.PORT and not 0 <= value <= 65535:
            raise Invalid(f"{self.env} must be a port (0-65535), not {raw.strip()}", field=self.env)
        if self.bound is _Bound.PRICE and not 0 <= value < math.inf:  # NaN fails too
            raise Invalid(
                f"{self.env} must be a price (0 or more), not {raw.strip()}", field=self.env
            )
        return value


_SECTIONS: dict[str, Callable[..., object]] = {
    "gateway": GatewaySettings,
    "limits": ApiLimits,
    "control": ControlSettings,
    "download": DownloadSettings,
    "observability": ObservabilitySettings,
    "tasks": TaskSettings,
    "prices": SizePrices,
    "containers": ContainerSettings,
}

_ENV: tuple[_Var, ...] = (
    _Var("PODIUM_PORT", "", "port", _int, _Bound.PORT),  # 0: any free port
    _Var("PODIUM_LOG_RETENTION", "", "log_retention", _int),
    _Var("PODIUM_TOKEN_REFRESH_S", "", "token_refresh_s", _float),
    _Var("PODIUM_ROUTING_REFRESH_S", "", "routing_refresh_s", _float),
    _Var("PODIUM_MAX_BODY_BYTES", "gateway", "max_body_bytes", _int),
    _Var("PODIUM_API_MAX_JSON_BYTES", "limits", "max_json_bytes", _int),
    _Var("PODIUM_MAX_UPLOAD_BYTES", "limits", "max_upload_bytes", _int),
    _Var("PODIUM_ARCHIVE_MAX_BYTES", "archive", "max_bytes", _int),
    _Var("PODIUM_ARCHIVE_MAX_FILES", "archive", "max_entries", _int),
    _Var("PODIUM_ARCHIVE_MAX_RATIO", "archive", "max_ratio", _float),
    _Var("PODIUM_TICK_S", "control", "tick_s", _float),
    _Var("PODIUM_RESTART_BACKOFF_S", "control", "restart_backoff_s", _float),
    _Var("PODIUM_CRASH_LOOP_THRESHOLD", "control", "crash_loop_threshold", _int),
    _Var("PODIUM_STOP_TIMEOUT_S", "control", "stop_timeout_s", _float),
    _Var("PODIUM_HUNG_GRACE_S", "control", "hung_grace_s", _float),
    _Var("PODIUM_DOWNLOAD_STALL_S", "download", "stall_s", _float),
    _Var("PODIUM_HUB_CONNECT_TIMEOUT_S", "download", "connect_timeout_s", _float),
    _Var("PODIUM_HUB_READ_TIMEOUT_S", "download", "read_timeout_s", _float),
    _Var("PODIUM_DOWNLOAD_MAX_BYTES", "download", "max_bytes", _int),
    _Var("PODIUM_DOWNLOAD_MAX_FILES", "download", "max_files", _int),
    _Var("PODIUM_RECORDS_BUFFER", "observability", "buffer_records", _int),
    _Var("PODIUM_RECORDS_MAX_AGE_S", "observability", "records_max_age_s", _float),
    _Var("PODIUM_RECORDS_MAX_ROWS", "observability", "records_max_rows", _int),
    _Var("PODIUM_PRUNE_EVERY_S", "observability", "prune_every_s", _float),
    _Var("PODIUM_METRICS_INTERVAL_S", "observability", "metrics_interval_s", _float),
    _Var("PODIUM_TASK_SLOT_SHARE", "tasks", "slot_share", _float),
    _Var("PODIUM_TASK_POLL_S", "tasks", "poll_s", _float),
    _Var("PODIUM_TASK_SWEEP_S", "tasks", "sweep_s", _float),
    _Var("PODIUM_CALLBACK_ATTEMPTS", "tasks", "callback_attempts", _int),
    _Var("PODIUM_CALLBACK_BACKOFF_S", "tasks", "callback_backoff_s", _float),
    _Var("PODIUM_CALLBACK_TIMEOUT_S", "tasks", "callback_timeout_s", _float),
    _Var("PODIUM_MAX_FILE_BYTES", "tasks", "max_file_bytes", _int),
    _Var("PODIUM_MAX_JOB_LINES", "tasks", "max_job_lines", _int),
    _Var("PODIUM_CONTAINER_PULL_TIMEOUT_S", "containers", "pull_timeout_s", _float),
    _Var("PODIUM_CONTAINER_COMMAND_TIMEOUT_S", "containers", "command_timeout_s", _float),
    _Var("PODIUM_PRICE_PER_CPU_HOUR", "prices", "per_cpu_hour", _float, _Bound.PRICE),
    _Var("PODIUM_PRICE_PER_GIB_HOUR", "prices", "per_gib_hour", _float, _Bound.PRICE),
    _Var("PODIUM_PRICE_PER_GPU_HOUR", "prices", "per_gpu_hour", _float, _Bound.PRICE),
)
