"""Which runtimes exist, by framework name, without importing them.

Built-in runtimes are listed here; third-party packages add more under the
`podium.runtimes` entry-point group:

    [project.entry-points."podium.runtimes"]
    mytool = "my_package.runtime:MyRuntime"

A built-in name cannot be taken over by an entry point, so `framework: sklearn` always
means Podium's own runtime. Runtime modules are imported only by `get_runtime`, so listing
names never pays for importing scikit-learn or torch.

External frameworks (`command` and the presets in `presets.py`: vllm, tgi, …) are known
names too, but have no runtime class: the backend runs their server instead of a replica,
so `get_runtime` refuses them with a LoadError saying so.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from podium.core.errors import Invalid, LoadError
from podium.runtimes.presets import EXTERNAL_FRAMEWORKS, get_preset

if TYPE_CHECKING:
    from podium.runtimes.base import Runtime

GROUP = "podium.runtimes"

# transformers tasks whose replicas serve the OpenAI routes (text and embeddings).
OPENAI_TASKS = frozenset({"text-generation", "feature-extraction"})

BUILTIN: dict[str, str] = {
    "onnx": "podium.runtimes.onnx:OnnxRuntime",
    "python": "podium.runtimes.python:PythonRuntime",
    "sklearn": "podium.runtimes.sklearn:SklearnRuntime",
    "transformers": "podium.runtimes.transformers:TransformersRuntime",
}


def plugins() -> dict[str, EntryPoint]:
    """The third-party runtimes by framework name (a built-in name cannot be taken)."""
    taken = BUILTIN.keys() | EXTERNAL_FRAMEWORKS
    return {ep.name: ep for ep in entry_points(group=GROUP) if ep.name not in taken}


def known_runtimes() -> list[str]:
    """Every framework name, sorted. Imports no runtime module."""
    return sorted({*BUILTIN, *EXTERNAL_FRAMEWORKS, *plugins()})


def get_runtime(name: str) -> type[Runtime]:
    """The runtime class for a framework name, imported now.

    Raises Invalid for an unknown name and LoadError when the runtime cannot be imported
    (e.g. its optional dependency is not installed).
    """
    if name in EXTERNAL_FRAMEWORKS:
        raise LoadError(
            f"framework {name} runs as an external server started by the backend, "
            "not inside a podium replica"
        )
    if name in BUILTIN:
        target = BUILTIN[name]
    elif (ep := plugins().get(name)) is not None:
        target = ep.value
    else:
        known = ", ".join(known_runtimes())
        raise Invalid(f"unknown framework {name!r}; known: {known}", field="framework")
    from podium.runtimes.base import Runtime

    module_name, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except ImportError as e:
        raise LoadError(f"the {name} runtime cannot be imported: {e}") from e
    except AttributeError:
        raise LoadError(f"the {name} runtime {target!r} does not exist") from None
    if not (isinstance(obj, type) and issubclass(obj, Runtime)):
        raise LoadError(f"the {name} runtime {target!r} is not a podium Runtime")
    return obj


def serves_openai(framework: str, task: str | None) -> bool | None:
    """Whether an endpoint's replicas answer the OpenAI routes, known from its spec alone:
    True, False, or None when only the running model can tell (a `python` bundle that may
    define `generate`/`embed`, a `command` server, a transformers model whose task comes
    from its config, a third-party runtime)."""
    preset = get_preset(framework)
    if preset is not None:
        return preset.openai
    if framework in ("sklearn", "onnx"):
        return False
    if framework == "transformers" and task is not None:
        return task in OPENAI_TASKS
    return None
