"""Open Inference Protocol v2 documents that are not tensors: server and model metadata,
and the error body. Plain dicts, built here so the replica app stays free of wire details.
"""

from __future__ import annotations

from typing import Any

from podium.core.tensors import ModelMetadata, TensorSpec

SERVER_NAME = "podium"


def server_metadata(version: str, extensions: list[str] | None = None) -> dict[str, Any]:
    """`GET /v2`."""
    return {"name": SERVER_NAME, "version": version, "extensions": list(extensions or [])}


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def model_metadata(metadata: ModelMetadata, version: str | None = None) -> dict[str, Any]:
    """`GET /v2/models/{name}`: the endpoint's name, the model's version, tensors."""
    versions = list(metadata.versions) or ([version] if version is not None else [])
    return {
        "name": metadata.name,
        "versions": versions,
        "platform": metadata.platform,
        "inputs": [_tensor(s) for s in metadata.inputs],
        "outputs": [_tensor(s) for s in metadata.outputs],
    }


def model_config(metadata: ModelMetadata) -> dict[str, Any]:
    """`GET /v2/models/{name}/config`: Triton's model configuration, the parts that apply
    (tritonclient's `get_model_config`). Shapes are given whole; no batching dimension."""

    def tensor(spec: TensorSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "data_type": f"TYPE_{_TRITON_TYPES.get(spec.datatype, spec.datatype)}",
            "dims": list(spec.shape),
        }

    return {
        "name": metadata.name,
        "platform": metadata.platform,
        "backend": SERVER_NAME,
        "max_batch_size": 0,
        "input": [tensor(s) for s in metadata.inputs],
        "output": [tensor(s) for s in metadata.outputs],
    }


# Triton's config names where they differ from the protocol's datatype names.
_TRITON_TYPES = {"BYTES": "STRING"}


def error(message: str) -> dict[str, str]:
    """The v2 error body."""
    return {"error": message}
