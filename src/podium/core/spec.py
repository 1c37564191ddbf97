"""What users write: the endpoint spec and model references (pydantic, no I/O).

The same models validate JSON at the REST API and YAML at `podium deploy -f`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from podium.core.access import DEFAULT_PROJECT, Visibility
from podium.core.access_spec import ModelSourceSpec as ModelSourceSpec
from podium.core.access_spec import RateLimitSpec as RateLimitSpec
from podium.core.bounds import AtMost, is_stored
from podium.core.container_spec import CONTAINER_FRAMEWORK
from podium.core.container_spec import ContainerSpec as ContainerSpec
from podium.core.env_spec import Env as Env
from podium.core.env_spec import EnvVar as EnvVar
from podium.core.errors import Invalid
from podium.core.ids import NAME_RE, NAME_RULE, PROJECT_RULE, Name, ProjectName
from podium.core.observability_spec import CaptureSpec as CaptureSpec
from podium.core.observability_spec import ObservabilitySpec as ObservabilitySpec
from podium.core.probe_spec import EXTERNAL_FRAMEWORKS, check_probe, liveness_default
from podium.core.probe_spec import ProbeKind as ProbeKind
from podium.core.probe_spec import ProbeSpec as ProbeSpec
from podium.core.resources_spec import ResourcesSpec as ResourcesSpec
from podium.core.scaling_spec import ScalingRule as ScalingRule
from podium.core.scaling_spec import ScalingSpec as ScalingSpec
from podium.core.task_spec import TaskSpec as TaskSpec

# ---------------------------------------------------------------- model references

_REPO_REF = re.compile(r"^(?P<name>[a-z][a-z0-9-]{2,47})(?::(?P<version>[1-9][0-9]*))?$")
# What the store and the controller hold for a model of a project other than `default`:
# its key (`core.access.endpoint_key`), `team.iris:3`. A user's spec never names one: a
# model reference resolves within the endpoint's project.
_KEYED_REF = re.compile(
    r"^(?P<name>[a-z][a-z0-9-]{2,14}\.[a-z][a-z0-9-]{2,47})(?::(?P<version>[1-9][0-9]*))?$"
)
MAX_VERSION = 2**31 - 1  # model versions are numbered 1, 2, …; the store holds 32-bit ints
_HF_REF = re.compile(
    r"^hf://(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?)"
    r"(?:@(?P<revision>[A-Za-z0-9._/-]+))?$"
)
# `s3://BUCKET[/PREFIX][@DIGEST]`: S3's bucket name rules (3-63 of a-z 0-9 . -, a letter or
# digit at both ends; no "..", no IP address, no reserved prefix or suffix, checked in
# `_s3_ref`); a prefix of path segments without "." or ".." (the keys under it become
# files of a folder); a pin, the 64 hex digits of the listing digest (`artifacts.s3`).
_S3_REF = re.compile(
    r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
    r"(?:/(?P<prefix>[A-Za-z0-9._~+=,:!-]+(?:/[A-Za-z0-9._~+=,:!-]+)*)?/?)?"
    r"(?:@(?P<digest>[0-9a-f]{64}))?$"
)
_IP_ADDRESS = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
MAX_S3_PREFIX_CHARS = 512


@dataclass(frozen=True, slots=True)
class RepoRef:
    """`iris` (latest version) or `iris:2`."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class HfRef:
    """`hf://ORG/NAME[@REVISION]`."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"hf://{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


@dataclass(frozen=True, slots=True)
class S3Ref:
    """`s3://BUCKET[/PREFIX][@DIGEST]`: every object under `PREFIX/` of `BUCKET` on the S3
    store the operator configured; `digest` pins the listing (`artifacts.s3`)."""

    bucket: str
    prefix: str = ""  # no leading or trailing "/"; "" is the whole bucket
    digest: str | None = None

    @property
    def location(self) -> str:
        """`s3://bucket/prefix`, without the pin."""
        return f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def __str__(self) -> str:
        return self.location + (f"@{self.digest}" if self.digest else "")


ModelRef = RepoRef | HfRef | S3Ref
MAX_REF_CHARS = 512


def model_version(model_ref: str) -> str | None:
    """The version a resolved model reference names, as protocols report it: `iris:3` → "3",
    `hf://org/name@v1.2` → "v1.2" (no revision: "main", what the Hub serves); None when
    the reference names no version or is not one."""
    try:
        ref = parse_model_ref(model_ref)
    except Invalid:
        return None
    if isinstance(ref, RepoRef):
        return None if ref.version is None else str(ref.version)
    if isinstance(ref, S3Ref):
        return None if ref.digest is None else ref.digest[:12]
    return ref.revision or "main"


def parse_model_ref(value: str, field: str = "model") -> ModelRef:
    if len(value) > MAX_REF_CHARS:
        raise Invalid(f"a model reference has at most {MAX_REF_CHARS} characters", field=field)
    if m := (_REPO_REF.match(value) or _KEYED_REF.match(value)):
        v = m.group("version")
        if v and (len(v) > 10 or int(v) > MAX_VERSION):
            raise Invalid(f"version {v} is too large: versions go up to {MAX_VERSION}", field=field)
        return RepoRef(m.group("name"), int(v) if v else None)
    if m := _HF_REF.match(value):
        return HfRef(m.group("repo"), m.group("revision"))
    if value.startswith("s3://"):
        return _s3_ref(value, field)
    raise Invalid(
        f"{value!r} is not a model reference: use NAME, NAME:VERSION, "
        "hf://ORG/NAME[@REVISION] or s3://BUCKET/PREFIX",
        field=field,
    )


def _s3_ref(value: str, field: str) -> S3Ref:
    """`s3://…` checked against S3's bucket name rules and for a prefix that stays a
    folder: each rule broken is said, naming `field`."""
    m = _S3_REF.match(value)
    if m is None:
        raise Invalid(
            f"{value!r} is not an S3 reference: use s3://BUCKET/PREFIX, a bucket of 3-63 "
            "lowercase letters, digits, dots and hyphens, a prefix of path segments "
            "(letters, digits and ._~+=,:!-), optionally @ and a 64-hex-digit digest",
            field=field,
        )
    bucket, prefix = m.group("bucket"), m.group("prefix") or ""
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        raise Invalid(f"S3 bucket {bucket!r}: no two dots or a dot next to a hyphen", field=field)
    if _IP_ADDRESS.match(bucket):
        raise Invalid(f"S3 bucket {bucket!r} must not look like an IP address", field=field)
    if bucket.startswith(("xn--", "sthree-")) or bucket.endswith(("-s3alias", "--ol-s3")):
        raise Invalid(f"S3 bucket {bucket!r} uses a prefix or suffix S3 reserves", field=field)
    if any(part in (".", "..") for part in prefix.split("/")):
        raise Invalid(f"S3 prefix {prefix!r} must not hold . or .. segments", field=field)
    if len(prefix) > MAX_S3_PREFIX_CHARS:
        raise Invalid(f"an S3 prefix has at most {MAX_S3_PREFIX_CHARS} characters", field=field)
    return S3Ref(bucket, prefix, m.group("digest"))


# ---------------------------------------------------------------- spec blocks


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Bounds on every free-form field: a spec is stored in every revision and sent in every
# list response, so one huge spec must not cost the server (413/422 naming the field).
MAX_SPEC_BYTES = 64 * 1024  # the whole spec, as JSON
MAX_LABELS = 64
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
MAX_ENGINE_ARGS = 64

_Short = Annotated[str, AtMost(64)]
_Path = Annotated[str, AtMost(256), Field(pattern=r"^/[A-Za-z0-9._~/%-]*$")]
_LabelKey = Annotated[str, AtMost(63)]
_LabelValue = Annotated[str, AtMost(256)]
_EnvKey = Annotated[str, AtMost(256)]
_Arg = Annotated[str, AtMost(MAX_ARG_CHARS)]


def _bounded_str(value: object, info: ValidationInfo) -> object:
    if isinstance(value, str) and len(value) > MAX_ARG_CHARS and not is_stored(info):
        raise ValueError(f"at most {MAX_ARG_CHARS} characters allowed, not {len(value)}")
    return value


_EngineValue = Annotated[str | int | float | bool, AfterValidator(_bounded_str)]
Labels = Annotated[dict[_LabelKey, _LabelValue], AtMost(MAX_LABELS)]
SecretRefs = Annotated[dict[_EnvKey, Annotated[str, AtMost(48)]], AtMost(256)]
EngineArgs = Annotated[dict[_Short, _EngineValue], AtMost(MAX_ENGINE_ARGS)]
# ECMA-262 has no named groups: (?P<x>…) becomes (?:…)
_REF_PATTERN = re.sub(
    r"\(\?P<\w+>", "(?:", f"{_REPO_REF.pattern}|{_HF_REF.pattern}|{_S3_REF.pattern}"
)
ModelRefField = Annotated[  # the pattern is documented (for clients and fuzzers), checked above
    str,
    AtMost(MAX_REF_CHARS),
    Field(json_schema_extra={"pattern": _REF_PATTERN}),
]


class InstanceType(_Strict):
    name: str
    cpus: float = Field(gt=0)
    memory_mb: int = Field(gt=0)
    gpus: int = Field(0, ge=0)
    price_per_hour: float = Field(0.0, ge=0)


class BatchingSpec(_Strict):
    """Dynamic batching in the replica: concurrent requests grouped into one runtime call."""

    max_batch_size: int = Field(8, ge=1, le=4096)
    max_wait_ms: float = Field(5.0, ge=0, le=10_000, description="wait for more requests")


class CommandSpec(_Strict):
    """Bring your own server (framework `command`): Podium runs it as the replica process.

    `{port}` and `{model_path}` in `command`/`args` are replaced; the process also gets
    `PORT` and `PODIUM_MODEL_PATH` in its environment.
    """

    command: Annotated[str, AtMost(MAX_ARG_CHARS)] = Field(
        min_length=1, description="program to run, e.g. python or /usr/bin/x"
    )
    args: Annotated[list[_Arg], AtMost(MAX_ARGS)] = Field(default_factory=list)
    port: int | None = Field(
        None, ge=1, le=65535, description="fixed port; default: Podium picks a free one"
    )
    health_route: _Path = "/health"


DEFAULT_INSTANCE_TYPE = "cpu-small"


def check_size_fields(instance_type: str, resources: ResourcesSpec | None) -> None:
    """`resources` replaces the instance type: naming another one as well is an error."""
    if resources is not None and instance_type != DEFAULT_INSTANCE_TYPE:
        raise ValueError(
            f"give `instance_type` ({instance_type}) or `resources`, not both: "
            "resources set the replica's size themselves"
        )


def derive_name(model: str, suffix: str) -> str:
    """An endpoint name made from a model reference, as the hosted products make one when
    the user gives none: `hf://google/gemma-1.1-2b-it` + `x7k` → `gemma-1-1-2b-it-x7k`.

    The result is valid under the name rule whatever the reference (`suffix`: 3 to 8
    lowercase letters or digits, random in the API so that two creates do not collide)."""
    ref = parse_model_ref(model)
    if isinstance(ref, HfRef):
        base = ref.repo_id.rsplit("/", 1)[-1]
    elif isinstance(ref, S3Ref):
        base = (ref.prefix or ref.bucket).rsplit("/", 1)[-1]
    else:
        base = ref.name.split(".")[-1]
    base = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    if not base or not base[0].isalpha():
        base = f"ep-{base}".rstrip("-")
    base = base[: 48 - len(suffix) - 1].rstrip("-")
    return f"{base}-{suffix}"


# Fields whose change needs new replica processes: a new revision and a rolling update.
REVISION_FIELDS: frozenset[str] = frozenset(
    {
        "model_source",
        "env_from_secrets",
        "model",
        "framework",
        "task",
        "instance_type",
        "env",
        "trust_pickle",
        "max_concurrency",
        "max_queue",
        "batching",
        "command",
        "container",
        "engine_args",
        "resources",
    }
)

_FRAMEWORK = r"^[a-z][a-z0-9_.-]{1,31}$"
_PRESET_NAMES = EXTERNAL_FRAMEWORKS - {"command"}  # the server presets (vllm, tgi, …)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _SpecFields(_Strict):
    """Fields shared by the create and update schemas (all validated the same way)."""

    @field_validator("model", check_fields=False)
    @classmethod
    def _model_ref(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not is_stored(info):  # stored: checked when it was written
            try:
                parse_model_ref(v)
            except Invalid as e:
                raise ValueError(e.message) from None
            if _KEYED_REF.match(v):
                raise ValueError(
                    f"{v!r} names a project: a model reference resolves within the "
                    "endpoint's project (write NAME or NAME:VERSION)"
                )
        return v

    @field_validator("env", "labels", check_fields=False)
    @classmethod
    def _keys(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for k in v or {}:
            if not _ENV_KEY.match(k) and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$", k):
                raise ValueError(f"{k!r} is not a valid key")
        return v

    @field_validator("env_from_secrets", check_fields=False)
    @classmethod
    def _secret_refs(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for var, secret in (v or {}).items():
            if not _ENV_KEY.match(var):
                raise ValueError(f"{var!r} is not a valid environment variable name")
            if not NAME_RE.match(secret):
                raise ValueError(f"{secret!r} is not a valid secret name: use {NAME_RULE}")
        return v


class EndpointCreate(_SpecFields):
    """What a user writes to create an endpoint: an `EndpointSpec` whose `framework` may be
    left out (the API then takes the one the model version records)."""

    name: Name | None = Field(
        None, description=f"unique in its project; {NAME_RULE}; default: made from the model"
    )
    project: ProjectName = Field(DEFAULT_PROJECT, description=f"its project; {PROJECT_RULE}")
    model: ModelRefField = Field(
        description="NAME, NAME:VERSION, hf://ORG/NAME[@REVISION] or s3://BUCKET/PREFIX"
    )
    framework: str | None = Field(
        None,
        pattern=_FRAMEWORK,
        description="runtime: sklearn, python, …; default: the model version's framework",
    )
    task: str | None = Field(None, max_length=64)
    instance_type: _Short = DEFAULT_INSTANCE_TYPE
    resources: ResourcesSpec | None = Field(
        None, description="cpus, memory, gpus, gpu_type: instead of a named instance type"
    )
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    max_concurrency: int = Field(8, ge=1, le=4096, description="in-flight requests per replica")
    max_queue: int = Field(64, ge=0, le=100_000, description="waiting requests per replica")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="gateway timeout per request")
    env: Env = Field(default_factory=dict)
    env_from_secrets: SecretRefs = Field(
        default_factory=dict, description="ENV_VAR: secret name (the project's secrets)"
    )
    model_source: ModelSourceSpec | None = None
    visibility: Visibility = Field(
        Visibility.PROTECTED, description="protected: invoking needs a token; public: not"
    )
    rate_limit: RateLimitSpec | None = Field(None, description="for all callers together")
    observability: ObservabilitySpec | None = Field(None, description="payload capture")
    tasks: TaskSpec = Field(
        default_factory=TaskSpec, description="async tasks: attempts, lease, TTL"
    )
    labels: Labels = Field(default_factory=dict)
    readiness: ProbeSpec = Field(default_factory=ProbeSpec)
    liveness: ProbeSpec = Field(default_factory=liveness_default)
    trust_pickle: bool = Field(False, description="allow .pkl/.joblib models (runs their code)")
    batching: BatchingSpec | None = None
    command: CommandSpec | None = Field(
        None, validate_default=True, description="framework `command` only"
    )
    engine_args: EngineArgs = Field(
        default_factory=dict, description="options for framework presets (vllm, tgi, …)"
    )
    container: ContainerSpec | None = Field(
        None,
        validate_default=True,
        description="framework `container` (an OCI image), or a preset run from its image",
    )

    @field_validator("tasks")
    @classmethod
    def _lease(cls, v: TaskSpec, info: ValidationInfo) -> TaskSpec:
        """A task's lease outlasts its time limit (`core.task_spec`)."""
        timeout_s = info.data.get("timeout_s")
        if timeout_s is not None and (why := v.lease_error(timeout_s)) is not None:
            raise ValueError(why)
        return v

    @field_validator("resources")
    @classmethod
    def _one_size(cls, v: ResourcesSpec | None, info: ValidationInfo) -> ResourcesSpec | None:
        """A field validator (not the model's), so that the 422 names `resources`."""
        instance_type = info.data.get("instance_type")
        if instance_type is not None and not is_stored(info):
            check_size_fields(instance_type, v)
        return v

    @field_validator("readiness", "liveness")
    @classmethod
    def _probe_fits(cls, v: ProbeSpec, info: ValidationInfo) -> ProbeSpec:
        """Exec probes only for external frameworks, liveness passing once (422s naming
        `readiness.kind`, `liveness.success_threshold`; `probe_spec.check_probe`)."""
        if not is_stored(info):
            liveness = info.field_name == "liveness"
            check_probe(v, liveness=liveness, framework=info.data.get("framework"))
        return v

    @field_validator("command")
    @classmethod
    def _command_block(cls, v: CommandSpec | None, info: ValidationInfo) -> CommandSpec | None:
        framework = info.data.get("framework")
        if framework == "command" and v is None:
            raise ValueError("framework `command` needs a `command` block (command, args, …)")
        if framework is None and v is not None and "framework" not in info.data:
            return v  # the framework itself is invalid: that error is reported
        if framework is None and v is not None:
            raise ValueError("a `command` block needs `framework: command`")
        if framework != "command" and v is not None:
            raise ValueError("a `command` block applies only to framework `command`")
        return v

    @field_validator("container")
    @classmethod
    def _container_block(
        cls, v: ContainerSpec | None, info: ValidationInfo
    ) -> ContainerSpec | None:
        """`framework: container` needs a block with an `image`; a server preset may have
        one (its own image by default); any other framework none."""
        if "framework" not in info.data:
            return v  # the framework itself is invalid: that error is reported
        framework = info.data.get("framework")
        if framework == CONTAINER_FRAMEWORK:
            if v is None or v.image is None:
                raise ValueError("framework `container` needs a `container` block with an `image`")
            return v
        if v is None:
            return v
        if framework is None:
            raise ValueError("a `container` block needs `framework: container` (or a preset)")
        if framework not in _PRESET_NAMES:
            raise ValueError(
                "a `container` block applies only to framework `container` and server presets"
            )
        return v

    @model_validator(mode="after")
    def _size(self, info: ValidationInfo) -> Self:
        if is_stored(info):
            return self
        size = len(self.model_dump_json())
        if size > MAX_SPEC_BYTES:
            raise ValueError(
                f"the spec is {size} bytes as JSON; the limit is {MAX_SPEC_BYTES} "
                "(env and labels are the usual culprits)"
            )
        return self

    def secret_refs(self) -> dict[str, str]:
        """{spec field: secret name} of every secret of the project the spec names, e.g.
        `{"env_from_secrets.HF_TOKEN": "hf", "model_source.token_secret": "hf"}`: what the
        API checks exists and the controller decrypts, each error naming the field."""
        out = {f"env_from_secrets.{var}": name for var, name in self.env_from_secrets.items()}
        if self.model_source is not None:
            out.update(self.model_source.secret_refs())
        if self.container is not None and self.container.registry_secret is not None:
            out["container.registry_secret"] = self.container.registry_secret
        return out

    def with_framework(self, framework: str) -> EndpointSpec:
        """The full spec, with `framework` where this one has none."""
        return EndpointSpec.model_validate(
            {**self.model_dump(exclude_unset=True), "framework": self.framework or framework}
        )


