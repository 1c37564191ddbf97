"""The container engine this node runs container replicas with: podman, or docker.

`find_engine(settings)` picks it once per server process (the start-up line names it):
`engine = "auto"` takes podman when it is on PATH, else docker when its daemon answers
(`docker info`: a docker client without a daemon is no engine), else none; "podman" or
"docker" (or a path to either) names one, which must answer. No engine is `LoadError`
naming `container` with the reason, so a deploy of a container endpoint fails at once
saying so, and nothing else is affected.

Every call into the engine goes through `ContainerEngine.call`: a bounded time
(`ContainerSettings.command_timeout_s`, or the caller's, e.g. a pull's), the server's
environment without its secrets (`replica_env.inherited_env`), output captured and
bounded, its stdin empty (never the server's terminal: podman would prompt there); a
timeout or a missing program is `Unavailable`. An image reaches the engine only as
`core.container_spec.qualified(image)`, never as a short name or a transport. Only `run`
gets the operator's flags (`ContainerSettings.runtime`, `run_args`): `run_flags`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from podium.backends.replica_env import inherited_env
from podium.core.container_spec import qualified
from podium.core.errors import LoadError, Unavailable
from podium.core.settings import ContainerSettings

ENGINES = ("podman", "docker")
MAX_OUTPUT_CHARS = 64 * 1024  # of one command's stdout or stderr kept
FIELD = "container"


@dataclass(frozen=True, slots=True)
class ContainerEngine:
    """One engine program (`name`: podman or docker) and the operator's settings."""

    name: str
    program: str  # absolute path
    version: str  # as the program reports it ("4.3.1")
    settings: ContainerSettings = field(default_factory=ContainerSettings)

    def describe(self) -> str:
        """For the start-up line and messages: "podman 4.3.1 (/usr/bin/podman)"."""
        return f"{self.name} {self.version} ({self.program})"

    def run_flags(self) -> list[str]:
        """The operator's flags for `run`: `--runtime X` and `run_args`."""
        flags = ["--runtime", self.settings.runtime] if self.settings.runtime else []
        return [*flags, *self.settings.run_args]

    def call(
        self,
        args: Sequence[str],
        *,
        timeout_s: float | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `program args…` and wait at most `timeout_s` (default: the settings'
        `command_timeout_s`); its exit code is the caller's to read. `env` is added to the
        inherited environment (e.g. a private `DOCKER_CONFIG`). `Unavailable` when it does
        not end in time or cannot be run."""
        limit = self.settings.command_timeout_s if timeout_s is None else timeout_s
        try:
            done = subprocess.run(
                [self.program, *args],
                input=input,
                stdin=subprocess.DEVNULL if input is None else None,
                capture_output=True,
                timeout=limit,
                env={**inherited_env(), **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Unavailable(
                f"{self.name} {args[0] if args else ''} did not answer within {limit:g}s",
                field=FIELD,
            ) from None
        except OSError as e:
            raise Unavailable(f"cannot run {self.program}: {e}", field=FIELD) from None
        return subprocess.CompletedProcess(
            done.args,
            done.returncode,
            _text(done.stdout),
            _text(done.stderr),
        )

    def image_present(self, image: str) -> bool:
        """Whether the node has `image` (`image inspect` of `qualified(image)` succeeds)."""
        found = self.call(["image", "inspect", "--format", "{{.Id}}", qualified(image)])
        return found.returncode == 0


def find_engine(settings: ContainerSettings, search_path: str | None = None) -> ContainerEngine:
    """The engine to use (module docstring); `LoadError` naming `container` when there is
    none, saying what was looked for. `search_path`: PATH to search (None: the process's)."""
    wanted = settings.engine.strip() or "auto"
    if wanted == "auto":
        reasons: list[str] = []
        for name in ENGINES:
            program = shutil.which(name, path=search_path)
            if program is None:
                reasons.append(f"{name} is not installed (not on PATH)")
                continue
            found = _probe(name, program, settings)
            if isinstance(found, ContainerEngine):
                return found
            reasons.append(found)
        raise LoadError(
            "no container engine on this node: "
            + "; ".join(r.rstrip(".?") for r in reasons)
            + ". Install podman "
            "(or run a docker daemon), or set PODIUM_CONTAINER_ENGINE",
            field=FIELD,
        )
    program = shutil.which(wanted, path=search_path)
    name = Path(wanted).name
    if name not in ENGINES:
        raise LoadError(
            f"PODIUM_CONTAINER_ENGINE must be auto, podman, docker or a path to one of them, "
            f"not {wanted!r}",
            field=FIELD,
        )
    if program is None:
        raise LoadError(f"container engine {wanted} is not installed (not found)", field=FIELD)
    found = _probe(name, program, settings)
    if isinstance(found, ContainerEngine):
        return found
    raise LoadError(f"container engine {wanted} does not work: {found}", field=FIELD)


def _probe(name: str, program: str, settings: ContainerSettings) -> ContainerEngine | str:
    """The engine when `program` answers (podman: its version; docker: its daemon too),
    else why not."""
    engine = ContainerEngine(name=name, program=program, version="", settings=settings)
    check = ["version", "--format", "{{.Client.Version}}"]
    if name == "docker":
        check = ["version", "--format", "{{.Server.Version}}"]  # asks the daemon
    try:
        done = engine.call(check, timeout_s=min(settings.command_timeout_s, 10.0))
    except Unavailable as e:
        return f"{name} ({program}): {e}"
    version = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    if done.returncode != 0 or not version:
        detail = (done.stderr.strip().splitlines() or ["no version"])[-1]
        return f"{name} ({program}) does not answer: {detail}"
    return ContainerEngine(name=name, program=program, version=version, settings=settings)


def _text(data: bytes | None) -> str:
    if not data:
        return ""
    return data[-MAX_OUTPUT_CHARS:].decode("utf-8", "replace")
