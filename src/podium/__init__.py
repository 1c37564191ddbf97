"""Podium: a self-hosted Model Endpoints platform.

The SDK's main names are here too, loaded on first use (`import podium` imports nothing
else): `podium.Client` (= `podium.client.PodiumClient`), `podium.AsyncClient`, the
huggingface_hub-shaped `create_inference_endpoint`, `get_inference_endpoint`,
`list_inference_endpoints`, and the Scale Launch-shaped `create_model_endpoint`,
`get_model_endpoint`, `list_model_endpoints`, `edit_model_endpoint`,
`delete_model_endpoint` (docs/sdk.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name here -> its name in `podium.client`
_SDK = {
    "Client": "PodiumClient",
    "AsyncClient": "AsyncClient",
    "InferenceEndpoint": "InferenceEndpoint",
    "ModelEndpoint": "ModelEndpoint",
    "create_inference_endpoint": "create_inference_endpoint",
    "get_inference_endpoint": "get_inference_endpoint",
    "list_inference_endpoints": "list_inference_endpoints",
    "create_model_endpoint": "create_model_endpoint",
    "get_model_endpoint": "get_model_endpoint",
    "list_model_endpoints": "list_model_endpoints",
    "edit_model_endpoint": "edit_model_endpoint",
    "delete_model_endpoint": "delete_model_endpoint",
}

__all__ = [
    "AsyncClient",
    "Client",
    "InferenceEndpoint",
    "ModelEndpoint",
    "__version__",
    "create_inference_endpoint",
    "create_model_endpoint",
    "delete_model_endpoint",
    "edit_model_endpoint",
    "get_inference_endpoint",
    "get_model_endpoint",
    "list_inference_endpoints",
    "list_model_endpoints",
]

if TYPE_CHECKING:
    from podium.client import AsyncClient as AsyncClient
    from podium.client import InferenceEndpoint as InferenceEndpoint
    from podium.client import ModelEndpoint as ModelEndpoint
    from podium.client import PodiumClient as Client
    from podium.client import create_inference_endpoint as create_inference_endpoint
    from podium.client import create_model_endpoint as create_model_endpoint
    from podium.client import delete_model_endpoint as delete_model_endpoint
    from podium.client import edit_model_endpoint as edit_model_endpoint
    from podium.client import get_inference_endpoint as get_inference_endpoint
    from podium.client import get_model_endpoint as get_model_endpoint
    from podium.client import list_inference_endpoints as list_inference_endpoints
    from podium.client import list_model_endpoints as list_model_endpoints


def __getattr__(name: str) -> Any:
    """The SDK names, imported when first asked for (PEP 562)."""
    if name not in _SDK:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module("podium.client"), _SDK[name])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SDK})