class EndpointSpec(EndpointCreate):
    """A user's description of an endpoint. Unknown fields are refused."""

    name: Name = Field(description=f"unique in its project; {NAME_RULE}")
    framework: str = Field(pattern=_FRAMEWORK, description="runtime: sklearn, python, …")

    def revision_view(self) -> dict[str, Any]:
        """The part of the spec that a revision freezes."""
        return self.model_dump(include=set(REVISION_FIELDS))


class EndpointUpdate(_SpecFields):
    """A partial change; absent fields keep their value."""

    model: ModelRefField | None = None
    framework: str | None = Field(None, pattern=_FRAMEWORK)
    task: _Short | None = None
    instance_type: _Short | None = None
    resources: ResourcesSpec | None = None
    scaling: ScalingSpec | None = None
    max_concurrency: int | None = Field(None, ge=1, le=4096)
    max_queue: int | None = Field(None, ge=0, le=100_000)
    timeout_s: float | None = Field(None, gt=0, le=3600)
    env: Env | None = None
    env_from_secrets: SecretRefs | None = None
    model_source: ModelSourceSpec | None = None
    visibility: Visibility | None = None
    rate_limit: RateLimitSpec | None = None
    observability: ObservabilitySpec | None = None
    tasks: TaskSpec | None = None
    labels: Labels | None = None
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    trust_pickle: bool | None = None
    batching: BatchingSpec | None = None
    command: CommandSpec | None = None
    engine_args: EngineArgs | None = None
    container: ContainerSpec | None = None

    def apply(self, spec: EndpointSpec) -> EndpointSpec:
        """`spec` with this change. The replica's size is one choice: an update that gives
        `resources` alone drops the old instance type, one that gives `instance_type` alone
        drops the old `resources`."""
        changes = self.model_dump(exclude_unset=True)
        if changes.get("resources") is not None and "instance_type" not in changes:
            changes["instance_type"] = DEFAULT_INSTANCE_TYPE
        if "instance_type" in changes and "resources" not in changes:
            changes["resources"] = None
        return EndpointSpec.model_validate({**spec.model_dump(), **changes})


class ScaleRequest(_Strict):
    min_replicas: int = Field(ge=0, le=64)
    max_replicas: int = Field(ge=1, le=64)

    @field_validator("max_replicas")
    @classmethod
    def _bounds(cls, high: int, info: ValidationInfo) -> int:
        """Checked on `max_replicas`, so the error names that field (a model-level check
        would name only `body`); the message is the one deploy and update give."""
        low = info.data.get("min_replicas")
        if low is not None:
            ScalingSpec.check_bounds(low, high)
        return high
