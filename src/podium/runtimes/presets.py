"""External servers: framework `command` (bring your own server) and the presets.

These frameworks do not run in a `podium.replica` process: the backend starts a server
program as the replica process itself, and the controller probes that server's health
route. This module is pure (no I/O, no process starts): it says what to run; the backend
(`backends/external.py`) checks the program exists, picks ports and starts it.

Presets (`{port}`: the replica's port on 127.0.0.1, `{endpoint}`: the endpoint name,
`{model_path}`: the model folder; health route; whether it needs a GPU):

- `vllm`: `vllm serve {model_path} --host 127.0.0.1 --port {port}
  --served-model-name {endpoint}`; `/health`; GPU.
- `sglang`: `python -m sglang.launch_server --model-path {model_path} --host 127.0.0.1
  --port {port} --served-model-name {endpoint}`; `/health`; GPU.
- `tgi`: `text-generation-launcher --model-id {model_path} --hostname 127.0.0.1
  --port {port} --shard-uds-path <per-replica path> --master-port <free port>`;
  `/health`; GPU.
- `llama.cpp`: `llama-server -m <the .gguf in the folder> --host 127.0.0.1 --port {port}`;
  `/health`; no GPU needed.
- `triton`: `tritonserver --model-repository {model_path} --http-address 127.0.0.1
  --http-port {port} --allow-grpc=false --metrics-port <free port>`; `/v2/health/ready`.
- `torchserve`: `torchserve --start --foreground --model-store {model_path} --models all
  --ts-config <generated> --ncs`; `/ping`.

`engine_args` add flags after the base command: `{"max_model_len": 4096}` becomes
`--max-model-len 4096` (underscores become dashes), `true` a bare flag, `false` nothing; a
key that starts with `-` is used as written (`{"-ngl": 99}`). Flags a preset sets itself
(host, port, model) cannot be given. The generated TorchServe config binds the inference,
management and metrics APIs to 127.0.0.1 (the last two on free ports) and turns token
authorization off (the gateway does access control).

Framework `command`: the spec's `command` block runs as given, with `{port}` and
`{model_path}` replaced in `command` and `args`. Either way the process also gets `PORT`
and `PODIUM_MODEL_PATH` in its environment. Exiting with code 3 means "this model cannot
load": the endpoint fails at once instead of being restarted.

Official images: a preset endpoint with a `container` block runs the preset's image
(`Preset.image`, or the block's `image`) instead of a program installed on the host, with
`Preset.image_command` as its entrypoint and the base command as its arguments, the host
0.0.0.0 and the model at the block's `model_mount` (`backends/containers.py`): vllm
`docker.io/vllm/vllm-openai:latest`, sglang `docker.io/lmsysorg/sglang:latest`, tgi
`ghcr.io/huggingface/text-generation-inference:latest`, llama.cpp
`ghcr.io/ggml-org/llama.cpp:server`, triton `nvcr.io/nvidia/tritonserver:24.12-py3`,
torchserve `docker.io/pytorch/torchserve:latest`.

Probes: a replica of these frameworks is probed on its health route instead of the
replica defaults (`/health/ready`, `/health/live`); a readiness or liveness path the user
changed from those defaults is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from podium.core.container_spec import CONTAINER_FRAMEWORK
from podium.core.errors import LoadError
from podium.core.probe_spec import ProbeKind
from podium.core.spec import CommandSpec, ContainerSpec, EndpointSpec, ProbeSpec

COMMAND = "command"
CONTAINER = CONTAINER_FRAMEWORK  # an OCI image (`core.container_spec`)
HOST = "127.0.0.1"
DEFAULT_READINESS = "/health/ready"
DEFAULT_LIVENESS = "/health/live"

EngineArgs = Mapping[str, str | int | float | bool]


@dataclass(frozen=True, slots=True)
class Preset:
    """A well-known inference server Podium knows how to start."""

    name: str
    program: str  # looked up on PATH; for `module` presets, the interpreter runs the module
    base: str  # arguments after the program, split on spaces before `{names}` are replaced
    health_route: str
    needs_gpu: bool
    reserved: frozenset[str]  # flags the base command sets; engine_args may not repeat them
    module: str | None = None  # `python -m MODULE` presets: this package must be importable
    extra_ports: int = 0  # further free ports the base command needs ({port1}, {port2})
    model_suffix: str | None = None  # the base command names one file of this kind
    config: str | None = None  # a config file the backend writes first ({config_file})
    env: tuple[tuple[str, str], ...] = ()  # environment defaults ({names} replaced)
    openai: bool = False  # the server answers OpenAI's /v1/chat/completions, /v1/embeddings…
    # The project's official image: run (with the spec's `container` block) when the program
    # is not installed on the host; its entrypoint is the program, so `base` is its args.
    image: str | None = None
    # The entrypoint Podium gives that image (the program as the image names it; a module
    # preset's interpreter): images differ in their own entrypoints, so it is set explicitly.
    image_command: tuple[str, ...] = ()

    @property
    def package(self) -> str | None:
        """The top-level package a module preset needs (None: a program on PATH)."""
        return self.module.partition(".")[0] if self.module else None


@dataclass(frozen=True, slots=True)
class Placeholders:
    """The values `{name}`s in a base command, config or `command` block stand for."""

    model_path: str
    port: int
    endpoint: str = ""
    host: str = HOST
    model_file: str = ""  # the one file of `Preset.model_suffix` in the model folder
    config_file: str = ""  # where the backend writes `Preset.config`
    scratch: str = ""  # a per-replica path prefix for sockets and logs
    extra_ports: tuple[int, ...] = ()

    def values(self) -> dict[str, str]:
        out = {
            "model_path": self.model_path,
            "port": str(self.port),
            "endpoint": self.endpoint,
            "host": self.host,
            "model_file": self.model_file,
            "config_file": self.config_file,
            "scratch": self.scratch,
        }
        out.update({f"port{i}": str(p) for i, p in enumerate(self.extra_ports, start=1)})
        return out


def _reserved(*flags: str) -> frozenset[str]:
    return frozenset(flags)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="vllm",
            image="docker.io/vllm/vllm-openai:latest",
            image_command=("vllm",),
            openai=True,
            program="vllm",
            base="serve {model_path} --host {host} --port {port} --served-model-name {endpoint}",
            health_route="/health",
            needs_gpu=True,
            reserved=_reserved("--host", "--port", "--served-model-name", "--model"),
        ),
        Preset(
            name="sglang",
            image="docker.io/lmsysorg/sglang:latest",
            image_command=("python3",),
            openai=True,
            program="python",
            module="sglang.launch_server",
            base="--model-path {model_path} --host {host} --port {port} "
            "--served-model-name {endpoint}",
            health_route="/health",
            needs_gpu=True,
            reserved=_reserved("--model-path", "--host", "--port", "--served-model-name"),
        ),
        Preset(
            name="tgi",
            image="ghcr.io/huggingface/text-generation-inference:latest",
            image_command=("text-generation-launcher",),
            openai=True,
            program="text-generation-launcher",
            base="--model-id {model_path} --hostname {host} --port {port} "
            "--shard-uds-path {scratch}tgi-server --master-port {port1}",
            health_route="/health",
            needs_gpu=True,
            reserved=_reserved(
                "--model-id", "--hostname", "--port", "--shard-uds-path", "--master-port"
            ),
            extra_ports=1,
        ),
        Preset(
            name="llama.cpp",
            image="ghcr.io/ggml-org/llama.cpp:server",
            image_command=("/app/llama-server",),
            openai=True,
            program="llama-server",
            base="-m {model_file} --host {host} --port {port}",
            health_route="/health",
            needs_gpu=False,
            reserved=_reserved("-m", "--model", "--host", "--port"),
            model_suffix=".gguf",
        ),
        Preset(
            name="triton",
            image="nvcr.io/nvidia/tritonserver:24.12-py3",
            image_command=("tritonserver",),
            program="tritonserver",
            base="--model-repository {model_path} --http-address {host} --http-port {port} "
            "--allow-grpc=false --metrics-port {port1}",
            health_route="/v2/health/ready",
            needs_gpu=False,
            reserved=_reserved(
                "--model-repository", "--http-address", "--http-port", "--metrics-port"
            ),
            extra_ports=1,
        ),
        Preset(
            name="torchserve",
            image="docker.io/pytorch/torchserve:latest",
            image_command=("torchserve",),
            program="torchserve",
            base="--start --foreground --model-store {model_path} --models all "
            "--ts-config {config_file} --ncs",
            health_route="/ping",
            needs_gpu=False,
            reserved=_reserved("--model-store", "--ts-config", "--start", "--foreground"),
            extra_ports=2,
            config=(
                "inference_address=http://{host}:{port}\n"
                "management_address=http://{host}:{port1}\n"
                "metrics_address=http://{host}:{port2}\n"
                "disable_token_authorization=true\n"
            ),
            env=(
                ("LOG_LOCATION", "{scratch}torchserve-logs"),
                ("METRICS_LOCATION", "{scratch}torchserve-logs"),
            ),
        ),
    )
}

EXTERNAL_FRAMEWORKS: frozenset[str] = frozenset({COMMAND, CONTAINER, *PRESETS})


def is_external(framework: str) -> bool:
    """True for frameworks served by an external server (`command`, `container` and the
    presets)."""
    return framework in EXTERNAL_FRAMEWORKS


def get_preset(framework: str) -> Preset | None:
    return PRESETS.get(framework)


# ---------------------------------------------------------------------- commands


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` for each known name; other braces (JSON, shell) stay as written."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def command_args(spec: CommandSpec, place: Placeholders) -> list[str]:
    """The `command` block as argv, with `{port}` and `{model_path}` replaced."""
    values = {"port": str(place.port), "model_path": place.model_path}
    return [substitute(spec.command, values), *(substitute(a, values) for a in spec.args)]


def preset_args(preset: Preset, place: Placeholders, engine_args: EngineArgs) -> list[str]:
    """The arguments after the preset's program: its base command, then `engine_args`."""
    values = place.values()
    base = [substitute(a, values) for a in preset.base.split()]
    if preset.module is not None:
        base = ["-m", preset.module, *base]
    return base + engine_flags(engine_args, preset)


