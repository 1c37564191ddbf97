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
  PODIUM_LOG_RETENTION           replica log files kept per endpoint (older are deleted)  20
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from podium.core.errors import Invalid
from podium.core.spec import InstanceType

DEFAULT_INSTANCE_TYPES: tuple[InstanceType, ...] = (
    InstanceType(name="cpu-small", cpus=1, memory_mb=2048, price_per_hour=0.05),
    InstanceType(name="cpu-medium", cpus=2, memory_mb=4096, price_per_hour=0.10),
    InstanceType(name="cpu-large", cpus=4, memory_mb=8192, price_per_hour=0.20),
    InstanceType(name="gpu-small", cpus=4, memory_mb=16384, gpus=1, price_per_hour=0.60),
)


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
    """Bounds of model downloads (hf://): see `artifacts/download.py`."""

    stall_s: float = 60.0  # no new bytes in the cache for this long: the download fails
    connect_timeout_s: float = 10.0  # of every request to the Hub
    read_timeout_s: float = 30.0  # of every request to the Hub (between two reads)


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
    log_retention: int = 20  # replica log files kept per endpoint; older ones are deleted
    limits: ApiLimits = field(default_factory=ApiLimits)

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
    def run_dir(self) -> Path:
        return self.home / "run"

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

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("PODIUM_HOME", ".podium")).expanduser().resolve()
        kwargs: dict[str, object] = {"home": home}
        if "PODIUM_HOST" in env:
            kwargs["host"] = env["PODIUM_HOST"]
        if "PODIUM_PORT" in env:
            kwargs["port"] = _int(env["PODIUM_PORT"], "PODIUM_PORT")
        if env.get("PODIUM_DATABASE_URL"):
            kwargs["database_url"] = env["PODIUM_DATABASE_URL"]
        if env.get("PODIUM_INSTANCE_TYPES"):
            try:
                items = json.loads(env["PODIUM_INSTANCE_TYPES"])
                types = [InstanceType.model_validate(i) for i in items]
            except (ValueError, TypeError) as e:
                raise Invalid(f"invalid instance types: {e}", field="PODIUM_INSTANCE_TYPES") from e
            kwargs["instance_types"] = {t.name: t for t in types}
        if "PODIUM_MAX_BODY_BYTES" in env:
            kwargs["gateway"] = GatewaySettings(
                max_body_bytes=_int(env["PODIUM_MAX_BODY_BYTES"], "PODIUM_MAX_BODY_BYTES")
            )
        if limits := _limits(env):
            kwargs["limits"] = limits
        control: dict[str, float | int] = {}
        for var, name, parse in _CONTROL_ENV:
            if var in env:
                control[name] = parse(env[var], var)
        if control:
            kwargs["control"] = ControlSettings(**control)  # type: ignore[arg-type]
        download = {
            name: _positive(_float(env[var], var), var) for var, name in _DOWNLOAD_ENV if var in env
        }
        if download:
            kwargs["download"] = DownloadSettings(**download)
        if "PODIUM_LOG_RETENTION" in env:
            kwargs["log_retention"] = max(
                1, _int(env["PODIUM_LOG_RETENTION"], "PODIUM_LOG_RETENTION")
            )
        return cls(**kwargs)  # type: ignore[arg-type]


def _limits(env: Mapping[str, str]) -> ApiLimits | None:
    api: dict[str, object] = {}
    archive: dict[str, float | int] = {}
    for var, name, parse in _API_ENV:
        if var in env:
            api[name] = _positive(parse(env[var], var), var)
    for var, name, parse in _ARCHIVE_ENV:
        if var in env:
            archive[name] = _positive(parse(env[var], var), var)
    if not api and not archive:
        return None
    return ApiLimits(**api, archive=ArchiveLimits(**archive))  # type: ignore[arg-type]


def _positive(value: float, name: str) -> float:
    if value <= 0:
        raise Invalid(f"{name} must be positive, not {value}", field=name)
    return value


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


# (environment variable, DownloadSettings field)
_DOWNLOAD_ENV: tuple[tuple[str, str], ...] = (
    ("PODIUM_DOWNLOAD_STALL_S", "stall_s"),
    ("PODIUM_HUB_CONNECT_TIMEOUT_S", "connect_timeout_s"),
    ("PODIUM_HUB_READ_TIMEOUT_S", "read_timeout_s"),
)

# (environment variable, ControlSettings field, parser)
_CONTROL_ENV: tuple[tuple[str, str, Callable[[str, str], float]], ...] = (
    ("PODIUM_TICK_S", "tick_s", _float),
    ("PODIUM_RESTART_BACKOFF_S", "restart_backoff_s", _float),
    ("PODIUM_CRASH_LOOP_THRESHOLD", "crash_loop_threshold", _int),
    ("PODIUM_STOP_TIMEOUT_S", "stop_timeout_s", _float),
    ("PODIUM_HUNG_GRACE_S", "hung_grace_s", _float),
)

_API_ENV: tuple[tuple[str, str, Callable[[str, str], float]], ...] = (
    ("PODIUM_API_MAX_JSON_BYTES", "max_json_bytes", _int),
    ("PODIUM_MAX_UPLOAD_BYTES", "max_upload_bytes", _int),
)
_ARCHIVE_ENV: tuple[tuple[str, str, Callable[[str, str], float]], ...] = (
    ("PODIUM_ARCHIVE_MAX_BYTES", "max_bytes", _int),
    ("PODIUM_ARCHIVE_MAX_FILES", "max_entries", _int),
    ("PODIUM_ARCHIVE_MAX_RATIO", "max_ratio", _float),
)
