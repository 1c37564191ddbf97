"""The frameworks catalog: every framework from the runtimes' table, with whether it is
installed and usable on this backend, searched by `q`.

Installed means: its Python package can be found by this server's interpreter (the one
replicas run; `importlib.util.find_spec`, which imports nothing) or its program is on the
server's PATH. Usable means installed and, for a framework that requires a GPU, an NVIDIA
GPU visible here (`backends.external.gpu_visible`, the check a preset's start makes, on
the node's one GPU count, `backends.resources.node_gpus`, that the size check uses too).
Framework `container` is usable where a deploy of it would be accepted
(`checks.container_problem`: a container engine on this node, and the local backend).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from podium.api.services.checks import container_problem
from podium.backends.external import find_program, gpu_visible
from podium.core.catalog_schemas import FrameworkKind, FrameworkPublic, GpuNeed
from podium.core.settings import BackendKind, ContainerSettings, Settings
from podium.runtimes.catalog import Framework, frameworks


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class Host:
    """What the backend has: a seam, so tests can say "no GPU" or "vllm on PATH"."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    importable: Callable[[str], bool] = _importable

    def has_program(self, name: str) -> bool:
        return find_program(name, self.env) is not None

    def has_gpu(self) -> bool:
        return gpu_visible(self.env)


class CatalogService:
    """`settings`: the server's (its backend and container engine decide whether framework
    `container` is usable; None: the defaults)."""

    def __init__(self, host: Host | None = None, settings: Settings | None = None) -> None:
        self._host = host or Host()
        self._settings = settings

    def list(self, q: str | None = None) -> list[FrameworkPublic]:
        """Every framework (sorted by name) whose name, summary or a task contains `q`
        (case-insensitive); all of them without `q`."""
        needle = (q or "").strip().casefold()
        found = [f for f in frameworks() if not needle or _matches(f, needle)]
        gpu = self._host.has_gpu() if found else False
        return [self._entry(f, gpu) for f in found]

    def _entry(self, f: Framework, gpu: bool) -> FrameworkPublic:
        requires, installed = None, True
        if f.package is not None:
            requires, installed = f"python package {f.package}", self._host.importable(f.package)
        elif f.program is not None:
            requires, installed = f"program {f.program}", self._host.has_program(f.program)
        why_not = None
        if f.kind is FrameworkKind.CONTAINER:
            requires = "a container engine (podman, or docker with its daemon)"
            if self._settings is None:
                why_not = container_problem(BackendKind.LOCAL, ContainerSettings())
            else:
                why_not = container_problem(self._settings.backend, self._settings.containers)
            installed = why_not is None
        elif not installed:
            why_not = f"not installed: {requires} not found on this backend"
        elif f.gpu is GpuNeed.REQUIRED and not gpu:
            why_not = "needs a GPU; no NVIDIA GPU is visible on this backend"
        return FrameworkPublic(
            name=f.name,
            kind=f.kind,
            summary=f.summary,
            tasks=list(f.tasks),
            protocols=list(f.protocols),
            formats=list(f.formats),
            gpu=f.gpu,
            requires=requires,
            installed=installed,
            usable=why_not is None,
            why_not=why_not,
        )


def _matches(f: Framework, needle: str) -> bool:
    return any(needle in text.casefold() for text in (f.name, f.summary, *f.tasks))