def engine_flags(engine_args: EngineArgs, preset: Preset) -> list[str]:
    """`engine_args` as command-line flags (see the module docstring); LoadError for a flag
    the preset sets itself."""
    out: list[str] = []
    for key, value in engine_args.items():
        flag = key if key.startswith("-") else "--" + key.replace("_", "-")
        if flag.partition("=")[0] in preset.reserved:
            raise LoadError(
                f"engine_args.{key}: {flag} is set by Podium for {preset.name}; remove it"
            )
        if value is True:
            out.append(flag)
        elif value is not False:
            out += [flag, str(value)]
    return out


def config_text(preset: Preset, place: Placeholders) -> str | None:
    """The content of the preset's config file, if it has one."""
    return None if preset.config is None else substitute(preset.config, place.values())


def pick_model_file(preset: Preset, names: Sequence[str]) -> str | None:
    """The file of the preset's `model_suffix` among the model folder's file `names`.

    A sharded GGUF (`x-00001-of-00003.gguf`) is named by its first shard. None when the
    preset names no file; LoadError when there is none or the choice is ambiguous.
    """
    if preset.model_suffix is None:
        return None
    found = sorted(n for n in names if n.lower().endswith(preset.model_suffix))
    if len(found) == 1:
        return found[0]
    first_shards = [n for n in found if "-00001-of-" in n]
    if len(first_shards) == 1 and all("-of-" in n for n in found):
        return first_shards[0]
    if found:
        raise LoadError(
            f"several {preset.model_suffix} files in the model ({', '.join(found)}); "
            f"{preset.name} needs exactly one"
        )
    listing = ", ".join(sorted(names)[:20]) or "nothing"
    raise LoadError(
        f"{preset.name} needs a {preset.model_suffix} file in the model; found: {listing}"
    )


