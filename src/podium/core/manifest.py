"""The documents `podium apply` accepts (pydantic, no I/O).

A manifest is a list of documents, each a mapping with a `kind`:

    endpoint  (the default when `kind` is absent: a `podium deploy -f` file applies as it is)
              an `EndpointCreate` whose `name` is required
    model     a model to push from a local path when its content differs from the latest
              version (the client does it: the server never reads the user's disk)
    secret    a project's secret, its value BY REFERENCE (`from_env` or `from_file`); the
              client resolves it and sends `value` over the request only
    project   a project and its quotas

`parse_documents` validates every document; an error names `documents[i].field`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from podium.core.access import DEFAULT_PROJECT
from podium.core.errors import Invalid
from podium.core.ids import NAME_RULE, PROJECT_RULE, Name, ProjectName
from podium.core.schemas import QuotasModel
from podium.core.secret_limits import SecretValueStr
from podium.core.spec import EndpointCreate, EndpointSpec

MAX_DOCUMENTS = 500
MANAGED_BY_LABEL = "managed-by"  # the label apply sets on its endpoints: prune's scope


class DocumentKind(StrEnum):
    ENDPOINT = "endpoint"
    MODEL = "model"
    SECRET = "secret"
    PROJECT = "project"


def _with_kind(kind: DocumentKind) -> Callable[[dict[str, Any]], None]:
    """The JSON schema of a document names its `kind` (required but for an endpoint):
    the OpenAPI document tells the four kinds apart by it."""

    def extra(schema: dict[str, Any]) -> None:
        schema["properties"] = {"kind": {"const": kind.value}, **schema.get("properties", {})}
        if kind is not DocumentKind.ENDPOINT:
            schema["required"] = ["kind", *schema.get("required", [])]

    return extra


class _Named(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description=NAME_RULE)
    project: ProjectName = Field(DEFAULT_PROJECT, description=PROJECT_RULE)


class EndpointDocument(EndpointCreate):
    """An endpoint as apply converges it: the whole spec (absent fields are the defaults)."""

    model_config = ConfigDict(json_schema_extra=_with_kind(DocumentKind.ENDPOINT))

    name: Name = Field(description=f"unique in its project; {NAME_RULE}")

    def create(self) -> EndpointCreate:
        return EndpointCreate.model_validate(self.model_dump(exclude_unset=True))


class ModelDocument(_Named):
    """A model pushed from `path` (a folder, file or archive; relative to the manifest)."""

    model_config = ConfigDict(json_schema_extra=_with_kind(DocumentKind.MODEL))

    path: str = Field(min_length=1, max_length=4096)
    framework: str | None = Field(None, pattern=r"^[a-z][a-z0-9_.-]{1,31}$")


class SecretDocument(_Named):
    """A secret by reference. `value` is what the client resolved; it travels in the
    request only and is never part of a plan, a log, an event or an answer."""

    model_config = ConfigDict(json_schema_extra=_with_kind(DocumentKind.SECRET))

    from_env: str | None = Field(None, max_length=256, description="an environment variable")
    from_file: str | None = Field(None, max_length=4096, description="a file (its content)")
    value: SecretValueStr | None = Field(
        None, repr=False, description="set by the client (at most 64 KiB); never shown"
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecretDocument:
        if self.from_env is not None and self.from_file is not None:
            raise ValueError("give `from_env` or `from_file`, not both")
        if self.from_env is None and self.from_file is None and self.value is None:
            raise ValueError("a secret needs `from_env: VAR` or `from_file: PATH`")
        return self


class ProjectDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_with_kind(DocumentKind.PROJECT))

    name: ProjectName = Field(description=PROJECT_RULE)
    description: str | None = Field(None, max_length=1000)
    quotas: QuotasModel = Field(default_factory=QuotasModel)


Document = EndpointDocument | ModelDocument | SecretDocument | ProjectDocument

# A document as a request carries it: published as one of the four schemas, kept as sent
# (`parse_documents` validates it and names `documents[i].field` in its error).
RawDocument = Annotated[Any, PlainValidator(lambda v: v, json_schema_input_type=Document)]

_BY_KIND: dict[DocumentKind, type[BaseModel]] = {
    DocumentKind.ENDPOINT: EndpointDocument,
    DocumentKind.MODEL: ModelDocument,
    DocumentKind.SECRET: SecretDocument,
    DocumentKind.PROJECT: ProjectDocument,
}


def kind_of(document: Document) -> DocumentKind:
    return next(k for k, cls in _BY_KIND.items() if type(document) is cls)


def parse_document(raw: Any, index: int) -> Document:
    """One document; `Invalid` naming `documents[index].field` when it is not valid."""
    where = f"documents[{index}]"
    if not isinstance(raw, dict):
        raise Invalid(f"a document is a mapping, not {type(raw).__name__}", field=where)
    body = dict(raw)
    kind = body.pop("kind", DocumentKind.ENDPOINT.value)
    try:
        cls = _BY_KIND[DocumentKind(kind)]
    except (ValueError, TypeError):
        known = ", ".join(k.value for k in DocumentKind)
        raise Invalid(
            f"{kind!r} is not a kind of document: use {known}", field=f"{where}.kind"
        ) from None
    try:
        document = cls.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(part) for part in first.get("loc", ()))
        if first.get("type") == "extra_forbidden":
            message = "unknown field"
        else:
            message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise Invalid(message, field=f"{where}.{loc}" if loc else where) from None
    assert isinstance(document, EndpointDocument | ModelDocument | SecretDocument | ProjectDocument)
    return document


def parse_documents(raw: Sequence[Any]) -> list[Document]:
    if len(raw) > MAX_DOCUMENTS:
        raise Invalid(f"at most {MAX_DOCUMENTS} documents at once", field="documents")
    documents = [parse_document(item, i) for i, item in enumerate(raw)]
    seen: dict[tuple[DocumentKind, str, str], int] = {}
    for i, doc in enumerate(documents):
        project = doc.name if isinstance(doc, ProjectDocument) else doc.project
        key = (kind_of(doc), project, doc.name)
        if key in seen:
            raise Invalid(
                f"{key[0].value} {doc.name!r} of project {project!r} is also "
                f"documents[{seen[key]}]",
                field=f"documents[{i}].name",
            )
        seen[key] = i
    return documents


def document_dict(document: Document) -> dict[str, Any]:
    """A document as JSON, with its `kind` (what the API accepts)."""
    return {"kind": kind_of(document).value, **document.model_dump(mode="json", exclude_unset=True)}


def export_document(spec: EndpointSpec) -> dict[str, Any]:
    """`spec` as the endpoint document apply accepts: `kind`, `name`, and the fields that
    differ from their defaults (nested blocks likewise). The `managed-by` label is apply's
    own: left out, so that applying the export under any manager changes nothing else."""
    body = spec.model_dump(mode="json", exclude_defaults=True)
    labels = {k: v for k, v in spec.labels.items() if k != MANAGED_BY_LABEL}
    body.pop("labels", None)
    if labels:
        body["labels"] = labels
    return {"kind": DocumentKind.ENDPOINT.value, "name": spec.name, **body}
