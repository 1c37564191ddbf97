"""Typed identifiers and the rules for user-chosen names."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, NewType

from pydantic import AfterValidator, Field

from podium.core.errors import Invalid

ReplicaId = NewType("ReplicaId", str)
RequestId = NewType("RequestId", str)

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,47}$")
NAME_RULE = "lowercase letters, digits and hyphens, 3 to 48 characters, starting with a letter"


# A project's name is part of every key in it (`core.access.endpoint_key`): short enough
# that `project.name` fits where a name fits (64 characters).
PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{2,14}$")
PROJECT_RULE = "lowercase letters, digits and hyphens, 3 to 15 characters, starting with a letter"


def _project_error(value: str) -> str | None:
    if PROJECT_RE.match(value):
        return None
    return f"{value!r} is not a valid project name: use {PROJECT_RULE}"


def _name_error(value: str) -> str | None:
    return None if NAME_RE.match(value) else f"{value!r} is not a valid name: use {NAME_RULE}"


def check_project(value: str, field: str = "project") -> str:
    if (why := _project_error(value)) is not None:
        raise Invalid(why, field=field)
    return value


def check_name(value: str, field: str = "name") -> str:
    if (why := _name_error(value)) is not None:
        raise Invalid(why, field=field)
    return value


def _valid_name(value: str) -> str:
    if (why := _name_error(value)) is not None:
        raise ValueError(why)
    return value


def _valid_project(value: str) -> str:
    if (why := _project_error(value)) is not None:
        raise ValueError(why)
    return value


# The pydantic types of a name and a project name in a body (spec, manifest documents):
# one rule, one message, wherever a user writes one.
Name = Annotated[str, Field(max_length=48), AfterValidator(_valid_name)]
ProjectName = Annotated[str, Field(max_length=15), AfterValidator(_valid_project)]


def new_replica_id(endpoint: str, revision: int) -> ReplicaId:
    return ReplicaId(f"{endpoint}-r{revision}-{secrets.token_hex(3)}")


def new_request_id() -> RequestId:
    return RequestId(secrets.token_hex(8))