# ---------------------------------------------------------------------- probes


def health_route(
    framework: str, command: CommandSpec | None, container: ContainerSpec | None = None
) -> str | None:
    """Where an external server answers health checks; None for podium replicas. A preset
    run from its image answers where the preset does."""
    if framework == COMMAND:
        return command.health_route if command is not None else "/health"
    if framework == CONTAINER:
        return container.health_route if container is not None else "/health"
    preset = PRESETS.get(framework)
    return preset.health_route if preset is not None else None


def probe_specs(
    spec: EndpointSpec, served: EndpointSpec | None = None
) -> tuple[ProbeSpec, ProbeSpec]:
    """Readiness and liveness probes for a replica of `served` (the spec of the replica's
    revision; default `spec`) under the endpoint's current `spec`.

    Timings come from `spec`; for external servers, the paths of HTTP probes of the
    replica's own port left at the replica defaults become the server's health route.
    """
    source = served if served is not None else spec
    route = health_route(source.framework, source.command, source.container)
    ready, live = spec.readiness, spec.liveness
    if route is None:
        return ready, live
    if _own_http(ready) and ready.path == DEFAULT_READINESS:
        ready = ready.model_copy(update={"path": route})
    if _own_http(live) and live.path == DEFAULT_LIVENESS:
        live = live.model_copy(update={"path": route})
    return ready, live


def _own_http(p: ProbeSpec) -> bool:
    """An HTTP probe of the replica's own port (the only kind whose path is the server's)."""
    return p.kind is ProbeKind.HTTP and p.port is None
