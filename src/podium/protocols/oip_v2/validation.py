"""Check decoded tensors against a model's metadata: names, datatypes, shapes."""

from __future__ import annotations

from collections.abc import Mapping

from podium.core.errors import Invalid
from podium.core.tensors import Array, ModelMetadata, TensorSpec, datatype_of


def _describe(spec: TensorSpec) -> str:
    types = " or ".join([spec.datatype, *sorted(spec.accepts)])
    return f"{spec.name} ({types}, shape {list(spec.shape)})"


def check_inputs(inputs: Mapping[str, Array], metadata: ModelMetadata) -> None:
    """Invalid naming the input and what was expected, at the first mismatch."""
    for name, arr in inputs.items():
        spec = metadata.input(name)
        if spec is None:
            takes = ", ".join(_describe(s) for s in metadata.inputs)
            raise Invalid(
                f"unknown input {name!r}; model {metadata.name!r} takes {takes}",
                field=f"inputs.{name}",
            )
        datatype = datatype_of(arr.dtype)
        if not spec.allows(datatype):
            expected = " or ".join([spec.datatype, *sorted(spec.accepts)])
            raise Invalid(
                f"input {name!r} has datatype {datatype}; expected {expected}",
                field=f"inputs.{name}",
            )
        if not spec.fits(tuple(arr.shape)):
            raise Invalid(
                f"input {name!r} has shape {list(arr.shape)}; expected {list(spec.shape)}"
                " (-1: any size)",
                field=f"inputs.{name}",
            )
    missing = [s for s in metadata.inputs if s.name not in inputs]
    if missing:
        raise Invalid(
            "missing input " + ", ".join(_describe(s) for s in missing),
            field=f"inputs.{missing[0].name}",
        )


def check_outputs(names: tuple[str, ...], metadata: ModelMetadata) -> None:
    """Invalid for a requested output the model does not have."""
    for name in names:
        if metadata.output(name) is None:
            has = ", ".join(s.name for s in metadata.outputs)
            raise Invalid(
                f"unknown output {name!r}; model {metadata.name!r} has {has}",
                field=f"outputs.{name}",
            )
